package sessions

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestTakeTurnsPlainWritesNeverConflict: with TakeTurns, parallel requests
// of one session that all increment a field with a plain write run one
// after another, so none conflicts and none is lost.
func TestTakeTurnsPlainWritesNeverConflict(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{TakeTurns: true})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		n := s.Data.Count
		time.Sleep(time.Millisecond) // overlap with the others, if they could
		s.Data.Count = n + 1
	}))
	cookie := newStoredSession(t, env)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = serve(t, h, "POST", "/", cookie).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d answered %d (codes %v)", i, c, codes)
		}
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); s.Data.Count != n {
		t.Fatalf("Count = %d after %d increments, want %d", s.Data.Count, n, n)
	}
}

// TestTakeTurnsNoDeadlockWithUpdateOrMigrate: Update and Migrate inside a
// handler that holds its turn finish, and the next request of the session
// gets its turn.
func TestTakeTurnsNoDeadlockWithUpdateOrMigrate(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{TakeTurns: true})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		switch r.URL.Path {
		case "/update":
			if err := env.mgr.Update(w, r, s, func(v *visitV1) error { v.Count++; return nil }); err != nil {
				http.Error(w, err.Error(), 500)
			}
		case "/login":
			s.Data.User = "ann (logged in)"
			if err := env.mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), 500)
			}
		}
	}))
	cookie := newStoredSession(t, env)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if rec := serve(t, h, "POST", "/update", cookie); rec.Code != 200 {
			t.Errorf("update: %d", rec.Code)
		}
		rec := serve(t, h, "POST", "/login", cookie)
		if rec.Code != 200 {
			t.Errorf("login: %d", rec.Code)
		}
		c, _ := sessionCookie(t, rec, cookieName)
		if rec := serve(t, h, "POST", "/update", cookieHeader(c)); rec.Code != 200 {
			t.Errorf("update after login: %d", rec.Code)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests with Update and Migrate deadlocked under TakeTurns")
	}
}

// TestTakeTurnsWaitIsBounded: a request whose turn does not come within
// TurnWait goes on without it.
func TestTakeTurnsWaitIsBounded(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{TakeTurns: true, TurnWait: 50 * time.Millisecond})
	release := make(chan struct{})
	holding := make(chan struct{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(holding)
			<-release
		}
	}))
	cookie := newStoredSession(t, env)
	go serve(t, h, "GET", "/slow", cookie)
	<-holding
	start := time.Now()
	rec := serve(t, h, "GET", "/fast", cookie)
	close(release)
	if rec.Code != 200 {
		t.Fatalf("a request past its TurnWait answered %d", rec.Code)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("the request did not wait for its turn (%v)", waited)
	}
}
