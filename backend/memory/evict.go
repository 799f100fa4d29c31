package memory

import (
	"math"

	"github.com/sessionx/sessions/backend"
)

// evictionSample is how many entries of a full shard are examined to choose
// the one to evict: the one with the earliest Expires among them. A shard
// holding no more entries than this is examined whole, so the entry with the
// earliest Expires of the shard is evicted. The doc of
// Options.RejectWhenFull states the number in words: keep the two in step.
const evictionSample = 16

// admission says how put admits a new key: a set of the flags below, or 0
// for a plain new key (counted, evicting at the bound, on probation).
type admission uint8

const (
	// borrowRoom: count the key but never evict for it; it may take the
	// shard one past its bound, for a slot that the caller is about to
	// free (Replace within one shard).
	borrowRoom admission = 1 << iota
	// startProtected: the key starts protected, not on probation (Replace
	// of a protected key).
	startProtected
)

// admit counts the new key just added to sh, in slot sl with entry ne, and,
// when that takes the shard past its bound (and borrow is false), makes
// room (see makeRoom) or, when makeRoom cannot, takes the new key out again
// and returns backend.ErrFull.
//
// A store that evicts admits under sh.mu, one new key at a time: it counts
// the key, evicts if the shard is over its bound, and queues the key on
// probation (see enqueue), so that every key on probation but the one being
// admitted is in the queue when an evictor looks, and a shard whose
// protected keys fit in its bound always has one on probation to evict. A
// store that rejects writes when full keeps no queue and takes the mutex
// only at the bound; there concurrent writers may overshoot the bound by one
// each for the moment between their insert and their eviction.
func (s *Store) admit(sh *shard, key string, sl *slot, ne *entry, now int64, borrow bool) error {
	var err error
	if s.reject {
		if sh.n.Add(1) <= int64(s.perShard) || borrow {
			return nil
		}
		sh.mu.Lock()
		err = s.makeRoom(sh, key, now)
		sh.mu.Unlock()
	} else {
		sh.mu.Lock()
		if sh.n.Add(1) > int64(s.perShard) && !borrow {
			err = s.makeRoom(sh, key, now)
		}
		if err == nil {
			sh.enqueue(key, sl)
		}
		sh.mu.Unlock()
	}
	if err != nil {
		sh.kill(key, sl, ne) // refused: take the new key out again
	}
	return err
}

// makeRoom frees room for one entry in the full shard sh, never taking
// skip's; the caller holds sh.mu. It examines up to evictionSample entries
// (passing over skip and removed ones) and removes the expired ones among
// them. If none was expired, it returns backend.ErrFull when the store
// rejects writes when full; otherwise it evicts the oldest key still on
// probation (evictProbation) or, when there is none, the sampled entry with
// the earliest Expires, or returns backend.ErrFull when it found no entry to
// evict. A sampled entry written again while it looks is left alone (it was
// just written, so it is no candidate), and it looks again, a few times at
// most; when it still found nothing it could remove, it returns nil and the
// shard stays one over its bound.
func (s *Store) makeRoom(sh *shard, skip string, now int64) error {
	type candidate struct {
		key string
		sl  *slot
		e   *entry
	}
	for range 4 {
		var (
			expired [evictionSample]candidate
			nexp    int
			victim  candidate
			earlier int64 = math.MaxInt64
			seen    int
		)
		sh.m.Range(func(k, v any) bool {
			key := k.(string)
			sl := v.(*slot)
			e := sl.p.Load()
			if key == skip || e == dead {
				return true
			}
			if exp := e.expires.Load(); exp <= now {
				expired[nexp] = candidate{key, sl, e}
				nexp++
			} else if exp < earlier {
				victim, earlier = candidate{key, sl, e}, exp
			}
			seen++
			return seen < evictionSample
		})
		freed := 0
		for _, c := range expired[:nexp] {
			if sh.kill(c.key, c.sl, c.e) {
				freed++
			}
		}
		switch {
		case freed > 0:
			return nil
		case nexp > 0:
			continue // every expired one was written again meanwhile
		case s.reject:
			return backend.ErrFull
		case sh.evictProbation():
			return nil
		case victim.e == nil:
			return backend.ErrFull
		case sh.kill(victim.key, victim.sl, victim.e):
			return nil
		}
	}
	// Writers keep rewriting what this samples: let the shard overshoot its
	// bound by this one entry rather than spin.
	return nil
}
