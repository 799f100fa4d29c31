package sessions

import (
	"context"
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
		s.bindIn = m.cfg.Bind(r) // bound when it is created, under its token's key
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
//
// Each token is read in three steps: fetch the entry (following a rotated
// token's forward record), open it into a Session (deadlines, binding,
// data), and refresh it (slide the idle deadline when due, rotate the token
// when due, send the token).
func (m *Manager[T]) Load(w http.ResponseWriter, r *http.Request) (*Session[T], error) {
	var buf [maxCandidates]candidate
	cands, viaHeader := m.tokens(r, buf[:])
	if len(cands) == 0 {
		if !viaHeader && m.cfg.Cookie.hasLegacy(r) {
			m.cfg.Cookie.deleteLegacy(w, m.cfg.Now())
		}
		s := m.newSession(r)
		s.viaHeader = viaHeader
		return s, nil
	}
	ctx, now := r.Context(), m.cfg.Now()
	var (
		s   *Session[T]
		f   fetched
		via candidate
	)
	for _, c := range cands {
		cf, err := m.fetch(ctx, c.token, now)
		if errors.Is(err, backend.ErrNotFound) {
			continue // unknown or ended: never shadows a live session
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: load: %w", err)
		}
		cs, ok := m.open(r, c.token, cf, now)
		if !ok || (c.legacy && !cs.created.Before(m.started)) {
			continue // a "session" cookie planted after the upgrade: never adopted
		}
		if s == nil {
			s, f, via = cs, cf, c
			continue
		}
		if cs.handle != s.handle {
			m.suspicious(r, cs.Handle(), "two live sessions in one request's cookies: the first one was served")
		}
		break
	}
	if !viaHeader && (via.legacy || m.cfg.Cookie.hasLegacy(r)) {
		m.cfg.Cookie.deleteLegacy(w, now)
	}
	if s == nil {
		s = m.newSession(r)
		s.viaHeader = viaHeader
		return s, nil
	}
	s.viaHeader = viaHeader
	s, err := m.refresh(ctx, w, r, s, f, now)
	if err == nil && via.legacy && !s.isNew && s.token == via.token {
		m.sendToken(w, s, now) // the upgrade: the session's cookie under the new name
	}
	return s, err
}

// maxForwards bounds how many forward records (left by rotations within
// the grace window) a load follows.
const maxForwards = 3

// fetched is an entry as fetch read it.
type fetched struct {
	key       string  // where it is stored
	token     string  // key's token ("" behind a forward record of format 1)
	seal      *sealer // token's keys, once derived
	e         backend.Entry
	forwarded bool // reached through a rotated token's forward record
	slid      bool // the store moved its idle deadline (GetTouch)
	judged    bool // the store judged whether the slide was due (GetTouch): the core does not again
}

// sealer returns the keys of f's token, from c.
func (f *fetched) sealer(c *tokenCache[*sealer]) *sealer {
	if f.seal == nil && f.token != "" {
		f.seal = c.get(f.token, newSealer)
	}
	return f.seal
}

// fetch reads the entry of token. Without Config.Bind it slides the idle
// deadline in the same step when due (backend.GetToucher); with Bind the
// deadline must not move before the binding is checked, so that a stolen
// cookie cannot keep the victim's session alive. A forward record of a
// token rotated within the grace window leads, opened with the token's
// key, to the session it moved to; one that does not open is no session.
func (m *Manager[T]) fetch(ctx context.Context, token string, now time.Time) (fetched, error) {
	f := fetched{key: m.keys.get(token, storeKey), token: token}
	var err error
	if m.cfg.Bind == nil {
		ifBefore, expires := m.touchThreshold(now), now.Add(m.cfg.IdleTimeout)
		if m.st.inProcess {
			f.e, f.slid, err = m.st.getTouch(ctx, f.key, now, ifBefore, expires)
		} else {
			f.e, f.slid, err = m.loads.do(ctx, f.key, func() (backend.Entry, bool, error) {
				return m.st.getTouch(ctx, f.key, now, ifBefore, expires)
			})
		}
		f.judged = true
	} else {
		f.e, err = m.st.Get(ctx, f.key)
	}
	for hops := 0; err == nil; hops++ {
		if !isForward(f.e.Value) {
			return f, nil
		}
		if hops == maxForwards || !now.Before(f.e.Expires) || f.token == "" {
			return f, backend.ErrNotFound
		}
		next, key, ferr := openForward(f.e.Value, f.sealer(&m.seals), f.key)
		if ferr != nil {
			m.cfg.Logger.WarnContext(ctx, "sessions: a forward record does not open; starting a new session", "err", ferr)
			return f, backend.ErrNotFound
		}
		f = fetched{key: key, token: next, forwarded: true}
		f.e, err = m.st.Get(ctx, f.key)
	}
	return f, err
}

// open makes the Session stored in f, or reports false when there is none
// to serve: the entry is corrupt or does not open with its token's key,
// ended at now, bound to another client (reported to Config.OnSuspicious)
// or holds data that does not decode.
func (m *Manager[T]) open(r *http.Request, token string, f fetched, now time.Time) (*Session[T], bool) {
	ctx := r.Context()
	env, err := decodeEnvelope(f.e.Value)
	if err == nil && env.sealed != nil {
		if f.token == "" {
			err = fmt.Errorf("%w: no token to open it with", errNotOpened)
		} else {
			err = env.open(f.sealer(&m.seals), f.key)
		}
	}
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "sessions: stored session is corrupt or does not open; starting a new one", "err", err)
		return nil, false
	}
	if !alive(now, f.e.Expires, env.absolute) {
		return nil, false
	}
	s := &Session[T]{
		token:     token,
		key:       f.key,
		keyToken:  f.token,
		seal:      f.seal,
		handle:    env.handle,
		created:   env.created,
		absolute:  env.absolute,
		issued:    env.issued,
		expires:   f.e.Expires,
		version:   f.e.Version,
		owner:     env.owner,
		bind:      env.bind,
		csrf:      env.csrf,
		life:      env.life,
		base:      stored{data: env.data, owner: env.owner, bind: env.bind, csrf: env.csrf, life: env.life},
		forwarded: f.forwarded,
	}
	if m.cfg.Bind != nil {
		s.bindIn = m.cfg.Bind(r)
		if !m.bindingMatches(s, env.format) {
			m.suspicious(r, s.Handle(), "binding mismatch: the request does not match the client the session was bound to")
			return nil, false
		}
	}
	if err := m.decode(f.key, env.data, &s.Data); err != nil {
		m.cfg.Logger.WarnContext(ctx, "sessions: stored session data does not decode; starting a new one",
			"session", s.handle.String(), "err", err)
		return nil, false
	}
	m.notePlain(s, &s.Data, env.data)
	return s, true
}

// refresh slides s's idle deadline when due and the store did not judge
// that already (a GetTouch the store declined, because the deadline was not
// due by its millisecond clock or the slide came late, is not tried again
// here: the next request slides), rotates its
// token when Config.RotateEvery has passed, and sets the cookie when either
// changed it.
func (m *Manager[T]) refresh(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session[T], f fetched, now time.Time) (*Session[T], error) {
	moved := f.slid
	if !f.judged && m.touchDue(now, s.expires, s.absolute, m.ownIdle(s.life)) {
		deadline := m.idleDeadline(now, s.absolute, m.idleOf(s.life))
		switch err := m.st.Touch(ctx, s.key, now, deadline); {
		case errors.Is(err, backend.ErrNotFound):
			ns := m.newSession(r) // destroyed meanwhile
			ns.viaHeader = s.viaHeader
			return ns, nil
		case err != nil:
			return nil, fmt.Errorf("sessions: load: refresh idle deadline: %w", err)
		}
		s.expires, moved = deadline, true
	}
	if m.cfg.RotateEvery > 0 && !s.forwarded && !now.Before(s.issued.Add(m.cfg.RotateEvery)) {
		switch err := m.rotate(ctx, w, s); {
		case errors.Is(err, ErrGone):
			return s, nil // ended meanwhile: s is a new session now
		case err != nil:
			// Not fatal: the session keeps its token until the next request.
			m.cfg.Logger.WarnContext(ctx, "sessions: rotation failed; keeping the token for now", "session", s.Handle(), "err", err)
		default:
			return s, nil // rotate set the cookie
		}
	}
	if moved && m.persistent(s) && !s.viaHeader {
		m.sendToken(w, s, now) // the cookie's expiry follows the idle deadline
	}
	return s, nil
}
