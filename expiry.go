package sessions

import "time"

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
// once TouchInterval has passed since the deadline was last written. A
// visitor is thus logged out between IdleTimeout-TouchInterval and
// IdleTimeout after their last request.

// idleDeadline returns the idle deadline of a session active at now.
func (m *Manager[T]) idleDeadline(now, absolute time.Time) time.Time {
	d := now.Add(m.cfg.IdleTimeout)
	if d.After(absolute) {
		return absolute
	}
	return d
}

// touchThreshold returns the instant before which a stored idle deadline is
// due for a refresh at now.
func (m *Manager[T]) touchThreshold(now time.Time) time.Time {
	return now.Add(m.cfg.IdleTimeout - m.cfg.TouchInterval)
}

// touchDue reports whether a session whose stored idle deadline is expires
// should have it moved at now.
func (m *Manager[T]) touchDue(now, expires, absolute time.Time) bool {
	return expires.Before(m.touchThreshold(now)) && expires.Before(absolute)
}

// alive reports whether a session with these deadlines is still alive at now.
func alive(now, expires, absolute time.Time) bool {
	return now.Before(expires) && now.Before(absolute)
}
