package sessions

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
)

// csrfSecretLen is the size of a session's CSRF secret.
const csrfSecretLen = 32

// CSRFConfig configures Manager.CSRF. Its zero value is all defaults.
type CSRFConfig struct {
	// Header is the request header that carries the token, for scripts.
	// Default "X-CSRF-Token".
	Header string

	// FormField is the form field that carries the token, for HTML forms.
	// Default "csrf_token".
	FormField string

	// ErrorHandler answers a request whose token is missing or wrong.
	// Default: 403 Forbidden with a generic body, and a warning in the log
	// with the session's handle.
	ErrorHandler http.Handler
}

func (c *CSRFConfig) withDefaults() error {
	if c.Header == "" {
		c.Header = "X-CSRF-Token"
	}
	if c.FormField == "" {
		c.FormField = "csrf_token"
	}
	if !isCookieName(c.Header) {
		return fmt.Errorf("%w: CSRF header %q is not a valid header name", ErrInvalidConfig, c.Header)
	}
	return nil
}

// CSRFToken returns a synchronizer token for this session, to put in forms
// (a hidden field named CSRFConfig.FormField) or to send from scripts (the
// CSRFConfig.Header header); Manager.CSRF checks it on unsafe requests.
//
// The session holds one random 256-bit secret, made on the first call (which
// makes a new session worth storing: it is saved at the next commit). Each
// call returns the secret masked with a fresh random pad, so that no two
// pages carry the same string (against BREACH-style compression attacks).
// A token stays valid until the session ends or its privilege changes:
// periodic rotation (Config.RotateEvery) keeps the secret, so forms already
// rendered keep working, but Migrate gives the session a new secret (as
// Django rotates it at login), so that a token an attacker obtained before
// the login (CSRF token fixation) is refused after it. Call CSRFToken after
// Migrate for the pages the login response renders.
func (s *Session[T]) CSRFToken() string {
	if s.csrf == nil {
		s.csrf = newCSRFSecret()
	}
	var buf [2 * csrfSecretLen]byte
	_, _ = rand.Read(buf[:csrfSecretLen])
	for i := 0; i < csrfSecretLen; i++ {
		buf[csrfSecretLen+i] = buf[i] ^ s.csrf[i]
	}
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

// newCSRFSecret returns a fresh random secret.
func newCSRFSecret() []byte {
	b := make([]byte, csrfSecretLen)
	_, _ = rand.Read(b)
	return b
}

// validCSRF reports, in constant time, whether token is one CSRFToken made
// for this session.
func (s *Session[T]) validCSRF(token string) bool {
	if s.csrf == nil || len(token) != base64.RawURLEncoding.EncodedLen(2*csrfSecretLen) {
		return false
	}
	var buf [2 * csrfSecretLen]byte
	if n, err := base64.RawURLEncoding.Decode(buf[:], []byte(token)); err != nil || n != len(buf) {
		return false
	}
	var secret [csrfSecretLen]byte
	for i := 0; i < csrfSecretLen; i++ {
		secret[i] = buf[i] ^ buf[csrfSecretLen+i]
	}
	return subtle.ConstantTimeCompare(secret[:], s.csrf) == 1
}

// CSRF is middleware against cross-site request forgery, to be placed
// inside Handler (it needs the session): for every request whose method is
// not GET, HEAD, OPTIONS or TRACE it requires a token from the session's
// CSRFToken, in the CSRFConfig.Header header or the CSRFConfig.FormField form
// field, compared in constant time. A request without a valid token is
// answered by CSRFConfig.ErrorHandler (403 by default) and next does not run.
//
// SameSite=Lax cookies (the default) already keep most cross-site POSTs
// from carrying the session; CSRF adds a defence that does not depend on the
// browser. A request whose session token came in a header (see
// HeaderConfig) needs no CSRF token: a browser never attaches that header to
// a cross-site request on its own. One whose token came in the cookie does.
func (m *Manager[T]) CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			next.ServeHTTP(w, r)
			return
		}
		s := m.Get(r)
		if s.viaHeader {
			// The token came in a header, which a browser never attaches
			// to a cross-site request by itself: no forgery possible.
			next.ServeHTTP(w, r)
			return
		}
		token := r.Header.Get(m.cfg.CSRF.Header)
		if token == "" {
			token = r.PostFormValue(m.cfg.CSRF.FormField)
		}
		if s.validCSRF(token) {
			next.ServeHTTP(w, r)
			return
		}
		if m.cfg.CSRF.ErrorHandler != nil {
			m.cfg.CSRF.ErrorHandler.ServeHTTP(w, r)
			return
		}
		m.cfg.Logger.WarnContext(r.Context(), "sessions: CSRF token missing or invalid", "session", s.String(),
			"method", r.Method, "path", r.URL.Path)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
	})
}
