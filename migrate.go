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
	if err := m.beforeOwnerWrite(ctx, s, key); err != nil {
		return err
	}
	e := backend.Entry{
		Value:   m.envelope(s, now, data),
		Expires: m.idleDeadline(now, s.absolute),
		Limit:   s.absolute,
		Version: s.version + 1,
	}
	if err := m.move(ctx, s.key, s.version, key, e); err != nil {
		return fmt.Errorf("sessions: migrate session %s: %w", s.Handle(), err)
	}
	if s.forwarded {
		// The request came with a rotated-away token that still forwards
		// here: end it now, as Migrate promises for the request's token.
		if err := m.store.Delete(ctx, storeKey(s.token)); err != nil {
			m.logger.WarnContext(ctx, "sessions: removing a rotated token's forward record failed", "session", s.Handle(), "err", err)
		}
	}
	oldKey := s.key
	s.token, s.key, s.issued, s.expires, s.forwarded = token, key, now, e.Expires, false
	s.version, s.loaded = e.Version, data
	m.afterOwnerWrite(ctx, s, oldKey)
	m.setCookie(w, s, now)
	m.logger.InfoContext(ctx, "sessions: migrated", "session", s.Handle())
	return nil
}

// rotate gives s a new token because Config.RotateEvery has passed, like
// Migrate, except that the old key keeps a forward record to the new one for
// Config.RotateGrace, for requests already sent with the old cookie. The new
// key is written first and the old one replaced by its forward record only if
// it still holds the version loaded, so that at no moment does neither token
// work. The session's data is written as loaded: the request's changes are
// saved by Save as usual.
func (m *Manager[T]) rotate(ctx context.Context, w http.ResponseWriter, s *Session[T], now time.Time) error {
	if !now.Before(s.absolute) {
		return nil
	}
	token := newToken()
	key := storeKey(token)
	if err := m.beforeOwnerWrite(ctx, s, key); err != nil {
		return err
	}
	e := backend.Entry{
		Value:   m.envelope(s, now, s.loaded),
		Expires: m.idleDeadline(now, s.absolute),
		Limit:   s.absolute,
		Version: s.version + 1,
	}
	graceEnd := now.Add(m.rotateGrace)
	if graceEnd.After(s.expires) {
		graceEnd = s.expires
	}
	forward := backend.Entry{
		Value:   appendForward(nil, key),
		Expires: graceEnd,
		Limit:   graceEnd, // a load through it never extends it
		Version: s.version + 1,
	}
	var err error
	if m.cas != nil {
		if err = m.cas.SetIf(ctx, key, 0, e); err == nil {
			if err = m.cas.SetIf(ctx, s.key, s.version, forward); err != nil {
				if derr := m.store.Delete(ctx, key); derr != nil {
					err = fmt.Errorf("%w (and removing the new key failed: %v)", err, derr)
				}
			}
		}
	} else if err = m.store.Set(ctx, key, e); err == nil {
		err = m.store.Set(ctx, s.key, forward)
	}
	if err != nil {
		return err
	}
	oldKey := s.key
	s.token, s.key, s.issued, s.expires = token, key, now, e.Expires
	s.version = e.Version
	m.afterOwnerWrite(ctx, s, oldKey)
	m.setCookie(w, s, now)
	m.logger.InfoContext(ctx, "sessions: rotated", "session", s.Handle())
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
