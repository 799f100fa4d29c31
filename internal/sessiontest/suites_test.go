package sessiontest

import (
	"testing"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// The suites on the memory store, run here too so that a change of the
// suites is tried at once (backend/memory and backend/redis run them for
// their stores).
func TestWritesOnMemory(t *testing.T) {
	RunWrites(t, func(t *testing.T) backend.Store {
		st := memory.New(memory.Options{})
		t.Cleanup(func() { st.Close() })
		return st
	})
}
