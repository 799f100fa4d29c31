package sessions

import (
	"crypto/subtle"
	"net/http"
)

// SuspiciousEvent describes a request that looks like an attack on a
// session. It never holds the token.
type SuspiciousEvent struct {
	// Handle names the session the request tried to use.
	Handle string
	// Reason says what was wrong, in words.
	Reason string
}

// bindingMatches reports whether s's stored binding matches the request's
// value (s.bindIn), in constant time. Only a keyed hash of the value is
// stored (see sealer.bind), so the store holds no User-Agent or address,
// nor anything to test guesses against. A session stored before Bind was
// configured is bound now (its binding is written with its next write); one
// stored in format 1 is compared by its old unkeyed hash, and its binding
// is upgraded at its next write.
func (m *Manager[T]) bindingMatches(s *Session[T], format byte) bool {
	want := m.sealerOf(s).bind(s.bindIn)
	switch {
	case s.bind == nil:
		s.bind = want
		return true
	case format == formatV1:
		if subtle.ConstantTimeCompare(s.bind, legacyBinding(s.bindIn)) != 1 {
			return false
		}
		s.bind = want
		return true
	}
	return subtle.ConstantTimeCompare(s.bind, want) == 1
}

// suspicious reports a suspicious request to Config.OnSuspicious.
func (m *Manager[T]) suspicious(r *http.Request, handle, reason string) {
	m.cfg.OnSuspicious(r, SuspiciousEvent{Handle: handle, Reason: reason})
}

// logSuspicious is the default OnSuspicious: a warning with the handle.
func (m *Manager[T]) logSuspicious(r *http.Request, ev SuspiciousEvent) {
	m.cfg.Logger.WarnContext(r.Context(), "sessions: suspicious request", "session", ev.Handle,
		"reason", ev.Reason, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
}
