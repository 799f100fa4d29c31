package sessions

import (
	"context"
	"errors"

	"github.com/sessionx/sessions/backend"
)

// Forward records: a rotated token's key keeps, for Config.RotateGrace, a
// record naming the key its session moved to (see Manager.rotate). These
// helpers let requests that loaded the session before a rotation find it.

// current returns the key that holds the session now stored under key: key
// itself, or the end of its forward chain. A missing key is returned as is.
func (m *Manager[T]) current(ctx context.Context, key string) (string, error) {
	for hops := 0; hops <= maxForwards; hops++ {
		e, err := m.store.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			return key, nil
		}
		if err != nil {
			return "", err
		}
		next, ok := decodeForward(e.Value)
		if !ok {
			return key, nil
		}
		key = next
	}
	return key, nil
}

// followRotation is called when a conditional write of s met ErrConflict.
// If the conflict is only that another request rotated the session since s
// was loaded (its key now forwards to a key that holds the very data s was
// loaded with, one version on), it points s at the new key and reports true,
// so that the write can be tried again there. s keeps no cookie: its request
// carries the old token.
func (m *Manager[T]) followRotation(ctx context.Context, s *Session[T]) bool {
	cur, err := m.store.Get(ctx, s.key)
	if err != nil {
		return false
	}
	next, ok := decodeForward(cur.Value)
	if !ok || cur.Version != s.version+1 {
		return false
	}
	e, err := m.store.Get(ctx, next)
	if err != nil || e.Version != s.version+1 {
		return false
	}
	env, err := decodeEnvelope(e.Value)
	if err != nil || env.handle != s.handle || string(env.data) != string(s.loaded) {
		return false
	}
	s.key, s.version, s.forwarded, s.issued = next, e.Version, true, env.issued
	return true
}
