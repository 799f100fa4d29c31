package sessions

import (
	"net/http"
	"strings"
	"time"
)

// HeaderConfig lets the session token travel in a request header instead of
// or beside the cookie, for single-page apps, mobile apps and API clients.
// Its zero value is off: the token travels only in the cookie.
//
// A request brings its token in "Authorization: Bearer <token>" (with
// Bearer; never another scheme, since browsers attach cached Basic
// credentials on their own) or in the header Name. The token reaches the
// client in the response header Response (default "Session-Token"), with
// Cache-Control: no-store, whenever it is new or changes (creation,
// Migrate, rotation); when the session ends (Destroy, or a save that finds
// it gone) that header is sent empty: forget the token. A session whose
// token came in a header never gets a cookie, and needs no CSRF token
// (Manager.CSRF lets it through: a browser never attaches such a header on
// its own to a cross-site request). Everything else is the same as for the
// cookie: unknown tokens are never adopted, tokens are stored hashed, data
// sealed, bindings checked. The token is never read from the URL.
//
// Precedence: when a request brings both a header token and a cookie, the
// header wins and the cookie is not read (a script of the page chose to
// send the header). A client with no session that wants its first token in
// the header sends the header with the value "new" ("Authorization: Bearer
// new", or "Name: new"); otherwise a new session gets a cookie, unless Only.
type HeaderConfig struct {
	// Bearer accepts the token in "Authorization: Bearer <token>".
	Bearer bool

	// Name is a request header that carries the token, such as
	// "Session-Token". Default "": none.
	Name string

	// Response is the response header that carries a new or changed token,
	// or nothing when the session ended. Default "Session-Token".
	Response string

	// Only makes the header the only transport: cookies are neither read
	// nor written, and every new session gets its token in Response (an
	// API that serves no browser pages).
	Only bool
}

// enabled reports whether tokens may travel in a header.
func (h *HeaderConfig) enabled() bool { return h.Bearer || h.Name != "" || h.Only }

// askNew is the value by which a client asks for a new session's token in
// the header.
const askNew = "new"

// fromHeader returns the token the request brings in a header, and whether
// it brings one at all (asked reports the value "new"). A malformed value
// counts as a header brought without a token: the request is an API
// request, and gets a new session in the header.
func (h *HeaderConfig) fromHeader(r *http.Request) (token string, brought, asked bool) {
	var v string
	if h.Bearer {
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			v, brought = strings.TrimSpace(auth[7:]), true
		}
	}
	if !brought && h.Name != "" {
		if vals, ok := r.Header[http.CanonicalHeaderKey(h.Name)]; ok && len(vals) > 0 {
			v, brought = strings.TrimSpace(vals[0]), true
		}
	}
	if !brought {
		return "", false, false
	}
	if v == askNew {
		return "", true, true
	}
	if validToken(v) {
		return v, true, false
	}
	return "", true, false
}

// sendToken hands s's token to the client: in the Response header for a
// session that travels in headers, else in the cookie.
func (m *Manager[T]) sendToken(w http.ResponseWriter, s *Session[T], now time.Time) {
	if w == nil || s.forwarded {
		return
	}
	if s.viaHeader {
		h := w.Header()
		h.Set(m.cfg.Header.Response, s.token)
		h.Set("Cache-Control", "no-store")
		return
	}
	m.cfg.Cookie.writeNamed(w, m.cfg.Cookie.Name, s.token, s.expires, now, m.persistent(s))
}

// sendEnd tells the client that its session ended: an empty Response header,
// or a cookie that deletes the session cookie.
func (m *Manager[T]) sendEnd(w http.ResponseWriter, viaHeader bool) {
	if w == nil {
		return
	}
	if viaHeader {
		h := w.Header()
		h.Set(m.cfg.Header.Response, "")
		h.Set("Cache-Control", "no-store")
		return
	}
	m.cfg.Cookie.writeCookie(w, "", time.Time{}, m.cfg.Now())
}

// tokens returns the tokens r brings, in the order Load tries them,
// appended to buf[:0] (a caller's array of maxCandidates spares an
// allocation), and whether they came in a header (see HeaderConfig for the
// precedence).
func (m *Manager[T]) tokens(r *http.Request, buf []candidate) (cands []candidate, viaHeader bool) {
	cands = buf[:0]
	if m.cfg.Header.enabled() {
		token, brought, _ := m.cfg.Header.fromHeader(r)
		if brought {
			if token != "" {
				cands = append(cands, candidate{token: token})
			}
			return cands, true
		}
		if m.cfg.Header.Only {
			return cands, true
		}
	}
	return m.cfg.Cookie.candidates(r, cands), false
}
