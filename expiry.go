package sessions

import (
	"time"

	"github.com/sessionx/sessions/backend"
)

// Expiry: every session has two deadlines, both enforced by the core on each
// load whatever the cookie or the store say.
//
//   - The idle deadline slides with activity: IdleTimeout after the last
//     write. It is what the store's entry expires at (Entry.Expires), so a
//     store forgets an idle session by itself.
//   - The absolute deadline is CreatedAt plus AbsoluteTimeout. It never
//     moves, and the idle deadline is never set past it (Entry.Limit).
//
// Sliding the idle deadline is a store write, so it happens only when due:
// once TouchInterval has passed since the deadline was last written, by a
// load (a touch) or by a save (which keeps the stored deadline until then:
// saveDeadline). A visitor is thus logged out between
// IdleTimeout-TouchInterval and IdleTimeout after their last request.

// idleDeadline returns the idle deadline at now of a session with idle
// timeout idle.
func (m *Manager[T]) idleDeadline(now, absolute time.Time, idle time.Duration) time.Time {
	d := now.Add(idle)
	if d.After(absolute) {
		return absolute
	}
	return d
}

// saveDeadline returns the idle deadline a write of s as st stores at now,
// absolute being its absolute deadline: a save that keeps the token and the
// lifetime keeps the stored deadline while it is not due for a refresh
// (touchDue), as a load does; anything else gets a new one. A save thus
// changes the session's value and version only, which lets a store whose
// deadline is indexed (PostgreSQL, MySQL) update the row in place (a HOT
// update; no index entry written), and sends no new cookie.
func (m *Manager[T]) saveDeadline(s *Session[T], st step, now, absolute time.Time) time.Time {
	if st == stepSave && !s.isNew && s.life == s.base.life && now.Before(s.expires) &&
		!s.expires.After(absolute) && !m.touchDue(now, s.expires, absolute, m.ownIdle(s.life)) {
		return s.expires
	}
	return m.idleDeadline(now, absolute, m.idleOf(s.life))
}

// touchThreshold returns the instant before which a stored idle deadline is
// due for a refresh at now, for the Config's idle timeout (a session with
// its own slides by it in the store: see backend.Slide).
func (m *Manager[T]) touchThreshold(now time.Time) time.Time {
	return now.Add(m.cfg.IdleTimeout - m.cfg.TouchInterval)
}

// touchDue reports whether a session whose stored idle deadline is expires
// should have it moved at now; ownIdle is its own idle timeout (zero: the
// Config's; see Manager.ownIdle).
func (m *Manager[T]) touchDue(now, expires, absolute time.Time, ownIdle time.Duration) bool {
	threshold, _ := backend.Slide(backend.Entry{Idle: ownIdle}, now, m.touchThreshold(now), now.Add(m.cfg.IdleTimeout))
	return expires.Before(threshold) && expires.Before(absolute)
}

// alive reports whether a session with these deadlines is still alive at now.
func alive(now, expires, absolute time.Time) bool {
	return now.Before(expires) && now.Before(absolute)
}
