package bench

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// millionSessions is how many live small sessions BenchmarkMillionSessions
// keeps in the memory store.
const millionSessions = 1_000_000

// fakeClock is a settable clock for the memory store.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// millionEntry returns the entry of the i-th session at now: the sample
// session's bytes, half of the sessions (even i) idle for a minute, the
// other half for the full idle timeout.
func millionEntry(sample backend.Entry, now time.Time, i int) backend.Entry {
	e := sample
	e.Limit = now.Add(absoluteTimeout)
	if i%2 == 0 {
		e.Expires = now.Add(time.Minute)
	} else {
		e.Expires = now.Add(idleTimeout)
	}
	return e
}

// BenchmarkMillionSessions stores 1,000,000 small sessions (the bytes the
// library stores for newVisit(), under 43-character keys) in the memory
// store and reports
//
//   - B/session: live heap growth per stored session (runtime.ReadMemStats
//     HeapAlloc after a GC, before and after inserting, divided by the
//     count), keys, values and map included;
//   - ns/sweep (also ns/op): one Sweep after the clock moved past the
//     deadline of half of them, which removes 500,000 entries and walks all;
//   - max-get-ns: the longest a Get on another core waited during that
//     sweep. Sweep takes no lock a Get waits for (it walks one shard at a
//     time and removes entries by compare-and-swap), so this stays far
//     below ns/sweep; a sweep that stopped the world would make it as long
//     as the sweep; gets/sweep is how many Gets that goroutine completed
//     meanwhile.
//
// Run it with -benchtime=1x (one sweep per -count): each iteration past the
// first refills the removed half with the timer stopped, which takes a while.
func BenchmarkMillionSessions(b *testing.B) {
	ctx := context.Background()
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	st := memory.New(memory.Options{
		MaxEntries:    2 * millionSessions, // room for all: no eviction
		SweepInterval: -1,                  // sweeps only when the benchmark says
		Now:           clock.now,
	})
	defer st.Close()
	sample := sampleEntry(b)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	now := clock.now()
	for i := range millionSessions {
		if err := st.Set(ctx, benchKey(i), millionEntry(sample, now, i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	perSession := float64(int64(ms.HeapAlloc)-int64(before)) / millionSessions
	if n := st.Len(); n != millionSessions {
		b.Fatalf("store holds %d entries, want %d", n, millionSessions)
	}

	// Keys the prober reads during the sweep: live ones (odd i).
	probe := make([]string, 1024)
	for i := range probe {
		probe[i] = benchKey(2*i + 1)
	}

	var sweepNS, maxGet, getsTotal int64
	removedTotal := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i > 0 { // put the removed half back, expiring a minute from now
			b.StopTimer()
			now := clock.now()
			for j := 0; j < millionSessions; j += 2 {
				if err := st.Set(ctx, benchKey(j), millionEntry(sample, now, j)); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			b.StartTimer()
		}
		clock.advance(2 * time.Minute) // the even half is now expired

		var (
			stop    atomic.Bool
			wg      sync.WaitGroup
			longest int64
			gets    int64
		)
		wg.Go(func() {
			for j := 0; !stop.Load(); j++ {
				t0 := time.Now()
				if _, err := st.Get(ctx, probe[j%len(probe)]); err != nil {
					b.Error(err)
					return
				}
				longest = max(longest, int64(time.Since(t0)))
				gets++
			}
		})
		t0 := time.Now()
		removed := st.Sweep()
		elapsed := time.Since(t0)
		stop.Store(true)
		wg.Wait()

		if removed != millionSessions/2 {
			b.Fatalf("sweep removed %d entries, want %d", removed, millionSessions/2)
		}
		removedTotal += removed
		sweepNS += int64(elapsed)
		maxGet = max(maxGet, longest)
		getsTotal += gets
	}
	b.StopTimer()
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(float64(sweepNS)/float64(b.N), "ns/sweep")
	b.ReportMetric(float64(sweepNS)/float64(b.N)/float64(memory.DefaultShards), "ns/shard")
	b.ReportMetric(float64(maxGet), "max-get-ns")
	b.ReportMetric(float64(removedTotal)/float64(b.N), "removed/sweep")
	b.ReportMetric(float64(getsTotal)/float64(b.N), "gets/sweep")
}
