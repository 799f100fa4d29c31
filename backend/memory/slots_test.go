package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

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
