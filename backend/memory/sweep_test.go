package memory_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionx/sessions/backend/memory"
)

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

func BenchmarkSweep(b *testing.B) {
	s := memory.New(memory.Options{SweepInterval: -1})
	defer s.Close()
	benchKeys(b, s, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		s.Sweep() // nothing expired: measures the walk
	}
}
