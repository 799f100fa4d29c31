package sessions

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSaveKeepsTheIdleDeadlineUntilDue: a save that keeps the token and the
// lifetime stores the idle deadline it found while that is not due for a
// refresh (so the store changes only the value and version, and no cookie is
// sent); once due, or with a new lifetime or a new token, it moves it.
func TestSaveKeepsTheIdleDeadlineUntilDue(t *testing.T) {
	const idle = 30 * time.Minute // the defaults: TouchInterval 3 min
	tests := []struct {
		name string
		// change runs between the Load (at created+1 min) and the write;
		// it returns the write's error.
		change     func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error
		wantMoved  bool // the deadline is now+idle, not the first one
		wantIdle   time.Duration
		wantCookie bool
	}{
		{
			name: "save before due keeps it",
			change: func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error {
				s.Data.Count++
				return env.mgr.Save(w, httptestRequest(""), s)
			},
		},
		{
			name: "save when due moves it",
			change: func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error {
				env.clock.Advance(4 * time.Minute) // loaded before due, saved after
				s.Data.Count++
				return env.mgr.Save(w, httptestRequest(""), s)
			},
			wantMoved: true, wantIdle: idle, wantCookie: true,
		},
		{
			name: "save with a new lifetime moves it",
			change: func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error {
				s.SetLifetime(Lifetime{Idle: 2 * time.Hour})
				return env.mgr.Save(w, httptestRequest(""), s)
			},
			wantMoved: true, wantIdle: 2 * time.Hour, wantCookie: true,
		},
		{
			name: "Migrate moves it",
			change: func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error {
				return env.mgr.Migrate(w, httptestRequest(""), s)
			},
			wantMoved: true, wantIdle: idle, wantCookie: true,
		},
		{
			name: "Update before due keeps it",
			change: func(env *testEnv[visitV1], w *httptest.ResponseRecorder, s *Session[visitV1]) error {
				return env.mgr.Update(w, httptestRequest(""), s, func(d *visitV1) error {
					d.Count++
					return nil
				})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{})
			cookie := newStoredSession(t, env)
			first := env.clock.Now().Add(idle)
			env.clock.Advance(time.Minute)
			s, err := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
			if err != nil || s.IsNew() {
				t.Fatalf("Load: %v (new: %v)", err, s.IsNew())
			}
			w := newHeaderWriter()
			if err := tc.change(env, w, s); err != nil {
				t.Fatalf("write: %v", err)
			}
			now := env.clock.Now()
			want := first
			if tc.wantMoved {
				want = now.Add(tc.wantIdle)
			}
			name, _, _ := strings.Cut(cookie, "=")
			s2, err := env.mgr.Load(newHeaderWriter(), httptestRequest(cookieOf(w, name, cookie)))
			if err != nil || s2.IsNew() {
				t.Fatalf("Load after the write: %v (new: %v)", err, s2.IsNew())
			}
			if got := s2.IdleDeadline(); !got.Equal(want) {
				t.Errorf("stored idle deadline %v, want %v (moved: %v)", got, want, tc.wantMoved)
			}
			e, err := env.store.inner.Get(context.Background(), s2.key)
			if err != nil {
				t.Fatalf("store Get: %v", err)
			}
			if !e.Expires.Equal(want) {
				t.Errorf("store entry expires %v, want %v", e.Expires, want)
			}
			if _, sent := sessionCookie(t, w, name); sent != tc.wantCookie {
				t.Errorf("Set-Cookie sent: %v, want %v", sent, tc.wantCookie)
			}
		})
	}
}

// cookieOf returns the Cookie header for the cookie name w set, or old when
// it set none.
func cookieOf(w *httptest.ResponseRecorder, name, old string) string {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c.Name + "=" + c.Value
		}
	}
	return old
}
