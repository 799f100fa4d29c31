package sessions

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/internal/testclock"
)

// fakeClock is a clock tests move by hand.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
}

// countingStore wraps a store with every optional capability and counts the
// calls, like database/sql's fakedb. Writes counts every call that may change
// the store, including a GetTouch that touched.
type countingStore struct {
	inner                                                      *memory.Store
	gets, sets, touches, deletes, setIfs, replaces, getTouches atomic.Int64
	writes                                                     atomic.Int64

	mu   sync.Mutex
	keys []string // every key passed to any method

	// fail, when set, makes every call return it.
	fail atomic.Pointer[error]
}

var (
	_ backend.Store       = (*countingStore)(nil)
	_ backend.Conditional = (*countingStore)(nil)
	_ backend.Replacer    = (*countingStore)(nil)
	_ backend.GetToucher  = (*countingStore)(nil)
)

func newCountingStore(t *testing.T, now func() time.Time) *countingStore {
	t.Helper()
	st := memory.New(memory.Options{Now: now})
	t.Cleanup(func() { st.Close() })
	return &countingStore{inner: st}
}

func (c *countingStore) note(keys ...string) error {
	c.mu.Lock()
	c.keys = append(c.keys, keys...)
	c.mu.Unlock()
	if p := c.fail.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *countingStore) failWith(err error) {
	if err == nil {
		c.fail.Store(nil)
		return
	}
	c.fail.Store(&err)
}

func (c *countingStore) seenKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.keys...)
}

// reads returns how many calls read the store.
func (c *countingStore) reads() int64 { return c.gets.Load() + c.getTouches.Load() }

func (c *countingStore) Get(ctx context.Context, key string) (backend.Entry, error) {
	c.gets.Add(1)
	if err := c.note(key); err != nil {
		return backend.Entry{}, err
	}
	return c.inner.Get(ctx, key)
}

func (c *countingStore) Set(ctx context.Context, key string, e backend.Entry) error {
	c.sets.Add(1)
	c.writes.Add(1)
	if err := c.note(key); err != nil {
		return err
	}
	return c.inner.Set(ctx, key, e)
}

func (c *countingStore) Touch(ctx context.Context, key string, now, expires time.Time) error {
	c.touches.Add(1)
	c.writes.Add(1)
	if err := c.note(key); err != nil {
		return err
	}
	return c.inner.Touch(ctx, key, now, expires)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	c.writes.Add(1)
	if err := c.note(key); err != nil {
		return err
	}
	return c.inner.Delete(ctx, key)
}

func (c *countingStore) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	c.setIfs.Add(1)
	c.writes.Add(1)
	if err := c.note(key); err != nil {
		return err
	}
	return c.inner.SetIf(ctx, key, old, now, e)
}

func (c *countingStore) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	c.replaces.Add(1)
	c.writes.Add(1)
	if err := c.note(oldKey, newKey); err != nil {
		return err
	}
	return c.inner.Replace(ctx, oldKey, old, newKey, now, e)
}

func (c *countingStore) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	c.getTouches.Add(1)
	if err := c.note(key); err != nil {
		return backend.Entry{}, false, err
	}
	e, touched, err := c.inner.GetTouch(ctx, key, now, ifBefore, expires)
	if touched {
		c.writes.Add(1)
	}
	return e, touched, err
}

// plainStore hides every optional capability of the store it wraps, to test
// the core's fallbacks.
type plainStore struct{ backend.Store }

// testEnv is a Manager on a counting memory store with a fake clock.
type testEnv[T any] struct {
	mgr   *Manager[T]
	store *countingStore
	clock *fakeClock
	logs  *bytes.Buffer
}

// newTestEnv returns a Manager[T] for cfg, filling in the store, clock and
// logger when cfg leaves them unset.
func newTestEnv[T any](t *testing.T, cfg Config) *testEnv[T] {
	t.Helper()
	env := &testEnv[T]{clock: newFakeClock(), logs: new(bytes.Buffer)}
	if cfg.Now == nil {
		cfg.Now = env.clock.Now
	}
	if cfg.Store == nil {
		env.store = newCountingStore(t, cfg.Now)
		cfg.Store = env.store
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: env.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mgr, err := New[T](cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { mgr.Close() })
	env.mgr = mgr
	return env
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serve runs one request through h with the given cookie header ("" for
// none) and returns the recorder.
func serve(t *testing.T, h http.Handler, method, target, cookie string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// sessionCookie returns the Set-Cookie line for the cookie named name in
// rec's response, and whether there is one.
func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder, name string) (*http.Cookie, bool) {
	t.Helper()
	var found *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			if found != nil {
				t.Errorf("two Set-Cookie lines for %q in one response", name)
			}
			found = c
		}
	}
	return found, found != nil
}

// cookieHeader returns the Cookie request header for c.
func cookieHeader(c *http.Cookie) string { return c.Name + "=" + c.Value }

// setCookieLine returns the raw Set-Cookie line for name.
func setCookieLine(rec *httptest.ResponseRecorder, name string) string {
	for _, v := range rec.Header().Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

// httptestRequest returns a GET request with the given Cookie header.
func httptestRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// newHeaderWriter returns a ResponseWriter for explicit Load/Save calls.
func newHeaderWriter() *httptest.ResponseRecorder { return httptest.NewRecorder() }

var _ backend.Indexer = (*countingStore)(nil)

func (c *countingStore) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	c.writes.Add(1)
	if err := c.note(key); err != nil {
		return err
	}
	return c.inner.AddOwned(ctx, owner, key, limit)
}

func (c *countingStore) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	c.writes.Add(1)
	if err := c.note(keys...); err != nil {
		return err
	}
	return c.inner.RemoveOwned(ctx, owner, keys...)
}

func (c *countingStore) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := c.note(); err != nil {
		return nil, err
	}
	return c.inner.Owned(ctx, owner)
}

// readToken returns the first well-formed token among r's cookies named
// name, as Load tries them first.
func readToken(r *http.Request, name string) (string, bool) {
	c := CookieConfig{Name: name}
	cands := c.candidates(r, nil)
	if len(cands) == 0 {
		return "", false
	}
	return cands[0].token, true
}

// cookieName is the session cookie's default name.
const cookieName = "__Host-session"
