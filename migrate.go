package sessions

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Migrate gives the session a new token, keeping its Data, handle, creation
// time and deadlines, and sets the new cookie on w. The old token finds
// nothing from that moment on. Call it whenever the session's privilege
// changes, above all right after login, so that a token an attacker planted
// or saw before (session fixation) is worthless afterwards.
//
// On a new session Migrate stores it at once, even if its Data is the zero
// T. The current Data is written as part of the move, so Save has nothing
// left to write afterwards unless Data changes again.
//
// On stores that implement backend.Replacer the move is one atomic step. On
// others the new key is written first and the old one deleted after, so for a
// moment both tokens work, never neither. Migrate returns ErrConflict, and
// changes nothing, when another request changed, migrated or destroyed the
// session since this one loaded it (on stores that can tell), and a wrapped
// error when the store fails; s is then unchanged.
func (m *Manager[T]) Migrate(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	return m.migrate(r.Context(), w, s)
}

func (m *Manager[T]) migrate(ctx context.Context, w http.ResponseWriter, s *Session[T]) error {
	data, err := m.encode(s)
	if err != nil {
		return err
	}
	if s.isNew {
		return m.create(ctx, w, s, data)
	}
	now := m.now()
	if !now.Before(s.absolute) {
		return fmt.Errorf("%w: its absolute deadline %v has passed", ErrExpired, s.absolute)
	}
	token := newToken()
	key := storeKey(token)
	e := backend.Entry{
		Value:   m.envelope(s, now, data),
		Expires: m.idleDeadline(now, s.absolute),
		Limit:   s.absolute,
		Version: s.version + 1,
	}
	if err := m.move(ctx, s.key, s.version, key, e); err != nil {
		return fmt.Errorf("sessions: migrate session %s: %w", s.Handle(), err)
	}
	s.token, s.key, s.issued, s.expires = token, key, now, e.Expires
	s.version, s.loaded = e.Version, data
	m.setCookie(w, s, now)
	m.logger.DebugContext(ctx, "sessions: migrated", "session", s.Handle())
	return nil
}

// move stores e under newKey and removes oldKey, which must still hold
// version old, as atomically as the store allows.
func (m *Manager[T]) move(ctx context.Context, oldKey string, old uint64, newKey string, e backend.Entry) error {
	if m.replacer != nil {
		return m.replacer.Replace(ctx, oldKey, old, newKey, e)
	}
	if m.cas == nil {
		if err := m.store.Set(ctx, newKey, e); err != nil {
			return err
		}
		return m.store.Delete(ctx, oldKey)
	}
	if err := m.cas.SetIf(ctx, newKey, 0, e); err != nil {
		return err
	}
	// A conditional write with a past deadline is a conditional delete: it
	// fails if another request changed the old session meanwhile.
	gone := backend.Entry{Expires: time.Unix(0, 1), Version: old}
	if err := m.cas.SetIf(ctx, oldKey, old, gone); err != nil {
		// Undo: the old session stays the live one.
		if derr := m.store.Delete(ctx, newKey); derr != nil {
			return fmt.Errorf("%w (and removing the new key failed: %v)", err, derr)
		}
		return err
	}
	return nil
}
