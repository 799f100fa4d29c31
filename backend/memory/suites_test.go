package memory_test

import (
	"testing"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/sessionstest"
)

func TestMergeThroughManager(t *testing.T) {
	sessionstest.RunMerge(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestEventsThroughManager(t *testing.T) {
	sessionstest.RunEvents(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestHeaderTokensThroughManager(t *testing.T) {
	sessionstest.RunHeaderTokens(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// With Options.Seal, a dump of the store reveals nothing (unsealed, the
// default, it holds the data in the clear: its threat, a dump of the
// process's memory, is out of scope; see backend.InProcess).
func TestDumpSealedMemory(t *testing.T) {
	sessionstest.RunDump(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{Seal: true})
		t.Cleanup(func() { s.Close() })
		return s
	}, func(t *testing.T, st backend.Store) [][]byte { return st.(*memory.Store).Dump() })
}

// The suites with sealing on: rotation grace, Update under contention,
// Migrate, DestroyAll and the owner limit work sealed too.
func TestSuitesSealedMemory(t *testing.T) {
	sealed := func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{Seal: true})
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Concurrency", func(t *testing.T) { sessionstest.RunConcurrency(t, sealed, sessionstest.Options{}) })
	t.Run("Security", func(t *testing.T) { sessionstest.RunSecurity(t, sealed) })
	t.Run("Writes", func(t *testing.T) { sessionstest.RunWrites(t, sealed) })
	t.Run("Merge", func(t *testing.T) { sessionstest.RunMerge(t, sealed) })
	t.Run("Events", func(t *testing.T) { sessionstest.RunEvents(t, sealed) })
}

func TestLifetimeThroughManager(t *testing.T) {
	sessionstest.RunLifetime(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
