package memory

// Test hooks, in the manner of the standard library: they exist only while
// the package's tests are built.

// EvictionSample is evictionSample, for the tests of package memory_test.
const EvictionSample = evictionSample

// IndexLen returns the number of records in the owner index
// (backend.Indexer): the live ones plus the dead ones the sweeper has not
// removed yet. After Close it returns 0.
func (s *Store) IndexLen() int {
	return int(s.records.Load())
}

// QueueSlack is queueSlack, for the tests of package memory_test.
const QueueSlack = queueSlack

// Probation returns, summed over the shards, how many entries the
// probation queues hold (stale ones included), how much room their arrays
// have, and how many keys are counted on probation. It takes each shard's
// mutex in turn.
func (s *Store) Probation() (queued, capacity, onProbation int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		queued += sh.q.queued()
		capacity += cap(sh.q.keys)
		onProbation += int(sh.onProbation.Load())
		sh.mu.Unlock()
	}
	return queued, capacity, onProbation
}

// SetTestHookClaimed makes eviction call f between its claim of a key on
// probation and its removal, until restore is called. Tests using it must
// not run in parallel.
func SetTestHookClaimed(f func(key string)) (restore func()) {
	testHookClaimed = f
	return func() { testHookClaimed = nil }
}

// Dump returns every key and value the store holds, and every owner and
// key of its owner index, as a dump of the process's memory would show
// them.
func (s *Store) Dump() [][]byte {
	var out [][]byte
	for i := range s.shards {
		s.shards[i].m.Range(func(k, v any) bool {
			out = append(out, []byte(k.(string)))
			if e := v.(*slot).p.Load(); e != nil && e != dead {
				out = append(out, e.export(e.expires.Load()).Value)
			}
			return true
		})
	}
	for i := range s.owners {
		osh := &s.owners[i]
		osh.mu.RLock()
		for owner, set := range osh.m {
			out = append(out, []byte(owner))
			for key := range set.keys {
				out = append(out, []byte(key))
			}
		}
		osh.mu.RUnlock()
	}
	return out
}
