package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// How the store follows Redis's clock.
const (
	// clockEvery is how old the store's reading of Redis's clock may get
	// before a write starts a new one (in the background).
	clockEvery = 30 * time.Second
	// clockTimeout bounds one background reading.
	clockTimeout = 2 * time.Second
	// clockSamples is how many TIME commands one reading sends to each
	// primary; the one with the tightest bound is kept.
	clockSamples = 3
)

// redisClock tells, for an instant of this process, a time that Redis's
// clock has certainly reached by then, so that a write's not-after time
// can be given to Redis in Redis's own clock, whatever the skew between
// the two machines.
//
// A reading sends TIME and notes when the answer came back (t2, on this
// process's monotonic clock): Redis read its clock (r) before t2, so at
// any later instant t Redis's clock is at least r + (t - t2). The bound is
// early by the round trip of the reading at most. Readings are repeated
// every clockEvery, so that a Redis clock that is stepped (NTP) or drifts
// is followed; on a Cluster every primary is read and the earliest clock
// kept.
type redisClock struct {
	reading    atomic.Pointer[clockReading]
	refreshing atomic.Bool
}

// clockReading is Redis's clock, in Unix microseconds, as it was at least
// at the instant at.
type clockReading struct {
	redisUS int64
	at      time.Time // with a monotonic reading
}

// bound returns the reading's lower bound of Redis's clock at t, in Unix
// microseconds.
func (r *clockReading) bound(t time.Time) int64 {
	return r.redisUS + t.Sub(r.at).Microseconds()
}

// redisMillis returns a time that Redis's clock has certainly reached at t
// (Unix milliseconds), and whether the store has a reading of Redis's
// clock at all. Without one it returns t by this process's clock, and
// starts a reading.
func (s *Store) redisMillis(t time.Time) (int64, bool) {
	r := s.clock.reading.Load()
	if r == nil || time.Since(r.at) > clockEvery {
		s.readClockInBackground()
	}
	if r == nil {
		return t.UnixMilli(), false
	}
	return r.bound(t) / 1000, true
}

// readClockInBackground starts one reading of Redis's clock unless one is
// under way.
func (s *Store) readClockInBackground() {
	if !s.clock.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.clock.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), clockTimeout)
		defer cancel()
		_ = s.readClock(ctx)
	}()
}

// readClock reads Redis's clock (every primary's on a Cluster) and keeps
// the earliest. A primary that does not answer is left out; the reading
// is kept if any answered.
func (s *Store) readClock(ctx context.Context) error {
	var (
		mu   sync.Mutex
		best *clockReading
	)
	sample := func(ctx context.Context, c goredis.Cmdable) error {
		var node *clockReading
		for range clockSamples {
			rt, err := c.Time(ctx).Result()
			at := time.Now()
			if err != nil {
				return err
			}
			r := &clockReading{redisUS: rt.UnixMicro(), at: at}
			if node == nil || r.bound(at) > node.bound(at) {
				node = r // a tighter bound: a shorter round trip
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); best == nil || node.bound(now) < best.bound(now) {
			best = node // an earlier clock
		}
		return nil
	}
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return sample(ctx, c)
		})
	} else {
		err = sample(ctx, s.client)
	}
	if best != nil {
		s.clock.reading.Store(best)
	}
	return err
}
