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
