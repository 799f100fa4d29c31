package sessionstest

import (
	"testing"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// plainStore hides every optional capability of the store it wraps: the
// suites must run on it, skipping (and naming) what needs a capability.
type plainStore struct{ backend.Store }

func newMemory(t *testing.T) backend.Store {
	st := memory.New(memory.Options{})
	t.Cleanup(func() { st.Close() })
	return st
}

// The suites on a store with no optional capability. (backend/memory and
// backend/redis run them on their stores.)
func TestSuitesOnStoreWithoutCapabilities(t *testing.T) {
	plain := func(t *testing.T) backend.Store { return plainStore{newMemory(t)} }
	t.Run("Concurrency", func(t *testing.T) { RunConcurrency(t, plain, Options{}) })
	t.Run("Security", func(t *testing.T) { RunSecurity(t, plain) })
	t.Run("Writes", func(t *testing.T) { RunWrites(t, plain) })
	t.Run("Merge", func(t *testing.T) { RunMerge(t, plain) })
	t.Run("Events", func(t *testing.T) { RunEvents(t, plain) })
}

func TestEventsOnMemory(t *testing.T) {
	RunEvents(t, newMemory)
}

// The merge suite on the memory store (backend/memory and backend/redis
// run every suite on their stores too).
func TestMergeOnMemory(t *testing.T) {
	RunMerge(t, newMemory)
}

func TestHeaderTokensOnMemory(t *testing.T) {
	RunHeaderTokens(t, newMemory)
}

func TestLifetimeOnStoreWithoutCapabilities(t *testing.T) {
	RunLifetime(t, func(t *testing.T) backend.Store { return plainStore{newMemory(t)} })
}
