package sessionstest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/internal/testclock"
)

// RunLifetime checks per-session lifetimes (Session.SetLifetime), with the
// core's clock injected (it runs ahead of the store's: the store must slide
// by the session's own idle timeout, backend.Entry.Idle, judged at the
// core's now): a "remember me" session outlives the default idle timeout
// across reads that only slide it, and keeps its lifetime across Migrate; a
// short-lived one ends on time; the cookie is persistent or a browser
// session cookie as asked.
func RunLifetime(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Run("RememberMeOutlivesDefaultIdleAcrossSlides", func(t *testing.T) { rememberMe(t, newStore(t)) })
	t.Run("ShortLivedSessionEndsOnTime", func(t *testing.T) { shortLived(t, newStore(t)) })
}

func lifetimeEnv(t *testing.T, store backend.Store) (*sessions.Manager[Counter], *testclock.Clock) {
	t.Helper()
	clock := testclock.New(time.Now())
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, Now: clock.Now, Logger: quietLogger(),
		Cookie: sessions.CookieConfig{SessionOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	return mgr, clock
}

func rememberMe(t *testing.T, store backend.Store) {
	mgr, clock := lifetimeEnv(t, store)
	w, r := httptest.NewRecorder(), request("")
	s, _ := mgr.Load(w, r)
	s.Data.User = "ann"
	s.SetLifetime(sessions.Lifetime{Idle: 2 * time.Hour, Absolute: 24 * time.Hour, Cookie: sessions.CookiePersistent})
	if err := mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie := cookieOf(t, w)
	if line := w.Header().Get("Set-Cookie"); !strings.Contains(line, "Max-Age=") {
		t.Fatalf("a remember-me session got a browser-session cookie: %q", line)
	}
	// A default session, for comparison.
	w2, r2 := httptest.NewRecorder(), request("")
	d, _ := mgr.Load(w2, r2)
	d.Data.User = "default"
	if err := mgr.Save(w2, r2, d); err != nil {
		t.Fatal(err)
	}
	if line := w2.Header().Get("Set-Cookie"); strings.Contains(line, "Max-Age=") {
		t.Fatalf("a default session with Cookie.SessionOnly got a persistent cookie: %q", line)
	}
	other := cookieOf(t, w2)
	// Reads every 50 minutes, past the default 30-minute idle timeout:
	// each only slides the deadline.
	for i := 1; i <= 4; i++ {
		clock.Advance(50 * time.Minute)
		w := httptest.NewRecorder()
		got, err := mgr.Load(w, request(cookie))
		if err != nil || got.IsNew() || got.Data.User != "ann" {
			t.Fatalf("read %d (%v in): the remember-me session is gone (%v)", i, time.Duration(i)*50*time.Minute, err)
		}
		if got.Lifetime().Idle != 2*time.Hour {
			t.Fatalf("read %d: lifetime %+v, want the session's own", i, got.Lifetime())
		}
	}
	if got, _ := mgr.Load(httptest.NewRecorder(), request(other)); !got.IsNew() {
		t.Fatal("a default session outlived its 30-minute idle timeout")
	}
	// Kept across Migrate.
	w, r = httptest.NewRecorder(), request(cookie)
	s, _ = mgr.Load(w, r)
	if err := mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie = cookieOf(t, w)
	clock.Advance(90 * time.Minute)
	if got, _ := mgr.Load(httptest.NewRecorder(), request(cookie)); got.IsNew() || got.Lifetime().Idle != 2*time.Hour {
		t.Fatal("the lifetime was lost across Migrate")
	}
	// Idle past its own timeout: gone.
	clock.Advance(2*time.Hour + time.Minute)
	if got, _ := mgr.Load(httptest.NewRecorder(), request(cookie)); !got.IsNew() {
		t.Fatal("the remember-me session outlived its own idle timeout")
	}
}

func shortLived(t *testing.T, store backend.Store) {
	mgr, clock := lifetimeEnv(t, store)
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if r.URL.Path == "/admin" {
			s.Data.User = "admin"
			s.SetLifetime(sessions.Lifetime{Idle: 5 * time.Minute, Absolute: 20 * time.Minute})
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(""))
	h.ServeHTTP(w, httptest.NewRequest("POST", "/admin", nil))
	cookie := cookieOf(t, w)
	for i := 0; i < 3; i++ { // active every 4 minutes: alive
		clock.Advance(4 * time.Minute)
		if got, _ := mgr.Load(httptest.NewRecorder(), request(cookie)); got.IsNew() {
			t.Fatalf("the short-lived session ended after %d active minutes", 4*(i+1))
		}
	}
	clock.Advance(6 * time.Minute) // idle past its own 5 minutes
	if got, _ := mgr.Load(httptest.NewRecorder(), request(cookie)); !got.IsNew() {
		t.Fatal("the short-lived session outlived its own idle timeout")
	}
	// Its absolute timeout, however active.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/admin", nil))
	cookie = cookieOf(t, w)
	for i := 0; i < 5; i++ {
		clock.Advance(4 * time.Minute)
		_, _ = mgr.Load(httptest.NewRecorder(), request(cookie))
	}
	clock.Advance(time.Minute) // 21 minutes in
	if got, _ := mgr.Load(httptest.NewRecorder(), request(cookie)); !got.IsNew() {
		t.Fatal("the short-lived session outlived its own absolute timeout")
	}
}
