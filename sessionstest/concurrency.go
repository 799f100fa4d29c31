package sessionstest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// Counter is the session data of the concurrency suite.
type Counter struct {
	N    int
	User string
}

// Options tunes RunConcurrency.
type Options struct {
	// Goroutines and Increments size the Update test: Goroutines goroutines
	// each doing Increments increments of one session. Defaults 32 and 200.
	Goroutines, Increments int
}

// RunConcurrency runs the concurrency rules against stores from newStore:
// no lost updates under Update, one winner between racing saves, and no
// destroyed or migrated session written back by a request that loaded it
// before. The first two need backend.Conditional (without it the core's
// version check is not atomic) and are skipped for a store that lacks it.
func RunConcurrency(t *testing.T, newStore func(t *testing.T) backend.Store, opts Options) {
	if opts.Goroutines == 0 {
		opts.Goroutines = 32
	}
	if opts.Increments == 0 {
		opts.Increments = 200
	}
	t.Run("UpdateLosesNoIncrement", func(t *testing.T) {
		updateLosesNoIncrement(t, need[backend.Conditional](t, newStore(t), "backend.Conditional"), opts)
	})
	t.Run("RacingSavesOneWins", func(t *testing.T) {
		racingSavesOneWins(t, need[backend.Conditional](t, newStore(t), "backend.Conditional"))
	})
	t.Run("SlowSaveAfterLogoutIsGone", func(t *testing.T) { slowSaveAfter(t, newStore(t), "logout") })
	t.Run("SlowSaveAfterMigrateIsGone", func(t *testing.T) { slowSaveAfter(t, newStore(t), "migrate") })
	t.Run("SlowUpdateAfterLogoutIsGone", func(t *testing.T) { slowUpdateAfterLogout(t, newStore(t)) })
	t.Run("MiddlewareSlowRequestAfterLogout", func(t *testing.T) { middlewareSlowRequestAfterLogout(t, newStore(t)) })
}

// need returns store, or skips the test, naming the capability C the case
// needs, when store does not implement it.
func need[C any](t *testing.T, store backend.Store, name string) backend.Store {
	t.Helper()
	if _, ok := store.(C); !ok {
		t.Skipf("the store does not implement %s, which this case needs", name)
	}
	return store
}

// env is a Manager[Counter] and a cookie for one stored session.
type env struct {
	mgr    *sessions.Manager[Counter]
	cookie string
}

func newEnv(t *testing.T, store backend.Store) *env {
	t.Helper()
	mgr, err := sessions.New[Counter](sessions.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	e := &env{mgr: mgr}
	w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
	s, err := mgr.Load(w, r)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.User = "ann"
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	e.cookie = cookieOf(t, w)
	return e
}

// cookieName is the session cookie's name with the default Config.
const cookieName = "__Host-session"

// cookieOf returns the Cookie header for the session cookie w set.
func cookieOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no session cookie set")
	return ""
}

// request returns a request carrying cookie.
func request(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// load loads the session of cookie, failing the test on error.
func (e *env) load(t *testing.T, cookie string) *sessions.Session[Counter] {
	t.Helper()
	s, err := e.mgr.Load(httptest.NewRecorder(), request(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func updateLosesNoIncrement(t *testing.T, store backend.Store, opts Options) {
	e := newEnv(t, store)
	// Half the goroutines use a second Manager on the same store, as a
	// second application server would: its Updates conflict with the
	// first's and must retry.
	other, err := sessions.New[Counter](sessions.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, opts.Goroutines)
	start := make(chan struct{})
	for g := 0; g < opts.Goroutines; g++ {
		mgr := e.mgr
		if g%2 == 1 {
			mgr = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < opts.Increments; i++ {
				r := request(e.cookie)
				w := httptest.NewRecorder()
				s, err := mgr.Load(w, r)
				if err == nil && s.IsNew() {
					err = errors.New("session lost")
				}
				if err == nil {
					err = mgr.Update(w, r, s, func(c *Counter) error { c.N++; return nil })
				}
				if err != nil {
					errs <- fmt.Errorf("increment %d: %w", i, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := opts.Goroutines * opts.Increments
	if got := e.load(t, e.cookie).Data.N; got != want {
		t.Fatalf("%d goroutines x %d Update increments ended at %d, want %d", opts.Goroutines, opts.Increments, got, want)
	}
}

func racingSavesOneWins(t *testing.T, store backend.Store) {
	e := newEnv(t, store)
	a, b := e.load(t, e.cookie), e.load(t, e.cookie)
	a.Data.N, b.Data.N = 1, 2
	var wg sync.WaitGroup
	results := make([]error, 2)
	start := make(chan struct{})
	for i, s := range []*sessions.Session[Counter]{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = e.mgr.Save(httptest.NewRecorder(), request(e.cookie), s)
		}()
	}
	close(start)
	wg.Wait()
	var ok, conflicts int
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, sessions.ErrConflict):
			conflicts++
		default:
			t.Fatalf("Save: %v", err)
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Fatalf("two racing saves: %d succeeded, %d conflicted; want 1 and 1", ok, conflicts)
	}
	winner := 1
	if results[0] != nil {
		winner = 2
	}
	if got := e.load(t, e.cookie).Data.N; got != winner {
		t.Fatalf("stored N = %d, want the winner's %d", got, winner)
	}
}

// slowSaveAfter: a slow request loads the session, another logs out (or
// migrates), then the slow one saves: ErrGone (the session ended; it did not
// merely change), the slow request's session is new again, and the old
// token stays dead.
func slowSaveAfter(t *testing.T, store backend.Store, what string) {
	e := newEnv(t, store)
	slow := e.load(t, e.cookie)

	other := e.load(t, e.cookie)
	w := httptest.NewRecorder()
	var newCookie string
	switch what {
	case "logout":
		if err := e.mgr.Destroy(w, request(e.cookie), other); err != nil {
			t.Fatal(err)
		}
	case "migrate":
		other.Data.User = "ann (logged in)"
		if err := e.mgr.Migrate(w, request(e.cookie), other); err != nil {
			t.Fatal(err)
		}
		newCookie = cookieOf(t, w)
	}

	slow.Data.N = 99
	err := e.mgr.Save(httptest.NewRecorder(), request(e.cookie), slow)
	if !errors.Is(err, sessions.ErrGone) || errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("slow save after %s: %v, want ErrGone", what, err)
	}
	if !slow.IsNew() || slow.Data.N != 0 {
		t.Fatalf("after ErrGone the slow request's session is %+v (new=%v), want a new, empty one", slow.Data, slow.IsNew())
	}
	if s := e.load(t, e.cookie); !s.IsNew() || s.Data.N != 0 {
		t.Fatalf("after %s and a slow save, the old token gives %+v (new=%v): the session came back", what, s.Data, s.IsNew())
	}
	if newCookie != "" {
		if s := e.load(t, newCookie); s.IsNew() || s.Data.N != 0 || s.Data.User != "ann (logged in)" {
			t.Fatalf("the migrated session holds %+v, want the migration's data without the slow change", s.Data)
		}
	}
}

func slowUpdateAfterLogout(t *testing.T, store backend.Store) {
	e := newEnv(t, store)
	slow := e.load(t, e.cookie)
	if err := e.mgr.Destroy(httptest.NewRecorder(), request(e.cookie), e.load(t, e.cookie)); err != nil {
		t.Fatal(err)
	}
	err := e.mgr.Update(httptest.NewRecorder(), request(e.cookie), slow, func(c *Counter) error { c.N++; return nil })
	if !errors.Is(err, sessions.ErrGone) {
		t.Fatalf("Update after logout: %v, want ErrGone", err)
	}
	if s := e.load(t, e.cookie); !s.IsNew() {
		t.Fatal("Update brought a destroyed session back")
	}
}

// middlewareSlowRequestAfterLogout: through the middleware, a slow request
// that changes the session while a logout goes through is answered 401 (the
// session is gone, not changed: a retry cannot succeed), its cookie is
// cleared, and the session stays gone.
func middlewareSlowRequestAfterLogout(t *testing.T, store backend.Store) {
	e := newEnv(t, store)
	loaded := make(chan struct{})
	proceed := make(chan struct{})
	h := e.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := e.mgr.Get(r)
		switch r.URL.Path {
		case "/slow":
			close(loaded)
			<-proceed
			s.Data.N = 42
			fmt.Fprint(w, "changed")
		case "/logout":
			if err := e.mgr.Destroy(w, r, s); err != nil {
				http.Error(w, err.Error(), 500)
			}
		}
	}))
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/slow", nil)
		req.Header.Set("Cookie", e.cookie)
		h.ServeHTTP(rec, req)
		done <- rec
	}()
	select {
	case <-loaded:
	case <-time.After(10 * time.Second):
		t.Fatal("slow request did not start")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/logout", nil)
	req.Header.Set("Cookie", e.cookie)
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("logout: %d", rec.Code)
	}
	close(proceed)
	slow := <-done
	if slow.Code != http.StatusUnauthorized {
		t.Fatalf("slow request after logout answered %d %q, want 401", slow.Code, slow.Body.String())
	}
	if line := slow.Header().Get("Set-Cookie"); !strings.Contains(line, "Max-Age=0") {
		t.Fatalf("slow request after logout: Set-Cookie %q, want the cookie cleared", line)
	}
	if s := e.load(t, e.cookie); !s.IsNew() {
		t.Fatal("the slow request wrote the destroyed session back")
	}
}
