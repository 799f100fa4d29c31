package sessions

import (
	"context"
	"net/http"

	"github.com/sessionx/sessions/backend"
)

// Forward records: a rotated token's key keeps, for Config.RotateGrace, a
// record naming the key its session moved to (see Manager.rotate). These
// helpers let requests that loaded the session before a rotation find it.

// current returns the key that holds the session now stored under key (key
// itself, or the end of its forward chain) and the entry stored there. A
// missing key, or a chain longer than maxForwards, is backend.ErrNotFound
// with the last key looked at.
func (m *Manager[T]) current(ctx context.Context, key string) (string, backend.Entry, error) {
	for hops := 0; hops <= maxForwards; hops++ {
		e, err := m.st.Get(ctx, key)
		if err != nil {
			return key, backend.Entry{}, err
		}
		next, ok := decodeForward(e.Value)
		if !ok {
			return key, e, nil
		}
		key = next
	}
	return key, backend.Entry{}, backend.ErrNotFound
}

// followRotation is called when a conditional write of s met ErrConflict.
// If the conflict is only that another request rotated the session since s
// was loaded (its key now forwards to a key that holds the very data s was
// loaded with, one version on), it points s at the new key and reports true,
// so that the write can be tried again there. s keeps no cookie: its request
// carries the old token.
func (m *Manager[T]) followRotation(ctx context.Context, s *Session[T]) bool {
	if m.cfg.RotateEvery <= 0 {
		return false // no rotation, no forward records: a plain conflict
	}
	cur, err := m.st.Get(ctx, s.key)
	if err != nil {
		return false
	}
	next, ok := decodeForward(cur.Value)
	if !ok || cur.Version != s.version+1 {
		return false
	}
	e, err := m.st.Get(ctx, next)
	if err != nil || e.Version != s.version+1 {
		return false
	}
	env, err := decodeEnvelope(e.Value)
	if err != nil || env.handle != s.handle || string(env.data) != string(s.base.data) {
		return false
	}
	s.key, s.version, s.forwarded, s.issued = next, e.Version, true, env.issued
	return true
}

// rotate gives s a new token because Config.RotateEvery has passed since its
// token was issued, like Migrate, except that the old key keeps a forward
// record to the new one for Config.RotateGrace, for requests already sent
// with the old cookie (see Manager.rotateTo). The session's data is written
// as stored: the request's changes are saved by Save as usual.
func (m *Manager[T]) rotate(ctx context.Context, w http.ResponseWriter, s *Session[T]) error {
	return m.write(ctx, w, s, stepRotate, s.base.data, ConflictError)
}
