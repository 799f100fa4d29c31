package sessionstest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/internal/testclock"
)

// RunWrites runs the write path's all-or-nothing rules against stores from
// newStore: a privilege change (Migrate) that fails for any reason leaves
// the session exactly as stored and commits nothing of the step afterwards;
// a failed Update or Destroy leaves the old state; a session that vanished
// from the store is reported gone (ErrGone, 401), never changed (409), and
// never written back; and a core clock ahead of the store's never revives a
// session.
//
// Cases that inject a store fault wrap the store, keeping its optional
// capabilities; they run on stores with all of backend.Conditional,
// backend.Replacer, backend.GetToucher and backend.Indexer, or with none,
// and are skipped for others, naming the missing capability. The owner-limit
// cause needs backend.Indexer.
func RunWrites(t *testing.T, newStore func(t *testing.T) backend.Store) {
	for _, c := range failedLoginCauses {
		for _, visitor := range []string{"returning", "new"} {
			if visitor == "new" && !c.newVisitor {
				continue // the cause needs a stored session
			}
			t.Run("FailedLoginDoesNotLogOldTokenIn/"+c.name+"/"+visitor, func(t *testing.T) {
				failedLogin(t, newStore(t), c, visitor == "new")
			})
		}
	}
	t.Run("FailedUpdateStoresNothing", func(t *testing.T) { failedUpdate(t, newStore(t)) })
	t.Run("FailedDestroyKeepsSession", func(t *testing.T) { failedDestroy(t, newStore(t)) })
	t.Run("VanishedSessionIsGoneNotChanged", func(t *testing.T) { vanishedSession(t, newStore(t)) })
	t.Run("CoreClockAheadNeverRevives", func(t *testing.T) { coreClockAhead(t, newStore(t)) })
}

// Profile is the session data of the write-path suite.
type Profile struct {
	User  string
	Cart  []string
	Notes map[string]string
}

// failedLoginCause makes the Migrate of a login fail.
type failedLoginCause struct {
	name string
	// newVisitor: the cause applies to a visitor with no stored session.
	newVisitor bool
	// config adjusts the Manager's Config.
	config func(*sessions.Config)
	// before runs in the login handler, after the session was loaded and
	// given the user, just before Migrate: it arranges the failure.
	before func(t *testing.T, f *fixture, cookie string)
	// status is what the login handler answers for Migrate's error.
	status int
	// ownerSessions is how many sessions the owner has afterwards.
	ownerSessions int
	// needsIndexer: the cause (MaxSessionsPerOwner) needs backend.Indexer.
	needsIndexer bool
}

var failedLoginCauses = []failedLoginCause{
	{
		name:       "RefuseNewAtMaxSessionsPerOwner",
		newVisitor: true,
		config: func(c *sessions.Config) {
			c.MaxSessionsPerOwner, c.OwnerLimit = 1, sessions.RefuseNew
		},
		before: func(t *testing.T, f *fixture, _ string) {
			// The owner is logged in elsewhere already.
			w, r := httptest.NewRecorder(), request("")
			s, err := f.mgr.Load(w, r)
			if err != nil {
				t.Fatal(err)
			}
			s.SetOwner(f.owner)
			if err := f.mgr.Migrate(w, r, s); err != nil {
				t.Fatalf("the owner's first login: %v", err)
			}
		},
		status:        http.StatusForbidden,
		ownerSessions: 1,
		needsIndexer:  true,
	},
	{
		name:   "ConcurrentWriteUnderConflictOverwrite",
		config: func(c *sessions.Config) { c.OnConflict = sessions.ConflictOverwrite },
		before: func(t *testing.T, f *fixture, cookie string) {
			// A parallel request of the same browser saves meanwhile.
			w, r := httptest.NewRecorder(), request(cookie)
			s, err := f.mgr.Load(w, r)
			if err != nil {
				t.Fatal(err)
			}
			s.Data.Cart = append(s.Data.Cart, "parallel")
			if err := f.mgr.Save(w, r, s); err != nil {
				t.Fatalf("the parallel save: %v", err)
			}
		},
		status: http.StatusInternalServerError,
	},
	{
		name:       "TransientStoreErrorDuringMove",
		newVisitor: true,
		before: func(t *testing.T, f *fixture, _ string) {
			f.faults.failNext(errTransient) // the move's first write fails
		},
		status: http.StatusInternalServerError,
	},
}

var errTransient = errors.New("sessionstest: injected transient store error")

// fixture is a Manager[Profile] on a fault-injecting wrapper of the store.
type fixture struct {
	mgr     *sessions.Manager[Profile]
	faults  *faultBase
	owner   string
	indexed bool // the store implements backend.Indexer
}

func newFixture(t *testing.T, store backend.Store, adjust func(*sessions.Config)) *fixture {
	t.Helper()
	wrapped, faults := wrapFaults(t, store)
	cfg := sessions.Config{Store: wrapped, Logger: quietLogger()}
	if adjust != nil {
		adjust(&cfg)
	}
	mgr, err := sessions.New[Profile](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	_, indexed := store.(backend.Indexer)
	return &fixture{mgr: mgr, faults: faults, owner: fmt.Sprintf("user-%d", time.Now().UnixNano()), indexed: indexed}
}

// failedLogin runs the login pattern the README teaches through the
// middleware, with cause making Migrate fail, and checks that nothing of the
// login was stored or sent: the old token (if any) still gives the session
// as it was, without the user and without an owner; the response carries no
// token; Sessions does not list the session.
func failedLogin(t *testing.T, store backend.Store, c failedLoginCause, newVisitor bool) {
	if c.needsIndexer {
		need[backend.Indexer](t, store, "backend.Indexer")
	}
	f := newFixture(t, store, c.config)
	cookie := ""
	if !newVisitor {
		w, r := httptest.NewRecorder(), request("")
		s, _ := f.mgr.Load(w, r)
		s.Data.Cart = []string{"book"}
		if err := f.mgr.Save(w, r, s); err != nil {
			t.Fatal(err)
		}
		cookie = cookieOf(t, w)
	}
	var migrateErr error
	h := f.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := f.mgr.Get(r)
		s.Data.User = "victim"
		s.SetOwner(f.owner)
		c.before(t, f, cookie)
		if migrateErr = f.mgr.Migrate(w, r, s); migrateErr != nil {
			code := http.StatusInternalServerError
			if errors.Is(migrateErr, sessions.ErrTooManySessions) {
				code = http.StatusForbidden
			}
			http.Error(w, "login failed", code)
			return
		}
		fmt.Fprint(w, "logged in")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withCookie(httptest.NewRequest("POST", "/login", nil), cookie))
	if migrateErr == nil {
		t.Fatalf("the injected cause did not make Migrate fail (response %d)", rec.Code)
	}
	if rec.Code != c.status {
		t.Errorf("failed login answered %d, want %d (Migrate: %v)", rec.Code, c.status, migrateErr)
	}
	for _, line := range rec.Header().Values("Set-Cookie") {
		if strings.HasPrefix(line, cookieName+"=") {
			t.Errorf("the failed login's response sets a session cookie: %q", line)
		}
	}
	if cookie != "" {
		s := loadProfile(t, f.mgr, cookie)
		if s.IsNew() {
			t.Fatal("the failed login ended the visitor's session")
		}
		if s.Data.User != "" || s.Owner() != "" {
			t.Fatalf("after a failed login the old token is logged in: User %q, owner %q", s.Data.User, s.Owner())
		}
		if len(s.Data.Cart) == 0 || s.Data.Cart[0] != "book" {
			t.Fatalf("after a failed login the session holds %+v, want it as stored", s.Data)
		}
	}
	if !f.indexed {
		return
	}
	list, err := f.mgr.Sessions(context.Background(), f.owner)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != c.ownerSessions {
		t.Fatalf("the owner has %d sessions after the failed login, want %d", len(list), c.ownerSessions)
	}
}

// failedUpdate: Update whose write fails reports the error, and the
// middleware's commit afterwards stores nothing of it.
func failedUpdate(t *testing.T, store backend.Store) {
	f := newFixture(t, store, nil)
	cookie := storedProfile(t, f)
	var updateErr error
	h := f.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := f.mgr.Get(r)
		f.faults.failNext(errTransient)
		updateErr = f.mgr.Update(w, r, s, func(p *Profile) error {
			p.Cart = append(p.Cart, "failed")
			return nil
		})
		if updateErr != nil {
			http.Error(w, "failed", http.StatusInternalServerError)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withCookie(httptest.NewRequest("POST", "/", nil), cookie))
	if !errors.Is(updateErr, errTransient) {
		t.Fatalf("Update with a failing store: %v, want the store's error", updateErr)
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("response %d, want the handler's 500", rec.Code)
	}
	if s := loadProfile(t, f.mgr, cookie); len(s.Data.Cart) != 1 {
		t.Fatalf("after a failed Update the store holds %+v: the change reported failed was stored", s.Data.Cart)
	}
}

// failedDestroy: a Destroy whose delete fails reports it, keeps the cookie,
// and the session stays as stored.
func failedDestroy(t *testing.T, store backend.Store) {
	f := newFixture(t, store, nil)
	cookie := storedProfile(t, f)
	w, r := httptest.NewRecorder(), request(cookie)
	s, _ := f.mgr.Load(w, r)
	s.Data.User = "changed before logout"
	f.faults.failNext(errTransient)
	if err := f.mgr.Destroy(w, r, s); !errors.Is(err, errTransient) {
		t.Fatalf("Destroy with a failing store: %v, want the store's error", err)
	}
	if line := w.Header().Get("Set-Cookie"); line != "" {
		t.Errorf("a failed Destroy set a cookie: %q", line)
	}
	if s.IsNew() || s.Data.User != "" {
		t.Errorf("after a failed Destroy s is %+v (new=%v), want it as stored", s.Data, s.IsNew())
	}
	if got := loadProfile(t, f.mgr, cookie); got.IsNew() || got.Data.User != "" {
		t.Fatalf("after a failed Destroy the session is %+v (new=%v), want it as stored", got.Data, got.IsNew())
	}
}

// vanishedSession: a session whose key vanished from the store (evicted,
// lost in a restart) is gone, not changed: the save reports ErrGone, the
// middleware answers 401 and clears the cookie, and nothing is written
// under the old key.
func vanishedSession(t *testing.T, store backend.Store) {
	f := newFixture(t, store, nil)
	cookie := storedProfile(t, f)
	h := f.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := f.mgr.Get(r)
		// The store loses the key while the request runs.
		for _, k := range f.faults.keys() {
			if err := store.Delete(r.Context(), k); err != nil {
				t.Error(err)
			}
		}
		s.Data.User = "written after the eviction"
		fmt.Fprint(w, "ok")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withCookie(httptest.NewRequest("POST", "/", nil), cookie))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a save of a vanished session answered %d %q, want 401", rec.Code, rec.Body.String())
	}
	if line := rec.Header().Get("Set-Cookie"); !strings.Contains(line, "Max-Age=0") {
		t.Errorf("a save of a vanished session: Set-Cookie %q, want the cookie cleared", line)
	}
	if s := loadProfile(t, f.mgr, cookie); !s.IsNew() {
		t.Fatalf("the vanished session was written back: %+v", s.Data)
	}

	// Save and Update say so with ErrGone, not ErrConflict.
	cookie = storedProfile(t, f)
	for _, call := range []string{"Save", "Update"} {
		w, r := httptest.NewRecorder(), request(cookie)
		s, _ := f.mgr.Load(w, r)
		for _, k := range f.faults.keys() {
			_ = store.Delete(r.Context(), k)
		}
		var err error
		if call == "Save" {
			s.Data.User = "x"
			err = f.mgr.Save(w, r, s)
		} else {
			err = f.mgr.Update(w, r, s, func(p *Profile) error { p.User = "x"; return nil })
		}
		if !errors.Is(err, sessions.ErrGone) || errors.Is(err, sessions.ErrConflict) {
			t.Errorf("%s of a vanished session: %v, want ErrGone", call, err)
		}
		if !s.IsNew() || s.Data.User != "" {
			t.Errorf("after ErrGone from %s, s is %+v (new=%v), want a new, empty session", call, s.Data, s.IsNew())
		}
		cookie = storedProfile(t, f)
	}
}

// coreClockAhead: with the application's clock ahead of the store's (skew
// between machines, or Config.Now), a session idle past IdleTimeout by the
// application's clock is over, even though the store, by its own clock,
// still holds it: loading does not slide it back to life.
func coreClockAhead(t *testing.T, store backend.Store) {
	clock := testclock.New(time.Now())
	mgr, err := sessions.New[Profile](sessions.Config{Store: store, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	w, r := httptest.NewRecorder(), request("")
	s, _ := mgr.Load(w, r)
	s.Data.User = "idle"
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie := cookieOf(t, w)
	clock.Advance(31 * time.Minute) // the store's clock has not moved
	if s := loadProfile(t, mgr, cookie); !s.IsNew() {
		t.Fatalf("a session idle for 31 minutes by the application's clock came back: %+v, idle deadline %v",
			s.Data, s.IdleDeadline())
	}
	// Nor did that load slide the stored deadline: by the store's clock
	// the entry still ends 30 minutes after it was written.
	if e, err := store.Get(context.Background(), keyOf(cookie)); err == nil && e.Expires.After(time.Now().Add(30*time.Minute+time.Second)) {
		t.Fatalf("the store slid the ended session's deadline to %v", e.Expires)
	}
}

// keyOf returns the store key of the token in cookie (cookieName + "=<token>"):
// the core stores a session under the base64url SHA-256 of its token.
func keyOf(cookie string) string {
	sum := sha256.Sum256([]byte(strings.TrimPrefix(cookie, cookieName+"=")))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// quietLogger discards the Manager's log records.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// storedProfile stores a session with one cart item and returns its cookie.
func storedProfile(t *testing.T, f *fixture) string {
	t.Helper()
	w, r := httptest.NewRecorder(), request("")
	s, _ := f.mgr.Load(w, r)
	s.Data.Cart = []string{"book"}
	f.faults.forget()
	if err := f.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	return cookieOf(t, w)
}

func loadProfile(t *testing.T, mgr *sessions.Manager[Profile], cookie string) *sessions.Session[Profile] {
	t.Helper()
	s, err := mgr.Load(httptest.NewRecorder(), request(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func withCookie(r *http.Request, cookie string) *http.Request {
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// faultBase wraps a store, failing the next write (Set or Delete) when told
// to, and remembering the keys written, to simulate an eviction.
type faultBase struct {
	backend.Store
	next atomic.Pointer[error]
	mu   sync.Mutex
	seen []string
}

// faultStore is faultBase for a store with every optional capability; its
// conditional writes and moves fail on demand too.
type faultStore struct {
	*faultBase
	cas backend.Conditional
	rep backend.Replacer
	gt  backend.GetToucher
	idx backend.Indexer
}

// wrapFaults wraps st, keeping its optional capabilities: a store with all
// of them or with none. A store with only some is skipped, naming the first
// it lacks (a wrapper that claimed a capability the store lacks would change
// what the core does).
func wrapFaults(t *testing.T, st backend.Store) (backend.Store, *faultBase) {
	t.Helper()
	base := &faultBase{Store: st}
	cas, hasCAS := st.(backend.Conditional)
	rep, hasRep := st.(backend.Replacer)
	gt, hasGT := st.(backend.GetToucher)
	idx, hasIdx := st.(backend.Indexer)
	switch {
	case hasCAS && hasRep && hasGT && hasIdx:
		return &faultStore{faultBase: base, cas: cas, rep: rep, gt: gt, idx: idx}, base
	case !hasCAS && !hasRep && !hasGT && !hasIdx:
		return base, base
	}
	for _, c := range []struct {
		has  bool
		name string
	}{{hasCAS, "backend.Conditional"}, {hasRep, "backend.Replacer"}, {hasGT, "backend.GetToucher"}, {hasIdx, "backend.Indexer"}} {
		if !c.has {
			t.Skipf("the store implements some optional capabilities but not %s; this fault-injecting case wraps stores with all or none", c.name)
		}
	}
	return nil, nil
}

// failNext makes the next session write (Set, SetIf, Replace, Delete)
// fail with err, without reaching the store.
func (f *faultBase) failNext(err error) { f.next.Store(&err) }

func (f *faultBase) fault(key string) error {
	if p := f.next.Swap(nil); p != nil {
		return *p
	}
	f.mu.Lock()
	f.seen = append(f.seen, key)
	f.mu.Unlock()
	return nil
}

func (f *faultBase) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func (f *faultBase) forget() {
	f.mu.Lock()
	f.seen = nil
	f.mu.Unlock()
}

func (f *faultBase) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := f.fault(key); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, e)
}

func (f *faultBase) Delete(ctx context.Context, key string) error {
	if err := f.fault(key); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *faultStore) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := f.fault(key); err != nil {
		return err
	}
	return f.cas.SetIf(ctx, key, old, now, e)
}

func (f *faultStore) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := f.fault(newKey); err != nil {
		return err
	}
	return f.rep.Replace(ctx, oldKey, old, newKey, now, e)
}

func (f *faultStore) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	return f.gt.GetTouch(ctx, key, now, ifBefore, expires)
}

func (f *faultStore) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	return f.idx.AddOwned(ctx, owner, key, limit)
}

func (f *faultStore) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	return f.idx.RemoveOwned(ctx, owner, keys...)
}

func (f *faultStore) Owned(ctx context.Context, owner string) ([]string, error) {
	return f.idx.Owned(ctx, owner)
}
