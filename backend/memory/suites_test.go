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
