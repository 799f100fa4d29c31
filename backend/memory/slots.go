package memory

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sessionx/sessions/backend"
)

// slot holds the entry stored under one key. A write of a key that is
// stored swaps the slot's pointer and leaves the map alone. Removing a key
// swaps its slot's pointer to dead, for good, then deletes the slot from
// the map; whoever finds a dead slot still in the map (a writer, a reader
// that wants it gone, the sweeper) deletes it before going on, so no write
// into a dead slot is ever lost and a remover never waits for another.
//
// state is the key's standing for eviction (see probation.go): on
// probation, with its ticket in its shard's queue, until the first read
// protects it. A rewrite keeps the slot, so it keeps its standing; a key
// removed and written again gets a new slot and starts over. A slot is 16
// bytes on 64-bit platforms: the size class it takes either way.
type slot struct {
	p     atomic.Pointer[entry]
	state atomic.Uint64
}

// dead is the entry of a slot whose key has been removed.
var dead = new(entry)

// newSlot returns a slot holding e.
func newSlot(e *entry) *slot {
	sl := new(slot)
	sl.p.Store(e)
	return sl
}

// Get returns the live entry stored under key, or backend.ErrNotFound. The
// first read of a key protects it from eviction ahead of the keys never
// read (see Options.RejectWhenFull).
func (s *Store) Get(ctx context.Context, key string) (backend.Entry, error) {
	if err := ctx.Err(); err != nil {
		return backend.Entry{}, err
	}
	if s.closed.Load() {
		return backend.Entry{}, backend.ErrClosed
	}
	now := s.nowNanos()
	sh := s.shard(key)
	sl, e, exp, ok := sh.live(key, now)
	if !ok || !sh.protect(sl) {
		return backend.Entry{}, backend.ErrNotFound
	}
	return e.export(exp), nil
}

// GetTouch returns the live entry under key, as Get does (and protects it as
// Get does), but live judged at the later of now (the caller's clock) and
// the store's clock: an entry whose Expires is not after either is
// backend.ErrNotFound and is not touched. If its Expires is before ifBefore, it first moves Expires to
// expires, capped at the entry's Limit, the returned entry shows the new
// Expires and touched is true. When that leaves Expires where it was (it is
// already at its Limit, say), nothing is written and touched is false. If
// the new deadline is not after that instant, the entry is removed and
// GetTouch returns backend.ErrNotFound. A zero ifBefore never touches.
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (e backend.Entry, touched bool, err error) {
	if err := ctx.Err(); err != nil {
		return backend.Entry{}, false, err
	}
	if s.closed.Load() {
		return backend.Entry{}, false, backend.ErrClosed
	}
	at := max(s.nowNanos(), toNanos(now))
	sh := s.shard(key)
	sl, cur, _, ok := sh.live(key, at)
	if !ok || !sh.protect(sl) {
		return backend.Entry{}, false, backend.ErrNotFound
	}
	if cur.idle > 0 && !ifBefore.IsZero() {
		// The session's own idle timeout (backend.Entry.Idle).
		ifBefore, expires = backend.Slide(backend.Entry{Idle: time.Duration(cur.idle)}, now, ifBefore, expires)
	}
	before := toNanos(ifBefore)
	if before <= 0 {
		before = 1 // a zero ifBefore never touches
	}
	deadline, moved, ok := s.slide(sh, key, sl, cur, before, toNanos(expires), at)
	if !ok {
		return backend.Entry{}, false, backend.ErrNotFound
	}
	return cur.export(deadline), moved, nil
}

// Set stores e under key, replacing whatever was there. An e.Expires not
// after the store's clock removes the entry instead. Writing a new key into
// a full shard evicts an entry or returns backend.ErrFull, as
// Options.RejectWhenFull says.
func (s *Store) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	now := s.nowNanos()
	return s.put(s.shard(key), key, importEntry(e), now, precondition{}, 0) // none
}

// SetIf stores e under key, as Set does, only if the live entry under key has
// Version old, or, with old == 0, only if there is no live entry under key.
// Live is judged at the later of now (the caller's clock) and the store's
// clock. When that does not hold, it changes nothing and returns
// backend.ErrNotFound when old != 0 and there is no live entry, or
// backend.ErrConflict when the live entry has another version (or, with
// old == 0, when there is one). An e.Expires not after that instant removes
// the entry instead of storing e. Like Set, it may evict an entry or return
// backend.ErrFull when it writes a new key into a full shard.
func (s *Store) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	at := max(s.nowNanos(), toNanos(now))
	ne := importEntry(e)
	return s.put(s.shard(key), key, ne, at, ifVersion(old), 0)
}

// Replace stores e under newKey and removes oldKey, only if the live entry
// under oldKey has Version old and there is no live entry under newKey, live
// judged at the later of now (the caller's clock) and the store's clock.
// Otherwise it changes nothing and returns backend.ErrNotFound when there is
// no live entry under oldKey, or backend.ErrConflict when oldKey holds
// another version or newKey holds a live entry (old is compared exactly:
// unlike SetIf, old == 0 means version 0). It takes no lock (but eviction's,
// in a full shard): it writes newKey only if no live entry is there, then
// removes oldKey only if the entry it checked is still the one stored, and
// takes newKey out again if a writer changed or removed oldKey meanwhile
// (returning backend.ErrConflict, or backend.ErrNotFound when oldKey has no
// live entry left). Readers may find both keys while Replace runs, never
// neither, and the old key is gone when it returns nil. As with Set, an
// e.Expires not after that instant stores nothing under newKey (oldKey is
// still removed). Writing into a full shard evicts an entry or returns
// backend.ErrFull, as Options.RejectWhenFull says; with ErrFull nothing is
// changed. When both keys fall in one shard, the new key takes the old
// one's room: Replace then neither evicts nor returns ErrFull. The new key
// takes over the old one's protection from eviction (see
// Options.RejectWhenFull): a login moves a returning visitor's session.
func (s *Store) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	at := max(s.nowNanos(), toNanos(now))
	osh, nsh := s.shard(oldKey), s.shard(newKey)
	osl, cur, _, ok := osh.live(oldKey, at)
	switch {
	case !ok:
		return backend.ErrNotFound
	case cur.version != old || oldKey == newKey:
		return backend.ErrConflict // another version, or newKey (oldKey) is live
	}
	ne := importEntry(e)
	var how admission
	if osh == nsh {
		how |= borrowRoom
	}
	if osl.state.Load()&protectedBit != 0 {
		// A returning visitor's session (a login): the new key is one
		// too. (A slot removed meanwhile also has the bit; then the kill
		// below fails and the new key goes again.)
		how |= startProtected
	}
	// The new key goes in before the old one goes out: a reader may find
	// both for the length of this call, never neither.
	if err := s.put(nsh, newKey, ne, at, ifVersion(0), how); err != nil {
		return err // ErrConflict (newKey is live) or ErrFull: nothing changed
	}
	if !osh.kill(oldKey, osl, cur) {
		// The old session changed or went meanwhile: undo.
		nsh.removeIf(newKey, ne)
		if _, _, _, ok := osh.live(oldKey, at); !ok {
			return backend.ErrNotFound
		}
		return backend.ErrConflict
	}
	return nil
}

// Touch moves the Expires of the live entry under key to expires, capped at
// its Limit. Live is judged at the later of now (the caller's clock) and the
// store's clock: it returns backend.ErrNotFound, and moves nothing, when the
// entry's Expires is not after either (and it removes an entry whose
// Expires is not after the store's clock, as the sweeper would). It removes
// the entry when the new deadline is not after that instant, and returns nil
// then.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	own := s.nowNanos()
	at := max(own, toNanos(now))
	sh := s.shard(key)
	sl, e, exp, ok := sh.live(key, at)
	if !ok {
		if e != nil && exp <= own { // expired by the store's clock: a write removes it, as the sweeper would
			sh.kill(key, sl, e)
		}
		return backend.ErrNotFound
	}
	if _, _, ok := s.slide(sh, key, sl, e, 0, toNanos(expires), at); !ok {
		return nil // moved into the past and removed, as documented (or a racing Touch did so)
	}
	return nil
}

// Delete removes the entry under key. Deleting a missing key is not an
// error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	s.shard(key).remove(key)
	return nil
}

// load returns the slot of key and the entry it holds, or nils when key is
// not stored (or only in a dead slot).
func (sh *shard) load(key string) (*slot, *entry) {
	v, ok := sh.m.Load(key)
	if !ok {
		return nil, nil
	}
	sl := v.(*slot)
	e := sl.p.Load()
	if e == dead {
		return nil, nil
	}
	return sl, e
}

// live returns the slot and entry under key and the entry's deadline, and
// whether it is live at now. An expired entry is returned with ok false; a
// missing one as nils.
func (sh *shard) live(key string, now int64) (*slot, *entry, int64, bool) {
	sl, e := sh.load(key)
	if e == nil {
		return nil, nil, 0, false
	}
	exp := e.expires.Load()
	return sl, e, exp, exp > now
}

// precondition is what put requires of the entry it replaces.
type precondition struct {
	check bool   // false: none (Set: precondition{})
	old   uint64 // with check: the live entry's version, 0 for no live entry
}

// ifVersion is the precondition of SetIf: a live entry with version old, or
// with old == 0 no live entry.
func ifVersion(old uint64) precondition { return precondition{check: true, old: old} }

// put stores ne under key in sh if the entry there meets pre, atomically:
// it checks an entry, then swaps it for ne only if it is still the one
// stored, and looks again otherwise. When pre is not met it returns
// backend.ErrNotFound if pre wants a live entry and there is none (none is
// stored, or its deadline is not after now), and backend.ErrConflict if the
// live entry has another version or pre wants none. An ne already expired
// at now removes the entry instead. A new key is admitted by admit, which
// may evict an entry or return backend.ErrFull, as how says.
func (s *Store) put(sh *shard, key string, ne *entry, now int64, pre precondition, how admission) error {
	for {
		var (
			sl  *slot
			cur *entry
		)
		if v, ok := sh.m.Load(key); ok {
			sl = v.(*slot)
			if cur = sl.p.Load(); cur == dead {
				sh.m.CompareAndDelete(key, sl) // finish its removal, look again
				continue
			}
		}
		if pre.check {
			live := cur != nil && cur.expires.Load() > now
			switch {
			case pre.old == 0:
				if live {
					return backend.ErrConflict
				}
			case !live:
				return backend.ErrNotFound
			case cur.version != pre.old:
				return backend.ErrConflict
			}
		}
		switch {
		case ne.expires.Load() <= now: // a delete
			if cur == nil || sh.kill(key, sl, cur) {
				return nil
			}
		case cur != nil:
			if sl.p.CompareAndSwap(cur, ne) {
				return nil
			}
		default:
			nsl := newSlot(ne)
			if how&startProtected != 0 {
				nsl.state.Store(protectedBit) // before anyone can see it
			}
			if _, loaded := sh.m.LoadOrStore(key, nsl); !loaded {
				return s.admit(sh, key, nsl, ne, now, how&borrowRoom != 0)
			}
		}
	}
}

// slide moves e's deadline to min(exp, limit) by compare-and-swap, but only
// while it is before before (before <= 0: always). It reports the deadline it
// leaves, whether it moved it, and false for ok when the entry is expired at
// now: either it found it so (and leaves it be) or it moved the deadline to
// not after now (and removes the entry from sh).
func (s *Store) slide(sh *shard, key string, sl *slot, e *entry, before, exp, now int64) (deadline int64, moved, ok bool) {
	for {
		cur := e.expires.Load()
		if cur <= now {
			return cur, false, false
		}
		next := min(exp, e.limit)
		if (before > 0 && cur >= before) || next == cur {
			return cur, false, true
		}
		if !e.expires.CompareAndSwap(cur, next) {
			continue // another slide got in first: look again
		}
		if next <= now {
			sh.kill(key, sl, e)
			return next, true, false
		}
		return next, true, true
	}
}

// kill removes key, whose slot is sl, if sl still holds e: it marks the slot
// dead, for good, deletes it from the map and ends its probation (see
// leave). It reports whether it did.
func (sh *shard) kill(key string, sl *slot, e *entry) bool {
	if !sl.p.CompareAndSwap(e, dead) {
		return false
	}
	sh.n.Add(-1)
	sh.m.CompareAndDelete(key, sl)
	sh.leave(sl)
	return true
}

// remove deletes key from sh, whatever entry it holds.
func (sh *shard) remove(key string) {
	for {
		v, ok := sh.m.Load(key)
		if !ok {
			return
		}
		sl := v.(*slot)
		e := sl.p.Load()
		if e == dead {
			sh.m.CompareAndDelete(key, sl) // removed already: finish it
			return
		}
		if sh.kill(key, sl, e) {
			return
		}
	}
}

// removeIf deletes key from sh if e is still the entry stored under it.
func (sh *shard) removeIf(key string, e *entry) {
	if sl, cur := sh.load(key); cur == e {
		sh.kill(key, sl, e)
	}
}
