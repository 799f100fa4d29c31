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
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// Manager loads and saves sessions of type T. Make one with New and share it:
// it is safe for concurrent use. Several Managers, of the same or different
// types, may live in one process; they share nothing unless given the same
// Store.
type Manager[T any] struct {
	cfg      Config    // normalised by New: no zero field means "default"
	st       store     // cfg.Store, its capabilities resolved once
	ownStore io.Closer // the default store, closed by Close

	updating keyLocks   // one lock per session key in Update
	turns    keyLocks   // one lock per session key with Config.TakeTurns
	loads    loadGroups // concurrent loads of one session key share one store call (loadgroup.go)

	zeroData []byte // the encoding of the zero T: a new session equal to it is not stored
	unstable bool   // T may hold maps: equal values may encode differently
	plain    bool   // T is plain (plain.go): a byte comparison finds it unchanged
	ctxKey   *contextKey
	started  time.Time                  // when New made the Manager (see CookieConfig.Name)
	sealing  bool                       // seal what is stored (see seal.go): the store is not backend.InProcess
	merge    *mergeSpec                 // T's merge units (see merge.go); nil when T is no struct
	seals    tokenCache[*sealer]        // the sealing keys of recently seen tokens
	keys     tokenCache[string]         // the store keys of recently seen tokens
	decoded  tokenCache[decodedData[T]] // plain data last decoded or saved, by store key (plain.go)

	stopExpiry func() // unregisters from the store's expiry notices, or nil
}

type contextKey struct{ name string }

// New returns a Manager for sessions holding a T. The zero Config works; New
// returns an error wrapping ErrInvalidConfig when cfg makes no sense
// (negative timeouts, idle longer than absolute, an invalid cookie name or
// attributes) or when the codec cannot encode T.
func New[T any](cfg Config) (*Manager[T], error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager[T]{cfg: cfg, ctxKey: &contextKey{name: "sessions"}, started: cfg.Now()}
	if m.cfg.ErrorHandler == nil {
		m.cfg.ErrorHandler = m.defaultErrorHandler
	}
	if m.cfg.OnEvent == nil {
		m.cfg.OnEvent = LogEvents(cfg.Logger)
	}
	var zero T
	if m.zeroData, err = cfg.Codec.Marshal(&zero); err != nil {
		return nil, fmt.Errorf("%w: the codec cannot encode %T: %v", ErrInvalidConfig, zero, err)
	}
	m.unstable = mayEncodeUnstably(reflect.TypeFor[T](), map[reflect.Type]bool{})
	m.plain = plainType(reflect.TypeFor[T]())
	m.merge = newMergeSpec(reflect.TypeFor[T]())
	if m.cfg.Store == nil {
		mem := memory.New(memory.Options{Now: cfg.Now})
		m.cfg.Store, m.ownStore = mem, mem
	}
	m.st = newStore(m.cfg.Store)
	if n, ok := m.cfg.Store.(backend.ExpiryNotifier); ok {
		m.stopExpiry = n.NotifyExpired(m.expired)
	}
	m.sealing = !m.st.inProcess
	if cfg.MaxSessionsPerOwner > 0 && m.st.indexer == nil {
		return nil, fmt.Errorf("%w: MaxSessionsPerOwner needs a store that implements backend.Indexer: %w", ErrInvalidConfig, backend.ErrUnsupported)
	}
	return m, nil
}

// Close releases what the Manager made for itself: the default in-memory
// store and its background goroutine, and its registration for the store's
// expiry notices (backend.ExpiryNotifier). A Store passed in Config is the
// caller's to close. Close is safe to call more than once.
func (m *Manager[T]) Close() error {
	if m.stopExpiry != nil {
		m.stopExpiry()
	}
	if m.ownStore != nil {
		return m.ownStore.Close()
	}
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
	m.cfg.Logger.ErrorContext(r.Context(), "sessions: Manager.Get called for a request that did not pass through Manager.Handler",
		"path", r.URL.Path)
	return m.newSession(r)
}
