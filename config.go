package sessions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/codec"
)

// Config configures a Manager. Its zero value is all defaults; each field's
// comment names its default.
type Config struct {
	// Store keeps the sessions' bytes. Default: a new in-memory store
	// (backend/memory with its defaults), closed by Manager.Close. Use a
	// shared store such as backend/redis when several processes serve the
	// same site.
	Store backend.Store

	// Codec encodes the data type T. Default codec.Msgpack{}.
	Codec codec.Codec

	// IdleTimeout ends a session after this long without a request. Default
	// 30 minutes. It may not be negative nor longer than AbsoluteTimeout.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after it was created, however
	// active it is. Default 12 hours. It may not be negative.
	AbsoluteTimeout time.Duration

	// MaxIdleTimeout and MaxAbsoluteTimeout cap the timeouts a session may
	// be given with Session.SetLifetime ("remember me"). Defaults 30 days
	// and 90 days. They may not be shorter than IdleTimeout and
	// AbsoluteTimeout.
	MaxIdleTimeout, MaxAbsoluteTimeout time.Duration

	// TouchInterval is how long after the idle deadline was last written
	// the store is told of a later one: by the next load (a write that
	// costs no encoding) or the next save; a save before then keeps the
	// stored deadline. Default IdleTimeout/10. It must be shorter than
	// IdleTimeout; a session idle for IdleTimeout-TouchInterval may be gone.
	TouchInterval time.Duration

	// MaxSize bounds the encoded size of a session's data in bytes: Save
	// refuses larger data with ErrTooLarge. Default 1 MiB.
	MaxSize int

	// Cookie says how the session cookie is written. Its zero value is
	// secure defaults; see CookieConfig.
	Cookie CookieConfig

	// Header lets the token travel in a request header (Authorization:
	// Bearer, or a header of your choice) instead of or beside the cookie,
	// for API clients and apps. Its zero value is off; see HeaderConfig.
	Header HeaderConfig

	// ErrorHandler answers a request the middleware cannot serve because
	// loading or saving its session failed (the store is down, a conflict).
	// Default: log the error with Logger and answer with a generic body and
	// Cache-Control: no-store: 409 Conflict for errors wrapping ErrConflict
	// (the client may retry: its change was not stored, the other
	// request's was); 401 Unauthorized for ErrGone (the session ended, so
	// retrying with the same cookie cannot succeed: the response also
	// clears the cookie, and a client that treats 401 as "log in again"
	// does the right thing; 410 Gone would be wrong, as caches may keep
	// it); 403 Forbidden for ErrTooManySessions; 504 Gateway Timeout for
	// ErrUnknownOutcome (the change may or may not be stored: the client
	// should look before it retries); 500 for the rest.
	// Conflicts, ended sessions and the owner limit are logged at Warn, the
	// rest at Error. The handler never runs with a blank session in place
	// of the one the store could not deliver.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// OnConflict says what the middleware does when its end-of-request
	// save meets ErrConflict: another request changed or rotated the
	// session meanwhile (a session that ended meanwhile is ErrGone, never
	// written back whatever the policy). Default ConflictError: the other
	// request's change is kept and this response is replaced by the
	// ErrorHandler's (409). See ConflictPolicy. Handlers that change
	// contended fields should use Update, which retries.
	OnConflict ConflictPolicy

	// TakeTurns makes the requests of one session that reach this Manager
	// run one after another, from load to commit, as PHP's sessions and
	// Laravel's block() do: a request waits until the one before it has
	// committed, so plain writes such as s.Data.Visits++ never conflict
	// within one process. Default false: requests run in parallel and
	// their plain writes merge at commit (see OnConflict).
	//
	// Cost: a request of a session waits for the handler of the one before
	// it, so a page's parallel requests run in sequence. The wait is
	// bounded by TurnWait and the request's context: past it, the request
	// goes on without its turn (merging and conflicts as usual). It does
	// not cover other processes (for those, plain writes merge and Update
	// retries), nor a request that comes with a rotated-away token of the
	// session within its grace window (it waits in another line). Update
	// and Migrate inside a handler do not deadlock with it.
	TakeTurns bool

	// TurnWait bounds how long a request waits for its turn with
	// TakeTurns. Default 5 seconds.
	TurnWait time.Duration

	// UpdateAttempts bounds how many times Update applies its change under
	// contention. Default DefaultUpdateAttempts (64).
	UpdateAttempts int

	// RotateEvery, when positive, gives an active session a new token once
	// this long has passed since its token was issued (at login, Migrate,
	// or the last rotation), so that a token that leaked is soon worthless.
	// Default 0: no periodic rotation (Migrate still rotates at login).
	RotateEvery time.Duration

	// RotateGrace is how long a rotated-away token keeps finding its
	// session, for requests the browser sent before it received the new
	// cookie. After it, the old token finds nothing. Default 10 seconds
	// when RotateEvery is set. It must be shorter than IdleTimeout.
	RotateGrace time.Duration

	// Bind, when set, binds each session to the client that created it:
	// Bind(r) is computed for every request (for example from the
	// User-Agent header), its SHA-256 is stored with the session, and a
	// request whose value differs does not get the session: it gets a new
	// one, and OnEvent is told (EventSuspicious). Default nil: no binding. Binding to the
	// client IP is possible but breaks on mobile networks and proxies, so it
	// is not the default.
	Bind func(r *http.Request) string

	// OnEvent is told of every lifecycle event of a session: created,
	// migrated, rotated, destroyed, ended by another party, a conflict, a
	// suspicious request, an expiry the store reports (see EventKind), with
	// the session's handle, never its token, for metrics and audit logs. It
	// is called synchronously on the request's goroutine (or the store's
	// sweeper, for expiries): keep it quick. Default LogEvents(Logger):
	// suspicious requests at Warn, the rest at Debug.
	OnEvent func(ctx context.Context, ev Event)

	// MaxSessionsPerOwner, when positive, bounds how many live sessions one
	// owner (see Session.SetOwner) may have at once. What happens when a
	// session is attributed to an owner at the bound is OwnerLimit. Default
	// 0: no bound. Needs a store that implements backend.Indexer.
	MaxSessionsPerOwner int

	// OwnerLimit is what happens at MaxSessionsPerOwner. Default
	// EvictLeastRecent: the owner's least recently active session is
	// destroyed. RefuseNew makes the save of the new attribution fail with
	// ErrTooManySessions.
	OwnerLimit OwnerLimitPolicy

	// CSRF configures Manager.CSRF, the synchronizer-token middleware. Its
	// zero value is all defaults.
	CSRF CSRFConfig

	// Logger receives the manager's log records: errors, corrupt stored
	// sessions. It never receives a token. Default slog.Default().
	Logger *slog.Logger

	// Now is the clock. Default time.Now. Tests inject a fake clock to test
	// expiry without sleeping; the default memory store uses it too.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default, or an
// error wrapping ErrInvalidConfig when c makes no sense. ErrorHandler and
// OnEvent, whose defaults are the Manager's, are left to New.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.IdleTimeout < 0:
		return c, fmt.Errorf("%w: IdleTimeout %v is negative", ErrInvalidConfig, c.IdleTimeout)
	case c.AbsoluteTimeout < 0:
		return c, fmt.Errorf("%w: AbsoluteTimeout %v is negative", ErrInvalidConfig, c.AbsoluteTimeout)
	case c.TouchInterval < 0:
		return c, fmt.Errorf("%w: TouchInterval %v is negative", ErrInvalidConfig, c.TouchInterval)
	case c.MaxSize < 0:
		return c, fmt.Errorf("%w: MaxSize %d is negative", ErrInvalidConfig, c.MaxSize)
	case c.UpdateAttempts < 0:
		return c, fmt.Errorf("%w: UpdateAttempts %d is negative", ErrInvalidConfig, c.UpdateAttempts)
	case c.OnConflict < ConflictError || c.OnConflict > ConflictOverwrite:
		return c, fmt.Errorf("%w: unknown OnConflict %v", ErrInvalidConfig, c.OnConflict)
	case c.RotateEvery < 0:
		return c, fmt.Errorf("%w: RotateEvery %v is negative", ErrInvalidConfig, c.RotateEvery)
	case c.RotateGrace < 0:
		return c, fmt.Errorf("%w: RotateGrace %v is negative", ErrInvalidConfig, c.RotateGrace)
	case c.MaxSessionsPerOwner < 0:
		return c, fmt.Errorf("%w: MaxSessionsPerOwner %d is negative", ErrInvalidConfig, c.MaxSessionsPerOwner)
	case c.OwnerLimit != EvictLeastRecent && c.OwnerLimit != RefuseNew:
		return c, fmt.Errorf("%w: unknown OwnerLimit %d", ErrInvalidConfig, c.OwnerLimit)
	}
	if c.UpdateAttempts == 0 {
		c.UpdateAttempts = DefaultUpdateAttempts
	}
	if c.TurnWait < 0 {
		return c, fmt.Errorf("%w: TurnWait %v is negative", ErrInvalidConfig, c.TurnWait)
	}
	if c.TurnWait == 0 {
		c.TurnWait = 5 * time.Second
	}
	if c.RotateGrace == 0 {
		c.RotateGrace = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.IdleTimeout > c.AbsoluteTimeout {
		return c, fmt.Errorf("%w: IdleTimeout %v is longer than AbsoluteTimeout %v", ErrInvalidConfig, c.IdleTimeout, c.AbsoluteTimeout)
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = c.IdleTimeout / 10
	}
	if c.TouchInterval >= c.IdleTimeout {
		return c, fmt.Errorf("%w: TouchInterval %v is not shorter than IdleTimeout %v", ErrInvalidConfig, c.TouchInterval, c.IdleTimeout)
	}
	if c.RotateEvery > 0 && (c.RotateGrace >= c.IdleTimeout || c.RotateGrace >= c.RotateEvery) {
		return c, fmt.Errorf("%w: RotateGrace %v must be shorter than IdleTimeout %v and RotateEvery %v",
			ErrInvalidConfig, c.RotateGrace, c.IdleTimeout, c.RotateEvery)
	}
	if c.MaxSize == 0 {
		c.MaxSize = 1 << 20
	}
	if c.MaxIdleTimeout == 0 {
		c.MaxIdleTimeout = max(30*24*time.Hour, c.IdleTimeout)
	}
	if c.MaxAbsoluteTimeout == 0 {
		c.MaxAbsoluteTimeout = max(90*24*time.Hour, c.AbsoluteTimeout)
	}
	if c.MaxIdleTimeout < c.IdleTimeout || c.MaxAbsoluteTimeout < c.AbsoluteTimeout {
		return c, fmt.Errorf("%w: MaxIdleTimeout %v and MaxAbsoluteTimeout %v may not be shorter than IdleTimeout %v and AbsoluteTimeout %v",
			ErrInvalidConfig, c.MaxIdleTimeout, c.MaxAbsoluteTimeout, c.IdleTimeout, c.AbsoluteTimeout)
	}
	var err error
	if c.Cookie, err = c.Cookie.withDefaults(); err != nil {
		return c, err
	}
	if err := c.CSRF.withDefaults(); err != nil {
		return c, err
	}
	if c.Header.Response == "" {
		c.Header.Response = "Session-Token"
	}
	c.Header.Response = http.CanonicalHeaderKey(c.Header.Response)
	for _, name := range []string{c.Header.Name, c.Header.Response} {
		if name != "" && !isCookieName(name) {
			return c, fmt.Errorf("%w: header %q is not a valid header name", ErrInvalidConfig, name)
		}
	}
	if strings.EqualFold(c.Header.Name, "Authorization") {
		return c, fmt.Errorf("%w: use Header.Bearer for the Authorization header", ErrInvalidConfig)
	}
	if c.Codec == nil {
		c.Codec = codec.Msgpack{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
