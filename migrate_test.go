package sessions

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// loginFlow returns a handler: /login stores the user and migrates, /logout
// destroys, anything else reads.
func loginFlow(t *testing.T, env *testEnv[visitV1], seen **Session[visitV1]) http.Handler {
	t.Helper()
	return env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		switch r.URL.Path {
		case "/cart":
			s.Data.Count++
		case "/login":
			s.Data.User = "ann"
			if err := env.mgr.Migrate(w, r, s); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		case "/logout":
			if err := env.mgr.Destroy(w, r, s); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		}
		*seen = s
	}))
}

func TestMigrateGivesNewTokenKeepsDataAndHandle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain bool
	}{{"Replacer", false}, {"plain Store", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			counting := newCountingStore(t, clock.Now)
			cfg := Config{Now: clock.Now, Store: counting}
			if tc.plain {
				cfg.Store = plainStore{counting}
			}
			env := newTestEnv[visitV1](t, cfg)
			env.store = counting
			var s *Session[visitV1]
			h := loginFlow(t, env, &s)
			before, _ := sessionCookie(t, serve(t, h, "GET", "/cart", ""), cookieName)
			handle, created := s.Handle(), s.CreatedAt()

			rec := serve(t, h, "POST", "/login", cookieHeader(before))
			after, ok := sessionCookie(t, rec, cookieName)
			if !ok || after.Value == before.Value {
				t.Fatalf("Migrate did not set a new token (ok=%v)", ok)
			}
			if s.Handle() != handle || !s.CreatedAt().Equal(created) {
				t.Errorf("handle/created changed across Migrate")
			}
			serve(t, h, "GET", "/", cookieHeader(after))
			if s.IsNew() || s.Data.User != "ann" || s.Data.Count != 1 {
				t.Fatalf("new token gives %+v (new=%v), want the migrated data", s.Data, s.IsNew())
			}
			serve(t, h, "GET", "/", cookieHeader(before))
			if !s.IsNew() || s.Data.User != "" {
				t.Fatalf("old token still gives %+v after Migrate", s.Data)
			}
			if _, err := counting.inner.Get(t.Context(), storeKey(before.Value)); err == nil {
				t.Fatal("old key still in the store")
			}
		})
	}
}

func TestMigrateNewSessionStoresIt(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w, r := newHeaderWriter(), httptestRequest("")
	s, _ := env.mgr.Load(w, r)
	if err := env.mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	if s.IsNew() || !strings.HasPrefix(w.Header().Get("Set-Cookie"), cookieName+"=") {
		t.Fatal("Migrate of a new session did not store it")
	}
}

func TestMigrateConflictsWithConcurrentChange(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w, r := newHeaderWriter(), httptestRequest("")
	s, _ := env.mgr.Load(w, r)
	s.Data.User = "ann"
	if err := env.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	r2 := httptestRequest(w.Header().Get("Set-Cookie"))
	a, _ := env.mgr.Load(newHeaderWriter(), r2)
	b, _ := env.mgr.Load(newHeaderWriter(), r2)
	a.Data.Count = 1
	if err := env.mgr.Save(newHeaderWriter(), r2, a); err != nil {
		t.Fatal(err)
	}
	if err := env.mgr.Migrate(newHeaderWriter(), r2, b); !errors.Is(err, ErrConflict) {
		t.Fatalf("Migrate of a session changed meanwhile: %v, want ErrConflict", err)
	}
}

func TestDestroyRemovesSessionAndExpiresCookie(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	c, _ := sessionCookie(t, serve(t, h, "POST", "/login", ""), cookieName)
	if n := env.store.inner.Len(); n != 1 {
		t.Fatalf("%d entries before logout, want 1", n)
	}
	rec := serve(t, h, "POST", "/logout", cookieHeader(c))
	if !s.IsNew() || s.Data.User != "" {
		t.Errorf("after Destroy the session is %+v (new=%v), want a new empty one", s.Data, s.IsNew())
	}
	line := setCookieLine(rec, cookieName)
	if !strings.HasPrefix(line, cookieName+"=;") || !strings.Contains(line, "Max-Age=0") {
		t.Errorf("logout Set-Cookie %q does not delete the cookie", line)
	}
	if n := env.store.inner.Len(); n != 0 {
		t.Errorf("%d entries after logout, want 0", n)
	}
	serve(t, h, "GET", "/", cookieHeader(c))
	if !s.IsNew() || s.Data.User != "" {
		t.Errorf("the destroyed token still gives %+v", s.Data)
	}
}

func TestDestroyStoreFailureKeepsSession(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w, r := newHeaderWriter(), httptestRequest("")
	s, _ := env.mgr.Load(w, r)
	s.Data.User = "ann"
	if err := env.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	down := errors.New("down")
	env.store.failWith(down)
	if err := env.mgr.Destroy(newHeaderWriter(), r, s); !errors.Is(err, down) {
		t.Fatalf("Destroy with the store down: %v", err)
	}
	if s.IsNew() || s.Data.User != "ann" {
		t.Error("a failed Destroy reset the session")
	}
}

func TestDestroyWithoutRotationCostsNoRead(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	reads := env.store.reads()
	if err := env.mgr.Destroy(newHeaderWriter(), httptestRequest(cookie), s); err != nil {
		t.Fatal(err)
	}
	if n := env.store.reads() - reads; n != 0 {
		t.Errorf("Destroy read the store %d times; without rotation there is nothing to follow", n)
	}
}
