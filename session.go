package sessions

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Session is one visitor's session, as loaded for one request.
//
// Data is the application's typed data: read and change its fields directly.
// Everything else is reached through methods. A Session belongs to the
// request that loaded it: it is not safe for concurrent use by several
// goroutines, and it must not be kept after the request ends.
//
// The session's token (the secret in the cookie) is not exposed: Handle is
// the stable, non-secret name to use in logs and session lists. Printing a
// Session with fmt or log/slog shows its handle, never its token.
type Session[T any] struct {
	// Data is what the session holds. A new session starts with the zero T.
	Data T

	token    string  // the secret in the request's cookie; "" while the session is new
	key      string  // where the session is stored: storeKey(keyToken)
	keyToken string  // the token of key: token, or the one a rotated token forwards to
	seal     *sealer // keyToken's keys, derived when first needed
	bindIn   string  // Config.Bind's value for this request, when Bind is set
	handle   uuid.UUID
	created  time.Time
	absolute time.Time // the absolute deadline
	issued   time.Time // when token was issued
	expires  time.Time // the idle deadline, as last known to be in the store
	version  uint64    // the stored version this session was loaded at
	owner    string
	bind     []byte // the stored binding (see sealer.bind), or nil
	csrf     []byte // CSRF secret, or nil until CSRFToken is first called
	life     Lifetime
	base     stored // what the store holds (or, while new, would hold)
	isNew    bool

	// plainVal is the value whose encoding is plainOf, when T is plain
	// (see plain.go): while plainOf is base.data, a Data byte for byte
	// equal to plainVal is unchanged.
	plainVal T
	plainOf  []byte

	// forwarded: reached through a rotated token within its grace window;
	// the request's token is not the session's current one.
	forwarded bool
	// viaHeader: the token travels in a header, not the cookie (see
	// HeaderConfig).
	viaHeader bool
}

// stored is a session's state as the store holds it: what Load read or the
// last write wrote. A failed write puts the session back to it (see
// Manager.revert); the fields of Session that differ from it are the
// request's pending changes.
type stored struct {
	data  []byte // Data's encoding; nil while the session is new
	owner string
	bind  []byte
	csrf  []byte
	life  Lifetime
}

// metaChanged reports whether the owner, binding, CSRF secret or lifetime differ from
// what is stored, so that the session must be written even if Data did not
// change.
func (s *Session[T]) metaChanged() bool {
	return s.owner != s.base.owner || !bytes.Equal(s.bind, s.base.bind) || !bytes.Equal(s.csrf, s.base.csrf) || s.life != s.base.life
}

// ownerChanged reports whether SetOwner changed the owner since the session
// was stored.
func (s *Session[T]) ownerChanged() bool { return s.owner != s.base.owner }

// Handle returns the session's handle: a random UUID given when the session
// is created, the same across Migrate, and not secret. Use it to name the
// session in logs, audit trails and lists of a user's sessions; it cannot be
// used to load the session.
func (s *Session[T]) Handle() string {
	s.ensureHandle()
	return s.handle.String()
}

// ensureHandle gives a new session its handle.
func (s *Session[T]) ensureHandle() {
	if s.handle == uuid.Nil {
		s.handle = uuid.New()
	}
}

// IsNew reports whether the session is not stored yet: the request brought no
// cookie, or one whose session was unknown, expired or destroyed. A new
// session is stored (and its cookie set) only when its Data becomes
// different from the zero T, or on Migrate.
func (s *Session[T]) IsNew() bool { return s.isNew }

// CreatedAt returns when the session was first stored; the zero time while it
// is new.
func (s *Session[T]) CreatedAt() time.Time { return s.created }

// IdleDeadline returns when the session ends if no further request renews
// it, as last written to the store; the zero time while it is new. The store
// is told of a later deadline only once Config.TouchInterval has passed since
// the last write, so the deadline moves in steps.
func (s *Session[T]) IdleDeadline() time.Time { return s.expires }

// AbsoluteDeadline returns when the session ends however active it is:
// CreatedAt plus Config.AbsoluteTimeout. The zero time while it is new.
func (s *Session[T]) AbsoluteDeadline() time.Time { return s.absolute }

// Owner returns the owner given to SetOwner, or "".
func (s *Session[T]) Owner() string { return s.owner }

// SetOwner attributes the session to owner, for example the user id after
// login, so that Manager.Sessions lists it and Manager.DestroyAll ends it.
// The session is written at the next Save (or Migrate, or the middleware's
// commit) even if Data did not change; Config.MaxSessionsPerOwner is
// enforced then. An empty owner detaches the session from its owner.
func (s *Session[T]) SetOwner(owner string) {
	s.owner = owner
}

// String names the session by its handle, never by its token. It has a value
// receiver so that printing a Session value (not only a pointer) is safe.
func (s Session[T]) String() string {
	if s.isNew && s.handle == uuid.Nil {
		return "sessions.Session{new}"
	}
	return "sessions.Session{handle=" + s.handle.String() + "}"
}

// Format makes every fmt verb (%v, %+v, %#v, %s, ...) print String: the
// token and the data never reach a log line through fmt.
func (s Session[T]) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue makes log/slog show the session's handle and state, never its
// token or data.
func (s Session[T]) LogValue() slog.Value {
	if s.isNew && s.handle == uuid.Nil {
		return slog.GroupValue(slog.Bool("new", true))
	}
	return slog.GroupValue(slog.String("handle", s.handle.String()))
}

// reset makes s a new, empty session, detached from any stored one. It
// keeps the request's binding value (Load checked it against the stored
// binding), so that a session the request stores afterwards (a flash
// message after logout) is bound to the same client at once, never to
// whichever client comes next.
func (s *Session[T]) reset() {
	*s = Session[T]{isNew: true, bindIn: s.bindIn, viaHeader: s.viaHeader}
}
