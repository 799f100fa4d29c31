package memory_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// TestFloodOfNewKeysEvictsNoReadKey fills a one-shard store with keys that
// were read after they were written (protected), then writes ten times the
// bound of new keys that nobody reads (probation): every read key must
// survive, whichever way it was read, and the store must never hold more
// than its bound (one writer at a time: no slack). The flood's keys expire
// later than the read keys, as a flood's fresh sessions do: sampled
// earliest-expiry eviction alone would take the read keys first.
func TestFloodOfNewKeysEvictsNoReadKey(t *testing.T) {
	const (
		max     = 64
		readers = 32 // fit in the bound, with room for the flood
		flood   = 10 * max
		idle    = 30 * time.Minute
	)
	for _, tc := range []struct {
		name string
		// read reads key as a returning request does and returns the key
		// the session is under afterwards.
		read func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error)
	}{
		{"Get", func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error) {
			_, err := s.Get(ctx, key)
			return key, err
		}},
		{"GetTouch not due", func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error) {
			_, _, err := s.GetTouch(ctx, key, now, now, now.Add(idle))
			return key, err
		}},
		{"GetTouch sliding", func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error) {
			_, _, err := s.GetTouch(ctx, key, now, now.Add(idle), now.Add(idle))
			return key, err
		}},
		{"Get then Replace (login)", func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error) {
			if _, err := s.Get(ctx, key); err != nil {
				return key, err
			}
			moved := key + "-migrated"
			return moved, s.Replace(ctx, key, 1, moved, now, entry("user", now.Add(idle)))
		}},
		{"Get then SetIf (a save)", func(ctx context.Context, s *memory.Store, now time.Time, key string) (string, error) {
			if _, err := s.Get(ctx, key); err != nil {
				return key, err
			}
			return key, s.SetIf(ctx, key, 1, now, backend.Entry{Value: []byte("saved"), Expires: now.Add(idle), Version: 2})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := newStore(t, memory.Options{Shards: 1, MaxEntries: max, SweepInterval: -1, Now: clock.Now})
			ctx := t.Context()
			checkBound := func(when string) {
				t.Helper()
				if l := s.Len(); l > max {
					t.Fatalf("Len() = %d %s, want at most %d", l, when, max)
				}
			}
			keys := make([]string, readers)
			for i := range keys {
				keys[i] = fmt.Sprint("user", i)
				if err := s.SetIf(ctx, keys[i], 0, clock.Now(), entry("v", clock.Now().Add(idle))); err != nil {
					t.Fatal(err)
				}
				clock.Advance(time.Second)
			}
			clock.Advance(time.Minute)
			for i, k := range keys {
				var err error
				if keys[i], err = tc.read(ctx, s, clock.Now(), k); err != nil {
					t.Fatalf("reading %s: %v", k, err)
				}
				checkBound("after the returning requests")
			}
			clock.Advance(time.Minute)
			for i := range flood {
				if err := s.SetIf(ctx, fmt.Sprint("flood", i), 0, clock.Now(), entry("v", clock.Now().Add(idle))); err != nil {
					t.Fatalf("flood write %d: %v", i, err)
				}
				checkBound(fmt.Sprintf("after flood write %d", i))
				clock.Advance(time.Millisecond)
			}
			lost := 0
			for _, k := range keys {
				if _, err := s.Get(ctx, k); err != nil {
					lost++
					t.Errorf("Get(%s) after the flood: %v", k, err)
				}
			}
			survived := 0
			for i := range flood {
				if _, err := s.Get(ctx, fmt.Sprint("flood", i)); err == nil {
					survived++
				}
			}
			t.Logf("%d of %d read keys lost; %d of %d flood keys survived", lost, readers, survived, flood)
		})
	}
}

// TestProbationEvictedOldestFirst checks the order among keys nobody read:
// the oldest goes first, whatever their deadlines say, so that after a
// flood the newest keys are the ones left.
func TestProbationEvictedOldestFirst(t *testing.T) {
	const max = 32
	s := newStore(t, memory.Options{Shards: 1, MaxEntries: max, SweepInterval: -1})
	ctx := t.Context()
	base := time.Now().Add(time.Hour)
	const n = 4 * max
	for i := range n {
		// Deadlines that say nothing of age: odd keys expire late, even
		// keys early.
		exp := base.Add(time.Duration(i%2) * time.Hour)
		mustSet(t, s, fmt.Sprint("key", i), entry("v", exp))
	}
	for i := range n {
		_, err := s.Get(ctx, fmt.Sprint("key", i))
		if want := i >= n-max; (err == nil) != want {
			t.Errorf("Get(key%d): %v; want it stored: %v", i, err, want)
		}
	}
}

// TestRecreatedKeyTakesNewProbationTurn checks that a key removed and
// written again waits its turn from its new write, not from the first: the
// oldest key still on probation is evicted, not the recreated one. The
// recreated key also has the earliest deadline, so that choosing by
// deadline would take it.
func TestRecreatedKeyTakesNewProbationTurn(t *testing.T) {
	const max = 8
	s := newStore(t, memory.Options{Shards: 1, MaxEntries: max, SweepInterval: -1})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for i := range max {
		mustSet(t, s, fmt.Sprint("key", i), entry("v", exp))
	}
	if err := s.Delete(ctx, "key0"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "key0", entry("again", exp.Add(-30*time.Minute)))
	mustSet(t, s, "new", entry("v", exp))
	if _, err := s.Get(ctx, "key0"); err != nil {
		t.Errorf("Get(key0), recreated after key1: %v, want it stored", err)
	}
	if _, err := s.Get(ctx, "key1"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get(key1), the oldest on probation: %v, want ErrNotFound (evicted)", err)
	}
}

// TestFloodLogsOutNoReturningUser is the attack at the HTTP level, through
// the sessions core and its middleware: 32 users each create a session and
// come back once; then ten times the store's bound of anonymous requests
// each create a session (a page with a CSRF token). Every user must still
// be logged in.
func TestFloodLogsOutNoReturningUser(t *testing.T) {
	const (
		maxEntries = 4096
		shards     = 32 // 128 entries per shard
		users      = 32
		flood      = 10 * maxEntries
	)
	type visit struct{ User string }
	st := memory.New(memory.Options{MaxEntries: maxEntries, Shards: shards})
	mgr, err := sessions.New[visit](sessions.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(); st.Close() })
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/login": // stores the user: a new session
			s.Data.User = r.URL.Query().Get("user")
		case "/form": // a page with a CSRF token: a new session for a newcomer
			fmt.Fprint(w, s.CSRFToken())
			return
		}
		fmt.Fprint(w, s.Data.User)
	}))
	serve := func(path string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://example.com"+path, nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, w.Code, w.Body)
		}
		return w
	}

	cookies := make([]*http.Cookie, users)
	for i := range cookies {
		name := fmt.Sprint("user", i)
		w := serve("/login?user="+name, nil)
		set := w.Result().Cookies()
		if len(set) == 0 {
			t.Fatalf("login of %s set no cookie", name)
		}
		cookies[i] = &http.Cookie{Name: set[0].Name, Value: set[0].Value}
		if got := serve("/", cookies[i]).Body.String(); got != name { // the second request
			t.Fatalf("second request of %s sees user %q", name, got)
		}
	}
	for range flood {
		if w := serve("/form", nil); len(w.Result().Cookies()) == 0 {
			t.Fatal("the flood's request created no session")
		}
	}
	loggedOut := 0
	for i, c := range cookies {
		if got := serve("/", c).Body.String(); got != fmt.Sprint("user", i) {
			loggedOut++
		}
	}
	if loggedOut > 0 {
		t.Errorf("%d of %d returning users logged out by a flood of %d new sessions", loggedOut, users, flood)
	}
	t.Logf("%d of %d users logged out; store holds %d entries (bound %d): about %d flood sessions of %d survived",
		loggedOut, users, st.Len(), maxEntries, st.Len()-(users-loggedOut), flood)
}

// TestFloodConcurrentWithReturningUsers floods a store with new keys from
// several goroutines while others read, rewrite, slide and migrate keys
// that were read before (protected), and latecomers read keys of their own
// about when the flood is evicting them (so that reads race evictions): no
// protected key may be lost, a latecomer's read that returned an entry
// must have protected it, and the store must hold no more than its bound
// plus one per concurrent writer of a new key. Run with -race.
func TestFloodConcurrentWithReturningUsers(t *testing.T) {
	const (
		shards     = 4
		maxEntries = 256 // 64 per shard
		users      = 32
		flooders   = 4
		perFlooder = 10 * maxEntries / flooders
		latecomers = 2
		lag        = 40 // a latecomer reads the key it wrote this many writes before
		lateReads  = 24 // successful reads per latecomer: with the users, they fit
		idle       = time.Hour
	)
	s := newStore(t, memory.Options{Shards: shards, MaxEntries: maxEntries, SweepInterval: time.Millisecond})
	ctx := t.Context()
	now := time.Now()
	// Each user's current key; Replace moves it, so each is written by its
	// user's goroutine only.
	keys := make([]string, users)
	for i := range keys {
		keys[i] = fmt.Sprint("user", i)
		if err := s.SetIf(ctx, keys[i], 0, now, entry("v", now.Add(idle))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	var (
		writers sync.WaitGroup // flooders and latecomers
		done    atomic.Bool
		maxSeen atomic.Int64
	)
	create := func(key string) bool {
		now := time.Now()
		if err := s.SetIf(ctx, key, 0, now, entry("v", now.Add(idle))); err != nil {
			t.Errorf("writing %s: %v", key, err)
			return false
		}
		if l := int64(s.Len()); l > maxSeen.Load() {
			maxSeen.Store(l) // racy max: good enough to spot a runaway
		}
		return true
	}
	for f := range flooders {
		writers.Go(func() {
			for i := range perFlooder {
				if !create(fmt.Sprintf("flood%d-%d", f, i)) {
					return
				}
			}
		})
	}
	read := make([][]string, latecomers) // keys a latecomer's read returned
	missed := make([]int, latecomers)    // reads that found the key evicted
	for l := range latecomers {
		writers.Go(func() {
			for i := 0; i < perFlooder && len(read[l]) < lateReads; i++ {
				if !create(fmt.Sprintf("late%d-%d", l, i)) {
					return
				}
				if i < lag {
					continue
				}
				k := fmt.Sprintf("late%d-%d", l, i-lag)
				if _, err := s.Get(ctx, k); err == nil {
					read[l] = append(read[l], k)
				} else {
					missed[l]++
				}
			}
		})
	}
	var flooding sync.WaitGroup
	flooding.Go(func() { writers.Wait(); done.Store(true) })
	var userWG sync.WaitGroup
	for u := range users {
		userWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(u), 1))
			version := uint64(1)
			for n := 0; !done.Load() || n < 4; n++ {
				now := time.Now()
				key := keys[u]
				var err error
				switch rng.IntN(4) {
				case 0:
					_, err = s.Get(ctx, key)
				case 1:
					_, _, err = s.GetTouch(ctx, key, now, now.Add(idle), now.Add(idle))
				case 2:
					err = s.SetIf(ctx, key, version, now, backend.Entry{Value: []byte("w"), Expires: now.Add(idle), Version: version + 1})
					if err == nil {
						version++
					}
				case 3:
					moved := fmt.Sprintf("user%d-%d", u, n)
					err = s.Replace(ctx, key, version, moved, now, backend.Entry{Value: []byte("m"), Expires: now.Add(idle), Version: version + 1})
					if err == nil {
						keys[u], version = moved, version+1
					}
				}
				if err != nil {
					t.Errorf("user %d, operation %d on %s: %v", u, n, key, err)
					return
				}
			}
		})
	}
	userWG.Wait()
	flooding.Wait()
	lost := 0
	for u, k := range keys {
		if _, err := s.Get(ctx, k); err != nil {
			lost++
			t.Errorf("user %d's key %s after the flood: %v", u, k, err)
		}
	}
	lateLost, lateRead, lateMissed := 0, 0, 0
	for l := range latecomers {
		lateRead += len(read[l])
		lateMissed += missed[l]
		for _, k := range read[l] {
			if _, err := s.Get(ctx, k); err != nil {
				lateLost++
				t.Errorf("latecomer key %s, read during the flood, after it: %v", k, err)
			}
		}
	}
	if m := maxSeen.Load(); m > maxEntries+flooders+latecomers+users {
		t.Errorf("Len() reached %d, want at most %d (one over per concurrent writer of a new key)", m, maxEntries+flooders+latecomers+users)
	}
	t.Logf("%d of %d users lost; latecomers: %d of %d keys read lost, %d reads found their key evicted; Len() at most %d (bound %d)",
		lost, users, lateLost, lateRead, lateMissed, maxSeen.Load(), maxEntries)
}

// TestProbationQueueStaysBounded checks that keys leaving probation (read,
// removed, removed and written again, evicted, expired and swept) do not
// pile up in the probation queue: right after each write of a new key it
// holds at most twice the keys on probation plus memory.QueueSlack; once
// every key is read or gone, no key is counted on probation, and a sweep
// leaves the queue and its array small.
func TestProbationQueueStaysBounded(t *testing.T) {
	const (
		max = 256
		n   = 20 * max
	)
	read := func(ctx context.Context, s *memory.Store, k string) error {
		_, err := s.Get(ctx, k)
		return err
	}
	for _, tc := range []struct {
		name string
		key  func(i int) string
		// then is done to the i-th key after its write (nil: nothing).
		then func(ctx context.Context, s *memory.Store, k string, i int) error
		// expire: let every key expire before the final sweep.
		expire bool
	}{
		{"read after the write", func(i int) string { return fmt.Sprint("key", i) },
			func(ctx context.Context, s *memory.Store, k string, _ int) error { return read(ctx, s, k) }, false},
		{"removed after the write", func(i int) string { return fmt.Sprint("key", i) },
			func(ctx context.Context, s *memory.Store, k string, _ int) error { return s.Delete(ctx, k) }, false},
		{"one key removed and written again", func(int) string { return "key0" },
			func(ctx context.Context, s *memory.Store, k string, _ int) error { return s.Delete(ctx, k) }, false},
		{"every other key read, evicting at the bound", func(i int) string { return fmt.Sprint("key", i) },
			func(ctx context.Context, s *memory.Store, k string, i int) error {
				if i%2 == 0 {
					return nil
				}
				return read(ctx, s, k)
			}, false},
		{"never read, expired and swept", func(i int) string { return fmt.Sprint("key", i) }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := newStore(t, memory.Options{Shards: 1, MaxEntries: max, SweepInterval: -1, Now: clock.Now})
			ctx := t.Context()
			exp := clock.Now().Add(time.Hour)
			for i := range n {
				k := tc.key(i)
				if err := s.Set(ctx, k, entry("v", exp)); err != nil {
					t.Fatal(err)
				}
				if queued, _, p := s.Probation(); queued > 2*p+memory.QueueSlack {
					t.Fatalf("after write %d the queue holds %d entries for %d keys on probation, want at most %d", i, queued, p, 2*p+memory.QueueSlack)
				}
				if tc.then != nil {
					if err := tc.then(ctx, s, k, i); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.expire {
				clock.Advance(2 * time.Hour)
			} else {
				for i := range n {
					s.Get(ctx, tc.key(i)) // protects what is left
				}
			}
			s.Sweep()
			queued, capacity, p := s.Probation()
			if p != 0 {
				t.Errorf("%d keys counted on probation with none left, want 0", p)
			}
			if queued > memory.QueueSlack || capacity > 4*memory.QueueSlack {
				t.Errorf("after a sweep the queue holds %d entries in an array of %d, want at most %d in at most %d", queued, capacity, memory.QueueSlack, 4*memory.QueueSlack)
			}
		})
	}
}

// TestReadRacingEvictionReportsMissing checks the two orders of a read and
// an eviction from the probation queue racing for one key: a read before
// the eviction claims the key protects it (the eviction takes another), and
// a read after the claim, before the key is removed, reports it missing,
// so that no read returns a key that the flood then evicts.
func TestReadRacingEvictionReportsMissing(t *testing.T) {
	reads := []struct {
		name string
		read func(ctx context.Context, s *memory.Store, key string) error
	}{
		{"Get", func(ctx context.Context, s *memory.Store, key string) error {
			_, err := s.Get(ctx, key)
			return err
		}},
		{"GetTouch", func(ctx context.Context, s *memory.Store, key string) error {
			now := time.Now()
			_, _, err := s.GetTouch(ctx, key, now, now.Add(time.Hour), now.Add(time.Hour))
			return err
		}},
	}
	for _, r := range reads {
		t.Run(r.name+" before the claim", func(t *testing.T) {
			s := newStore(t, memory.Options{Shards: 1, MaxEntries: 2, SweepInterval: -1})
			ctx := t.Context()
			exp := time.Now().Add(time.Hour)
			mustSet(t, s, "a", entry("v", exp))
			mustSet(t, s, "b", entry("v", exp))
			if err := r.read(ctx, s, "a"); err != nil {
				t.Fatal(err)
			}
			mustSet(t, s, "c", entry("v", exp))
			if err := r.read(ctx, s, "a"); err != nil {
				t.Errorf("the key read before the eviction: %v, want it stored", err)
			}
			if _, err := s.Get(ctx, "b"); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("the other key: %v, want ErrNotFound (evicted instead)", err)
			}
		})
		t.Run(r.name+" after the claim", func(t *testing.T) {
			s := newStore(t, memory.Options{Shards: 1, MaxEntries: 2, SweepInterval: -1})
			ctx := t.Context()
			exp := time.Now().Add(time.Hour)
			mustSet(t, s, "a", entry("v", exp))
			mustSet(t, s, "b", entry("v", exp))
			var during error
			claimed := ""
			defer memory.SetTestHookClaimed(func(key string) {
				claimed = key
				during = r.read(ctx, s, key)
			})()
			mustSet(t, s, "c", entry("v", exp))
			if claimed != "a" {
				t.Fatalf("eviction claimed %q, want the oldest key on probation, a", claimed)
			}
			if !errors.Is(during, backend.ErrNotFound) {
				t.Errorf("read between the claim and the removal: %v, want ErrNotFound", during)
			}
			if err := r.read(ctx, s, "a"); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("read after the eviction: %v, want ErrNotFound", err)
			}
			if _, err := s.Get(ctx, "b"); err != nil {
				t.Errorf("the other key: %v, want it stored", err)
			}
		})
	}
}
