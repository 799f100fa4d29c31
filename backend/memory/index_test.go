package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

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
