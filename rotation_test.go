package sessions

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rotEnv is a Manager with rotation after 15 minutes and a session "ann"
// created at the start; it returns the env and the session's cookie.
func rotEnv(t *testing.T, cfg Config) (*testEnv[visitV1], string) {
	t.Helper()
	cfg.RotateEvery, cfg.RotateGrace, cfg.TouchInterval = 15*time.Minute, 10*time.Second, time.Minute
	env := newTestEnv[visitV1](t, cfg)
	return env, newStoredSession(t, env)
}

// rotateNow loads cookie after RotateEvery, which rotates it, and returns the
// new cookie.
func rotateNow(t *testing.T, env *testEnv[visitV1], cookie string) string {
	t.Helper()
	w := newHeaderWriter()
	if _, err := env.mgr.Load(w, httptestRequest(cookie)); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || cookieName+"="+c[0].Value == cookie {
		t.Fatal("no rotation")
	}
	return cookieName + "=" + c[0].Value
}

func TestDestroyLoadedBeforeRotationEndsTheSession(t *testing.T) {
	env, cookie := rotEnv(t, Config{})
	env.clock.Advance(14*time.Minute + 59*time.Second)
	logout, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	env.clock.Advance(2 * time.Second)
	fresh := rotateNow(t, env, cookie)
	if err := env.mgr.Destroy(newHeaderWriter(), httptestRequest(cookie), logout); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{cookie, fresh} {
		if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(c)); !s.IsNew() {
			t.Fatal("a logout that loaded before a rotation left the session alive")
		}
	}
}

func TestConflictOverwriteDoesNotReviveRotatedToken(t *testing.T) {
	env, cookie := rotEnv(t, Config{OnConflict: ConflictOverwrite})
	env.clock.Advance(14*time.Minute + 59*time.Second)
	slow, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	env.clock.Advance(2 * time.Second)
	fresh := rotateNow(t, env, cookie)
	// Another request changes the session through the new token.
	other, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(fresh))
	other.Data.Count = 1
	if err := env.mgr.Save(newHeaderWriter(), httptestRequest(fresh), other); err != nil {
		t.Fatal(err)
	}
	slow.Data.Count = 42
	_ = env.mgr.save(context.Background(), newHeaderWriter(), slow, ConflictOverwrite)
	env.clock.Advance(time.Minute) // past the grace window
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); !s.IsNew() {
		t.Fatalf("the rotated-away token came back as a session: %+v", s.Data)
	}
}

func TestSaveLoadedBeforeRotationLands(t *testing.T) {
	env, cookie := rotEnv(t, Config{})
	env.clock.Advance(14*time.Minute + 59*time.Second)
	slow, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	env.clock.Advance(2 * time.Second)
	fresh := rotateNow(t, env, cookie)
	slow.Data.Count = 5
	w := newHeaderWriter()
	if err := env.mgr.Save(w, httptestRequest(cookie), slow); err != nil {
		t.Fatalf("a save that loaded just before a rotation: %v, want it to land", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("the request with the old token was handed a cookie")
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(fresh)); s.Data.Count != 5 {
		t.Fatalf("the new token sees %+v, want the change", s.Data)
	}
}

func TestUpdateAcrossRotation(t *testing.T) {
	env, cookie := rotEnv(t, Config{})
	env.clock.Advance(14*time.Minute + 59*time.Second)
	slow, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	env.clock.Advance(2 * time.Second)
	fresh := rotateNow(t, env, cookie)
	other, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(fresh))
	other.Data.Count = 10
	if err := env.mgr.Save(newHeaderWriter(), httptestRequest(fresh), other); err != nil {
		t.Fatal(err)
	}
	err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), slow, func(v *visitV1) error { v.Count++; return nil })
	if err != nil {
		t.Fatalf("Update racing a rotation: %v", err)
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(fresh)); s.Data.Count != 11 {
		t.Fatalf("Count %d, want 11", s.Data.Count)
	}
}

func TestUpdateKeepsPendingOwner(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	second := twoRequests(t, env, cookie) // a conflicting save happened
	second.SetOwner("user-1")
	if err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), second, func(v *visitV1) error { v.User = "u1"; return nil }); err != nil {
		t.Fatal(err)
	}
	list, err := env.mgr.Sessions(t.Context(), "user-1")
	if err != nil || len(list) != 1 {
		t.Fatalf("a login done through Update after a conflict is not attributed: %d, %v", len(list), err)
	}
}

func TestFailedCommitStillSendsNewToken(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{MaxSize: 64})
	cookie := newStoredSession(t, env)
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		if err := env.mgr.Migrate(w, r, s); err != nil {
			t.Fatal(err)
		}
		w.Header().Set("Location", "/x")
		s.Data.User = strings.Repeat("x", 100) // too large: the commit fails
	}))
	req := httptestRequest(cookie)
	rec := newHeaderWriter()
	rec.Header().Set("X-Request-Id", "abc") // set by an outer middleware
	h.ServeHTTP(rec, req)
	if rec.Code != 500 {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok || cookieName+"="+c.Value == cookie {
		t.Fatal("the migrated token was not sent with the error response: the browser is left with a dead token")
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookieName+"="+c.Value)); s.IsNew() {
		t.Fatal("the token sent does not find the session")
	}
	if rec.Header().Get("Location") != "" || rec.Header().Get("X-Request-Id") != "abc" {
		t.Errorf("headers after a failed commit: Location %q (want none), X-Request-Id %q (want kept)",
			rec.Header().Get("Location"), rec.Header().Get("X-Request-Id"))
	}
}

func TestOverlongOwnerIsRefused(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.SetOwner(strings.Repeat("o", maxOwnerLen+1))
	if err := env.mgr.Save(w, httptestRequest(""), s); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Save with an owner of %d bytes: %v, want ErrTooLarge", maxOwnerLen+1, err)
	}
}

func TestRefusedLoginIsAnsweredByTheApplication(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{MaxSessionsPerOwner: 1, OwnerLimit: RefuseNew})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		s.SetOwner("user-1")
		if err := env.mgr.Migrate(w, r, s); errors.Is(err, ErrTooManySessions) {
			http.Error(w, "log out elsewhere first", http.StatusForbidden)
			return
		}
	}))
	if rec := serve(t, h, "POST", "/login", ""); rec.Code != 200 {
		t.Fatalf("first login: %d", rec.Code)
	}
	rec := serve(t, h, "POST", "/login", "")
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "elsewhere") {
		t.Fatalf("second login: %d %q, want the application's 403", rec.Code, rec.Body.String())
	}
}

// racingIndex calls DestroyAll on the owner inside AddOwned, as a concurrent
// "log out everywhere" would, between the index record and the write.
type racingIndex struct {
	*countingStore
	mgr  *Manager[visitV1]
	once bool
}

func TestOwnerIndexSurvivesConcurrentDestroyAll(t *testing.T) {
	clock := newFakeClock()
	inner := newCountingStore(t, clock.Now)
	ri := &racingIndex{countingStore: inner}
	env := newTestEnv[visitV1](t, Config{Store: ri, Now: clock.Now})
	ri.mgr = env.mgr
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.SetOwner("u")
	if err := env.mgr.Migrate(w, httptestRequest(""), s); err != nil {
		t.Fatal(err)
	}
	list, _ := env.mgr.Sessions(t.Context(), "u")
	if len(list) != 1 {
		t.Fatalf("a login racing DestroyAll is alive but listed %d times: DestroyAll would miss it", len(list))
	}
}

func (ri *racingIndex) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	err := ri.countingStore.AddOwned(ctx, owner, key, limit)
	if !ri.once {
		ri.once = true
		ri.mgr.DestroyAll(ctx, "u", "") // the store sees indexID("u"), the application "u"
	}
	return err
}
