package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

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
	// Among keys that were all read (none on probation), eviction takes
	// the sampled entry with the earliest Expires. With a shard no larger
	// than memory.EvictionSample, the whole shard is sampled and eviction
	// is deterministic.
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
				if _, err := s.Get(ctx, fmt.Sprint("key", i)); err != nil { // protects it
					t.Fatal(err)
				}
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
