// Package memory is an in-process session store: a sharded, bounded map of
// entries that implements backend.Store together with every optional
// capability (backend.Conditional, backend.Replacer, backend.GetToucher,
// backend.Indexer) and io.Closer.
//
// It suits a single server process, tests and development. Sessions live in
// the process's memory and vanish when it exits; several processes behind a
// load balancer do not share them.
//
// No operation on one key takes a lock: each shard is a sync.Map from a key
// to its slot, which points to an entry that never changes once stored but
// for its deadline, which moves by compare-and-swap. A write swaps a new
// entry into the key's slot (a conditional write only if the entry it
// checked is still there), so rewriting a key allocates nothing but the entry
// (which holds small values inline) and leaves the map alone. Only eviction
// at the bound takes a shard's mutex; concurrent writers of new keys may
// overshoot a full shard's bound by one each until their eviction is done.
// Expired entries are invisible at once (every read checks the deadline
// against the store's clock) and a background goroutine removes them every
// Options.SweepInterval. The operations that take the caller's now (Touch,
// SetIf, Replace, GetTouch) judge an entry by both clocks: it is dead when
// its deadline is not after either, that is, not after the later of the two
// instants. The number of stored entries is bounded by
// Options.MaxEntries: at the bound, writing a new key either evicts an entry
// close to expiry or fails with backend.ErrFull (Options.RejectWhenFull).
//
// The owner index of backend.Indexer is kept beside the entries, in shards of
// its own (by owner). Records whose limit has passed are invisible at once
// and removed by the same sweeper. It holds at most Options.MaxEntries
// records: at the bound, recording a new key fails with backend.ErrFull (see
// Store.AddOwned).
//
// Call Close when the store is no longer needed, to stop the sweeper.
package memory

import (
	"context"
	"hash/maphash"
	"io"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Compile-time checks that Store implements every capability.
var (
	_ backend.Store       = (*Store)(nil)
	_ backend.Conditional = (*Store)(nil)
	_ backend.Replacer    = (*Store)(nil)
	_ backend.GetToucher  = (*Store)(nil)
	_ backend.Indexer     = (*Store)(nil)
	_ io.Closer           = (*Store)(nil)
)

// Defaults used for zero (or negative) Options fields.
const (
	// DefaultShards is the number of shards when Options.Shards is zero.
	DefaultShards = 64

	// DefaultMaxEntries is the bound on stored entries when
	// Options.MaxEntries is zero.
	DefaultMaxEntries = 1_000_000

	// DefaultSweepInterval is the time between background sweeps when
	// Options.SweepInterval is zero.
	DefaultSweepInterval = time.Minute

	// EvictionSample is how many entries of a full shard are examined to
	// choose the one to evict: the one with the earliest Expires among them.
	// A shard holding no more entries than this is examined whole, so the
	// entry with the earliest Expires of the shard is evicted.
	EvictionSample = 16
)

// maxShards caps Options.Shards.
const maxShards = 1 << 16

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Shards is the number of independently locked parts of the store,
	// rounded up to a power of two. More shards mean less lock contention
	// between goroutines. Default (zero or negative): DefaultShards (64).
	// It is capped at 65536, and lowered if needed so that there are no
	// more shards than MaxEntries.
	Shards int

	// MaxEntries bounds the number of entries the store holds, counting
	// expired entries the sweeper has not removed yet. The bound is
	// enforced per shard: each shard holds at most MaxEntries/Shards
	// entries (rounded down), so the total never exceeds MaxEntries, but
	// one shard may be full while the store as a whole is not. Default
	// (zero or negative): DefaultMaxEntries (1,000,000).
	//
	// It also bounds the owner index (backend.Indexer) separately: the
	// index holds at most MaxEntries records in all, counting dead ones
	// the sweeper has not removed yet; see Store.AddOwned.
	MaxEntries int

	// RejectWhenFull selects what a write of a new key does when its shard
	// is full. Writes that replace an existing key always succeed.
	//
	// When false (the default), the store first drops any expired entries
	// among EvictionSample entries of the shard and, if none were expired,
	// evicts the sampled entry with the earliest Expires: approximately the
	// least recently active session, in the manner of Redis's sampled LRU
	// eviction.
	//
	// When true, the store drops expired sampled entries as above but never
	// evicts a live one: the write fails with backend.ErrFull. It may do so
	// while the shard still holds expired entries the sweeper has not
	// removed yet.
	RejectWhenFull bool

	// SweepInterval is how often a background goroutine removes expired
	// entries and dead owner index records. Default (zero):
	// DefaultSweepInterval (1 minute). A negative value disables the
	// background sweeper: expired entries are then only removed by Sweep, by
	// eviction, and by writes to their keys; dead index records only by
	// Sweep, by AddOwned and RemoveOwned.
	SweepInterval time.Duration

	// Now is the clock used for every expiry decision, including the
	// sweeper's. Default (nil): time.Now.
	Now func() time.Time
}

// Store is an in-process backend.Store. Create it with New; the zero Store is
// not usable. It is safe for concurrent use by many goroutines.
type Store struct {
	shards   []shard
	mask     uint64
	seed     maphash.Seed
	perShard int
	reject   bool
	now      func() time.Time

	// The owner index (backend.Indexer), sharded by owner like the entries
	// by key. records counts the records of every owner shard, live or
	// dead; it never exceeds maxRecords.
	owners     []ownerShard
	records    atomic.Int64
	maxRecords int64

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// shard is one part of the store. No operation on one key takes a lock:
// slots are looked up in m, a sync.Map whose Load writes nothing shared; a
// deadline slides by compare-and-swap on the entry; a write replaces the
// slot's entry pointer by compare-and-swap (a conditional write succeeds only
// if the entry it checked is still the one stored). Only eviction at the
// bound takes mu.
type shard struct {
	mu sync.Mutex   // held only to evict (makeRoom), so that evictors take turns
	m  sync.Map     // key -> *slot
	n  atomic.Int64 // keys with a live or expired entry (slots not dead)
	_  [40]byte     // keep neighbouring shards on separate cache lines
}

// slot holds the entry stored under one key. A write of a key that is
// stored swaps the slot's pointer and leaves the map alone. Removing a key
// swaps its slot's pointer to dead, for good, then deletes the slot from
// the map; whoever finds a dead slot still in the map (a writer, a reader
// that wants it gone, the sweeper) deletes it before going on, so no write
// into a dead slot is ever lost and a remover never waits for another.
type slot struct {
	p atomic.Pointer[entry]
}

// dead is the entry of a slot whose key has been removed.
var dead = new(entry)

// newSlot returns a slot holding e.
func newSlot(e *entry) *slot {
	sl := new(slot)
	sl.p.Store(e)
	return sl
}

// ownerShard is one independently locked part of the owner index. A nil m
// means the store is closed.
type ownerShard struct {
	mu sync.RWMutex
	m  map[string]*ownerSet
	_  [32]byte // pad to 64 bytes, as shard
}

// ownerSet is the index of one owner: key -> limit in Unix nanoseconds. A set
// is dropped from its ownerShard's map when it becomes empty (by RemoveOwned,
// AddOwned with a past limit, or Sweep). It is a pointer so that a sweep that
// let go of the lock can tell whether the set it was walking is still the
// owner's.
type ownerSet struct {
	keys map[string]int64
}

// sweepChunk bounds how many index records Sweep examines while holding an
// owner shard's lock without letting go of it.
const sweepChunk = 256

// entry is a stored backend.Entry. Times are Unix nanoseconds. Everything
// but expires is fixed once the entry is stored (a write stores a new
// entry), so readers use it without a lock; expires only moves by
// compare-and-swap. A small value lives in the same allocation as its entry
// (see newEntry).
type entry struct {
	value   []byte
	limit   int64 // noLimit for no limit
	version uint64
	expires atomic.Int64
}

// noLimit is the limit of an entry whose Limit is zero.
const noLimit = math.MaxInt64

// New returns a Store configured by opts and starts its sweeper (unless
// opts.SweepInterval is negative). Call Close to stop it.
func New(opts Options) *Store {
	maxEntries := opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	n := opts.Shards
	if n <= 0 {
		n = DefaultShards
	}
	if n > maxShards {
		n = maxShards
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	for n > maxEntries {
		n >>= 1 // keep at least one entry per shard within the bound
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	s := &Store{
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		seed:     maphash.MakeSeed(),
		perShard: maxEntries / n,
		reject:   opts.RejectWhenFull,
		now:      now,
		done:     make(chan struct{}),

		owners:     make([]ownerShard, n),
		maxRecords: int64(maxEntries),
	}
	for i := range s.owners {
		s.owners[i].m = make(map[string]*ownerSet)
	}
	if interval > 0 {
		s.wg.Add(1)
		go s.sweepLoop(interval)
	}
	return s
}

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

// Close stops the sweeper, waits for it to exit and releases the stored
// entries and the owner index. After Close every method returns
// backend.ErrClosed. Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.wg.Wait()
		for i := range s.shards {
			sh := &s.shards[i]
			sh.m.Clear()
			sh.n.Store(0)
		}
		for i := range s.owners {
			osh := &s.owners[i]
			osh.mu.Lock()
			osh.m = nil
			osh.mu.Unlock()
		}
		s.records.Store(0)
	})
	return nil
}

// Sweep removes every expired entry and every dead owner index record (one
// whose limit is not after the store's clock) now, and returns how many of
// both it removed. The background sweeper calls it every
// Options.SweepInterval; tests and benchmarks may call it directly. It takes
// no lock over the entries: it walks one shard at a time while reads and
// writes go on, and removes each expired entry by compare-and-swap, so that
// an entry written again meanwhile lives on. In the owner index it lets go
// of a shard's lock after every 256 records examined, so even one owner
// with very many records never holds up the others. After Close it returns
// 0.
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
// it removed.
func (s *Store) sweepShard(sh *shard) int {
	now := s.nowNanos() // per shard: a long sweep must not use a stale clock
	removed := 0
	sh.m.Range(func(k, v any) bool { // no lock: reads and writes go on
		// kill: an entry written again meanwhile lives on.
		sl := v.(*slot)
		if e := sl.p.Load(); e == dead {
			sh.m.CompareAndDelete(k, sl)
		} else if e.expires.Load() <= now && sh.kill(k.(string), sl, e) {
			removed++
		}
		return !s.closed.Load()
	})
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

// IndexLen returns the number of records in the owner index
// (backend.Indexer): the live ones plus the dead ones the sweeper has not
// removed yet. After Close it returns 0.
func (s *Store) IndexLen() int {
	return int(s.records.Load())
}

// Len returns the number of stored entries: the live ones plus the expired
// ones that neither the sweeper nor a write has removed yet. After Close it
// returns 0.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		n += int(s.shards[i].n.Load())
	}
	return n
}

// Get returns the live entry stored under key, or backend.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (backend.Entry, error) {
	if err := ctx.Err(); err != nil {
		return backend.Entry{}, err
	}
	if s.closed.Load() {
		return backend.Entry{}, backend.ErrClosed
	}
	now := s.nowNanos()
	_, e, exp, ok := s.shard(key).live(key, now)
	if !ok {
		return backend.Entry{}, backend.ErrNotFound
	}
	return e.export(exp), nil
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

// slide moves e's deadline to min(exp, limit) by compare-and-swap, but only
// while it is before before (before <= 0: always). It reports the deadline it
// leaves, whether it moved it, and false for ok when the entry is (or is
// left) expired at now; an entry left expired is removed from sh.
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
	return s.put(s.shard(key), key, importEntry(e), now, precondition{}, false) // none
}

// Touch moves the Expires of the live entry under key to expires, capped at
// its Limit. Live is judged at the later of now (the caller's clock) and the
// store's clock: it returns backend.ErrNotFound, and moves nothing, when the
// entry's Expires is not after either. It removes the entry when the new
// deadline is not after that instant.
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
		return nil // moved into the past: removed, as documented
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

// kill removes key, whose slot is sl, if sl still holds e: it marks the slot
// dead, for good, and deletes it from the map. It reports whether it did.
func (sh *shard) kill(key string, sl *slot, e *entry) bool {
	if !sl.p.CompareAndSwap(e, dead) {
		return false
	}
	sh.n.Add(-1)
	sh.m.CompareAndDelete(key, sl)
	return true
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
	return s.put(s.shard(key), key, ne, at, ifVersion(old), false)
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
// at now removes the entry instead. With borrow, a new key may take the shard one past its bound,
// for a slot that the caller is about to free.
func (s *Store) put(sh *shard, key string, ne *entry, now int64, pre precondition, borrow bool) error {
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
			if _, loaded := sh.m.LoadOrStore(key, nsl); !loaded {
				if borrow {
					sh.n.Add(1)
					return nil
				}
				return s.admit(sh, key, nsl, ne, now)
			}
		}
	}
}

// Replace stores e under newKey and removes oldKey, only if the live entry
// under oldKey has Version old and there is no live entry under newKey, live
// judged at the later of now (the caller's clock) and the store's clock.
// Otherwise it changes nothing and returns backend.ErrNotFound when there is
// no live entry under oldKey, or backend.ErrConflict when oldKey holds
// another version or newKey holds a live entry (old is compared exactly:
// unlike SetIf, old == 0 means version 0). It takes no lock: it writes
// newKey only if no live entry is there, then removes oldKey only if the
// entry it checked is still the one stored, and takes newKey out again if a
// writer changed or removed oldKey meanwhile (returning backend.ErrConflict,
// or backend.ErrNotFound when oldKey has no live entry left). Readers may
// find both keys while Replace runs, never neither, and the old key is gone
// when it returns. As with Set, an e.Expires not after that instant stores
// nothing under newKey (oldKey is still removed). Writing into a full shard
// evicts an entry or returns backend.ErrFull, as Options.RejectWhenFull
// says; with ErrFull nothing is changed.
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
	// The new key goes in before the old one goes out: a reader may find
	// both for the length of this call, never neither.
	if err := s.put(nsh, newKey, ne, at, ifVersion(0), osh == nsh); err != nil {
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

// GetTouch returns the live entry under key, as Get does, but live judged at
// the later of now (the caller's clock) and the store's clock: an entry
// whose Expires is not after either is backend.ErrNotFound and is not
// touched. If its Expires is before ifBefore, it first moves Expires to
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
	if !ok {
		return backend.Entry{}, false, backend.ErrNotFound
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

// admit counts the new key just added to sh with entry ne and, when that
// takes the shard past its bound, makes room (evicting another entry) or,
// when the store rejects writes when full, takes the new key out again and
// returns backend.ErrFull. Concurrent writers may overshoot the bound by one
// each for the moment between their insert and their eviction.
func (s *Store) admit(sh *shard, key string, sl *slot, ne *entry, now int64) error {
	if sh.n.Add(1) <= int64(s.perShard) {
		return nil
	}
	sh.mu.Lock()
	err := s.makeRoom(sh, key, now)
	sh.mu.Unlock()
	if err != nil {
		sh.kill(key, sl, ne) // refused: take the new key out again
	}
	return err
}

// makeRoom frees room for one entry in the full shard sh, never taking
// skip's; the caller holds sh.mu. It examines up to EvictionSample entries
// and removes the expired ones among them; if none was expired it evicts the
// one with the earliest Expires, or returns backend.ErrFull when the store
// rejects writes when full. An entry written again while it looks is left
// alone (it was just written, so it is no candidate), and it looks again,
// a few times at most.
func (s *Store) makeRoom(sh *shard, skip string, now int64) error {
	type candidate struct {
		key string
		sl  *slot
		e   *entry
	}
	for range 4 {
		var (
			expired [EvictionSample]candidate
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
			return seen < EvictionSample
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
		case s.reject || victim.e == nil:
			return backend.ErrFull
		case sh.kill(victim.key, victim.sl, victim.e):
			return nil
		}
	}
	// Writers keep rewriting what this samples: let the shard overshoot its
	// bound by this one entry rather than spin.
	return nil
}

func (s *Store) shardIndex(key string) uint64 {
	return maphash.String(s.seed, key) & s.mask
}

func (s *Store) shard(key string) *shard {
	return &s.shards[s.shardIndex(key)]
}

func (s *Store) ownerShard(owner string) *ownerShard {
	return &s.owners[maphash.String(s.seed, owner)&s.mask]
}

func (s *Store) nowNanos() int64 {
	return toNanos(s.now())
}

// importEntry copies e into a new entry, copying its Value.
func importEntry(e backend.Entry) *entry {
	ne := newEntry(e.Value)
	ne.limit = noLimit
	ne.version = e.Version
	ne.expires.Store(toNanos(e.Expires))
	if !e.Limit.IsZero() {
		ne.limit = toNanos(e.Limit)
	}
	return ne
}

// newEntry returns a new entry holding a copy of value. A value of up to
// 976 bytes shares one allocation with its entry, in the smallest of a few
// array sizes that fits it, each chosen so that entry and array fill one of
// the runtime's size classes (64 to 1024 bytes): a write then costs one
// allocation, not two, and wastes at most about a quarter of it. A larger
// value gets its own allocation.
func newEntry(value []byte) *entry {
	var (
		e   *entry
		buf []byte
	)
	switch n := len(value); {
	case n <= 16:
		e, buf = inline(n, func(b *[16]byte) []byte { return b[:] })
	case n <= 48:
		e, buf = inline(n, func(b *[48]byte) []byte { return b[:] })
	case n <= 80:
		e, buf = inline(n, func(b *[80]byte) []byte { return b[:] })
	case n <= 112:
		e, buf = inline(n, func(b *[112]byte) []byte { return b[:] })
	case n <= 144:
		e, buf = inline(n, func(b *[144]byte) []byte { return b[:] })
	case n <= 208:
		e, buf = inline(n, func(b *[208]byte) []byte { return b[:] })
	case n <= 272:
		e, buf = inline(n, func(b *[272]byte) []byte { return b[:] })
	case n <= 336:
		e, buf = inline(n, func(b *[336]byte) []byte { return b[:] })
	case n <= 464:
		e, buf = inline(n, func(b *[464]byte) []byte { return b[:] })
	case n <= 592:
		e, buf = inline(n, func(b *[592]byte) []byte { return b[:] })
	case n <= 720:
		e, buf = inline(n, func(b *[720]byte) []byte { return b[:] })
	case n <= 976:
		e, buf = inline(n, func(b *[976]byte) []byte { return b[:] })
	default:
		e, buf = new(entry), make([]byte, n)
	}
	copy(buf, value)
	e.value = buf
	return e
}

// inline allocates an entry together with an array A of bytes, and returns
// the entry and the first n bytes of the array (bytes slices it whole).
func inline[A any](n int, bytes func(*A) []byte) (*entry, []byte) {
	x := new(struct {
		entry
		b A
	})
	return &x.entry, bytes(&x.b)[:n:n]
}

// export returns e, with deadline expires, as a backend.Entry with a fresh
// copy of its value.
func (e *entry) export(expires int64) backend.Entry {
	out := backend.Entry{
		Value:   append(make([]byte, 0, len(e.value)), e.value...),
		Expires: time.Unix(0, expires),
		Version: e.version,
	}
	if e.limit != noLimit {
		out.Limit = time.Unix(0, e.limit)
	}
	return out
}

// Bounds of the times representable as int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// toNanos returns t as Unix nanoseconds, saturating outside the years
// 1678-2262. The zero time is far in the past. A Limit beyond 2262 thus
// reads back as no limit, and an Expires beyond 2262 as a date in 2262.
func toNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}
