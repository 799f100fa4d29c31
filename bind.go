package sessions

import (
	"crypto/sha256"
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

// binding returns the SHA-256 of Config.Bind's value for r: only the hash is
// stored, so the store holds no User-Agent or address.
func (m *Manager[T]) binding(r *http.Request) []byte {
	sum := sha256.Sum256([]byte("sessions-bind\x00" + m.cfg.Bind(r)))
	return sum[:]
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
