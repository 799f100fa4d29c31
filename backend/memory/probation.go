package memory

// Probation: which keys eviction takes first.
//
// Every new key starts on probation: its slot gets a ticket and its key goes
// to the back of its shard's queue (shard.q), under the shard's mutex. The
// first read of the key (Get, GetTouch) protects it, lock-free: one atomic
// load of the slot's state, and one atomic OR the first time only. At the
// bound, eviction takes the key at the front of the queue that is still on
// probation (see evictProbation), so that keys nobody came back for go
// before any key that was read, and among themselves oldest first; only
// with no key on probation left does it choose among protected keys by
// sampling (makeRoom).
//
// A slot's state holds, from the low bit up:
//
//   - protectedBit: set by the first read, or from birth for the new key of
//     a Replace whose old key was protected. kill sets it too, on a slot it
//     makes dead: either way the key has left probation, and whoever sets
//     the bit first (an atomic OR reports the state before) takes the key
//     off the shard's count of keys on probation, once.
//   - claimedBit: set by an evictor, under the shard's mutex, by
//     compare-and-swap from the bare ticket (no other bit), on the slot it
//     is about to evict; it then kills the slot whatever entry it holds. A
//     read that finds claimedBit when it protects reports the key missing:
//     so a read that returns an entry has protected the key before any
//     evictor could claim it, and eviction from the queue never takes a key
//     that a read returned.
//   - the ticket (from ticketShift up): the key's place in the queue, 0 for
//     a key never queued (a protected one, or any key of a store that
//     rejects writes when full, which keeps no queue). A queue entry
//     whose ticket is not its slot's (the key was removed and written
//     again: a new slot, with a new ticket of its own) or whose slot has
//     left probation is stale: eviction skips it, compaction drops it.
//
// The queue holds strings that share the bytes of the map's keys: 16 bytes
// an entry. Entries go stale as keys are read or removed, so the queue is
// compacted (under the shard's mutex, in time linear in its length) when it
// holds more than twice the shard's keys on probation plus queueSlack, on a
// new key and after each sweep of the shard; its array shrinks when it is
// four times larger than needed.

const (
	protectedBit = 1 << iota // off probation: read, or removed
	claimedBit               // being evicted from the queue
	ticketShift  = iota      // the ticket is state >> ticketShift
)

// queueSlack is how many stale entries a shard's probation queue may hold
// beyond twice its live ones before it is compacted: small shards need not
// compact at every other write.
const queueSlack = 32

// probationQueue is a shard's queue of keys on probation, oldest first. It is
// guarded by the shard's mutex. keys[head:] are queued; keys[:head] were
// taken and are cleared. The ticket of keys[i] is base+i+1, so that tickets
// never repeat and 0 means none.
type probationQueue struct {
	keys []string
	head int
	base uint64
}

// ticket returns the ticket of keys[i].
func (q *probationQueue) ticket(i int) uint64 { return q.base + uint64(i) + 1 }

// queued returns how many entries are queued, stale ones included.
func (q *probationQueue) queued() int { return len(q.keys) - q.head }

// push queues key at the back. When the array is full and its first half
// or more was taken, it moves the queued entries down instead of growing
// the array (which would copy them too); tickets stay as they were.
func (q *probationQueue) push(key string) {
	if len(q.keys) == cap(q.keys) && q.head > 0 && q.head >= len(q.keys)/2 {
		n := copy(q.keys, q.keys[q.head:])
		clear(q.keys[n:])
		q.base += uint64(q.head)
		q.keys, q.head = q.keys[:n], 0
	}
	q.keys = append(q.keys, key)
}

// protect ends sl's probation, if it is on it: sl holds the entry a read
// is returning. It reports false when an evictor claimed sl first: the
// read must then report the key missing, as it will be once the evictor is
// done. Every read after the first finds protectedBit and writes nothing.
func (sh *shard) protect(sl *slot) bool {
	st := sl.state.Load()
	if st&protectedBit == 0 {
		st = sh.leave(sl)
	}
	return st&claimedBit == 0
}

// leave sets sl's protectedBit and, if that took a queued key off
// probation, counts it out of sh.onProbation. It returns sl's state before.
func (sh *shard) leave(sl *slot) uint64 {
	st := sl.state.Or(protectedBit)
	if st&protectedBit == 0 && st>>ticketShift != 0 {
		sh.onProbation.Add(-1)
	}
	return st
}

// enqueue puts sl, the slot of the new key just admitted to sh, on
// probation: it gives it the next ticket and queues its key, unless it has
// left probation already (a read, a Replace of a protected key or a removal
// got in first). It compacts the queue when stale entries have piled up.
// The caller holds sh.mu.
func (sh *shard) enqueue(key string, sl *slot) {
	q := &sh.q
	if !sl.state.CompareAndSwap(0, q.ticket(len(q.keys))<<ticketShift) {
		return
	}
	q.push(key)
	if p := sh.onProbation.Add(1); q.queued() > 2*int(p)+queueSlack {
		sh.compact()
	}
}

// testHookClaimed, when set (by the package's tests only, while no store
// is in use), is called by evictProbation between its claim of a key and
// the kill: the moment when a read racing the eviction must report the key
// missing.
var testHookClaimed func(key string)

// evictProbation evicts the key at the front of sh's queue that is still
// on probation, and reports whether it removed one; it drops the stale
// entries in front of it. It claims the slot first (see claimedBit), so
// that a read racing it either protected the key before (and the claim
// fails) or reports it missing, then kills the slot whatever entry it
// holds. A slot claimed but removed by another meanwhile counts as room
// made: its remover took it off the shard's count. The caller holds sh.mu.
func (sh *shard) evictProbation() bool {
	q := &sh.q
	for q.head < len(q.keys) {
		i := q.head
		key, t := q.keys[i], q.ticket(i)<<ticketShift
		q.keys[i] = "" // let the key's bytes go with its map entry
		q.head++
		v, ok := sh.m.Load(key)
		if !ok {
			continue // removed
		}
		sl := v.(*slot)
		if !sl.state.CompareAndSwap(t, t|claimedBit) {
			continue // read, removed, or removed and written again
		}
		if testHookClaimed != nil {
			testHookClaimed(key)
		}
		for {
			e := sl.p.Load()
			if e == dead || sh.kill(key, sl, e) {
				return true
			}
			// Rewritten since the load: the key is still on probation,
			// and still claimed.
		}
	}
	// Empty: start the array over.
	q.base += uint64(len(q.keys))
	q.keys, q.head = q.keys[:0], 0
	return false
}

// tidy compacts sh's queue if stale entries have piled up in it or its
// array is far larger than it needs. The caller holds sh.mu.
func (sh *shard) tidy() {
	q := &sh.q
	n := q.queued()
	if n > 2*int(sh.onProbation.Load())+queueSlack || cap(q.keys) > 4*(n+queueSlack) {
		sh.compact()
	}
}

// compact drops the stale entries of sh's queue, keeping the order of the
// others, and gives each key kept a new ticket (tickets still never repeat:
// the new ones come after every ticket given so far). A key that leaves
// probation while compact looks at it is dropped: compare-and-swap on its
// state decides. The array shrinks when it is more than four times what the
// kept entries need. The caller holds sh.mu.
func (sh *shard) compact() {
	q := &sh.q
	next := q.base + uint64(len(q.keys)) // the new base
	j := 0
	for i := q.head; i < len(q.keys); i++ {
		key := q.keys[i]
		v, ok := sh.m.Load(key)
		if ok && v.(*slot).state.CompareAndSwap(q.ticket(i)<<ticketShift, (next+uint64(j)+1)<<ticketShift) {
			q.keys[j] = key // j <= i: in place
			j++
		}
	}
	clear(q.keys[j:])
	q.keys, q.head, q.base = q.keys[:j], 0, next
	if cap(q.keys) > 4*(j+queueSlack) {
		q.keys = append(make([]string, 0, 2*j+queueSlack), q.keys...)
	}
}
