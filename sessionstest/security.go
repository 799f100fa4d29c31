package sessionstest

import (
	"fmt"
	"net/http/httptest"
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
