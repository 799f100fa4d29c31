package sessions

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionx/sessions/backend"
)

// newSession returns a new, unsaved session for r, bound to its client
// when Config.Bind is set.
func (m *Manager[T]) newSession(r *http.Request) *Session[T] {
	s := &Session[T]{isNew: true}
	if m.cfg.Bind != nil && r != nil {
		s.bind = m.binding(r)
		s.base.bind = s.bind
	}
	return s
}

// Load returns the session of the request's cookie.
//
// Without a cookie, or when the cookie's token is malformed, unknown,
// expired or destroyed, Load returns a new session (IsNew) and a nil error:
// a malformed token never reaches the store, and an unknown token is never
// adopted (a new session gets a new token when it is first saved). A stored
// session that cannot be decoded (corrupt bytes, a data type changed beyond
// what the codec tolerates) is logged, with its handle only, and also gives a
// new session. So does a session whose binding (Config.Bind) does not match
// the request, which is reported to Config.OnSuspicious.
//
// An error means the store failed (it is down, the request's context ended):
// the session may exist, so Load returns no session rather than a blank one
// that would log the visitor out.
//
// When the session's idle deadline is due for a refresh, Load moves it in the
// store (in the same round trip on stores that implement
// backend.GetToucher) and, for a persistent cookie, sets the refreshed cookie
// on w. When Config.RotateEvery has passed since its token was issued, Load
// gives the session a new token (see Config.RotateEvery) and sets it on w.
func (m *Manager[T]) Load(w http.ResponseWriter, r *http.Request) (*Session[T], error) {
	token, ok := readToken(r, m.cfg.Cookie.Name)
	if !ok {
		return m.newSession(r), nil
	}
	return m.load(w, r, token)
}

// maxForwards bounds how many forward records (left by rotations within
// the grace window) a load follows.
const maxForwards = 3

func (m *Manager[T]) load(w http.ResponseWriter, r *http.Request, token string) (*Session[T], error) {
	ctx := r.Context()
	key := storeKey(token)
	now := m.cfg.Now()
	var (
		e         backend.Entry
		err       error
		touched   bool
		forwarded bool
	)
	// With Bind, the deadline must not move before the binding is checked:
	// a stolen cookie must not keep the victim's session alive.
	slide := m.cfg.Bind == nil
	if slide {
		e, touched, err = m.st.getTouch(ctx, key, now, m.touchThreshold(now), now.Add(m.cfg.IdleTimeout))
	} else {
		e, err = m.st.Get(ctx, key)
	}
	for hops := 0; err == nil; hops++ {
		next, ok := decodeForward(e.Value)
		if !ok {
			break
		}
		if hops == maxForwards || !now.Before(e.Expires) {
			err = backend.ErrNotFound
			break
		}
		// A token rotated within the grace window: serve the session it
		// moved to, without handing this request the new token.
		key, forwarded, touched = next, true, false
		e, err = m.st.Get(ctx, key)
	}
	if errors.Is(err, backend.ErrNotFound) {
		return m.newSession(r), nil
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: load: %w", err)
	}
	env, err := decodeEnvelope(e.Value)
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "sessions: stored session is corrupt; starting a new one", "err", err)
		return m.newSession(r), nil
	}
	if !alive(now, e.Expires, env.absolute) {
		return m.newSession(r), nil
	}
	s := &Session[T]{
		token:     token,
		key:       key,
		handle:    env.handle,
		created:   env.created,
		absolute:  env.absolute,
		issued:    env.issued,
		expires:   e.Expires,
		version:   e.Version,
		owner:     env.owner,
		bind:      env.bind,
		csrf:      env.csrf,
		base:      stored{data: env.data, owner: env.owner, bind: env.bind, csrf: env.csrf},
		forwarded: forwarded,
	}
	if m.cfg.Bind != nil {
		b := m.binding(r)
		if s.bind != nil && subtle.ConstantTimeCompare(s.bind, b) != 1 {
			m.suspicious(r, s.Handle(), "binding mismatch: the request does not match the client the session was bound to")
			return m.newSession(r), nil
		}
		if s.bind == nil { // stored before Bind was configured: bind it now
			s.bind = b
		}
	}
	if err := m.cfg.Codec.Unmarshal(env.data, &s.Data); err != nil {
		m.cfg.Logger.WarnContext(ctx, "sessions: stored session data does not decode; starting a new one",
			"session", s.handle.String(), "err", err)
		return m.newSession(r), nil
	}
	if (!slide || forwarded) && m.touchDue(now, e.Expires, env.absolute) {
		deadline := m.idleDeadline(now, env.absolute)
		switch err := m.st.Touch(ctx, key, now, deadline); {
		case errors.Is(err, backend.ErrNotFound):
			return m.newSession(r), nil // destroyed meanwhile
		case err != nil:
			return nil, fmt.Errorf("sessions: load: refresh idle deadline: %w", err)
		}
		s.expires, touched = deadline, true
	}
	if m.cfg.RotateEvery > 0 && !forwarded && !now.Before(s.issued.Add(m.cfg.RotateEvery)) {
		switch err := m.rotate(ctx, w, s); {
		case errors.Is(err, ErrGone):
			return s, nil // ended meanwhile: s is a new session now
		case err != nil:
			// Not fatal: the session keeps its token until the next request.
			m.cfg.Logger.WarnContext(ctx, "sessions: rotation failed; keeping the token for now", "session", s.Handle(), "err", err)
		default:
			touched = false // rotate set the cookie
		}
	}
	if touched && !m.cfg.Cookie.SessionOnly {
		m.setCookie(w, s, now)
	}
	return s, nil
}

// setCookie writes s's cookie to w, expiring with its idle deadline. A
// session reached through a rotated token's forward record gets no cookie:
// its request carries the old token, and the new one went out with the
// response that rotated it.
func (m *Manager[T]) setCookie(w http.ResponseWriter, s *Session[T], now time.Time) {
	if w != nil && !s.forwarded {
		m.cfg.Cookie.writeCookie(w, s.token, s.expires, now)
	}
}
