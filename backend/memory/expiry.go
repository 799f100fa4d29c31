package memory

import (
	"sync"

	"github.com/sessionx/sessions/backend"
)

var _ backend.ExpiryNotifier = (*Store)(nil)

// expiry holds the functions told of expired entries (see NotifyExpired).
type expiry struct {
	mu    sync.Mutex
	next  int
	funcs map[int]func(key string, e backend.Entry)
}

// NotifyExpired registers f, which the sweeper calls once for each entry it
// removes because its deadline passed (with the entry as it was), from its
// own goroutine and outside every lock; stop unregisters it. Entries removed
// by Delete, by a write or by eviction are not reported. See
// backend.ExpiryNotifier.
func (s *Store) NotifyExpired(f func(key string, e backend.Entry)) (stop func()) {
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	if s.exp.funcs == nil {
		s.exp.funcs = make(map[int]func(string, backend.Entry))
	}
	id := s.exp.next
	s.exp.next++
	s.exp.funcs[id] = f
	return func() {
		s.exp.mu.Lock()
		delete(s.exp.funcs, id)
		s.exp.mu.Unlock()
	}
}

// expiryFuncs returns the functions registered now.
func (s *Store) expiryFuncs() []func(string, backend.Entry) {
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	out := make([]func(string, backend.Entry), 0, len(s.exp.funcs))
	for _, f := range s.exp.funcs {
		out = append(out, f)
	}
	return out
}
