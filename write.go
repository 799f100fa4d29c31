package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/sessionx/sessions/backend"
)

// The write seam: every change of a stored session (create, Save, the
// middleware's commit, Update, Migrate, rotation) passes through write, which
// builds the entry, checks the deadlines, writes conditionally, keeps the
// owner index and sets the cookie, all or nothing:
//
//   - On success the store holds the new state, s is that state (its token,
//     version and stored snapshot updated) and w carries the cookie of any
//     new token or new idle deadline.
//   - On failure the store holds what it held before (the only traces a
//     failed step may leave are owner-index records of a key that holds
//     nothing, which the index tolerates, and an unreachable new key whose
//     removal failed, which expires unseen), w gets no new token, and s is
//     put back to its stored state (revert): nothing the handler put into s
//     is committed afterwards, by the middleware or anyone.
//   - When the session turned out to be gone (logged out or migrated by
//     another request, expired, evicted), nothing is written under the old
//     key, s becomes a new, empty session and w clears the cookie (ended);
//     the error wraps ErrGone.

// step is what a write does to the session's token.
type step int

const (
	// stepSave keeps the token (a new session gets its first one).
	stepSave step = iota
	// stepMigrate gives a new token and ends the old one in the same step.
	stepMigrate
	// stepRotate gives a new token; the old one forwards to it for
	// Config.RotateGrace.
	stepRotate
)

func (st step) String() string {
	switch st {
	case stepMigrate:
		return "migrate"
	case stepRotate:
		return "rotate"
	}
	return "save"
}

// Save writes s to the store if its Data changed since it was loaded, and
// sets its cookie on w when the cookie changes. It writes nothing when
// nothing changed (the idle deadline was already refreshed by Load), and
// nothing for a new session whose Data is still the zero T: an anonymous
// visitor whose handler stores nothing costs no store write and gets no
// cookie. The cookie goes into w's header, so Save must run before the
// response header is written.
//
// Errors, after which nothing was stored and s is back to its stored state
// (the changes made since it was loaded or last saved are dropped, so that
// nothing a failed step put into s is committed later by the middleware):
// ErrConflict when another request changed the session since it was loaded
// (on stores that implement backend.Conditional; others are checked without
// atomicity); ErrGone when the session ended meanwhile (logged out,
// migrated, expired, evicted: then s is a new, empty session and w clears
// the cookie; ErrExpired, which wraps ErrGone, when it reached its absolute
// deadline); ErrTooLarge when the encoded data exceeds Config.MaxSize;
// ErrTooManySessions at Config.MaxSessionsPerOwner with RefuseNew; and a
// wrapped store error when the store fails.
func (m *Manager[T]) Save(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	return m.save(r.Context(), w, s, ConflictError)
}

// save is Save, with policy deciding what a conflict does (the middleware
// passes Config.OnConflict).
func (m *Manager[T]) save(ctx context.Context, w http.ResponseWriter, s *Session[T], policy ConflictPolicy) error {
	if !s.isNew && !s.metaChanged() && m.plainUnchanged(s) {
		return nil // unchanged, known without encoding
	}
	var v T // for a plain T, the value data encodes
	if m.plain {
		v = s.Data
	}
	data, err := m.encode(s)
	if err != nil {
		m.revert(s)
		return err
	}
	if s.isNew {
		// A new session is stored only when it holds something: not for
		// the zero T, nor for one whose maps and slices are only empty.
		if !s.metaChanged() && (bytes.Equal(data, m.zeroData) || blank(reflect.ValueOf(&s.Data).Elem())) {
			return nil
		}
	} else if !s.metaChanged() && !m.changed(s.base.data, data, &s.Data) {
		return nil
	}
	if err := m.write(ctx, w, s, stepSave, data, policy); err != nil {
		return err
	}
	if m.plain && sameSlice(s.base.data, data) && sameBytes(&s.Data, &v) {
		// Stored as encoded (not merged into another value): data is v's.
		m.notePlain(s, &v, data)
		m.decoded.put(s.key, decodedData[T]{data: data, v: v})
	}
	return nil
}

// changed reports whether cur, encoded as data, differs from the value
// encoded as loaded (what was last loaded or saved). Equal encodings mean equal data. Different encodings
// may still hold equal data when T holds maps (most codecs write map entries
// in random order): then the stored bytes are decoded again and compared
// with reflect.DeepEqual, so that an unchanged session is not rewritten.
func (m *Manager[T]) changed(loaded, data []byte, cur *T) bool {
	if bytes.Equal(data, loaded) {
		return false
	}
	if !m.unstable || loaded == nil {
		return true
	}
	var old T
	if err := m.cfg.Codec.Unmarshal(loaded, &old); err != nil {
		return true
	}
	return !reflect.DeepEqual(&old, cur)
}

// mayEncodeUnstably reports whether values of t can hold maps, whose
// encoding may vary between equal values.
func mayEncodeUnstably(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return mayEncodeUnstably(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if mayEncodeUnstably(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// write stores s, whose Data encodes as data, as st says; see the top of
// this file for what it guarantees. policy says what a conflicting save
// does; the other steps fail on a conflict.
func (m *Manager[T]) write(ctx context.Context, w http.ResponseWriter, s *Session[T], st step, data []byte, policy ConflictPolicy) error {
	err := m.tryWrite(ctx, w, s, st, data, policy)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errKeptTheirs):
		return nil
	case policy == conflictRetry && errors.Is(err, ErrConflict):
		// Update reloads and tries again: keep the pending changes.
		return fmt.Errorf("sessions: %s session %s: %w", st, s.Handle(), err)
	case errors.Is(err, ErrConflict):
		m.event(ctx, nil, EventConflict, s.Handle(), conflictReason(err))
	case errors.Is(err, backend.ErrNotFound), errors.Is(err, ErrGone):
		handle := s.Handle()
		if !errors.Is(err, ErrGone) {
			err = ErrGone
		}
		m.ended(w, s)
		return fmt.Errorf("sessions: %s session %s: %w", st, handle, err)
	}
	m.revert(s)
	return fmt.Errorf("sessions: %s session %s: %w", st, s.Handle(), err)
}

func (m *Manager[T]) tryWrite(ctx context.Context, w http.ResponseWriter, s *Session[T], st step, data []byte, policy ConflictPolicy) error {
	now := m.cfg.Now()
	created, absolute, version := s.created, s.absolute, s.version+1
	if s.isNew {
		created, version = now, 1
	}
	if s.isNew || s.life != s.base.life {
		absolute = created.Add(m.absoluteOf(s.life)) // a new session, or a new lifetime
	}
	if !now.Before(absolute) {
		return fmt.Errorf("%w: its absolute deadline %v has passed", ErrExpired, absolute)
	}
	// The target: where and under which token's keys the session goes.
	token, key, issued, bind, seal := s.keyToken, s.key, s.issued, s.bind, s.seal
	newTok := s.isNew || st != stepSave
	if newTok {
		token = newToken()
		key, issued, seal = storeKey(token), now, nil
		if m.cfg.Bind != nil {
			seal = m.seals.get(token, newSealer)
			bind = seal.bind(s.bindIn) // bound under the new token's key
		}
	}
	sealFor := func() *sealer { // the target's keys, when the store is sealed
		if !m.sealing {
			return nil
		}
		if seal == nil {
			if !newTok {
				seal = m.sealerOf(s)
			} else {
				seal = m.seals.get(token, newSealer)
			}
		}
		return seal
	}
	s.ensureHandle()
	if st == stepMigrate && s.csrf != nil {
		// A privilege change: tokens issued before it must not work after
		// it (CSRF token fixation). A failed Migrate reverts this too.
		s.csrf = newCSRFSecret()
	}
	e := backend.Entry{
		Value:   m.envelope(s, created, absolute, issued, bind, data, sealFor(), key),
		Expires: m.saveDeadline(s, st, now, absolute),
		Limit:   absolute,
		Version: version,
		Idle:    m.ownIdle(s.life),
	}
	fresh := s.isNew || st == stepMigrate
	ow, err := m.ownerBefore(ctx, s, key, absolute, fresh, &e)
	if err != nil {
		return err
	}
	switch {
	case s.isNew:
		err = m.st.setIf(ctx, key, 0, now, e)
	case st == stepSave:
		err = m.st.setIf(ctx, s.key, s.version, now, e)
		if errors.Is(err, backend.ErrConflict) && m.followRotation(ctx, s) {
			// Only rotated meanwhile: write at the new key, under its
			// token's keys, with its issue time.
			token, key, seal = s.keyToken, s.key, s.seal
			e.Version, e.Value = s.version+1, m.envelope(s, created, absolute, s.issued, bind, data, sealFor(), key)
			err = m.st.setIf(ctx, s.key, s.version, now, e)
		}
		ownOwner, ownCSRF := s.owner, s.csrf
		ownerChanged, csrfChanged := s.owner != s.base.owner, !bytes.Equal(s.csrf, s.base.csrf)
		if errors.Is(err, backend.ErrConflict) && policy != conflictRetry {
			// Merge in turn with this process's other writes of the
			// session (Updates included), so that only other processes'
			// writes can make a merge meet a newer state; wait at most a
			// little, then merge without the turn.
			wctx, cancel := context.WithTimeout(ctx, mergeTurnWait)
			turnKey := s.key
			if l, lerr := m.updating.lock(wctx, turnKey); lerr == nil {
				defer m.updating.unlock(turnKey, l)
			}
			cancel()
		}
		for tries := 0; errors.Is(err, backend.ErrConflict) && !isMergeConflict(err) && policy != conflictRetry && tries < maxMerges; tries++ {
			// Another request saved meanwhile: merge the two changes, and
			// keep this request's owner and CSRF secret where it set them.
			var mg merged[T]
			if mg, err = m.mergeStored(ctx, s, data); err == nil {
				s.owner, s.csrf = mg.owner, mg.csrf
				if ownerChanged {
					s.owner = ownOwner
				}
				if csrfChanged || mg.csrf == nil {
					s.csrf = ownCSRF
				}
				token, key, seal = s.keyToken, s.key, s.seal
				e.Version = mg.version + 1
				e.Value = m.envelope(s, created, absolute, s.issued, bind, mg.data, sealFor(), key)
				if err = m.st.setIf(ctx, key, mg.version, now, e); err == nil {
					s.Data, data = mg.value, mg.data // (data stays this request's own until a merge lands)
				}
			}
		}
		if errors.Is(err, backend.ErrConflict) && (policy == ConflictKeepTheirs || policy == ConflictOverwrite) {
			err = m.resolveConflict(ctx, s, now, &e, policy)
		}
		issued = s.issued
	case st == stepMigrate:
		err = m.st.replace(ctx, s.key, s.version, key, now, e)
	case st == stepRotate:
		err = m.rotateTo(ctx, s, token, now, e)
	}
	if err != nil {
		return err
	}

	// Stored: s becomes what the store holds.
	oldKey, prevOwner := s.key, s.base.owner
	if newTok && s.forwarded && st == stepMigrate {
		// The request came with a rotated-away token that still forwards
		// here: end it now, as Migrate promises for the request's token.
		if err := m.st.Delete(ctx, storeKey(s.token)); err != nil {
			m.cfg.Logger.WarnContext(ctx, "sessions: removing a rotated token's forward record failed", "session", s.Handle(), "err", err)
		}
	}
	expiresMoved := !e.Expires.Equal(s.expires)
	s0life := s.base.life
	created0 := s.isNew
	if newTok {
		s.token, s.forwarded = token, false
	}
	s.key, s.keyToken, s.seal, s.bind = key, token, seal, bind
	s.issued, s.expires, s.version = issued, e.Expires, e.Version
	s.created, s.absolute, s.isNew = created, absolute, false
	s.base = stored{data: data, owner: s.owner, bind: s.bind, csrf: s.csrf, life: s.life}
	if oldKey == key {
		oldKey = ""
	}
	m.ownerAfter(ctx, s, ow, prevOwner, oldKey)
	if newTok || (expiresMoved && m.persistent(s) && !s.viaHeader) || s.life.Cookie != s0life.Cookie {
		m.sendToken(w, s, now)
	}
	switch {
	case created0:
		m.event(ctx, nil, EventCreated, s.Handle(), "")
	case st == stepMigrate:
		m.event(ctx, nil, EventMigrated, s.Handle(), "")
	case st == stepRotate:
		m.event(ctx, nil, EventRotated, s.Handle(), "")
	}
	return nil
}

// rotateTo stores e under token's key and replaces s's old key by a
// forward record to it, valid for Config.RotateGrace, only if the old key still holds the
// version loaded; if that fails, key is removed again. The new key is
// written first, so that at no moment does neither token work.
func (m *Manager[T]) rotateTo(ctx context.Context, s *Session[T], token string, now time.Time, e backend.Entry) error {
	key := storeKey(token)
	graceEnd := now.Add(m.cfg.RotateGrace)
	if graceEnd.After(s.expires) {
		graceEnd = s.expires
	}
	forward := backend.Entry{
		// The new token, sealed under the old one's key: only requests
		// with the old token can follow it, and a dump learns nothing.
		Value:   appendForward(nil, m.sealerOf(s), s.key, token),
		Expires: graceEnd,
		Limit:   graceEnd, // a load through it never extends it
		Version: s.version + 1,
	}
	if err := m.st.setIf(ctx, key, 0, now, e); err != nil {
		return err
	}
	if err := m.st.setIf(ctx, s.key, s.version, now, forward); err != nil {
		return m.st.undo(ctx, key, err)
	}
	return nil
}

// errKeptTheirs is resolveConflict's word that the stored data won and this
// request's changes were dropped, as the policy asked.
var errKeptTheirs = errors.New("sessions: kept the other request's change")

// resolveConflict handles a conflicting save of e by policy: it gives up
// this request's change (ConflictKeepTheirs) or writes over the other's
// (ConflictOverwrite), but never writes a destroyed or migrated session back.
func (m *Manager[T]) resolveConflict(ctx context.Context, s *Session[T], now time.Time, e *backend.Entry, policy ConflictPolicy) error {
	cur, err := m.st.Get(ctx, s.key)
	if err != nil {
		return err // backend.ErrNotFound: gone
	}
	if isForward(cur.Value) {
		// Rotated meanwhile: writing here would revive the old token.
		return fmt.Errorf("%w: the session was rotated", ErrConflict)
	}
	if policy == ConflictKeepTheirs {
		m.cfg.Logger.WarnContext(ctx, "sessions: conflict: this request's session changes were dropped for another request's", "session", s.Handle())
		m.event(ctx, nil, EventConflict, s.Handle(), "kept the other request's change (ConflictKeepTheirs)")
		return errKeptTheirs
	}
	// ConflictOverwrite: write over the version found, if it is still there.
	e.Version = cur.Version + 1
	if err := m.st.setIf(ctx, s.key, cur.Version, now, *e); err != nil {
		return err
	}
	m.cfg.Logger.WarnContext(ctx, "sessions: conflict: overwrote another request's session changes (OnConflict: ConflictOverwrite)", "session", s.Handle())
	m.event(ctx, nil, EventConflict, s.Handle(), "overwrote the other request's change (ConflictOverwrite)")
	return nil
}

// revert puts s back to its stored state after a failed step: Data decoded
// from the stored encoding (the zero T for a new session), and the owner,
// binding and CSRF secret as stored.
func (m *Manager[T]) revert(s *Session[T]) {
	var data T
	if s.base.data != nil {
		// It decoded when it was loaded; should it fail now, the zero T
		// is still nothing the failed step put there.
		_ = m.cfg.Codec.Unmarshal(s.base.data, &data)
	}
	s.Data = data
	s.owner, s.bind, s.csrf, s.life = s.base.owner, s.base.bind, s.base.csrf, s.base.life
}

// ended makes s a new, empty session because the stored one is gone, and
// tells the client to forget its token (clears the cookie), unless the
// request came with a rotated-away token (its client already holds the
// current one, which may still be alive).
func (m *Manager[T]) ended(w http.ResponseWriter, s *Session[T]) {
	if !s.forwarded {
		m.sendEnd(w, s.viaHeader)
	}
	s.reset()
}

// encode returns the encoding of s.Data, checked against MaxSize.
func (m *Manager[T]) encode(s *Session[T]) ([]byte, error) {
	data, err := m.cfg.Codec.Marshal(&s.Data)
	if err != nil {
		return nil, fmt.Errorf("sessions: encode session data: %w", err)
	}
	if len(data) > m.cfg.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, MaxSize is %d", ErrTooLarge, len(data), m.cfg.MaxSize)
	}
	if len(s.owner) > maxOwnerLen {
		return nil, fmt.Errorf("%w: an owner of %d bytes (at most %d)", ErrTooLarge, len(s.owner), maxOwnerLen)
	}
	return data, nil
}

// envelope returns the stored form of s with the given timestamps,
// binding and data, for key, sealed by sl (not sealed when sl is nil).
func (m *Manager[T]) envelope(s *Session[T], created, absolute, issued time.Time, bind, data []byte, sl *sealer, key string) []byte {
	env := envelope{
		created:  created,
		absolute: absolute,
		issued:   issued,
		handle:   s.handle,
		life:     s.life,
		owner:    s.owner,
		bind:     bind,
		csrf:     s.csrf,
		data:     data,
	}
	return appendEnvelope(make([]byte, 0, envelopeSize(&env)), &env, sl, key)
}

// sealerOf returns the keys of the token of s's key, deriving them once.
func (m *Manager[T]) sealerOf(s *Session[T]) *sealer {
	if s.seal == nil {
		s.seal = m.seals.get(s.keyToken, newSealer)
	}
	return s.seal
}

// Destroy ends the session: it removes it from the store, so that its token
// finds nothing from then on, and sets a cookie on w that deletes the
// session cookie in the browser. s becomes a new, empty session (IsNew), which
// is stored under a new token if the request gives it data.
//
// Destroy on a new session only deletes the cookie. A store failure is
// returned; then the cookie is kept, and s is put back to its stored state as
// after any failed step (see Save), so the session stays as it was stored.
func (m *Manager[T]) Destroy(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	if !s.isNew {
		ctx := r.Context()
		key := s.key
		if m.cfg.RotateEvery > 0 {
			// If another request rotated the session since this one loaded
			// it, s.key now holds a forward record: end the session it
			// points to. (Without rotation there are no forward records,
			// and logout costs no read.)
			var err error
			var p position
			p, _, err = m.current(ctx, s)
			if key = p.key; err != nil && !errors.Is(err, backend.ErrNotFound) {
				m.revert(s)
				return fmt.Errorf("sessions: destroy session %s: %w", s.Handle(), err)
			}
		}
		if err := m.destroyKey(ctx, r, s.base.owner, key, s.Handle(), EventDestroyed, ""); err != nil {
			m.revert(s)
			return err
		}
		for _, k := range []string{s.key, storeKey(s.token)} {
			if k == key {
				continue
			}
			// Forward records of rotated tokens: end them too. The session
			// itself is gone already, so a failure here only leaves a
			// record that forwards to nothing until its grace ends.
			if err := m.st.Delete(ctx, k); err != nil {
				m.cfg.Logger.WarnContext(ctx, "sessions: removing a rotated token's forward record failed", "session", s.Handle(), "err", err)
			}
		}
	}
	m.sendEnd(w, s.viaHeader)
	s.reset()
	return nil
}
