// Package sessions keeps typed, server-side web sessions.
//
// An application declares a struct for what a visitor's session holds and
// gets one value of it per browser, behind an opaque cookie token, in memory
// or in a shared store such as Redis:
//
//	type Visit struct {
//		UserID int64
//		Cart   []string
//	}
//
//	mgr, err := sessions.New[Visit](sessions.Config{})
//	http.Handle("/", mgr.Handler(app)) // loads before, saves after
//
//	func app(w http.ResponseWriter, r *http.Request) {
//		s := mgr.Get(r) // *sessions.Session[Visit]
//		s.Data.Cart = append(s.Data.Cart, "book")
//	}
//
// Without the middleware, Load, Save, Migrate and Destroy give explicit
// control. The zero Config is all defaults: in-memory store, msgpack codec,
// 30 minutes idle timeout, 12 hours absolute lifetime, a Secure, HttpOnly,
// SameSite=Lax cookie.
//
// Data flows one way: cookie token -> hashed key -> store bytes -> envelope
// (timestamps, handle) -> codec -> T, and back. Stores see neither tokens nor
// T; see package backend for their contract.
package sessions

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/codec"
)

// Errors returned by the Manager, for errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error New returns for a Config
	// that makes no sense.
	ErrInvalidConfig = errors.New("sessions: invalid config")

	// ErrConflict is returned by Save and Migrate when another request
	// changed, migrated or destroyed the session since this one loaded it;
	// nothing was written. It is backend.ErrConflict.
	ErrConflict = backend.ErrConflict

	// ErrTooLarge is returned by Save and Migrate when the encoded data is
	// larger than Config.MaxSize; nothing was written.
	ErrTooLarge = errors.New("sessions: session data too large")

	// ErrExpired is returned by Save when the session reached its absolute
	// deadline while the request was running; its changes were not written.
	ErrExpired = errors.New("sessions: session expired")
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

	// TouchInterval is how long after the last write the store is told of a
	// later idle deadline (a write that costs no encoding). Default
	// IdleTimeout/10. It must be shorter than IdleTimeout; a session idle for
	// IdleTimeout-TouchInterval may be gone.
	TouchInterval time.Duration

	// MaxSize bounds the encoded size of a session's data in bytes: Save
	// refuses larger data with ErrTooLarge. Default 1 MiB.
	MaxSize int

	// Cookie says how the session cookie is written. Its zero value is
	// secure defaults; see CookieConfig.
	Cookie CookieConfig

	// ErrorHandler answers a request the middleware cannot serve because
	// loading or saving its session failed (the store is down, a conflict).
	// Default: log the error with Logger and answer with a generic body:
	// 409 Conflict for errors wrapping ErrConflict, 403 Forbidden for
	// ErrTooManySessions, 500 for the rest. The
	// handler never runs with a blank session in place of the one the store
	// could not deliver.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// OnConflict says what the middleware does when its end-of-request
	// save meets ErrConflict: another request changed, migrated or
	// destroyed the session meanwhile. Default ConflictError: the other
	// request's change is kept and this response is replaced by the
	// ErrorHandler's (409). See ConflictPolicy. Handlers that change
	// contended fields should use Update, which retries.
	OnConflict ConflictPolicy

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
	// one, and OnSuspicious is told. Default nil: no binding. Binding to the
	// client IP is possible but breaks on mobile networks and proxies, so it
	// is not the default.
	Bind func(r *http.Request) string

	// OnSuspicious is told of requests that look like an attack on a
	// session (so far: a binding mismatch). Default: a log/slog warning with
	// the session's handle, the reason and the remote address, never the
	// token.
	OnSuspicious func(r *http.Request, ev SuspiciousEvent)

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

// Manager loads and saves sessions of type T. Make one with New and share it:
// it is safe for concurrent use. Several Managers, of the same or different
// types, may live in one process; they share nothing unless given the same
// Store.
type Manager[T any] struct {
	store      backend.Store
	cas        backend.Conditional // nil when the store lacks it
	replacer   backend.Replacer    // nil when the store lacks it
	getToucher backend.GetToucher  // nil when the store lacks it
	ownStore   io.Closer           // the default store, closed by Close

	codec          codec.Codec
	idle           time.Duration
	absolute       time.Duration
	touchEvery     time.Duration
	maxSize        int
	cookie         CookieConfig
	onError        func(http.ResponseWriter, *http.Request, error)
	onConflict     ConflictPolicy
	updateAttempts int
	rotateEvery    time.Duration
	rotateGrace    time.Duration
	bind           func(*http.Request) string
	onSuspicious   func(*http.Request, SuspiciousEvent)
	maxPerOwner    int
	ownerLimit     OwnerLimitPolicy
	csrf           CSRFConfig
	indexer        backend.Indexer // nil when the store lacks it
	logger         *slog.Logger
	now            func() time.Time

	updating keyLocks // one lock per session key in Update

	zeroData []byte // the encoding of the zero T: a new session equal to it is not stored
	unstable bool   // T may hold maps: equal values may encode differently
	ctxKey   *contextKey
}

type contextKey struct{ name string }

// New returns a Manager for sessions holding a T. The zero Config works; New
// returns an error wrapping ErrInvalidConfig when cfg makes no sense
// (negative timeouts, idle longer than absolute, an invalid cookie name or
// attributes) or when the codec cannot encode T.
func New[T any](cfg Config) (*Manager[T], error) {
	m := &Manager[T]{
		store:          cfg.Store,
		codec:          cfg.Codec,
		idle:           cfg.IdleTimeout,
		absolute:       cfg.AbsoluteTimeout,
		touchEvery:     cfg.TouchInterval,
		maxSize:        cfg.MaxSize,
		onError:        cfg.ErrorHandler,
		onConflict:     cfg.OnConflict,
		updateAttempts: cfg.UpdateAttempts,
		rotateEvery:    cfg.RotateEvery,
		rotateGrace:    cfg.RotateGrace,
		bind:           cfg.Bind,
		onSuspicious:   cfg.OnSuspicious,
		maxPerOwner:    cfg.MaxSessionsPerOwner,
		ownerLimit:     cfg.OwnerLimit,
		csrf:           cfg.CSRF,
		logger:         cfg.Logger,
		now:            cfg.Now,
		ctxKey:         &contextKey{name: "sessions"},
	}
	switch {
	case m.idle < 0:
		return nil, fmt.Errorf("%w: IdleTimeout %v is negative", ErrInvalidConfig, m.idle)
	case m.absolute < 0:
		return nil, fmt.Errorf("%w: AbsoluteTimeout %v is negative", ErrInvalidConfig, m.absolute)
	case m.touchEvery < 0:
		return nil, fmt.Errorf("%w: TouchInterval %v is negative", ErrInvalidConfig, m.touchEvery)
	case m.maxSize < 0:
		return nil, fmt.Errorf("%w: MaxSize %d is negative", ErrInvalidConfig, m.maxSize)
	case m.updateAttempts < 0:
		return nil, fmt.Errorf("%w: UpdateAttempts %d is negative", ErrInvalidConfig, m.updateAttempts)
	case m.onConflict < ConflictError || m.onConflict > ConflictOverwrite:
		return nil, fmt.Errorf("%w: unknown OnConflict %v", ErrInvalidConfig, m.onConflict)
	case m.rotateEvery < 0:
		return nil, fmt.Errorf("%w: RotateEvery %v is negative", ErrInvalidConfig, m.rotateEvery)
	case m.rotateGrace < 0:
		return nil, fmt.Errorf("%w: RotateGrace %v is negative", ErrInvalidConfig, m.rotateGrace)
	case m.maxPerOwner < 0:
		return nil, fmt.Errorf("%w: MaxSessionsPerOwner %d is negative", ErrInvalidConfig, m.maxPerOwner)
	case m.ownerLimit != EvictLeastRecent && m.ownerLimit != RefuseNew:
		return nil, fmt.Errorf("%w: unknown OwnerLimit %d", ErrInvalidConfig, m.ownerLimit)
	}
	if m.updateAttempts == 0 {
		m.updateAttempts = DefaultUpdateAttempts
	}
	if m.rotateGrace == 0 {
		m.rotateGrace = 10 * time.Second
	}
	if m.idle == 0 {
		m.idle = 30 * time.Minute
	}
	if m.absolute == 0 {
		m.absolute = 12 * time.Hour
	}
	if m.idle > m.absolute {
		return nil, fmt.Errorf("%w: IdleTimeout %v is longer than AbsoluteTimeout %v", ErrInvalidConfig, m.idle, m.absolute)
	}
	if m.touchEvery == 0 {
		m.touchEvery = m.idle / 10
	}
	if m.touchEvery >= m.idle {
		return nil, fmt.Errorf("%w: TouchInterval %v is not shorter than IdleTimeout %v", ErrInvalidConfig, m.touchEvery, m.idle)
	}
	if m.rotateEvery > 0 && (m.rotateGrace >= m.idle || m.rotateGrace >= m.rotateEvery) {
		return nil, fmt.Errorf("%w: RotateGrace %v must be shorter than IdleTimeout %v and RotateEvery %v",
			ErrInvalidConfig, m.rotateGrace, m.idle, m.rotateEvery)
	}
	if m.maxSize == 0 {
		m.maxSize = 1 << 20
	}
	var err error
	if m.cookie, err = cfg.Cookie.withDefaults(); err != nil {
		return nil, err
	}
	if m.codec == nil {
		m.codec = codec.Msgpack{}
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.onError == nil {
		m.onError = m.defaultErrorHandler
	}
	if m.onSuspicious == nil {
		m.onSuspicious = m.logSuspicious
	}
	if err := m.csrf.withDefaults(); err != nil {
		return nil, err
	}
	var zero T
	if m.zeroData, err = m.codec.Marshal(&zero); err != nil {
		return nil, fmt.Errorf("%w: the codec cannot encode %T: %v", ErrInvalidConfig, zero, err)
	}
	m.unstable = mayEncodeUnstably(reflect.TypeFor[T](), map[reflect.Type]bool{})
	if m.store == nil {
		st := memory.New(memory.Options{Now: m.now})
		m.store, m.ownStore = st, st
	}
	m.cas, _ = m.store.(backend.Conditional)
	m.replacer, _ = m.store.(backend.Replacer)
	m.getToucher, _ = m.store.(backend.GetToucher)
	m.indexer, _ = m.store.(backend.Indexer)
	if m.maxPerOwner > 0 && m.indexer == nil {
		return nil, fmt.Errorf("%w: MaxSessionsPerOwner needs a store that implements backend.Indexer: %w", ErrInvalidConfig, backend.ErrUnsupported)
	}
	return m, nil
}

// Close releases what the Manager made for itself: the default in-memory
// store and its background goroutine. A Store passed in Config is the
// caller's to close. Close is safe to call more than once.
func (m *Manager[T]) Close() error {
	if m.ownStore != nil {
		return m.ownStore.Close()
	}
	return nil
}

// newSession returns a new, unsaved session for r.
func (m *Manager[T]) newSession(r *http.Request) *Session[T] {
	s := &Session[T]{isNew: true}
	if m.bind != nil && r != nil {
		s.bind = m.binding(r)
	}
	return s
}

// Load returns the session of the request's cookie.
//
// Without a cookie, or when the cookie's token is malformed, unknown,
// expired or destroyed, Load returns a new session (IsNew) and a nil error:
// a malformed token never reaches the store, and an unknown token is never
// adopted (a new session gets a new token when it is first saved). A stored
// session that cannot be decoded (corrupt bytes, a data type changed beyond
// what the codec tolerates) is logged, with its handle only, and also gives a
// new session. So does a session whose binding (Config.Bind) does not match
// the request, which is reported to Config.OnSuspicious.
//
// An error means the store failed (it is down, the request's context ended):
// the session may exist, so Load returns no session rather than a blank one
// that would log the visitor out.
//
// When the session's idle deadline is due for a refresh, Load moves it in the
// store (in the same round trip on stores that implement
// backend.GetToucher) and, for a persistent cookie, sets the refreshed cookie
// on w. When Config.RotateEvery has passed since its token was issued, Load
// gives the session a new token (see Config.RotateEvery) and sets it on w.
func (m *Manager[T]) Load(w http.ResponseWriter, r *http.Request) (*Session[T], error) {
	token, ok := readToken(r, m.cookie.Name)
	if !ok {
		return m.newSession(r), nil
	}
	return m.load(w, r, token)
}

// maxForwards bounds how many forward records (left by rotations within
// the grace window) a load follows.
const maxForwards = 3

func (m *Manager[T]) load(w http.ResponseWriter, r *http.Request, token string) (*Session[T], error) {
	ctx := r.Context()
	key := storeKey(token)
	now := m.now()
	var (
		e         backend.Entry
		err       error
		touched   bool
		forwarded bool
	)
	// With Bind, the deadline must not move before the binding is checked:
	// a stolen cookie must not keep the victim's session alive.
	slide := m.getToucher != nil && m.bind == nil
	if slide {
		e, touched, err = m.getToucher.GetTouch(ctx, key, m.touchThreshold(now), now.Add(m.idle))
	} else {
		e, err = m.store.Get(ctx, key)
	}
	for hops := 0; err == nil; hops++ {
		next, ok := decodeForward(e.Value)
		if !ok {
			break
		}
		if hops == maxForwards || !now.Before(e.Expires) {
			err = backend.ErrNotFound
			break
		}
		// A token rotated within the grace window: serve the session it
		// moved to, without handing this request the new token.
		key, forwarded, touched = next, true, false
		e, err = m.store.Get(ctx, key)
	}
	if errors.Is(err, backend.ErrNotFound) {
		return m.newSession(r), nil
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: load: %w", err)
	}
	env, err := decodeEnvelope(e.Value)
	if err != nil {
		m.logger.WarnContext(ctx, "sessions: stored session is corrupt; starting a new one", "err", err)
		return m.newSession(r), nil
	}
	if !alive(now, e.Expires, env.absolute) {
		return m.newSession(r), nil
	}
	s := &Session[T]{
		token:        token,
		key:          key,
		handle:       env.handle,
		created:      env.created,
		absolute:     env.absolute,
		issued:       env.issued,
		expires:      e.Expires,
		version:      e.Version,
		owner:        env.owner,
		indexedOwner: env.owner,
		bind:         env.bind,
		csrf:         env.csrf,
		loaded:       env.data,
		forwarded:    forwarded,
	}
	if m.bind != nil {
		b := m.binding(r)
		if s.bind != nil && subtle.ConstantTimeCompare(s.bind, b) != 1 {
			m.suspicious(r, s.Handle(), "binding mismatch: the request does not match the client the session was bound to")
			return m.newSession(r), nil
		}
		if s.bind == nil { // stored before Bind was configured
			s.bind, s.metaChanged = b, true
		}
	}
	if err := m.codec.Unmarshal(env.data, &s.Data); err != nil {
		m.logger.WarnContext(ctx, "sessions: stored session data does not decode; starting a new one",
			"session", s.handle.String(), "err", err)
		return m.newSession(r), nil
	}
	if (!slide || forwarded) && m.touchDue(now, e.Expires, env.absolute) {
		deadline := m.idleDeadline(now, env.absolute)
		switch err := m.store.Touch(ctx, key, deadline); {
		case errors.Is(err, backend.ErrNotFound):
			return m.newSession(r), nil // destroyed meanwhile
		case err != nil:
			return nil, fmt.Errorf("sessions: load: refresh idle deadline: %w", err)
		}
		s.expires, touched = deadline, true
	}
	if m.rotateEvery > 0 && !forwarded && !now.Before(s.issued.Add(m.rotateEvery)) {
		if err := m.rotate(ctx, w, s, now); err != nil {
			// Not fatal: the session keeps its token until the next request.
			m.logger.WarnContext(ctx, "sessions: rotation failed; keeping the token for now", "session", s.Handle(), "err", err)
		} else {
			touched = false // rotate set the cookie
		}
	}
	if touched && !m.cookie.SessionOnly {
		m.setCookie(w, s, now)
	}
	return s, nil
}

// setCookie writes s's cookie to w, expiring with its idle deadline. A
// session reached through a rotated token's forward record gets no cookie:
// its request carries the old token, and the new one went out with the
// response that rotated it.
func (m *Manager[T]) setCookie(w http.ResponseWriter, s *Session[T], now time.Time) {
	if w != nil && !s.forwarded {
		m.cookie.writeCookie(w, s.token, s.expires, now)
	}
}

// Save writes s to the store if its Data changed since it was loaded, and
// sets its cookie on w when the cookie changes. It writes nothing when
// nothing changed (the idle deadline was already refreshed by Load), and
// nothing for a new session whose Data is still the zero T: an anonymous
// visitor whose handler stores nothing costs no store write and gets no
// cookie. The cookie goes into w's header, so Save must run before the
// response header is written.
//
// Save returns ErrConflict, and writes nothing, when the store implements
// backend.Conditional and another request changed, migrated or destroyed
// the session since it was loaded; ErrTooLarge when the encoded data exceeds
// Config.MaxSize; ErrExpired when the session reached its absolute deadline
// meanwhile; and a wrapped store error when the store fails.
func (m *Manager[T]) Save(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	return m.save(r.Context(), w, s, ConflictError)
}

// save is Save, with policy deciding what a conflict does (the middleware
// passes Config.OnConflict).
func (m *Manager[T]) save(ctx context.Context, w http.ResponseWriter, s *Session[T], policy ConflictPolicy) error {
	data, err := m.encode(s)
	if err != nil {
		return err
	}
	if s.isNew {
		if !s.metaChanged && !m.changed(m.zeroData, data, &s.Data) {
			return nil
		}
		return m.create(ctx, w, s, data)
	}
	if !s.metaChanged && !m.changed(s.loaded, data, &s.Data) {
		return nil
	}
	now := m.now()
	if !now.Before(s.absolute) {
		return fmt.Errorf("%w: its absolute deadline %v has passed", ErrExpired, s.absolute)
	}
	if err := m.beforeOwnerWrite(ctx, s, s.key); err != nil {
		return err
	}
	e := backend.Entry{
		Value:   m.envelope(s, s.issued, data),
		Expires: m.idleDeadline(now, s.absolute),
		Limit:   s.absolute,
		Version: s.version + 1,
	}
	if m.cas != nil {
		err = m.cas.SetIf(ctx, s.key, s.version, e)
		if errors.Is(err, ErrConflict) && m.followRotation(ctx, s) {
			e.Version = s.version + 1
			err = m.cas.SetIf(ctx, s.key, s.version, e)
		}
		if errors.Is(err, ErrConflict) && policy != ConflictError {
			err = m.resolveConflict(ctx, s, &e, policy)
		}
	} else {
		err = m.store.Set(ctx, s.key, e)
	}
	if errors.Is(err, errKeptTheirs) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sessions: save session %s: %w", s.Handle(), err)
	}
	s.version, s.loaded = e.Version, data
	m.afterOwnerWrite(ctx, s, "")
	if !s.expires.Equal(e.Expires) {
		s.expires = e.Expires
		if !m.cookie.SessionOnly {
			m.setCookie(w, s, now)
		}
	}
	return nil
}

// beforeOwnerWrite runs before s is written under key: when s is being
// attributed to an owner, it enforces MaxSessionsPerOwner and records key in
// the owner index first, so that every live session of an owner is indexed
// (a failed write leaves only a dead record, which the index tolerates).
func (m *Manager[T]) beforeOwnerWrite(ctx context.Context, s *Session[T], key string) error {
	if s.owner == "" || m.indexer == nil || (!s.ownerChanged && key == s.key && !s.isNew) {
		return nil
	}
	if s.ownerChanged || s.isNew {
		if err := m.makeRoom(ctx, s); err != nil {
			return err
		}
	}
	if err := m.indexer.AddOwned(ctx, s.owner, key, s.absolute); err != nil {
		return fmt.Errorf("sessions: owner index: %w", err)
	}
	s.pendingIndex = key
	return nil
}

// afterOwnerWrite runs after s was written: it drops index records of the
// previous owner and of oldKey ("" for none), which only cost a little room
// if it fails.
func (m *Manager[T]) afterOwnerWrite(ctx context.Context, s *Session[T], oldKey string) {
	s.metaChanged = false
	prev := s.indexedOwner
	s.indexedOwner, s.ownerChanged = s.owner, false
	if m.indexer == nil {
		return
	}
	if s.pendingIndex != "" && s.pendingIndex == s.key && s.owner != "" {
		// Record the key again now that the entry exists: a concurrent
		// Sessions or DestroyAll that looked between the first record and
		// the write found no entry and pruned the record.
		if err := m.indexer.AddOwned(ctx, s.owner, s.key, s.absolute); err != nil {
			m.logger.ErrorContext(ctx, "sessions: owner index: recording a session failed; Sessions and DestroyAll may miss it",
				"session", s.Handle(), "err", err)
		}
	}
	s.pendingIndex = ""
	if prev == "" {
		return
	}
	var err error
	switch {
	case prev != s.owner && oldKey != "":
		err = m.indexer.RemoveOwned(ctx, prev, oldKey, s.key)
	case prev != s.owner:
		err = m.indexer.RemoveOwned(ctx, prev, s.key)
	case oldKey != "":
		err = m.indexer.RemoveOwned(ctx, prev, oldKey)
	}
	if err != nil {
		m.logger.WarnContext(ctx, "sessions: owner index cleanup failed", "session", s.Handle(), "err", err)
	}
}

// errKeptTheirs is resolveConflict's word that the stored data won and this
// request's changes were dropped, as the policy asked.
var errKeptTheirs = errors.New("sessions: kept the other request's change")

// resolveConflict handles a conflicting save of e by policy: it gives up
// this request's change (ConflictKeepTheirs) or writes over the other's
// (ConflictOverwrite), but never writes a destroyed or migrated session back.
func (m *Manager[T]) resolveConflict(ctx context.Context, s *Session[T], e *backend.Entry, policy ConflictPolicy) error {
	cur, err := m.store.Get(ctx, s.key)
	if errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("%w: the session was destroyed or migrated", ErrConflict)
	}
	if err != nil {
		return err
	}
	if _, fwd := decodeForward(cur.Value); fwd {
		// Rotated meanwhile: writing here would revive the old token.
		return fmt.Errorf("%w: the session was rotated", ErrConflict)
	}
	if policy == ConflictKeepTheirs {
		m.logger.WarnContext(ctx, "sessions: conflict: this request's session changes were dropped for another request's", "session", s.Handle())
		return errKeptTheirs
	}
	// ConflictOverwrite: write over the version found, if it is still there.
	e.Version = cur.Version + 1
	if err := m.cas.SetIf(ctx, s.key, cur.Version, *e); err != nil {
		return err
	}
	m.logger.WarnContext(ctx, "sessions: conflict: overwrote another request's session changes (OnConflict: ConflictOverwrite)", "session", s.Handle())
	return nil
}

// encode returns the encoding of s.Data, checked against MaxSize.
func (m *Manager[T]) encode(s *Session[T]) ([]byte, error) {
	data, err := m.codec.Marshal(&s.Data)
	if err != nil {
		return nil, fmt.Errorf("sessions: encode session data: %w", err)
	}
	if len(data) > m.maxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, MaxSize is %d", ErrTooLarge, len(data), m.maxSize)
	}
	if len(s.owner) > maxOwnerLen {
		return nil, fmt.Errorf("%w: an owner of %d bytes (at most %d)", ErrTooLarge, len(s.owner), maxOwnerLen)
	}
	return data, nil
}

// envelope returns the stored form of s with the given data.
func (m *Manager[T]) envelope(s *Session[T], issued time.Time, data []byte) []byte {
	env := envelope{
		created:  s.created,
		absolute: s.absolute,
		issued:   issued,
		handle:   s.handle,
		owner:    s.owner,
		bind:     s.bind,
		csrf:     s.csrf,
		data:     data,
	}
	return appendEnvelope(make([]byte, 0, envelopeSize(&env)), &env)
}

// create stores the new session s with data under a fresh token and sets
// its cookie.
func (m *Manager[T]) create(ctx context.Context, w http.ResponseWriter, s *Session[T], data []byte) error {
	now := m.now()
	token := newToken()
	key := storeKey(token)
	s.Handle() // give the session its handle
	s.created, s.absolute = now, now.Add(m.absolute)
	if err := m.beforeOwnerWrite(ctx, s, key); err != nil {
		s.created, s.absolute = time.Time{}, time.Time{}
		return err
	}
	e := backend.Entry{
		Value:   m.envelope(s, now, data),
		Expires: m.idleDeadline(now, s.absolute),
		Limit:   s.absolute,
		Version: 1,
	}
	var err error
	if m.cas != nil {
		err = m.cas.SetIf(ctx, key, 0, e)
	} else {
		err = m.store.Set(ctx, key, e)
	}
	if err != nil {
		s.created, s.absolute = time.Time{}, time.Time{}
		return fmt.Errorf("sessions: create session %s: %w", s.Handle(), err)
	}
	s.token, s.key, s.issued, s.expires = token, key, now, e.Expires
	s.version, s.loaded, s.isNew = e.Version, data, false
	m.afterOwnerWrite(ctx, s, "")
	m.setCookie(w, s, now)
	m.logger.InfoContext(ctx, "sessions: created", "session", s.Handle())
	return nil
}

// Destroy ends the session: it removes it from the store, so that its token
// finds nothing from then on, and sets a cookie on w that deletes the
// session cookie in the browser. s becomes a new, empty session (IsNew), which
// is stored under a new token if the request gives it data.
//
// Destroy on a new session only deletes the cookie. A store failure is
// returned, and then s is left as it was.
func (m *Manager[T]) Destroy(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	if !s.isNew {
		ctx := r.Context()
		key := s.key
		if m.rotateEvery > 0 {
			// If another request rotated the session since this one loaded
			// it, s.key now holds a forward record: end the session it
			// points to. (Without rotation there are no forward records,
			// and logout costs no read.)
			var err error
			if key, _, err = m.current(ctx, s.key); err != nil && !errors.Is(err, backend.ErrNotFound) {
				return fmt.Errorf("sessions: destroy session %s: %w", s.Handle(), err)
			}
		}
		if err := m.destroyKey(ctx, s.indexedOwner, key, s.Handle()); err != nil {
			return err
		}
		for _, k := range []string{s.key, storeKey(s.token)} {
			if k == key {
				continue
			}
			// Forward records of rotated tokens: end them too.
			if err := m.store.Delete(ctx, k); err != nil {
				return fmt.Errorf("sessions: destroy session %s: %w", s.Handle(), err)
			}
		}
	}
	m.cookie.writeCookie(w, "", time.Time{}, m.now())
	s.reset()
	return nil
}

// Get returns the session the middleware (Handler) loaded for r. It is meant
// for handlers behind Handler; there it never returns nil and costs no store
// access. Called for a request that did not pass through this Manager's
// Handler, it logs an error and returns a new session that nothing will
// save: use Load and Save there instead.
func (m *Manager[T]) Get(r *http.Request) *Session[T] {
	if s, ok := r.Context().Value(m.ctxKey).(*Session[T]); ok {
		return s
	}
	m.logger.ErrorContext(r.Context(), "sessions: Manager.Get called for a request that did not pass through Manager.Handler",
		"path", r.URL.Path)
	return m.newSession(r)
}

// Handler is the net/http middleware: it loads the request's session before
// next runs (Get returns it) and commits it just before the response header
// goes out, on the first WriteHeader, Write, ReadFrom or Flush, or when next
// returns without writing. Commit means Save: the store write and the
// Set-Cookie header happen before the first byte of the header. Changes made
// to the session after that point are lost: make them before writing the
// response, or call Save yourself.
//
// If loading fails (the store is down), next does not run and Config's
// ErrorHandler answers. If the commit fails, the response next was about to
// write is dropped (the header map goes back to what it was before next ran,
// later writes fail) and the ErrorHandler answers instead; a token the
// session got during the request (Migrate, rotation) is still sent.
//
// The ResponseWriter next receives keeps http.Flusher, http.Hijacker and
// io.ReaderFrom, and has Unwrap, so http.NewResponseController works through
// it. Hijack commits the session first, but a Set-Cookie can no longer be
// sent on a hijacked connection unless the handler writes it itself. Status
// codes 100-199 other than 101 pass through without committing.
func (m *Manager[T]) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Load(w, r)
		if err != nil {
			m.onError(w, r, err)
			return
		}
		rc := &requestCommit[T]{m: m, s: s, r: r, w: w, token: s.token}
		if h := w.Header(); len(h) > 0 {
			rc.header = h.Clone() // what outer middleware and Load set
		}
		cw := &commitWriter{rw: w, c: rc}
		r = r.WithContext(context.WithValue(r.Context(), m.ctxKey, s))
		rc.r = r
		next.ServeHTTP(cw, r)
		// Commit if next wrote nothing; either way, a failed commit means
		// nothing of next's response went out, so the ErrorHandler answers.
		if err := cw.doCommit(); err != nil {
			rc.restoreHeader() // also drops what next set after its writes failed
			m.onError(w, r, err)
		}
	})
}

// requestCommit is the middleware's commit of one request's session.
type requestCommit[T any] struct {
	m      *Manager[T]
	s      *Session[T]
	r      *http.Request
	w      http.ResponseWriter
	token  string      // the token the session had when the handler started
	header http.Header // the header map before the handler ran
}

func (rc *requestCommit[T]) commit() error {
	return rc.m.save(rc.r.Context(), rc.w, rc.s, rc.m.onConflict)
}

// restoreHeader puts back the header map as it was before the handler ran,
// and the session cookie if the handler gave the session a new token
// (Migrate): the old token is dead, so the browser must get the new one even
// with an error response.
func (rc *requestCommit[T]) restoreHeader() {
	h := rc.w.Header()
	clear(h)
	for k, v := range rc.header {
		h[k] = v
	}
	if s := rc.s; !s.isNew && s.token != rc.token {
		rc.m.setCookie(rc.w, s, rc.m.now())
	}
}

// defaultErrorHandler logs err and answers with a generic body: 409 for a
// conflict, 500 for anything else.
func (m *Manager[T]) defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrTooManySessions):
		code = http.StatusForbidden
	}
	m.logger.ErrorContext(r.Context(), "sessions: request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	http.Error(w, http.StatusText(code), code)
}
