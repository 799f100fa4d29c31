package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Handler is the net/http middleware: it loads the request's session before
// next runs (Get returns it) and commits it just before the response header
// goes out, on the first WriteHeader, Write, ReadFrom or Flush, or when next
// returns without writing. Commit means Save: the store write and the
// Set-Cookie header happen before the first byte of the header. Changes made
// to the session after that point are lost: make them before writing the
// response, or call Save yourself.
//
// If loading fails (the store is down), next does not run and Config's
// ErrorHandler answers. If the commit fails, the response next was about to
// write is dropped (the header map goes back to what it was before next ran,
// later writes fail) and the ErrorHandler answers instead; a token the
// session got during the request (Migrate, rotation) is still sent.
//
// The ResponseWriter next receives keeps http.Flusher, http.Hijacker and
// io.ReaderFrom, and has Unwrap, so http.NewResponseController works through
// it. Hijack commits the session first, but a Set-Cookie can no longer be
// sent on a hijacked connection unless the handler writes it itself. Status
// codes 100-199 other than 101 pass through without committing.
func (m *Manager[T]) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.TakeTurns {
			defer m.takeTurn(r)()
		}
		s, err := m.Load(w, r)
		if err != nil {
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		st := &handlerState[T]{rc: requestCommit[T]{m: m, s: s, r: r, w: w, token: s.token}} // one allocation for both
		rc, cw := &st.rc, &st.cw
		if h := w.Header(); len(h) > 0 {
			rc.header = h.Clone() // what outer middleware and Load set
		}
		*cw = commitWriter{rw: w, c: rc}
		r = r.WithContext(context.WithValue(r.Context(), m.ctxKey, s))
		rc.r = r
		next.ServeHTTP(cw, r)
		// Commit if next wrote nothing; either way, a failed commit means
		// nothing of next's response went out, so the ErrorHandler answers.
		if err := cw.doCommit(); err != nil {
			rc.restoreHeader() // also drops what next set after its writes failed
			m.cfg.ErrorHandler(w, r, err)
		}
	})
}

// takeTurn waits, at most Config.TurnWait, until no other request of r's
// session is between its load and its commit in this Manager, and returns
// the function that ends r's turn. A request without a session cookie has
// no line to wait in; one whose wait ends without its turn goes on.
func (m *Manager[T]) takeTurn(r *http.Request) (done func()) {
	var buf [maxCandidates]candidate
	cands, _ := m.tokens(r, buf[:])
	if len(cands) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), m.cfg.TurnWait)
	defer cancel()
	key := m.keys.get(cands[0].token, storeKey)
	l, err := m.turns.lock(ctx, key)
	if err != nil {
		m.cfg.Logger.WarnContext(r.Context(), "sessions: no turn within TurnWait; going on without it", "wait", m.cfg.TurnWait)
		return func() {}
	}
	return func() { m.turns.unlock(key, l) }
}

// handlerState is what Handler keeps for one request: its commit and the
// ResponseWriter that runs it.
type handlerState[T any] struct {
	rc requestCommit[T]
	cw commitWriter
}

// requestCommit is the middleware's commit of one request's session.
type requestCommit[T any] struct {
	m      *Manager[T]
	s      *Session[T]
	r      *http.Request
	w      http.ResponseWriter
	token  string      // the token the session had when the handler started
	header http.Header // the header map before the handler ran
}

func (rc *requestCommit[T]) commit() error {
	return rc.m.save(rc.r.Context(), rc.w, rc.s, rc.m.cfg.OnConflict)
}

// restoreHeader puts back the header map as it was before the handler ran,
// keeping the last session cookie the Manager set during the request: the
// new token of a Migrate or rotation that landed (the old token is dead, so
// the browser must get the new one even with an error response), or the
// clearing of a cookie whose session is gone.
func (rc *requestCommit[T]) restoreHeader() {
	h := rc.w.Header()
	last := lastCookieLine(h, rc.m.cfg.Cookie.Name)
	tokenHeader, sentToken := h[rc.m.cfg.Header.Response]
	clear(h)
	for k, v := range rc.header {
		h[k] = v
	}
	if last != "" && last != lastCookieLine(h, rc.m.cfg.Cookie.Name) {
		dropCookieLines(h, rc.m.cfg.Cookie.Name)
		h.Add("Set-Cookie", last)
	}
	if sentToken {
		h[rc.m.cfg.Header.Response] = tokenHeader
		h.Set("Cache-Control", "no-store")
	}
}

// lastCookieLine returns the last Set-Cookie line of h for the cookie named
// name, or "".
func lastCookieLine(h http.Header, name string) string {
	lines := h.Values("Set-Cookie")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], name+"=") {
			return lines[i]
		}
	}
	return ""
}

// dropCookieLines removes h's Set-Cookie lines for the cookie named name.
func dropCookieLines(h http.Header, name string) {
	lines := h.Values("Set-Cookie")
	kept := lines[:0:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, name+"=") {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// defaultErrorHandler logs err and answers with a body the client can
// read: 409 for a conflict, 401 for a session that ended, 403 at the owner
// limit, 504 when the store could not tell whether a write was applied, 500
// for anything else. A conflict or an ended session is an answer
// the application's policy chose, not a fault: it is logged at Warn; the
// rest at Error. The body is an RFC 9457 problem (application/problem+json)
// when the request accepts JSON, plain text otherwise.
func (m *Manager[T]) defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code, level, detail := http.StatusInternalServerError, slog.LevelError, "The session could not be loaded or saved. Try again later."
	switch {
	case errors.Is(err, ErrConflict):
		code, level = http.StatusConflict, slog.LevelWarn
		detail = "Another request changed the session at the same time; this request's change was not saved. Retry it."
	case errors.Is(err, ErrGone):
		code, level = http.StatusUnauthorized, slog.LevelWarn
		detail = "The session ended (logged out, expired or replaced). Start again."
	case errors.Is(err, ErrTooManySessions):
		code, level = http.StatusForbidden, slog.LevelWarn
		detail = "Too many sessions for this account. End one of them first."
	case errors.Is(err, ErrUnknownOutcome):
		code = http.StatusGatewayTimeout
		detail = "The session store did not answer in time: the change may or may not have been saved. Reload before you retry."
	}
	m.cfg.Logger.Log(r.Context(), level, "sessions: request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	writeProblem(w, r, code, detail)
}

// writeProblem answers with code and detail: as an RFC 9457 problem
// document when the request accepts JSON, as plain text otherwise. Neither
// is to be cached.
func writeProblem(w http.ResponseWriter, r *http.Request, code int, detail string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if acceptsJSON(r) {
		body, _ := json.Marshal(struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}{"about:blank", http.StatusText(code), code, detail})
		h.Set("Content-Type", "application/problem+json")
		w.WriteHeader(code)
		_, _ = w.Write(append(body, '\n'))
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, http.StatusText(code)+": "+detail+"\n")
}

// acceptsJSON reports whether r's Accept header names JSON (application/json,
// application/problem+json or any +json type).
func acceptsJSON(r *http.Request) bool {
	for _, line := range r.Header.Values("Accept") {
		for _, part := range strings.Split(line, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
				return true
			}
		}
	}
	return false
}
