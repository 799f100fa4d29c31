package memory_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/sessiontest"
	"github.com/sessionx/sessions/internal/testclock"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConformanceSmall runs the suite on a store with tiny shards, so that
// eviction and per-shard bounds are exercised by every case's writes.
func TestConformanceSmall(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{Shards: 2, MaxEntries: 256, SweepInterval: 10 * time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// fakeClock is a clock for Options.Now that moves only when told.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// newStore returns a store closed at the end of the test.
func newStore(t *testing.T, opts memory.Options) *memory.Store {
	t.Helper()
	s := memory.New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSet(t *testing.T, s *memory.Store, key string, e backend.Entry) {
	t.Helper()
	if err := s.Set(t.Context(), key, e); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func entry(value string, expires time.Time) backend.Entry {
	return backend.Entry{Value: []byte(value), Expires: expires, Version: 1}
}

func TestSweeperRemovesExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New(memory.Options{SweepInterval: time.Minute})
		defer s.Close()
		for i := range 100 {
			mustSet(t, s, fmt.Sprint("k", i), entry("v", time.Now().Add(30*time.Second)))
		}
		mustSet(t, s, "survivor", entry("v", time.Now().Add(time.Hour)))
		if n := s.Len(); n != 101 {
			t.Fatalf("Len() = %d after 101 Sets, want 101", n)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		// No Get before Len: only the sweeper can have removed them.
		if n := s.Len(); n != 1 {
			t.Errorf("Len() = %d two sweep intervals after expiry, want 1", n)
		}
		if _, err := s.Get(t.Context(), "survivor"); err != nil {
			t.Errorf("Get(survivor): %v", err)
		}
	})
}

func TestSweepWithInjectedClock(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, SweepInterval: -1})
	now := clock.Now()
	for i := range 10 {
		mustSet(t, s, fmt.Sprint("short", i), entry("v", now.Add(10*time.Second)))
		mustSet(t, s, fmt.Sprint("long", i), entry("v", now.Add(time.Hour)))
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("Sweep() before any deadline = %d, want 0", n)
	}
	clock.Advance(10 * time.Second) // exactly at the deadline: expired
	if n := s.Len(); n != 20 {
		t.Errorf("Len() before Sweep = %d, want 20 (expired entries not yet swept)", n)
	}
	if n := s.Sweep(); n != 10 {
		t.Errorf("Sweep() = %d, want 10", n)
	}
	if n := s.Len(); n != 10 {
		t.Errorf("Len() after Sweep = %d, want 10", n)
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("second Sweep() = %d, want 0", n)
	}
}

func TestInjectedClock(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now})
	ctx := t.Context()
	now := clock.Now()
	mustSet(t, s, "k", backend.Entry{Value: []byte("v"), Expires: now.Add(time.Minute), Limit: now.Add(3 * time.Minute), Version: 1})

	clock.Advance(59 * time.Second)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get one second before the deadline: %v", err)
	}
	// Touch is capped at the Limit, by the fake clock's reckoning.
	if err := s.Touch(ctx, "k", clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || !e.Expires.Equal(now.Add(3*time.Minute)) {
		t.Fatalf("Get after Touch = %v, %v; want Expires at the Limit %v", e.Expires, err, now.Add(3*time.Minute))
	}
	clock.Advance(2*time.Minute + time.Second - time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get one nanosecond before the Limit: %v", err)
	}
	clock.Advance(time.Nanosecond)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get at the Limit: %v, want ErrNotFound", err)
	}
	if err := s.Touch(ctx, "k", clock.Now(), clock.Now().Add(time.Hour)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Touch of the expired entry: %v, want ErrNotFound", err)
	}
	if err := s.SetIf(ctx, "k", 1, clock.Now(), entry("zombie", clock.Now().Add(time.Hour))); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("SetIf of the expired entry: %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetTouch(ctx, "k", clock.Now(), clock.Now().Add(time.Hour), clock.Now().Add(time.Hour)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetTouch of the expired entry: %v, want ErrNotFound", err)
	}
	// Set with Expires before the fake clock stores nothing.
	mustSet(t, s, "past", entry("v", clock.Now().Add(-time.Second)))
	if n := s.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}

// setClock is a clock for Options.Now that is set, not advanced.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *setClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestBothClocksDecide checks that the operations taking the caller's now
// treat an entry as missing when either clock, the store's (Options.Now) or
// the caller's, says its deadline has passed, and that they leave it as it
// was.
func TestBothClocksDecide(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	deadline := start.Add(time.Minute)
	for _, tc := range []struct {
		name       string
		store, now time.Time
	}{
		{"store clock past the deadline", deadline, start},
		{"caller's clock past the deadline", start, deadline},
		{"caller's clock far past the deadline", start, deadline.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &setClock{t: tc.store}
			s := newStore(t, memory.Options{Now: clock.Now, SweepInterval: -1})
			ctx := t.Context()
			stored := backend.Entry{Value: []byte("v"), Expires: deadline, Limit: start.Add(time.Hour), Version: 4}
			clock.Set(start)
			mustSet(t, s, "k", stored)
			clock.Set(tc.store)
			later := tc.now.Add(10 * time.Minute)
			next := backend.Entry{Value: []byte("w"), Expires: later, Version: 5}

			if err := s.Touch(ctx, "k", tc.now, later); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Touch: %v, want ErrNotFound", err)
			}
			if _, touched, err := s.GetTouch(ctx, "k", tc.now, later, later); !errors.Is(err, backend.ErrNotFound) || touched {
				t.Errorf("GetTouch: touched %t, %v; want false, ErrNotFound", touched, err)
			}
			if err := s.SetIf(ctx, "k", 4, tc.now, next); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("SetIf(old 4): %v, want ErrNotFound", err)
			}
			if err := s.Replace(ctx, "k", 4, "k2", tc.now, next); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Replace: %v, want ErrNotFound", err)
			}
			if _, err := s.Get(ctx, "k2"); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get of the new key after a failed Replace: %v, want ErrNotFound", err)
			}
			// The entry was neither moved nor rewritten.
			clock.Set(start)
			if e, err := s.Get(ctx, "k"); err == nil && (!e.Expires.Equal(deadline) || e.Version != 4) {
				t.Errorf("entry after the calls: Expires %v version %d, want %v version 4", e.Expires, e.Version, deadline)
			}
			clock.Set(tc.store)

			// Creating over it works, and the new entry is what is stored.
			next.Version = 1
			if err := s.SetIf(ctx, "k", 0, tc.now, next); err != nil {
				t.Fatalf("SetIf(old 0) over the ended entry: %v", err)
			}
			clock.Set(tc.now)
			if e, err := s.Get(ctx, "k"); err != nil || string(e.Value) != "w" || e.Version != 1 {
				t.Errorf("Get after SetIf(old 0) = %q version %d, %v; want \"w\" version 1", e.Value, e.Version, err)
			}
		})
	}
}

// TestSetIfPastExpiresByCallersClock checks that SetIf and Replace with an
// Expires not after the caller's now store nothing, even when the store's
// clock is behind.
func TestSetIfPastExpiresByCallersClock(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, SweepInterval: -1})
	ctx := t.Context()
	now := clock.Now()
	mustSet(t, s, "k", backend.Entry{Value: []byte("v"), Expires: now.Add(time.Hour), Version: 1})
	ahead := now.Add(10 * time.Minute)
	if err := s.SetIf(ctx, "k", 1, ahead, backend.Entry{Value: []byte("w"), Expires: now.Add(5 * time.Minute), Version: 2}); err != nil {
		t.Fatalf("SetIf: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get after SetIf with an Expires before the caller's now: %v, want ErrNotFound", err)
	}
	mustSet(t, s, "k", backend.Entry{Value: []byte("v"), Expires: now.Add(time.Hour), Version: 1})
	if err := s.Replace(ctx, "k", 1, "k2", ahead, backend.Entry{Value: []byte("w"), Expires: now.Add(5 * time.Minute), Version: 2}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	for _, k := range []string{"k", "k2"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Get(%s) after Replace with an Expires before the caller's now: %v, want ErrNotFound", k, err)
		}
	}
}

func TestCloseStopsSweeperSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New(memory.Options{SweepInterval: time.Second})
		time.Sleep(5 * time.Second) // let the sweeper tick a few times
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// synctest.Test fails if the sweeper is still blocked in the bubble.
	})
}

// sweepers counts the goroutines running the sweeper loop.
func sweepers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "memory.(*Store).sweepLoop")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestCloseStopsSweeper(t *testing.T) {
	before := sweepers()
	stores := make([]*memory.Store, 50)
	for i := range stores {
		stores[i] = memory.New(memory.Options{SweepInterval: time.Millisecond})
	}
	// A goroutine that has not run yet may not show in the stacks: poll.
	pollSweepers(t, func(n int) bool { return n >= before+len(stores) }, "at least %d with every store open", before+len(stores))
	for _, s := range stores {
		s.Close()
	}
	// Close waits for the sweeper to return; give the runtime a moment to
	// retire the goroutines.
	pollSweepers(t, func(n int) bool { return n <= before }, "%d after closing every store", before)
}

// pollSweepers waits up to five seconds for ok(sweepers()).
func pollSweepers(t *testing.T, ok func(int) bool, want string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := sweepers()
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sweeper goroutines, want "+want, append([]any{n}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClosed(t *testing.T) {
	s := memory.New(memory.Options{})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	mustSet(t, s, "k", entry("v", exp))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Get missing", func() error { _, err := s.Get(ctx, "missing"); return err }},
		{"Set", func() error { return s.Set(ctx, "k", entry("w", exp)) }},
		{"Set past", func() error { return s.Set(ctx, "k", entry("w", time.Time{})) }},
		{"Touch", func() error { return s.Touch(ctx, "k", time.Now(), exp) }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"SetIf", func() error { return s.SetIf(ctx, "k", 1, time.Now(), entry("w", exp)) }},
		{"Replace", func() error { return s.Replace(ctx, "k", 1, "k2", time.Now(), entry("w", exp)) }},
		{"GetTouch", func() error { _, _, err := s.GetTouch(ctx, "k", time.Now(), exp, exp); return err }},
	} {
		if err := tc.call(); !errors.Is(err, backend.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", tc.name, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len() after Close = %d, want 0", n)
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("Sweep() after Close = %d, want 0", n)
	}
}

func TestContextCheckedFirst(t *testing.T) {
	s := newStore(t, memory.Options{})
	s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A cancelled context wins over a closed store.
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context on a closed store: %v, want context.Canceled", err)
	}
}

func TestBound(t *testing.T) {
	const max = 64
	for _, tc := range []struct {
		name   string
		shards int
	}{
		{"one shard", 1},
		{"four shards", 4},
		{"more shards than entries", 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, memory.Options{MaxEntries: max, Shards: tc.shards})
			base := time.Now().Add(time.Hour)
			const n = 1000
			for i := range n {
				// Later writes expire later: the most recent are the most
				// active sessions.
				mustSet(t, s, fmt.Sprint("key", i), entry("v", base.Add(time.Duration(i)*time.Second)))
				if l := s.Len(); l > max {
					t.Fatalf("Len() = %d after %d writes, want at most %d", l, i+1, max)
				}
			}
			if tc.shards != 1 {
				return
			}
			if l := s.Len(); l != max {
				t.Errorf("Len() = %d, want %d", l, max)
			}
			// Eviction picks the earliest Expires among EvictionSample
			// entries, so the EvictionSample most recent keys can never
			// be evicted.
			for i := n - memory.EvictionSample; i < n; i++ {
				if _, err := s.Get(t.Context(), fmt.Sprint("key", i)); err != nil {
					t.Errorf("Get of recent key%d: %v", i, err)
				}
			}
		})
	}
}

func TestRejectWhenFull(t *testing.T) {
	const max = 64
	s := newStore(t, memory.Options{MaxEntries: max, Shards: 1, RejectWhenFull: true})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for i := range max {
		mustSet(t, s, fmt.Sprint("key", i), entry("v", exp))
	}
	if err := s.Set(ctx, "one too many", entry("v", exp)); !errors.Is(err, backend.ErrFull) {
		t.Errorf("Set of a new key when full: %v, want ErrFull", err)
	}
	if err := s.SetIf(ctx, "one too many", 0, time.Now(), entry("v", exp)); !errors.Is(err, backend.ErrFull) {
		t.Errorf("SetIf of a new key when full: %v, want ErrFull", err)
	}
	if _, err := s.Get(ctx, "one too many"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get of the rejected key: %v, want ErrNotFound", err)
	}
	// Writes to existing keys still work.
	if err := s.Set(ctx, "key3", entry("new value", exp)); err != nil {
		t.Errorf("Set of an existing key when full: %v", err)
	}
	if err := s.SetIf(ctx, "key4", 1, time.Now(), backend.Entry{Value: []byte("w"), Expires: exp, Version: 2}); err != nil {
		t.Errorf("SetIf of an existing key when full: %v", err)
	}
	// Replace within one shard frees the old key's slot.
	if err := s.Replace(ctx, "key5", 1, "moved", time.Now(), entry("v", exp)); err != nil {
		t.Errorf("Replace when full: %v", err)
	}
	for i := range max {
		if i == 5 {
			continue
		}
		if _, err := s.Get(ctx, fmt.Sprint("key", i)); err != nil {
			t.Errorf("Get(key%d): %v", i, err)
		}
	}
	if l := s.Len(); l != max {
		t.Errorf("Len() = %d, want %d", l, max)
	}
	// Deleting makes room.
	if err := s.Delete(ctx, "key0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "one too many", entry("v", exp)); err != nil {
		t.Errorf("Set of a new key after a Delete: %v", err)
	}
}

func TestRejectWhenFullDropsExpired(t *testing.T) {
	clock := newFakeClock()
	const max = 8
	s := newStore(t, memory.Options{MaxEntries: max, Shards: 1, RejectWhenFull: true, Now: clock.Now, SweepInterval: -1})
	now := clock.Now()
	for i := range max {
		mustSet(t, s, fmt.Sprint("key", i), entry("v", now.Add(time.Duration(i+1)*time.Minute)))
	}
	clock.Advance(90 * time.Second) // key0 has expired, unswept
	if err := s.Set(t.Context(), "new", entry("v", clock.Now().Add(time.Hour))); err != nil {
		t.Fatalf("Set of a new key when full with an expired entry: %v", err)
	}
	if l := s.Len(); l != max {
		t.Errorf("Len() = %d, want %d", l, max)
	}
}

func TestEvictsEarliestExpires(t *testing.T) {
	// With a shard no larger than memory.EvictionSample, the whole shard
	// is sampled and eviction is deterministic.
	const max = 8
	if max > memory.EvictionSample {
		t.Fatal("test needs a shard no larger than the eviction sample")
	}
	for victim := range max {
		t.Run(fmt.Sprint("victim", victim), func(t *testing.T) {
			s := newStore(t, memory.Options{MaxEntries: max, Shards: 1})
			ctx := t.Context()
			base := time.Now().Add(time.Hour)
			for i := range max {
				exp := base.Add(time.Duration(i) * time.Minute)
				if i == victim {
					exp = base.Add(-30 * time.Minute)
				}
				mustSet(t, s, fmt.Sprint("key", i), entry("v", exp))
			}
			if err := s.Set(ctx, "new", entry("v", base)); err != nil {
				t.Fatalf("Set of a new key: %v", err)
			}
			if _, err := s.Get(ctx, fmt.Sprint("key", victim)); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get of the earliest-expiring key: %v, want ErrNotFound (evicted)", err)
			}
			for i := range max {
				if i == victim {
					continue
				}
				if _, err := s.Get(ctx, fmt.Sprint("key", i)); err != nil {
					t.Errorf("Get(key%d): %v", i, err)
				}
			}
			if l := s.Len(); l != max {
				t.Errorf("Len() = %d, want %d", l, max)
			}
		})
	}
}

func TestEvictionOnEveryWritePath(t *testing.T) {
	const max = 8
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, s *memory.Store) error
	}{
		{"Set", func(ctx context.Context, s *memory.Store) error {
			return s.Set(ctx, "new", entry("v", exp))
		}},
		{"SetIf", func(ctx context.Context, s *memory.Store) error {
			return s.SetIf(ctx, "new", 0, time.Now(), entry("v", exp))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, memory.Options{MaxEntries: max, Shards: 1})
			for i := range max {
				mustSet(t, s, fmt.Sprint("key", i), entry("v", exp.Add(time.Duration(i)*time.Minute)))
			}
			if err := tc.write(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			if l := s.Len(); l != max {
				t.Errorf("Len() = %d, want %d", l, max)
			}
			if _, err := s.Get(t.Context(), "key0"); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get(key0): %v, want ErrNotFound (evicted)", err)
			}
			if _, err := s.Get(t.Context(), "new"); err != nil {
				t.Errorf("Get(new): %v", err)
			}
		})
	}
}

func TestReplaceAcrossShardsWhenFull(t *testing.T) {
	// With one entry per shard, a Replace whose new key hashes to another
	// shard finds that shard full: it must evict there, or, when the store
	// rejects writes when full, fail with ErrFull and change nothing.
	const shards = 4
	for _, reject := range []bool{false, true} {
		t.Run(fmt.Sprint("RejectWhenFull=", reject), func(t *testing.T) {
			s := newStore(t, memory.Options{MaxEntries: shards, Shards: shards, RejectWhenFull: reject})
			ctx := t.Context()
			exp := time.Now().Add(time.Hour)
			for i := range 200 {
				err := s.Set(ctx, fmt.Sprint("fill", i), entry("v", exp))
				if err != nil && !(reject && errors.Is(err, backend.ErrFull)) {
					t.Fatal(err)
				}
			}
			var keys []string
			for i := range 200 {
				if _, err := s.Get(ctx, fmt.Sprint("fill", i)); err == nil {
					keys = append(keys, fmt.Sprint("fill", i))
				}
			}
			if s.Len() != shards || len(keys) != shards {
				t.Fatalf("could not fill the store: Len() = %d, %d live keys; want %d", s.Len(), len(keys), shards)
			}
			moved, full := 0, 0
			for i, k := range keys {
				newK := fmt.Sprint("moved", i)
				err := s.Replace(ctx, k, 1, newK, time.Now(), entry("moved", exp))
				_, oldErr := s.Get(ctx, k)
				_, newErr := s.Get(ctx, newK)
				switch {
				case err == nil:
					moved++
					if !errors.Is(oldErr, backend.ErrNotFound) || newErr != nil {
						t.Errorf("after Replace(%s, %s): old key %v, new key %v; want ErrNotFound, nil", k, newK, oldErr, newErr)
					}
				case reject && errors.Is(err, backend.ErrFull):
					full++
					if oldErr != nil || !errors.Is(newErr, backend.ErrNotFound) {
						t.Errorf("after rejected Replace(%s, %s): old key %v, new key %v; want nil, ErrNotFound", k, newK, oldErr, newErr)
					}
				case !reject && errors.Is(err, backend.ErrNotFound):
					// An earlier move into this key's shard evicted it.
				default:
					t.Errorf("Replace(%s, %s): %v", k, newK, err)
				}
				if l := s.Len(); l > shards {
					t.Errorf("Len() = %d, want at most %d", l, shards)
				}
			}
			t.Logf("%d moved, %d rejected as full", moved, full)
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	// Negative values select defaults; the store works either way.
	for _, opts := range []memory.Options{
		{},
		{Shards: -1, MaxEntries: -1},
		{Shards: 3, MaxEntries: 10},
		{Shards: 1 << 20, MaxEntries: 1},
		{SweepInterval: -1},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			s := newStore(t, opts)
			mustSet(t, s, "k", entry("v", time.Now().Add(time.Hour)))
			if _, err := s.Get(t.Context(), "k"); err != nil {
				t.Fatalf("Get: %v", err)
			}
		})
	}
}

func TestExtremeTimes(t *testing.T) {
	s := newStore(t, memory.Options{})
	ctx := t.Context()
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	mustSet(t, s, "far", backend.Entry{Value: []byte("v"), Expires: far, Limit: far, Version: 1})
	e, err := s.Get(ctx, "far")
	if err != nil {
		t.Fatalf("Get of an entry expiring in 9999: %v", err)
	}
	if e.Expires.Year() < 2262 {
		t.Errorf("Expires = %v, want a date in or after 2262", e.Expires)
	}
	if err := s.Touch(ctx, "far", time.Now(), far); err != nil {
		t.Errorf("Touch to 9999: %v", err)
	}
	mustSet(t, s, "ancient", entry("v", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)))
	if _, err := s.Get(ctx, "ancient"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get of an entry expired in year 1: %v, want ErrNotFound", err)
	}
}

func BenchmarkGet(b *testing.B) {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()
	keys := benchKeys(b, s, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSet(b *testing.B) {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()
	keys := benchKeys(b, s, 1024)
	e := backend.Entry{Value: make([]byte, 256), Expires: time.Now().Add(time.Hour), Version: 1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, keys[i%len(keys)], e); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()
	keys := benchKeys(b, s, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkSetParallel(b *testing.B) {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()
	keys := benchKeys(b, s, 1024)
	e := backend.Entry{Value: make([]byte, 256), Expires: time.Now().Add(time.Hour), Version: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := s.Set(ctx, keys[i%len(keys)], e); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkSweep(b *testing.B) {
	s := memory.New(memory.Options{SweepInterval: -1})
	defer s.Close()
	benchKeys(b, s, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		s.Sweep() // nothing expired: measures the walk
	}
}

// benchKeys stores n entries of 256 bytes, live for an hour, and returns
// their keys.
func benchKeys(b *testing.B, s *memory.Store, n int) []string {
	b.Helper()
	keys := make([]string, n)
	e := backend.Entry{Value: make([]byte, 256), Expires: time.Now().Add(time.Hour), Version: 1}
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:%016x", i*7919)
		if err := s.Set(context.Background(), keys[i], e); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

func TestConcurrencyThroughManager(t *testing.T) {
	sessiontest.RunConcurrency(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}, sessiontest.Options{})
}

func TestWritesThroughManager(t *testing.T) {
	sessiontest.RunWrites(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSecurityThroughManager(t *testing.T) {
	sessiontest.RunSecurity(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// ---- owner index (backend.Indexer) ----

func mustAddOwned(t *testing.T, s *memory.Store, owner, key string, limit time.Time) {
	t.Helper()
	if err := s.AddOwned(t.Context(), owner, key, limit); err != nil {
		t.Fatalf("AddOwned(%q, %q): %v", owner, key, err)
	}
}

// owned returns Owned of owner, sorted.
func owned(t *testing.T, s *memory.Store, owner string) []string {
	t.Helper()
	keys, err := s.Owned(t.Context(), owner)
	if err != nil {
		t.Fatalf("Owned(%q): %v", owner, err)
	}
	slices.Sort(keys)
	return keys
}

func TestOwnedSkipsDeadRecords(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, SweepInterval: -1})
	now := clock.Now()
	mustAddOwned(t, s, "u", "a", now.Add(time.Minute))
	mustAddOwned(t, s, "u", "b", now.Add(time.Hour))
	if got := owned(t, s, "u"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Owned = %q, want [a b]", got)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if got := owned(t, s, "u"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Owned one nanosecond before a's limit = %q, want [a b]", got)
	}
	clock.Advance(time.Nanosecond) // exactly at the limit: dead
	if got := owned(t, s, "u"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Owned at a's limit = %q, want [b]", got)
	}
	if n := s.IndexLen(); n != 2 {
		t.Errorf("IndexLen() = %d before any sweep, want 2 (the dead record is still kept)", n)
	}
	// A limit not after the clock records nothing and forgets the key.
	mustAddOwned(t, s, "u", "c", clock.Now())
	mustAddOwned(t, s, "u", "b", clock.Now().Add(-time.Second))
	if got := owned(t, s, "u"); len(got) != 0 {
		t.Errorf("Owned after AddOwned with past limits = %q, want none", got)
	}
	if n := s.IndexLen(); n != 1 {
		t.Errorf("IndexLen() = %d, want 1 (only the dead record of a)", n)
	}
}

func TestIndexSweepWithInjectedClock(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, SweepInterval: -1})
	now := clock.Now()
	for i := range 10 {
		mustAddOwned(t, s, "alice", fmt.Sprint("short", i), now.Add(10*time.Second))
		mustAddOwned(t, s, "alice", fmt.Sprint("long", i), now.Add(time.Hour))
	}
	for i := range 5 {
		mustAddOwned(t, s, "bob", fmt.Sprint("short", i), now.Add(10*time.Second))
	}
	// Many owners with one dead record each, so that the sweep walks
	// several chunks and drops many emptied owners.
	for i := range 1000 {
		mustAddOwned(t, s, fmt.Sprint("owner", i), "k", now.Add(time.Duration(i%2+1)*10*time.Second))
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("Sweep() before any limit = %d, want 0", n)
	}
	if n := s.IndexLen(); n != 1025 {
		t.Fatalf("IndexLen() = %d, want 1025", n)
	}
	clock.Advance(10 * time.Second)
	if n := s.IndexLen(); n != 1025 {
		t.Errorf("IndexLen() before Sweep = %d, want 1025 (dead records not yet swept)", n)
	}
	if n := s.Sweep(); n != 515 {
		t.Errorf("Sweep() = %d, want 515 (10 + 5 + 500 dead records)", n)
	}
	if n := s.IndexLen(); n != 510 {
		t.Errorf("IndexLen() after Sweep = %d, want 510", n)
	}
	if got := owned(t, s, "alice"); len(got) != 10 || !strings.HasPrefix(got[0], "long") {
		t.Errorf("Owned(alice) after Sweep = %q, want the 10 long records", got)
	}
	if got := owned(t, s, "bob"); len(got) != 0 {
		t.Errorf("Owned(bob) after Sweep = %q, want none", got)
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("second Sweep() = %d, want 0", n)
	}
	// An owner emptied by the sweep can be recorded again.
	mustAddOwned(t, s, "bob", "again", clock.Now().Add(time.Hour))
	if got := owned(t, s, "bob"); !slices.Equal(got, []string{"again"}) {
		t.Errorf("Owned(bob) after a new AddOwned = %q, want [again]", got)
	}
	clock.Advance(time.Hour)
	if n := s.Sweep(); n != 511 {
		t.Errorf("Sweep() after every limit = %d, want 511", n)
	}
	if n := s.IndexLen(); n != 0 {
		t.Errorf("IndexLen() after every limit passed and Sweep = %d, want 0", n)
	}
}

func TestSweeperPrunesIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New(memory.Options{SweepInterval: time.Minute})
		defer s.Close()
		for i := range 100 {
			mustAddOwned(t, s, fmt.Sprint("owner", i%7), fmt.Sprint("k", i), time.Now().Add(30*time.Second))
		}
		mustAddOwned(t, s, "owner0", "survivor", time.Now().Add(time.Hour))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		// No Owned before IndexLen: only the sweeper can have removed them.
		if n := s.IndexLen(); n != 1 {
			t.Errorf("IndexLen() = %d two sweep intervals after the limits, want 1", n)
		}
		if got := owned(t, s, "owner0"); !slices.Equal(got, []string{"survivor"}) {
			t.Errorf("Owned(owner0) = %q, want [survivor]", got)
		}
	})
}

func TestIndexBound(t *testing.T) {
	const max = 8
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, MaxEntries: max, SweepInterval: -1})
	ctx := t.Context()
	now := clock.Now()
	for i := range max {
		mustAddOwned(t, s, fmt.Sprint("owner", i%2), fmt.Sprint("k", i), now.Add(time.Minute))
	}
	if err := s.AddOwned(ctx, "owner0", "one too many", now.Add(time.Hour)); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("AddOwned of a new record when full: %v, want ErrFull", err)
	}
	if err := s.AddOwned(ctx, "newcomer", "one too many", now.Add(time.Hour)); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("AddOwned for a new owner when full: %v, want ErrFull", err)
	}
	if got := owned(t, s, "newcomer"); len(got) != 0 {
		t.Errorf("Owned of the refused owner = %q, want none", got)
	}
	// A live record is never evicted.
	if got := owned(t, s, "owner0"); len(got) != max/2 {
		t.Errorf("Owned(owner0) = %q, want its %d records", got, max/2)
	}
	// Moving the limit of a recorded key is not a new record.
	mustAddOwned(t, s, "owner0", "k0", now.Add(time.Hour))
	// RemoveOwned frees room.
	if err := s.RemoveOwned(ctx, "owner1", "k1"); err != nil {
		t.Fatal(err)
	}
	mustAddOwned(t, s, "newcomer", "a", now.Add(time.Hour))
	if n := s.IndexLen(); n != max {
		t.Fatalf("IndexLen() = %d, want %d", n, max)
	}

	// Once the other records are dead: the owner's own dead records make
	// room at once; another owner's only after Sweep.
	clock.Advance(time.Minute)
	mustAddOwned(t, s, "owner0", "b", now.Add(time.Hour)) // drops owner0's dead k2, k4, k6
	if n := s.IndexLen(); n != 6 {
		t.Errorf("IndexLen() after AddOwned dropped the owner's dead records = %d, want 6", n)
	}
	for _, k := range []string{"c", "d"} {
		mustAddOwned(t, s, "newcomer", k, now.Add(time.Hour))
	}
	if err := s.AddOwned(ctx, "newcomer", "e", now.Add(time.Hour)); !errors.Is(err, backend.ErrFull) {
		t.Fatalf("AddOwned when full of another owner's dead records: %v, want ErrFull", err)
	}
	if n := s.Sweep(); n != 3 {
		t.Errorf("Sweep() = %d, want 3 (owner1's dead records)", n)
	}
	mustAddOwned(t, s, "newcomer", "e", now.Add(time.Hour))
	if got := owned(t, s, "newcomer"); !slices.Equal(got, []string{"a", "c", "d", "e"}) {
		t.Errorf("Owned(newcomer) = %q, want [a c d e]", got)
	}
	if got := owned(t, s, "owner0"); !slices.Equal(got, []string{"b", "k0"}) {
		t.Errorf("Owned(owner0) = %q, want [b k0]", got)
	}
}

func TestIndexClosed(t *testing.T) {
	s := memory.New(memory.Options{})
	ctx := t.Context()
	mustAddOwned(t, s, "u", "k", time.Now().Add(time.Hour))
	s.Close()
	if err := s.AddOwned(ctx, "u", "k2", time.Now().Add(time.Hour)); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("AddOwned after Close: %v, want ErrClosed", err)
	}
	if err := s.RemoveOwned(ctx, "u", "k"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("RemoveOwned after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Owned(ctx, "u"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Owned after Close: %v, want ErrClosed", err)
	}
	if n := s.IndexLen(); n != 0 {
		t.Errorf("IndexLen() after Close = %d, want 0", n)
	}
	// A cancelled context wins over a closed store.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.AddOwned(cctx, "u", "k", time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("AddOwned with a cancelled context on a closed store: %v, want context.Canceled", err)
	}
	if err := s.RemoveOwned(cctx, "u", "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("RemoveOwned with a cancelled context on a closed store: %v, want context.Canceled", err)
	}
	if _, err := s.Owned(cctx, "u"); !errors.Is(err, context.Canceled) {
		t.Errorf("Owned with a cancelled context on a closed store: %v, want context.Canceled", err)
	}
}

// TestIndexConcurrentWithSweep races AddOwned, RemoveOwned and Owned against
// sweeps that let go of the lock in the middle of big owners, and checks that
// the record count still matches what Owned lists.
func TestIndexConcurrentWithSweep(t *testing.T) {
	clock := newFakeClock()
	// One shard, so every owner shares the lock the sweeps let go of.
	s := newStore(t, memory.Options{Now: clock.Now, Shards: 1, SweepInterval: -1})
	ctx := t.Context()
	const (
		owners  = 4
		workers = 8
		rounds  = 30
		perSet  = 600 // over two sweep chunks per owner
	)
	var wg sync.WaitGroup
	stopSweeps := sweepInBackground(s, 2)
	// Churn of many tiny owners, emptied (and so dropped) again and again,
	// often while a sweep that let go of the lock is walking them.
	for w := range workers {
		wg.Go(func() {
			for r := range rounds * 10 {
				owner := fmt.Sprintf("tiny%d-%d", w, r%50)
				keys := []string{"a", "b", "c"}[:r%3+1]
				for _, k := range keys {
					limit := clock.Now().Add(time.Hour)
					if k == "b" {
						limit = clock.Now().Add(time.Millisecond)
					}
					if err := s.AddOwned(ctx, owner, k, limit); err != nil {
						t.Errorf("AddOwned: %v", err)
						return
					}
				}
				if err := s.RemoveOwned(ctx, owner, keys...); err != nil {
					t.Errorf("RemoveOwned: %v", err)
					return
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				owner := fmt.Sprint("owner", (w+r)%owners)
				now := clock.Now()
				keys := make([]string, 0, perSet)
				for i := range perSet {
					key := fmt.Sprintf("w%d-r%d-%d", w, r, i)
					// Every third record is dead at once (at the clock's
					// next step), so the sweeps have work.
					limit := now.Add(time.Hour)
					if i%3 == 0 {
						limit = now.Add(time.Millisecond)
					}
					if err := s.AddOwned(ctx, owner, key, limit); err != nil {
						t.Errorf("AddOwned: %v", err)
						return
					}
					keys = append(keys, key)
				}
				if _, err := s.Owned(ctx, owner); err != nil {
					t.Errorf("Owned: %v", err)
					return
				}
				clock.Advance(time.Millisecond)
				if r%2 == 0 { // every other round removes its records
					if err := s.RemoveOwned(ctx, owner, keys...); err != nil {
						t.Errorf("RemoveOwned: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	stopSweeps()
	s.Sweep()
	total := 0
	for o := range owners {
		total += len(owned(t, s, fmt.Sprint("owner", o)))
	}
	// The kept rounds' live records: 400 of 600 for each odd round.
	if want := workers * rounds / 2 * perSet * 2 / 3; total != want {
		t.Errorf("Owned lists %d records in all, want %d", total, want)
	}
	if n := s.IndexLen(); n != total {
		t.Errorf("IndexLen() = %d after the final Sweep, want %d (what Owned lists)", n, total)
	}
}

// TestValueSizes stores values of every length around the sizes in which a
// value shares its entry's allocation, and past them, and reads each back
// intact, unaffected by later changes to the caller's slice.
func TestValueSizes(t *testing.T) {
	s := newStore(t, memory.Options{SweepInterval: -1})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for n := 0; n <= 1100; n++ {
		val := make([]byte, n)
		for i := range val {
			val[i] = byte(i*7 + n)
		}
		want := slices.Clone(val)
		key := fmt.Sprint("k", n)
		if err := s.Set(ctx, key, backend.Entry{Value: val, Expires: exp, Version: uint64(n + 1)}); err != nil {
			t.Fatalf("Set(%d bytes): %v", n, err)
		}
		for i := range val {
			val[i] ^= 0xFF // the store must have copied
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%d bytes): %v", n, err)
		}
		if !slices.Equal(got.Value, want) || len(got.Value) != n {
			t.Fatalf("Get after Set of %d bytes returned %d bytes, not the value stored", n, len(got.Value))
		}
		if got.Version != uint64(n+1) {
			t.Fatalf("Get(%d bytes).Version = %d, want %d", n, got.Version, n+1)
		}
		// The returned slice has no room to grow into the stored one.
		_ = append(got.Value, 0xEE)
		again, err := s.Get(ctx, key)
		if err != nil || !slices.Equal(again.Value, want) {
			t.Fatalf("after appending to the returned %d-byte slice, Get = %v, %v", n, again.Value, err)
		}
	}
}

// TestLenExactUnderChurn writes, rewrites, conditionally writes, moves,
// touches into the past and deletes a few keys from many goroutines while
// sweeps run, then checks that Len counts exactly the keys that are stored:
// removing a key and writing it again, racing, must neither lose a write
// nor miscount.
func TestLenExactUnderChurn(t *testing.T) {
	clock := newFakeClock()
	s := newStore(t, memory.Options{Now: clock.Now, Shards: 2, SweepInterval: -1})
	ctx := t.Context()
	const (
		keys    = 8
		workers = 8
		rounds  = 3000
	)
	key := func(i int) string { return fmt.Sprint("key", i%keys) }
	var wg sync.WaitGroup
	stopSweeps := sweepInBackground(s, 1)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				k := key(w + r)
				now := clock.Now()
				e := backend.Entry{Value: []byte{byte(w), byte(r)}, Expires: now.Add(time.Hour), Version: uint64(r + 1)}
				var err error
				switch r % 7 {
				case 0, 1:
					err = s.Set(ctx, k, e)
				case 2:
					err = s.Delete(ctx, k)
				case 3:
					if cur, gerr := s.Get(ctx, k); gerr == nil {
						err = s.SetIf(ctx, k, cur.Version, now, e)
					} else {
						err = s.SetIf(ctx, k, 0, now, e)
					}
				case 4:
					err = s.Touch(ctx, k, now, now.Add(-time.Second)) // into the past: removes
				case 5:
					err = s.Set(ctx, k, backend.Entry{Value: e.Value, Expires: now.Add(time.Nanosecond)})
				case 6:
					if cur, gerr := s.Get(ctx, k); gerr == nil {
						err = s.Replace(ctx, k, cur.Version, key(w+r+1), now, e)
					}
				}
				if err != nil && !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, backend.ErrConflict) {
					t.Errorf("round %d: %v", r, err)
					return
				}
				if r%100 == 0 {
					clock.Advance(time.Nanosecond) // the 1 ns entries expire
				}
			}
		})
	}
	wg.Wait()
	stopSweeps()
	stored := 0
	for i := range keys {
		if _, err := s.Get(ctx, key(i)); err == nil {
			stored++
		}
	}
	s.Sweep() // drops entries that expired but were not swept yet
	if n := s.Len(); n != stored {
		t.Errorf("Len() = %d after churn and a final Sweep, but %d keys are stored", n, stored)
	}
}

// sweepInBackground calls s.Sweep over and over on n goroutines until the
// returned stop is called; stop waits for them to return.
func sweepInBackground(s *memory.Store, n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					s.Sweep()
					runtime.Gosched()
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
