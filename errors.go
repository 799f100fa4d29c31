package sessions

import (
	"errors"

	"github.com/sessionx/sessions/backend"
)

// Errors returned by the Manager, for errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error New returns for a Config
	// that makes no sense.
	ErrInvalidConfig = errors.New("sessions: invalid config")

	// ErrConflict is returned by Save, Update and Migrate when another
	// request changed or rotated the session since this one loaded it;
	// nothing was written. It is backend.ErrConflict.
	ErrConflict = backend.ErrConflict

	// ErrGone is returned by Save, Update, Migrate and the middleware's
	// commit when the session ended since this request loaded it: another
	// request logged it out or migrated it, it expired, or the store
	// evicted or lost it (a store cannot tell these apart). Nothing was
	// written: a session that ended is never brought back under its old
	// token. The Session became a new, empty one, and the cookie was
	// cleared on the response. The default ErrorHandler answers 401
	// Unauthorized (see Config.ErrorHandler).
	ErrGone = errors.New("sessions: session ended since it was loaded")

	// ErrUnknownOutcome is returned by Save, Update, Migrate, Destroy and
	// the middleware's commit when the store could not tell whether the
	// write was applied (its answer was lost and could not be recovered
	// in time): the change may or may not be stored. It is
	// backend.ErrUnknownOutcome. The default ErrorHandler answers 504
	// Gateway Timeout, saying so: the client should look before it
	// retries, never take the change as failed.
	ErrUnknownOutcome = backend.ErrUnknownOutcome

	// ErrTooLarge is returned by Save and Migrate when the encoded data is
	// larger than Config.MaxSize; nothing was written.
	ErrTooLarge = errors.New("sessions: session data too large")

	// ErrExpired is returned by Save, Update and Migrate when the session
	// reached its absolute deadline while the request was running; its
	// changes were not written. It wraps ErrGone: errors.Is(err, ErrGone)
	// holds for it too.
	ErrExpired error = &wrapped{msg: "sessions: session expired", parent: ErrGone}
)

// wrapped is a sentinel error that is also its parent for errors.Is.
type wrapped struct {
	msg    string
	parent error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.parent }
