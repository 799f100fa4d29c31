package sessions

import "time"

// Lifetime is a session's own timeouts and cookie, set with
// Session.SetLifetime: "remember me" on a login form, a shorter life for an
// administrator's session. The zero Lifetime is the Config's.
type Lifetime struct {
	// Idle ends the session after this long without a request. Zero:
	// Config.IdleTimeout. It is capped at Config.MaxIdleTimeout and at the
	// session's absolute timeout.
	Idle time.Duration

	// Absolute ends the session this long after it was created, however
	// active it is. Zero: Config.AbsoluteTimeout. It is capped at
	// Config.MaxAbsoluteTimeout. Changing it moves the session's absolute
	// deadline (counted from its creation), at its next write; a deadline
	// that has passed by then ends the session (ErrExpired).
	Absolute time.Duration

	// Cookie says whether the session's cookie outlives the browser:
	// CookieDefault (as Config.Cookie.SessionOnly says), CookiePersistent
	// or CookieBrowserSession.
	Cookie CookieLife
}

// CookieLife says how long a browser keeps a session's cookie.
type CookieLife uint8

const (
	// CookieDefault follows Config.Cookie.SessionOnly.
	CookieDefault CookieLife = iota
	// CookiePersistent keeps the cookie until the session's idle deadline,
	// across browser restarts ("remember me").
	CookiePersistent
	// CookieBrowserSession makes the cookie end with the browser session.
	CookieBrowserSession
)

// SetLifetime gives the session its own timeouts and cookie, for example
// at login with "remember me":
//
//	if r.PostFormValue("remember") == "on" {
//		s.SetLifetime(sessions.Lifetime{Idle: 14 * 24 * time.Hour, Absolute: 30 * 24 * time.Hour, Cookie: sessions.CookiePersistent})
//	}
//
// It takes effect at the next write (Save, the middleware's commit, Migrate;
// the session is written even if Data did not change), is kept across
// Migrate and rotation, and is enforced by the core on every store: the
// store's read-and-slide uses the session's own idle timeout
// (backend.Entry.Idle). Values past Config.MaxIdleTimeout and
// Config.MaxAbsoluteTimeout are capped there.
func (s *Session[T]) SetLifetime(l Lifetime) { s.life = l }

// Lifetime returns the lifetime given to SetLifetime (as stored, or still
// to be written), or the zero Lifetime: the Config's.
func (s *Session[T]) Lifetime() Lifetime { return s.life }

// idleOf returns the idle timeout that applies to a session of lifetime l.
func (m *Manager[T]) idleOf(l Lifetime) time.Duration {
	idle := m.cfg.IdleTimeout
	if l.Idle > 0 {
		idle = min(l.Idle, m.cfg.MaxIdleTimeout)
	}
	return min(idle, m.absoluteOf(l))
}

// absoluteOf returns the absolute timeout that applies to a session of
// lifetime l.
func (m *Manager[T]) absoluteOf(l Lifetime) time.Duration {
	if l.Absolute > 0 {
		return min(l.Absolute, m.cfg.MaxAbsoluteTimeout)
	}
	return m.cfg.AbsoluteTimeout
}

// persistent reports whether s's cookie outlives the browser session.
func (m *Manager[T]) persistent(s *Session[T]) bool {
	switch s.life.Cookie {
	case CookiePersistent:
		return true
	case CookieBrowserSession:
		return false
	}
	return !m.cfg.Cookie.SessionOnly
}

// ownIdle returns the idle timeout a session of lifetime l has of its own,
// for backend.Entry.Idle: zero when it has the Config's.
func (m *Manager[T]) ownIdle(l Lifetime) time.Duration {
	if l.Idle <= 0 && l.Absolute <= 0 {
		return 0
	}
	if idle := m.idleOf(l); idle != m.cfg.IdleTimeout {
		return idle
	}
	return 0
}
