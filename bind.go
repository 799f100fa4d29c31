package sessions

import (
	"crypto/subtle"
	"net/http"
)

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

// suspicious reports a suspicious request to Config.OnEvent.
func (m *Manager[T]) suspicious(r *http.Request, handle, reason string) {
	m.event(r.Context(), r, EventSuspicious, handle, reason)
}
