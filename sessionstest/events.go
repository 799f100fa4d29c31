package sessionstest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// RunEvents checks that Config.OnEvent hears of each lifecycle event exactly
// once per cause (created, migrated, rotated, destroyed, ended by DestroyAll,
// DestroySession and the owner limit, conflict, suspicious), with the
// session's handle; and that flash messages (sessions.Flash) survive a
// redirect, are read once, and are neither lost nor shown twice under 20
// concurrent requests of the session. Cases that need the owner index are
// skipped, naming backend.Indexer, for a store without it.
func RunEvents(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Run("EachEventOncePerCause", func(t *testing.T) { eachEventOnce(t, newStore(t)) })
	t.Run("OwnerEventsOncePerCause", func(t *testing.T) {
		ownerEventsOnce(t, need[backend.Indexer](t, newStore(t), "backend.Indexer"))
	})
	t.Run("FlashSurvivesRedirectAndIsReadOnce", func(t *testing.T) { flashReadOnce(t, newStore(t)) })
	t.Run("ExpiryReportedOnceWhereTheStoreCan", func(t *testing.T) {
		expiryOnce(t, need[backend.ExpiryNotifier](t, newStore(t), "backend.ExpiryNotifier"))
	})
}

// expiryOnce: a session left idle past its deadline is reported expired,
// once, by its handle, when the store removes it (a store with a Sweep
// method is asked to sweep; otherwise its own sweeper is waited for).
func expiryOnce(t *testing.T, store backend.Store) {
	rec := &recorder{}
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, OnEvent: rec.hook, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w, r := httptest.NewRecorder(), request("")
	s, _ := mgr.Load(w, r)
	s.Data.N = 1
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	rec.take()
	mgr.Close() // a closed Manager hears nothing more ...
	mgr, err = sessions.New[Counter](sessions.Config{Store: store, OnEvent: rec.hook, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() }) // ... and this one hears each expiry once
	time.Sleep(300 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if sw, ok := store.(interface{ Sweep() int }); ok {
			sw.Sweep()
		}
		if evs := rec.take(); len(evs) > 0 {
			want(t, "expiry", evs, s.Handle(), sessions.EventExpired)
			time.Sleep(100 * time.Millisecond)
			if sw, ok := store.(interface{ Sweep() int }); ok {
				sw.Sweep()
			}
			want(t, "after the expiry", rec.take(), "")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the expiry was never reported")
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []sessions.Event
}

func (rec *recorder) hook(_ context.Context, ev sessions.Event) {
	rec.mu.Lock()
	rec.events = append(rec.events, ev)
	rec.mu.Unlock()
}

// take returns the events since the last take.
func (rec *recorder) take() []sessions.Event {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	evs := rec.events
	rec.events = nil
	return evs
}

// want checks that evs are exactly kinds, in order, all for handle ("" for
// any).
func want(t *testing.T, step string, evs []sessions.Event, handle string, kinds ...sessions.EventKind) {
	t.Helper()
	var got []sessions.EventKind
	for _, ev := range evs {
		got = append(got, ev.Kind)
		if handle != "" && ev.Handle != handle {
			t.Errorf("%s: event %v for %q, want %q", step, ev.Kind, ev.Handle, handle)
		}
	}
	if !slices.Equal(got, kinds) {
		t.Fatalf("%s: events %v, want %v", step, got, kinds)
	}
}

func eachEventOnce(t *testing.T, store backend.Store) {
	rec := &recorder{}
	cfg := sessions.Config{Store: store, OnEvent: rec.hook, Bind: func(r *http.Request) string { return r.UserAgent() }}
	mgr, err := sessions.New[Counter](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	// A second Manager on the same store whose clock runs ahead rotates.
	cfg.RotateEvery, cfg.RotateGrace = 4*time.Minute, time.Minute
	cfg.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }
	rotating, err := sessions.New[Counter](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rotating.Close() })
	as := func(cookie, ua string) *http.Request {
		r := request(cookie)
		r.Header.Set("User-Agent", ua)
		return r
	}

	w, r := httptest.NewRecorder(), as("", "A")
	s, _ := mgr.Load(w, r)
	s.Data.N = 1
	if err := mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	handle, cookie := s.Handle(), cookieOf(t, w)
	want(t, "create", rec.take(), handle, sessions.EventCreated)

	if err := mgr.Save(w, r, s); err != nil { // nothing changed: no event
		t.Fatal(err)
	}
	s.Data.N = 2
	if err := mgr.Save(w, r, s); err != nil { // a plain save: no event
		t.Fatal(err)
	}
	want(t, "save", rec.take(), handle)

	w, r = httptest.NewRecorder(), as(cookie, "A")
	s, _ = mgr.Load(w, r)
	if err := mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie = cookieOf(t, w)
	want(t, "migrate", rec.take(), handle, sessions.EventMigrated)

	w = httptest.NewRecorder()
	if _, err := rotating.Load(w, as(cookie, "A")); err != nil {
		t.Fatal(err)
	}
	cookie = cookieOf(t, w)
	want(t, "rotate", rec.take(), handle, sessions.EventRotated)

	// A conflict the default policy answers: one event.
	a, _ := mgr.Load(httptest.NewRecorder(), as(cookie, "A"))
	b, _ := mgr.Load(httptest.NewRecorder(), as(cookie, "A"))
	a.Data.N, b.Data.N = 10, 20
	if err := mgr.Save(httptest.NewRecorder(), as(cookie, "A"), a); err != nil {
		t.Fatal(err)
	}
	_ = mgr.Save(httptest.NewRecorder(), as(cookie, "A"), b)
	want(t, "conflict", rec.take(), handle, sessions.EventConflict)

	// Another client with the cookie: suspicious, once.
	if got, _ := mgr.Load(httptest.NewRecorder(), as(cookie, "B")); !got.IsNew() {
		t.Fatal("a foreign client got the session")
	}
	want(t, "suspicious", rec.take(), handle, sessions.EventSuspicious)

	w, r = httptest.NewRecorder(), as(cookie, "A")
	s, _ = mgr.Load(w, r)
	if err := mgr.Destroy(w, r, s); err != nil {
		t.Fatal(err)
	}
	want(t, "destroy", rec.take(), handle, sessions.EventDestroyed)
	if err := mgr.Destroy(w, r, s); err != nil { // a new session: nothing to end
		t.Fatal(err)
	}
	want(t, "destroy again", rec.take(), "")
}

func ownerEventsOnce(t *testing.T, store backend.Store) {
	rec := &recorder{}
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, OnEvent: rec.hook, MaxSessionsPerOwner: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	owner := fmt.Sprintf("owner-%d", time.Now().UnixNano())
	var handles []string
	login := func() {
		w, r := httptest.NewRecorder(), request("")
		s, _ := mgr.Load(w, r)
		s.SetOwner(owner)
		if err := mgr.Migrate(w, r, s); err != nil {
			t.Fatal(err)
		}
		handles = append(handles, s.Handle())
		time.Sleep(2 * time.Millisecond) // distinct activity times
	}
	login()
	login()
	rec.take()
	login() // the owner limit ends the least recent
	evs := rec.take()
	var created, ended int
	for _, ev := range evs {
		switch {
		case ev.Kind == sessions.EventCreated && ev.Handle == handles[2]:
			created++
		case ev.Kind == sessions.EventEnded && ev.Handle == handles[0] && ev.Reason == "MaxSessionsPerOwner":
			ended++
		}
	}
	if len(evs) != 2 || created != 1 || ended != 1 {
		t.Fatalf("a login past the owner limit told %+v; want the new session created and the oldest ended (MaxSessionsPerOwner), once each", evs)
	}
	if err := mgr.DestroySession(t.Context(), owner, handles[1]); err != nil {
		t.Fatal(err)
	}
	want(t, "DestroySession", rec.take(), handles[1], sessions.EventEnded)
	if n, err := mgr.DestroyAll(t.Context(), owner, ""); err != nil || n != 1 {
		t.Fatalf("DestroyAll: %d, %v", n, err)
	}
	want(t, "DestroyAll", rec.take(), handles[2], sessions.EventEnded)
}

// Note is the session data of the flash case.
type Note struct {
	LastPage string `sessions:"lww"`
	Notice   sessions.Flash[string]
}

func notice(d *Note) *sessions.Flash[string] { return &d.Notice }

func flashReadOnce(t *testing.T, store backend.Store) {
	mgr, err := sessions.New[Note](sessions.Config{Store: store, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	var shown atomic.Int32
	var mu sync.Mutex
	var got []string
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/save":
			if err := sessions.AddFlash(mgr, w, r, s, notice, "Saved."); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			http.Redirect(w, r, "/", http.StatusSeeOther)
		case "/plain":
			s.Data.LastPage = r.URL.Path // a plain save of another field, in parallel
		default:
			msgs, err := sessions.TakeFlashes(mgr, w, r, s, notice)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			shown.Add(int32(len(msgs)))
			mu.Lock()
			got = append(got, msgs...)
			mu.Unlock()
		}
	}))
	do := func(path, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for round := 0; round < 3; round++ {
		w := do("/save", "")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("save: %d %s", w.Code, w.Body)
		}
		cookie := cookieOf(t, w)
		shown.Store(0)
		got = nil
		// 20 requests of the session at once, after the redirect: plain
		// saves of another field and readers.
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := "/"
				if i%4 == 0 {
					path = "/plain"
				}
				if w := do(path, cookie); w.Code != http.StatusOK {
					t.Errorf("%s: %d %s", path, w.Code, w.Body)
				}
			}()
		}
		wg.Wait()
		if n := shown.Load(); n != 1 || len(got) != 1 || got[0] != "Saved." {
			t.Fatalf("round %d: the flash was shown %d times (%q); want exactly once", round, n, got)
		}
		if w := do("/", cookie); w.Code != http.StatusOK || shown.Load() != 1 {
			t.Fatalf("round %d: a later request showed the flash again", round)
		}
	}
}
