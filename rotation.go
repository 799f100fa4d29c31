package sessions

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sessionx/sessions/backend"
)

// Forward records: a rotated token's key keeps, for Config.RotateGrace, a
// record holding the new token sealed under the old token's key (see
// Manager.rotateTo). These helpers let requests that loaded the session
// before a rotation find it.

// position is where a session is stored: its key, the token of that key
// ("" behind a forward record of format 1), and that token's keys.
type position struct {
	key, token string
	seal       *sealer
}

// current follows the forward chain from s's key and returns where the
// session is stored now, with the entry stored there. A missing key, a
// forward record that does not open, or a chain longer than maxForwards,
// is backend.ErrNotFound.
func (m *Manager[T]) current(ctx context.Context, s *Session[T]) (position, backend.Entry, error) {
	p := position{key: s.key, token: s.keyToken, seal: m.sealerOf(s)}
	for hops := 0; hops <= maxForwards; hops++ {
		e, err := m.st.Get(ctx, p.key)
		if err != nil {
			return p, backend.Entry{}, err
		}
		if !isForward(e.Value) {
			return p, e, nil
		}
		if p.token == "" {
			return p, backend.Entry{}, backend.ErrNotFound
		}
		token, key, err := openForward(e.Value, p.seal, p.key)
		if err != nil {
			return p, backend.Entry{}, backend.ErrNotFound
		}
		p = position{key: key, token: token}
		if token != "" {
			p.seal = m.seals.get(token, newSealer)
		}
	}
	return p, backend.Entry{}, backend.ErrNotFound
}

// openAt decodes the entry e stored at p and opens its sealed part.
func openAt(p position, e backend.Entry) (envelope, error) {
	env, err := decodeEnvelope(e.Value)
	if err == nil && env.sealed != nil {
		if p.seal == nil {
			return env, fmt.Errorf("%w: no token to open it with", errNotOpened)
		}
		err = env.open(p.seal, p.key)
	}
	return env, err
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
	if err != nil || !isForward(cur.Value) || cur.Version != s.version+1 {
		return false
	}
	token, key, err := openForward(cur.Value, m.sealerOf(s), s.key)
	if err != nil || token == "" {
		return false
	}
	p := position{key: key, token: token, seal: m.seals.get(token, newSealer)}
	e, err := m.st.Get(ctx, key)
	if err != nil || e.Version != s.version+1 {
		return false
	}
	env, err := openAt(p, e)
	if err != nil || env.handle != s.handle || string(env.data) != string(s.base.data) {
		return false
	}
	s.key, s.keyToken, s.seal = p.key, p.token, p.seal
	s.version, s.forwarded, s.issued = e.Version, true, env.issued
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
