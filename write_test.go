package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// conditionalStore has Conditional but no Replacer, GetToucher or Indexer:
// Migrate takes the core's two-step move.
type conditionalStore struct {
	backend.Store
	backend.Conditional
}

// loginHandler runs the login pattern the README teaches: the user goes
// into the session, then Migrate; a failed Migrate answers 500.
func loginHandler[T any](mgr *Manager[T], set func(*T), migrateErr *error) http.Handler {
	return mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		set(&s.Data)
		s.SetOwner("user-1")
		if *migrateErr = mgr.Migrate(w, r, s); *migrateErr != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "logged in")
	}))
}

// TestFailedLoginDoesNotLogOldTokenInWhenStoreFull: a full memory store
// with RejectWhenFull refuses the new key of the login's Migrate; the
// middleware must not then save the user under the old token, and a new
// visitor must not get a cookie. (The causes every store shares run in
// sessionstest's RunWrites.) The store has two shards of one entry
// each: a returning visitor's Migrate fails only when the new key falls in
// the other shard than the old one (a move within one shard frees its own
// room), so the case runs until it saw that, checking every attempt.
func TestFailedLoginDoesNotLogOldTokenInWhenStoreFull(t *testing.T) {
	for _, visitor := range []string{"returning", "new"} {
		t.Run(visitor, func(t *testing.T) {
			failed := 0
			for attempt := 0; attempt < 64 && failed == 0; attempt++ {
				clock := newFakeClock()
				st := memory.New(memory.Options{Shards: 2, MaxEntries: 2, RejectWhenFull: true, SweepInterval: -1, Now: clock.Now})
				t.Cleanup(func() { st.Close() })
				env := newTestEnv[visitV1](t, Config{Store: st, Now: clock.Now})
				cookie := ""
				if visitor == "returning" {
					cookie = newStoredSession(t, env)
				}
				for tries := 0; st.Len() < 2 && tries < 100; tries++ { // other visitors fill the store
					w, r := newHeaderWriter(), httptestRequest("")
					s, _ := env.mgr.Load(w, r)
					s.Data.User = "other"
					_ = env.mgr.Save(w, r, s) // ErrFull when its shard is taken
				}
				if st.Len() < 2 {
					t.Fatal("could not fill the store")
				}
				var migrateErr error
				h := loginHandler(env.mgr, func(v *visitV1) { v.User = "victim" }, &migrateErr)
				rec := serve(t, h, "POST", "/login", cookie)
				if migrateErr == nil {
					// The move stayed within one shard: it must have
					// moved the session whole.
					c, ok := sessionCookie(t, rec, cookieName)
					if !ok {
						t.Fatal("a login that succeeded set no cookie")
					}
					if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookieHeader(c))); s.Data.User != "victim" {
						t.Fatalf("the new token gives %+v", s.Data)
					}
					continue
				}
				failed++
				if !errors.Is(migrateErr, backend.ErrFull) {
					t.Fatalf("Migrate into a full store: %v, want ErrFull", migrateErr)
				}
				if rec.Code != http.StatusInternalServerError {
					t.Errorf("failed login answered %d, want the handler's 500", rec.Code)
				}
				if line := setCookieLine(rec, cookieName); line != "" {
					t.Errorf("the failed login's response sets a cookie: %q", line)
				}
				if cookie != "" {
					s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
					if s.IsNew() || s.Data.User != "ann" || s.Owner() != "" {
						t.Fatalf("after a failed login the old token gives %+v, owner %q (new=%v), want it as stored", s.Data, s.Owner(), s.IsNew())
					}
				}
			}
			if failed == 0 {
				t.Fatal("no login met a full shard in 64 attempts")
			}
		})
	}
}

// TestFailedMigrateRevertsSession: after a failed Migrate the handler's s
// holds its stored state, as documented, and a later Save writes nothing of
// the failed step.
func TestFailedMigrateRevertsSession(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	w, r := newHeaderWriter(), httptestRequest(cookie)
	s, _ := env.mgr.Load(w, r)
	token := s.CSRFToken()
	s.Data.User, s.Data.Count = "mallory", 7
	s.SetOwner("user-9")
	env.store.failWith(errors.New("injected"))
	err := env.mgr.Migrate(w, r, s)
	env.store.failWith(nil)
	if err == nil {
		t.Fatal("Migrate with a failing store succeeded")
	}
	if s.Data.User != "ann" || s.Data.Count != 0 || s.Owner() != "" || s.validCSRF(token) {
		t.Fatalf("after a failed Migrate s holds %+v owner %q (CSRF secret kept: %v), want its stored state", s.Data, s.Owner(), s.validCSRF(token))
	}
	before := env.store.writes.Load()
	if err := env.mgr.Save(w, r, s); err != nil || env.store.writes.Load() != before {
		t.Fatalf("Save after a failed Migrate: %v, %d writes; want nothing to write", err, env.store.writes.Load()-before)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("the failed Migrate set a cookie")
	}
}

// TestMoveFallbackWithoutReplacer: on a store with Conditional but no
// Replacer, Migrate writes the new key, then removes the old one only if it
// is unchanged; when that check fails, the new key is taken out again and
// the old session stays as it was.
func TestMoveFallbackWithoutReplacer(t *testing.T) {
	clock := newFakeClock()
	counting := newCountingStore(t, clock.Now)
	env := newTestEnv[visitV1](t, Config{Store: conditionalStore{counting, counting}, Now: clock.Now})
	env.store = counting

	cookie := newStoredSession(t, env)
	w, r := newHeaderWriter(), httptestRequest(cookie)
	s, _ := env.mgr.Load(w, r)
	s.Data.User = "ann (logged in)"
	if err := env.mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	if counting.replaces.Load() != 0 || counting.setIfs.Load() < 2 {
		t.Fatalf("the move used Replace %d times and SetIf %d times; want the two-step fallback", counting.replaces.Load(), counting.setIfs.Load())
	}
	if old, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); !old.IsNew() {
		t.Fatal("the old token still works after the fallback move")
	}
	moved := cookieName + "=" + w.Result().Cookies()[0].Value
	if got, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(moved)); got.Data.User != "ann (logged in)" {
		t.Fatalf("the new token gives %+v", got.Data)
	}

	// The old session changes between the two steps: the move fails whole.
	cookie = newStoredSession(t, env)
	slow := twoRequests(t, env, cookie) // loaded, then another request saved
	slow.Data.User = "mallory"
	keys := len(counting.seenKeys())
	w = newHeaderWriter()
	if err := env.mgr.Migrate(w, httptestRequest(cookie), slow); !errors.Is(err, ErrConflict) {
		t.Fatalf("fallback move over a changed session: %v, want ErrConflict", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("the failed fallback move set a cookie")
	}
	newKey := counting.seenKeys()[keys] // the first key the move wrote
	if _, err := counting.inner.Get(t.Context(), newKey); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the failed fallback move left its new key behind: %v", err)
	}
	if got, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); got.IsNew() || got.Data.User != "ann" || got.Data.Count != 1 {
		t.Fatalf("after the failed move the old token gives %+v (new=%v), want it as the other request stored it", got.Data, got.IsNew())
	}
}

// TestRotationWithoutConditional: on a store with no optional capability,
// rotation still gives a new token, the old one forwards for RotateGrace and
// finds nothing after it.
func TestRotationWithoutConditional(t *testing.T) {
	clock := newFakeClock()
	counting := newCountingStore(t, clock.Now)
	env, cookie := rotEnv(t, Config{Store: plainStore{counting}, Now: clock.Now})
	env.store, env.clock = counting, clock
	env.clock.Advance(15*time.Minute + time.Second)
	fresh := rotateNow(t, env, cookie)
	if counting.setIfs.Load() != 0 || counting.sets.Load() < 2 {
		t.Fatalf("rotation used SetIf %d times and Set %d times; want the fallback's plain writes", counting.setIfs.Load(), counting.sets.Load())
	}
	for _, c := range []string{cookie, fresh} {
		if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(c)); s.IsNew() || s.Data.User != "ann" {
			t.Fatalf("within the grace window %q gives %+v (new=%v)", c, s.Data, s.IsNew())
		}
	}
	env.clock.Advance(11 * time.Second)
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); !s.IsNew() {
		t.Fatal("the rotated-away token works after the grace window")
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(fresh)); s.IsNew() {
		t.Fatal("the new token does not work after the grace window")
	}
}

// TestVanishedSessionIsGoneNotChanged: a session evicted by a full memory
// store is gone, not changed: the commit answers 401 through the
// ErrorHandler, clears the cookie, and writes nothing under the old key.
func TestVanishedSessionIsGoneNotChanged(t *testing.T) {
	clock := newFakeClock()
	st := memory.New(memory.Options{Shards: 1, MaxEntries: 2, Now: clock.Now}) // evicts the least recently active
	t.Cleanup(func() { st.Close() })
	env := newTestEnv[visitV1](t, Config{Store: st, Now: clock.Now})
	victim := newStoredSession(t, env)
	var logs strings.Builder
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		// Two other visitors who came back evict the least recently
		// active session: the victim, whose request is still running.
		clock.Advance(time.Second)
		other := newStoredSession(t, env)
		if _, err := env.mgr.Load(newHeaderWriter(), httptestRequest(other)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		newStoredSession(t, env)
		s.Data.Count++
		fmt.Fprint(w, "counted")
	}))
	rec := serve(t, h, "POST", "/count", victim)
	logs.WriteString(env.logs.String())
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("commit of an evicted session answered %d %q, want 401", rec.Code, rec.Body.String())
	}
	if line := setCookieLine(rec, cookieName); !strings.Contains(line, "Max-Age=0") {
		t.Errorf("Set-Cookie %q, want the cookie cleared", line)
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(victim)); !s.IsNew() {
		t.Fatalf("the evicted session was written back: %+v", s.Data)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an ended session was logged as an error:\n%s", logs.String())
	}
}

// TestRoutineEventsLogAtDebugConflictsAtWarn: creating, migrating and
// destroying sessions log at Debug only; a conflict the default policy
// answers is a Warn, not an Error; no record holds a token.
func TestRoutineEventsLogAtDebugConflictsAtWarn(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var tokens []string
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		switch r.URL.Path {
		case "/cart":
			s.Data.Count = 1
		case "/login":
			s.Data.User = "ann"
			if err := env.mgr.Migrate(w, r, s); err != nil {
				t.Fatal(err)
			}
		case "/conflict":
			other, _ := env.mgr.Load(newHeaderWriter(), r)
			other.Data.Count = 5
			if err := env.mgr.Save(newHeaderWriter(), r, other); err != nil {
				t.Fatal(err)
			}
			s.Data.Count = 6
		case "/logout":
			if err := env.mgr.Destroy(w, r, s); err != nil {
				t.Fatal(err)
			}
		}
	}))
	rec := serve(t, h, "POST", "/cart", "")
	c, _ := sessionCookie(t, rec, cookieName)
	tokens = append(tokens, c.Value)
	rec = serve(t, h, "POST", "/login", cookieHeader(c))
	c, _ = sessionCookie(t, rec, cookieName)
	tokens = append(tokens, c.Value)
	if rec := serve(t, h, "POST", "/conflict", cookieHeader(c)); rec.Code != http.StatusConflict {
		t.Fatalf("conflict answered %d", rec.Code)
	}
	serve(t, h, "POST", "/logout", cookieHeader(c))
	logs := env.logs.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		switch {
		case strings.Contains(line, "sessions: created"), strings.Contains(line, "sessions: migrated"), strings.Contains(line, "sessions: destroyed"):
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("routine event not at Debug: %s", line)
			}
		case strings.Contains(line, "status=409"):
			if !strings.Contains(line, "level=WARN") {
				t.Errorf("a conflict answered by policy is not a Warn: %s", line)
			}
		}
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=INFO") {
			t.Errorf("log record above Debug for a routine flow: %s", line)
		}
	}
	for _, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Fatal("a token reached the log")
		}
	}
	for _, want := range []string{"sessions: created", "sessions: migrated", "sessions: destroyed", "status=409"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q record in the log:\n%s", want, logs)
		}
	}
}

// TestStoreFallbacks checks the fillers of store.go on a store with no
// optional capability, rule by rule.
func TestStoreFallbacks(t *testing.T) {
	clock := newFakeClock()
	counting := newCountingStore(t, clock.Now)
	st := newStore(plainStore{counting})
	if st.cas != nil || st.replacer != nil || st.getToucher != nil || st.indexer != nil {
		t.Fatal("plainStore leaks a capability")
	}
	ctx := t.Context()
	now := clock.Now()
	entry := func(v uint64) backend.Entry {
		return backend.Entry{Value: []byte{byte(v)}, Expires: now.Add(time.Hour), Limit: now.Add(2 * time.Hour), Version: v}
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want error
	}{
		{"create on a free key", func() error { return st.setIf(ctx, "a", 0, now, entry(1)) }, nil},
		{"create on a live key", func() error { return st.setIf(ctx, "a", 0, now, entry(1)) }, backend.ErrConflict},
		{"write over the version stored", func() error { return st.setIf(ctx, "a", 1, now, entry(2)) }, nil},
		{"write over another version", func() error { return st.setIf(ctx, "a", 1, now, entry(3)) }, backend.ErrConflict},
		{"write over a missing key", func() error { return st.setIf(ctx, "nothing", 1, now, entry(2)) }, backend.ErrNotFound},
		{"write over an entry ended by the core's clock", func() error {
			return st.setIf(ctx, "a", 2, now.Add(90*time.Minute), entry(3))
		}, backend.ErrNotFound},
		{"move a changed key", func() error { return st.replace(ctx, "a", 1, "b", now, entry(3)) }, backend.ErrConflict},
		{"move a missing key", func() error { return st.replace(ctx, "nothing", 1, "b", now, entry(3)) }, backend.ErrNotFound},
		{"move", func() error { return st.replace(ctx, "a", 2, "b", now, entry(3)) }, nil},
	} {
		if err := tc.run(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := counting.inner.Get(ctx, "a"); !errors.Is(err, backend.ErrNotFound) {
		t.Error("the move left the old key")
	}
	for _, key := range []string{"b", "nothing"} {
		if _, err := counting.inner.Get(ctx, key); (key == "b") != (err == nil) {
			t.Errorf("after the moves, key %q: %v", key, err)
		}
	}
	// A failed move takes its new key out again.
	if err := st.replace(ctx, "b", 1, "c", now, entry(4)); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("move of a changed key: %v", err)
	}
	if _, err := counting.inner.Get(ctx, "c"); !errors.Is(err, backend.ErrNotFound) {
		t.Error("a failed move left its new key behind")
	}

	// getTouch: slides only when due, never past Limit, never an entry
	// the core's clock ended.
	if _, touched, err := st.getTouch(ctx, "b", now, now.Add(30*time.Minute), now.Add(90*time.Minute)); err != nil || touched {
		t.Errorf("getTouch not due: touched %v, %v", touched, err)
	}
	e, touched, err := st.getTouch(ctx, "b", now, now.Add(2*time.Hour), now.Add(3*time.Hour))
	if err != nil || !touched || !e.Expires.Equal(now.Add(2*time.Hour)) {
		t.Errorf("getTouch due: %v touched %v expires %v, want the Limit %v", err, touched, e.Expires, now.Add(2*time.Hour))
	}
	if _, _, err := st.getTouch(ctx, "b", now.Add(3*time.Hour), now.Add(4*time.Hour), now.Add(5*time.Hour)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("getTouch of an entry the core's clock ended: %v, want ErrNotFound", err)
	}
	if got, _ := counting.inner.Get(ctx, "b"); !got.Expires.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("getTouch moved an ended entry's deadline to %v", got.Expires)
	}
}

// decliningStore is a store whose GetTouch reads but never slides, as a
// store at millisecond precision declines a slide to the deadline it
// already holds, or one that found the slide late.
type decliningStore struct{ *countingStore }

func (d decliningStore) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	return d.countingStore.GetTouch(ctx, key, now, time.Time{}, expires)
}

// TestLoadDoesNotSlideAgainWhatTheStoreDeclined: when the store judged a
// slide in the load's own round trip (GetTouch) and declined it, the core
// does not send a Touch of its own: a read stays one round trip.
func TestLoadDoesNotSlideAgainWhatTheStoreDeclined(t *testing.T) {
	clock := newFakeClock()
	counting := newCountingStore(t, clock.Now)
	env := newTestEnv[visitV1](t, Config{Store: decliningStore{counting}, Now: clock.Now, TouchInterval: time.Nanosecond})
	env.store = counting
	cookie := newStoredSession(t, env)
	clock.Advance(time.Minute) // a slide is due
	before := counting.touches.Load()
	for range 5 {
		if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); s.IsNew() {
			t.Fatal("the session is gone")
		}
	}
	if n := counting.touches.Load() - before; n != 0 {
		t.Fatalf("5 reads sent %d Touch calls after the store declined the slide, want 0", n)
	}
}
