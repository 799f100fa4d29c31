package memory

import (
	"runtime"
	"time"
)

// sweepChunk bounds how many index records Sweep examines while holding an
// owner shard's lock without letting go of it.
const sweepChunk = 256

// sweepLoop runs Sweep every interval until Close.
func (s *Store) sweepLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes the expired entries and the dead owner index records (those
// whose limit is not after the store's clock) now, and returns how many of
// both it removed; it reads the clock afresh for every shard. The background
// sweeper calls it every Options.SweepInterval. Call it yourself when
// Options.SweepInterval is negative (then nothing else sweeps), or to sweep
// at a moment of your choosing. It takes no lock over the entries: it walks
// one shard at a time while reads and writes go on, and removes each
// expired entry by compare-and-swap, so that an entry written again
// meanwhile lives on. In the owner index it lets go of a shard's lock after
// every 256 records examined (sweepChunk), so even one owner with very many
// records never holds up the others. After each shard of entries it
// compacts the shard's probation queue (see Options.RejectWhenFull) if the
// keys read or removed have left it more than half stale, holding the
// shard's mutex meanwhile, which writes of new keys to that shard wait for.
// After Close it returns 0.
func (s *Store) Sweep() int {
	removed := 0
	for i := range s.shards {
		if s.closed.Load() {
			break
		}
		removed += s.sweepShard(&s.shards[i])
	}
	for i := range s.owners {
		if s.closed.Load() {
			break
		}
		removed += s.sweepOwners(&s.owners[i])
	}
	return removed
}

// sweepShard removes the expired entries of one shard and returns how many
// it removed, then compacts the shard's probation queue if the keys read or
// removed since have left too many stale entries in it (see tidy).
func (s *Store) sweepShard(sh *shard) int {
	now := s.nowNanos() // per shard: a long sweep must not use a stale clock
	removed := 0
	notify := s.expiryFuncs()
	sh.m.Range(func(k, v any) bool { // no lock: reads and writes go on
		// kill: an entry written again meanwhile lives on.
		sl := v.(*slot)
		if e := sl.p.Load(); e == dead {
			sh.m.CompareAndDelete(k, sl)
		} else if exp := e.expires.Load(); exp <= now && sh.kill(k.(string), sl, e) {
			removed++
			for _, f := range notify {
				f(k.(string), e.export(exp))
			}
		}
		return !s.closed.Load()
	})
	if !s.reject {
		sh.mu.Lock()
		sh.tidy()
		sh.mu.Unlock()
	}
	return removed
}

// sweepOwners removes the dead records of one owner shard and the owner sets
// it leaves empty, and returns how many records it removed. It lets go of the
// shard's lock every sweepChunk records examined; when the owner set it was
// walking was dropped meanwhile (it had become empty), it moves on to the
// next owner.
func (s *Store) sweepOwners(osh *ownerShard) int {
	total, pending, examined := 0, 0, 0
	osh.mu.Lock()
	defer func() {
		s.records.Add(-int64(pending))
		osh.mu.Unlock()
	}()
	if osh.m == nil {
		return 0
	}
	now := s.nowNanos()
	for owner, set := range osh.m {
		for k, limit := range set.keys {
			if limit <= now {
				delete(set.keys, k)
				pending++
				total++
			}
			if examined++; examined%sweepChunk != 0 {
				continue
			}
			// Let waiting goroutines in (Gosched, or this goroutine would
			// likely take the lock straight back). Going on ranging over
			// maps that others changed meanwhile, under the lock, is well
			// defined.
			s.records.Add(-int64(pending))
			pending = 0
			osh.mu.Unlock()
			runtime.Gosched()
			osh.mu.Lock()
			if osh.m == nil {
				return total // closed meanwhile
			}
			if osh.m[owner] != set {
				break // dropped meanwhile
			}
			now = s.nowNanos()
		}
		if len(set.keys) == 0 && osh.m[owner] == set {
			delete(osh.m, owner)
		}
	}
	return total
}
