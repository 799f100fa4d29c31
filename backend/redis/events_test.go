package redis_test

import (
	"testing"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/internal/redistest"
	"github.com/sessionx/sessions/sessionstest"
)

// Lifecycle events and flash messages on a real Redis. (Redis reports no
// expiries: see sessions.EventExpired.)
func TestEventsRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunEvents(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

// Tokens in a header on a real Redis.
func TestHeaderTokensRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunHeaderTokens(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

// Per-session lifetimes on a real Redis: the load script slides by the
// session's own idle timeout.
func TestLifetimeRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunLifetime(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}
