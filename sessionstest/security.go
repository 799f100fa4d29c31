package sessionstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// RunSecurity runs the replay and rotation rules against stores from
// newStore: after Destroy and after Migrate the old cookie gets a new,
// empty session; with Config.RotateEvery an active session gets a new token
// and the old one works only for Config.RotateGrace; an owner's sessions are
// listed and ended by DestroyAll (skipped for a store without
// backend.Indexer). It uses real time, in steps of a few hundred
// milliseconds, since networked stores expire keys by their own clock.
func RunSecurity(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Run("ReplayAfterLogout", func(t *testing.T) { replayAfter(t, newStore(t), "logout") })
	t.Run("ReplayAfterMigrate", func(t *testing.T) { replayAfter(t, newStore(t), "migrate") })
	t.Run("RotationGraceWindow", func(t *testing.T) { rotationGraceWindow(t, newStore(t)) })
	t.Run("RevocationDestroyAll", func(t *testing.T) {
		revocationDestroyAll(t, need[backend.Indexer](t, newStore(t), "backend.Indexer"))
	})
	t.Run("EndOneSessionRefusesAnotherOwnersHandle", func(t *testing.T) {
		endOneSession(t, need[backend.Indexer](t, newStore(t), "backend.Indexer"))
	})
	t.Run("CSRFTokenFromBeforeLoginRefusedAfterIt", func(t *testing.T) { csrfAcrossLogin(t, newStore(t)) })
	t.Run("SessionCreatedAfterLogoutIsBound", func(t *testing.T) { boundAfterLogout(t, newStore(t)) })
}

// revocationDestroyAll: sessions attributed to an owner are listed, and
// DestroyAll ends all but the current one, across Migrate.
func revocationDestroyAll(t *testing.T, store backend.Store) {
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, MaxSessionsPerOwner: 3})
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("user-%d@example.com", time.Now().UnixNano())
	var cookies, handles []string
	for i := 0; i < 4; i++ { // one more than the bound: the oldest is evicted
		w, r := httptest.NewRecorder(), request("")
		s, _ := mgr.Load(w, r)
		s.Data.User = owner
		s.SetOwner(owner)
		if err := mgr.Migrate(w, r, s); err != nil {
			t.Fatal(err)
		}
		cookies, handles = append(cookies, cookieOf(t, w)), append(handles, s.Handle())
		time.Sleep(5 * time.Millisecond)
	}
	list, err := mgr.Sessions(t.Context(), owner)
	if err != nil || len(list) != 3 {
		t.Fatalf("Sessions: %d, %v; want 3 (MaxSessionsPerOwner)", len(list), err)
	}
	if s := loadWith(t, mgr, cookies[0]); !s.IsNew() {
		t.Fatal("the least recent session was not evicted at MaxSessionsPerOwner")
	}
	n, err := mgr.DestroyAll(t.Context(), owner, handles[3])
	if err != nil || n != 2 {
		t.Fatalf("DestroyAll: %d, %v; want 2", n, err)
	}
	for i, c := range cookies {
		if alive := !loadWith(t, mgr, c).IsNew(); alive != (i == 3) {
			t.Fatalf("session %d alive=%v after DestroyAll except the newest", i, alive)
		}
	}
}

func replayAfter(t *testing.T, store backend.Store, what string) {
	e := newEnv(t, store)
	old := e.cookie
	s := e.load(t, old)
	w := httptest.NewRecorder()
	switch what {
	case "logout":
		if err := e.mgr.Destroy(w, request(old), s); err != nil {
			t.Fatal(err)
		}
	case "migrate":
		if err := e.mgr.Migrate(w, request(old), s); err != nil {
			t.Fatal(err)
		}
		if cookieOf(t, w) == old {
			t.Fatal("Migrate kept the token")
		}
	}
	for i := 0; i < 3; i++ { // replayed again and again
		got := e.load(t, old)
		if !got.IsNew() || got.Data.User != "" {
			t.Fatalf("replaying the cookie after %s gave %+v (new=%v), want a new empty session", what, got.Data, got.IsNew())
		}
	}
}

func rotationGraceWindow(t *testing.T, store backend.Store) {
	const every, grace = 500 * time.Millisecond, 300 * time.Millisecond
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, RotateEvery: every, RotateGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	w, r := httptest.NewRecorder(), request("")
	s, _ := mgr.Load(w, r)
	s.Data.User = "ann"
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	first := cookieOf(t, w)
	handle := s.Handle()

	// Before RotateEvery: same token, no Set-Cookie.
	w = httptest.NewRecorder()
	if s, err := mgr.Load(w, request(first)); err != nil || s.IsNew() || len(w.Result().Cookies()) != 0 {
		t.Fatalf("load before RotateEvery: %v, new=%v, cookies %v", err, s != nil && s.IsNew(), w.Result().Cookies())
	}

	time.Sleep(every + 50*time.Millisecond)
	w = httptest.NewRecorder()
	s, err = mgr.Load(w, request(first))
	if err != nil || s.IsNew() {
		t.Fatalf("load after RotateEvery: %v", err)
	}
	second := cookieOf(t, w)
	if second == first {
		t.Fatal("the session was not rotated after RotateEvery")
	}
	if s.Handle() != handle || s.Data.User != "ann" {
		t.Fatal("rotation changed the session's handle or data")
	}

	// Within the grace window the old token still finds the session, and a
	// change made through it lands in the session.
	w = httptest.NewRecorder()
	old, err := mgr.Load(w, request(first))
	if err != nil || old.IsNew() || old.Data.User != "ann" {
		t.Fatalf("old token within the grace window: %v, %+v", err, old)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a request with the old token was handed a cookie")
	}
	old.Data.N = 7
	if err := mgr.Save(httptest.NewRecorder(), request(first), old); err != nil {
		t.Fatalf("save through the old token within the grace window: %v", err)
	}
	if got := loadWith(t, mgr, second); got.Data.N != 7 {
		t.Fatalf("the change made through the old token is not in the session: %+v", got.Data)
	}

	// After the grace window the old token finds nothing; the new one works.
	time.Sleep(grace + 100*time.Millisecond)
	if got := loadWith(t, mgr, first); !got.IsNew() {
		t.Fatal("the rotated-away token still works after the grace window")
	}
	if got := loadWith(t, mgr, second); got.IsNew() || got.Data.N != 7 {
		t.Fatalf("the new token after the grace window: %+v (new=%v)", got.Data, got.IsNew())
	}
}

func loadWith(t *testing.T, mgr *sessions.Manager[Counter], cookie string) *sessions.Session[Counter] {
	t.Helper()
	s, err := mgr.Load(httptest.NewRecorder(), request(cookie))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// endOneSession: an owner can end one chosen session of theirs by its
// handle; a handle of another owner's session is refused (ErrNoSuchSession)
// and that session stays alive.
func endOneSession(t *testing.T, store backend.Store) {
	mgr, err := sessions.New[Counter](sessions.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UnixNano()
	alice, bob := fmt.Sprintf("alice-%d", stamp), fmt.Sprintf("bob-%d", stamp)
	login := func(owner string) (cookie, handle string) {
		w, r := httptest.NewRecorder(), request("")
		s, _ := mgr.Load(w, r)
		s.SetOwner(owner)
		if err := mgr.Migrate(w, r, s); err != nil {
			t.Fatal(err)
		}
		return cookieOf(t, w), s.Handle()
	}
	a1, a1h := login(alice)
	a2, _ := login(alice)
	b1, b1h := login(bob)
	if err := mgr.DestroySession(t.Context(), alice, b1h); !errors.Is(err, sessions.ErrNoSuchSession) {
		t.Fatalf("ending bob's session as alice: %v, want ErrNoSuchSession", err)
	}
	if loadWith(t, mgr, b1).IsNew() {
		t.Fatal("alice ended bob's session")
	}
	if err := mgr.DestroySession(t.Context(), alice, a1h); err != nil {
		t.Fatalf("ending one of alice's sessions: %v", err)
	}
	if !loadWith(t, mgr, a1).IsNew() {
		t.Fatal("the session alice ended still works")
	}
	if loadWith(t, mgr, a2).IsNew() {
		t.Fatal("ending one session ended alice's other one too")
	}
	if err := mgr.DestroySession(t.Context(), alice, a1h); !errors.Is(err, sessions.ErrNoSuchSession) {
		t.Fatalf("ending an ended session: %v, want ErrNoSuchSession", err)
	}
}

// csrfAcrossLogin: CSRF token fixation. An attacker fetches a form (a
// session and its CSRF token), plants the session's cookie in the victim's
// browser, and the victim logs in (Migrate). A forged request that carries
// the victim's new cookie and the token from before the login is refused;
// a token issued after the login is accepted.
func csrfAcrossLogin(t *testing.T, store backend.Store) {
	mgr, err := sessions.New[Counter](sessions.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	var token string
	h := mgr.Handler(mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/form":
			token = s.CSRFToken()
		case "/login":
			s.Data.User = "victim"
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			token = s.CSRFToken()
		}
		fmt.Fprint(w, "ok")
	})))
	serve := func(method, path, cookie, csrf string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := serve("GET", "/form", "", "")
	planted, before := cookieOf(t, w), token
	w = serve("POST", "/login", planted, before)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	victim, after := cookieOf(t, w), token
	if w := serve("POST", "/transfer", victim, before); w.Code != http.StatusForbidden {
		t.Fatalf("a CSRF token from before the login was accepted after it: %d", w.Code)
	}
	if w := serve("POST", "/transfer", victim, after); w.Code != http.StatusOK {
		t.Fatalf("the CSRF token issued at login was refused: %d", w.Code)
	}
}

// boundAfterLogout: with Config.Bind, a session created in the request that
// destroyed the old one (a flash message after logout) is bound to that
// request's client at once: another client presenting its cookie gets a
// new session, and the hook is told.
func boundAfterLogout(t *testing.T, store backend.Store) {
	var reports atomic.Int32
	mgr, err := sessions.New[Counter](sessions.Config{
		Store: store,
		Bind:  func(r *http.Request) string { return r.UserAgent() },
		OnEvent: func(_ context.Context, ev sessions.Event) {
			if ev.Kind == sessions.EventSuspicious {
				reports.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	as := func(ua, cookie string) *http.Request {
		r := request(cookie)
		r.Header.Set("User-Agent", ua)
		return r
	}
	w, r := httptest.NewRecorder(), as("victim-browser", "")
	s, _ := mgr.Load(w, r)
	s.Data.User = "victim"
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie := cookieOf(t, w)

	// Logout, and a flash message in the same request.
	w, r = httptest.NewRecorder(), as("victim-browser", cookie)
	s, _ = mgr.Load(w, r)
	if err := mgr.Destroy(w, r, s); err != nil {
		t.Fatal(err)
	}
	s.Data.User = "flash: logged out"
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	flash := cookieOf(t, w)

	// Another client with that cookie: refused and reported.
	got, err := mgr.Load(httptest.NewRecorder(), as("attacker-browser", flash))
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsNew() || got.Data.User != "" {
		t.Fatalf("a foreign client adopted the session created after logout: %+v", got.Data)
	}
	if reports.Load() != 1 {
		t.Fatalf("the foreign client was reported %d times, want 1", reports.Load())
	}
	// The client that logged out still reads its flash.
	if got, _ := mgr.Load(httptest.NewRecorder(), as("victim-browser", flash)); got.Data.User != "flash: logged out" {
		t.Fatalf("the logged-out client lost its flash: %+v (new=%v)", got.Data, got.IsNew())
	}
}
