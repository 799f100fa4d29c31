package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/sessionx/sessions/backend"
)

// ownerShard is one independently locked part of the owner index. A nil m
// means the store is closed.
type ownerShard struct {
	mu sync.RWMutex
	m  map[string]*ownerSet
	_  [cacheLine]byte // keep neighbouring owner shards off each other's cache lines
}

// ownerSet is the index of one owner: key -> limit in Unix nanoseconds. A set
// is dropped from its ownerShard's map when it becomes empty (by RemoveOwned,
// AddOwned with a past limit, or Sweep). It is a pointer so that a sweep that
// let go of the lock can tell whether the set it was walking is still the
// owner's.
type ownerSet struct {
	keys map[string]int64
}

// AddOwned records that key belongs to owner until limit, replacing any
// earlier limit for that key. A limit not after the store's clock removes the
// record instead (a dead record is never listed anyway).
//
// The index holds at most Options.MaxEntries records. At the bound, recording
// a new key first drops the owner's dead records and, if that frees nothing,
// fails with backend.ErrFull and records nothing. It never evicts a live
// record: the core relies on the index to end all of an owner's sessions, so
// a silently forgotten record would let a session outlive a "log out
// everywhere". Replacing the limit of a recorded key always succeeds.
func (s *Store) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNanos()
	lim := toNanos(limit)
	osh := s.ownerShard(owner)
	osh.mu.Lock()
	defer osh.mu.Unlock()
	if osh.m == nil {
		return backend.ErrClosed
	}
	set := osh.m[owner]
	if lim <= now {
		if set != nil {
			s.removeOwned(osh, owner, set, key)
		}
		return nil
	}
	if set != nil {
		if _, ok := set.keys[key]; ok {
			set.keys[key] = lim
			return nil
		}
	}
	if s.records.Add(1) > s.maxRecords {
		// Full: the owner's own dead records are the ones this lock covers.
		freed := 0
		if set != nil {
			for k, l := range set.keys {
				if l <= now {
					delete(set.keys, k)
					freed++
				}
			}
		}
		s.records.Add(-int64(freed))
		if freed == 0 {
			s.records.Add(-1)
			return backend.ErrFull
		}
	}
	if set == nil {
		set = &ownerSet{keys: make(map[string]int64, 1)}
		osh.m[owner] = set
	}
	set.keys[key] = lim
	return nil
}

// RemoveOwned forgets keys from owner's set. Missing keys are not an error.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	osh := s.ownerShard(owner)
	osh.mu.Lock()
	defer osh.mu.Unlock()
	if osh.m == nil {
		return backend.ErrClosed
	}
	if set := osh.m[owner]; set != nil {
		s.removeOwned(osh, owner, set, keys...)
	}
	return nil
}

// removeOwned deletes keys from owner's set, which is osh.m[owner], and drops
// the set when that leaves it empty. The caller holds osh's lock.
func (s *Store) removeOwned(osh *ownerShard, owner string, set *ownerSet, keys ...string) {
	n := len(set.keys)
	for _, k := range keys {
		delete(set.keys, k)
	}
	s.records.Add(-int64(n - len(set.keys)))
	if len(set.keys) == 0 {
		delete(osh.m, owner)
	}
}

// Owned returns the keys recorded for owner whose limit is after the store's
// clock, in no particular order (nil when there are none).
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.nowNanos()
	osh := s.ownerShard(owner)
	osh.mu.RLock()
	defer osh.mu.RUnlock()
	if osh.m == nil {
		return nil, backend.ErrClosed
	}
	set := osh.m[owner]
	if set == nil {
		return nil, nil
	}
	var keys []string
	for k, limit := range set.keys {
		if limit > now {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// ownerShard returns owner's shard of the owner index.
func (s *Store) ownerShard(owner string) *ownerShard {
	return &s.owners[maphash.String(s.seed, owner)&s.mask]
}
