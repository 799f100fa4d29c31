// Package memory is an in-process session store: a sharded, bounded map of
// entries that implements backend.Store together with every optional
// capability (backend.Conditional, backend.Replacer, backend.GetToucher,
// backend.Indexer) and io.Closer.
//
// It suits a single server process, tests and development. Sessions live in
// the process's memory and vanish when it exits; several processes behind a
// load balancer do not share them.
//
// No read, and no write of a stored key, takes a lock: each shard is a
// sync.Map from a key to its slot, which points to an entry that never
// changes once stored but for its deadline, which moves by compare-and-swap.
// A write swaps a new entry into the key's slot (a conditional write only if
// the entry it checked is still there), so rewriting a key allocates nothing
// but the entry (which holds small values inline) and leaves the map alone.
// Only a write of a new key takes its shard's mutex, for a moment, to count
// the key and queue it on probation (below), and to evict at the bound (a
// store that rejects writes when full takes it only at the bound), and so
// does the sweeper, to compact that queue. Expired entries are invisible at
// once (every read checks the deadline against the store's clock) and a
// background goroutine removes them every Options.SweepInterval. The
// operations that take the caller's now (Touch, SetIf, Replace, GetTouch)
// judge an entry by both clocks: it is dead when its deadline is not after
// either, that is, not after the later of the two instants.
//
// The number of stored entries is bounded by Options.MaxEntries, shard by
// shard: at its shard's bound, writing a new key either evicts an entry or
// fails with backend.ErrFull (Options.RejectWhenFull). Eviction spares
// returning visitors: a key is on probation from its write until its first
// read (Get or GetTouch; the sessions core creates a session in one request
// and reads it in every later one), and a Replace of a read key (a login)
// makes the new key read too. At the bound the store evicts, after any
// expired entry it comes across, the key on probation longest, and a read
// key only when the shard holds no key on probation. So a flood of requests
// that each create a session and never come back (a script fetching a page
// with a CSRF token, say), however large, evicts none of the sessions that
// were read, as long as the read keys of each shard are fewer than its
// bound (MaxEntries/Shards): it evicts one-time sessions only, its own
// first. Protection costs a read one atomic load (and an atomic OR the
// first time), each key 8 bytes, and each key on probation a 16-byte entry
// in its shard's queue, which a new key or a sweep compacts once keys that
// left probation (read or removed) make up more than half of it, beyond a
// few dozen. Options.RejectWhenFull says more.
//
// The owner index of backend.Indexer is kept beside the entries, in shards of
// its own (by owner), each behind a read-write mutex: AddOwned and
// RemoveOwned lock their owner's shard, Owned read-locks it, and the sweeper
// holds it for a bounded number of records at a time. Records whose limit
// has passed are invisible at once and removed by the same sweeper. The
// index holds at most Options.MaxEntries records: at the bound, recording a
// new key fails with backend.ErrFull (see Store.AddOwned).
//
// Call Close when the store is no longer needed, to stop the sweeper.
package memory

import (
	"hash/maphash"
	"io"
	"math/bits"
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

// Defaults used for zero Options fields (and for negative Shards and
// MaxEntries).
const (
	// DefaultShards is the number of shards when Options.Shards is zero.
	DefaultShards = 64

	// DefaultMaxEntries is the bound on stored entries when
	// Options.MaxEntries is zero.
	DefaultMaxEntries = 1_000_000

	// DefaultSweepInterval is the time between background sweeps when
	// Options.SweepInterval is zero.
	DefaultSweepInterval = time.Minute
)

// maxShards caps Options.Shards.
const maxShards = 1 << 16

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Shards is the number of parts the store is split into, rounded up to
	// a power of two; the owner index is split into as many. Reads and
	// writes of entries take no lock whatever the number. What more shards
	// spread out is what is per shard: the count of entries that every new
	// or removed key updates, the mutex that evictions at the bound take
	// turns on, and the owner index's locks (AddOwned, RemoveOwned, Owned).
	// Fewer shards give each shard a larger share of MaxEntries, so that
	// keys falling unevenly on the shards leave less of the bound unused.
	// Default (zero or negative): DefaultShards (64). It is capped at
	// 65536, and lowered if needed so that there are no more shards than
	// MaxEntries.
	Shards int

	// MaxEntries bounds the number of entries the store holds, counting
	// expired entries the sweeper has not removed yet. The bound is
	// enforced per shard: each shard holds at most MaxEntries/Shards
	// entries (rounded down), so the total stays within MaxEntries, but
	// one shard may be full while the store as a whole is not. A shard
	// may briefly hold more: a new key is in the shard (and readable) a
	// moment before it is counted and room is made for it, so concurrent
	// writers of new keys overshoot the bound by one each until their
	// eviction is done; a Replace whose two keys share a shard takes it
	// one over until the old key goes; and an eviction that keeps finding
	// its sample rewritten under it gives up and leaves the shard one over
	// until an entry is removed. Default (zero or negative):
	// DefaultMaxEntries (1,000,000).
	//
	// It also bounds the owner index (backend.Indexer) separately: the
	// index holds at most MaxEntries records in all, counting dead ones
	// the sweeper has not removed yet; see Store.AddOwned.
	MaxEntries int

	// RejectWhenFull selects what a write of a new key does when its shard
	// is full. Writes that replace an existing key always succeed. Either
	// way the store first drops any expired entries among sixteen entries
	// of the shard (all of them, in a shard of sixteen or fewer).
	//
	// When false (the default), if none of those was expired, the store
	// evicts a live entry, so that a flood of new sessions cannot log out
	// returning visitors. A new key is on probation until its first read
	// (Get or GetTouch); a Replace of a key that was read makes the new key
	// read too. The sessions core writes a session in the request that
	// creates it and reads it in every later one, so the keys on probation
	// are those of visitors who never came back (or have not yet). The
	// store evicts the key that has been on probation longest; only when
	// the shard holds no key on probation but the one being written does
	// it evict a key that was read: the sampled entry with the earliest
	// Expires, approximately the least recently active session, in the
	// manner of Redis's sampled LRU eviction. This is a guarantee, not a
	// likelihood: however many new keys are written and never read, no key
	// that was read is evicted while the read keys of its shard (counting
	// expired ones not yet removed) are fewer than the shard's bound,
	// MaxEntries/Shards; and a read that returns an entry has protected it
	// (a read racing the key's eviction reports it missing). Keys fall on
	// the shards unevenly: keep the number of returning sessions well below
	// MaxEntries. A flood that comes back for every session it creates
	// looks like visitors and competes with them by Expires: limit how many
	// sessions a client may create in front of the store.
	//
	// When true, the store never evicts a live entry: the write fails with
	// backend.ErrFull. It may do so while the shard still holds expired
	// entries the sweeper has not removed yet. Keys are not queued on
	// probation then (reads still mark them, at no cost that matters).
	RejectWhenFull bool

	// SweepInterval is how often a background goroutine removes expired
	// entries and dead owner index records. Default (zero):
	// DefaultSweepInterval (1 minute). A negative value disables the
	// background sweeper: expired entries are then only removed by Sweep,
	// by eviction, and by writes (Touch included) to their keys; dead index
	// records only by Sweep, by AddOwned and RemoveOwned.
	SweepInterval time.Duration

	// Now is the clock used for every expiry decision, including the
	// sweeper's. Default (nil): time.Now.
	Now func() time.Time

	// Seal asks the sessions core to seal what it stores here, as it does
	// for stores outside the process (see backend.InProcess). Default
	// false: the store keeps its bytes in this process's memory only, and
	// the core leaves them unsealed, saving about a microsecond per
	// request; a dump of the process's memory, the one way to read them,
	// also yields the tokens of the requests in flight.
	Seal bool
}

// Store is an in-process backend.Store. Create it with New; the zero Store is
// not usable. It is safe for concurrent use by many goroutines.
type Store struct {
	shards   []shard
	mask     uint64
	seed     maphash.Seed
	perShard int
	reject   bool
	seal     bool
	now      func() time.Time

	// The owner index (backend.Indexer), sharded by owner like the entries
	// by key. records counts the records of every owner shard, live or
	// dead; it exceeds maxRecords only while an AddOwned at the bound
	// takes back the count it added (see AddOwned).
	owners     []ownerShard
	records    atomic.Int64
	maxRecords int64

	exp expiry // told of expired entries (NotifyExpired)

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// cacheLine is the cache line size of amd64 and of most arm64 processors.
// shard and ownerShard end in that many bytes of padding, so that no cache
// line holds fields of two neighbours in their slice, wherever the slice
// begins: the allocator does not align it to a line (a slice of more than
// 512 bytes that holds pointers begins 8 bytes past one).
const cacheLine = 64

// shard is one part of the store. No operation on one key takes a lock:
// slots are looked up in m, a sync.Map whose Load writes nothing shared; a
// deadline slides by compare-and-swap on the entry; a write replaces the
// slot's entry pointer by compare-and-swap (a conditional write succeeds only
// if the entry it checked is still the one stored). Only the admission of
// a new key takes mu (see admit), and the sweeper's compaction of q. The
// fields that every new key writes (mu, n, onProbation, q) are kept a cache
// line away from m, which every operation reads, so that creating sessions
// does not slow down the reads of a shard on other cores. On 64-bit
// platforms (with Go 1.26) a shard is 240 bytes, padding included.
type shard struct {
	m           sync.Map        // key -> *slot
	_           [cacheLine]byte // keep m off the cache lines of the fields below
	mu          sync.Mutex      // held to admit a new key and to evict, so that they take turns
	n           atomic.Int64    // keys with a live or expired entry (slots not dead)
	onProbation atomic.Int64    // keys queued in q that have not left probation (see probation.go)
	q           probationQueue  // keys on probation, oldest first; guarded by mu
	_           [cacheLine]byte // keep neighbouring shards off each other's cache lines
}

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
		seal:     opts.Seal,
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

// Close stops the sweeper, waits for it to exit and releases the stored
// entries and the owner index. After Close every operation of
// backend.Store and of its capabilities returns backend.ErrClosed (unless
// its context is done: that error comes first), and Len and Sweep return 0.
// Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.wg.Wait()
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.m.Clear()
			sh.n.Store(0)
			sh.onProbation.Store(0)
			sh.q = probationQueue{}
			sh.mu.Unlock()
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

// Len returns the number of stored entries: the live ones plus the expired
// ones that neither the sweeper nor a write has removed yet. It is meant
// for watching how full the store is against Options.MaxEntries: once a
// shard is full, a write of a new key into it evicts an entry or, with
// Options.RejectWhenFull, fails; keys fall on the shards unevenly, so that
// starts somewhat before Len reaches MaxEntries. It adds up per-shard counts
// one after another, so under concurrent writes it is not a snapshot. After
// Close it returns 0.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		n += int(s.shards[i].n.Load())
	}
	return n
}

// shardIndex returns the index of key's shard in s.shards.
func (s *Store) shardIndex(key string) uint64 {
	return maphash.String(s.seed, key) & s.mask
}

// shard returns key's shard.
func (s *Store) shard(key string) *shard {
	return &s.shards[s.shardIndex(key)]
}

// nowNanos returns the store's clock in Unix nanoseconds.
func (s *Store) nowNanos() int64 {
	return toNanos(s.now())
}
