package sessions

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/sessionx/sessions/backend"
)

// OwnerLimitPolicy says what happens when a session is attributed to an owner
// who already has Config.MaxSessionsPerOwner live sessions.
type OwnerLimitPolicy int

const (
	// EvictLeastRecent, the default, destroys the owner's least recently
	// active other sessions until the new one fits.
	EvictLeastRecent OwnerLimitPolicy = iota
	// RefuseNew makes the save that attributes the new session fail with
	// ErrTooManySessions; the owner's other sessions stay.
	RefuseNew
)

// String returns the policy's name.
func (p OwnerLimitPolicy) String() string {
	switch p {
	case EvictLeastRecent:
		return "EvictLeastRecent"
	case RefuseNew:
		return "RefuseNew"
	}
	return fmt.Sprintf("OwnerLimitPolicy(%d)", int(p))
}

// ErrTooManySessions is returned by Save, Migrate and the middleware's commit
// when a session is attributed to an owner at Config.MaxSessionsPerOwner and
// Config.OwnerLimit is RefuseNew.
var ErrTooManySessions = errors.New("sessions: too many sessions for this owner")

// SessionInfo describes one live session of an owner, without its token.
type SessionInfo struct {
	// Handle names the session; it is the same as Session.Handle.
	Handle string
	// CreatedAt is when the session was created.
	CreatedAt time.Time
	// LastSeen is when the session was last active, to within
	// Config.TouchInterval: the last time its idle deadline was written.
	LastSeen time.Time
	// IdleDeadline and AbsoluteDeadline are when it ends.
	IdleDeadline, AbsoluteDeadline time.Time
}

// Sessions lists the live sessions attributed to owner (see
// Session.SetOwner), most recently active first. It needs a store that
// implements backend.Indexer and returns an error wrapping
// backend.ErrUnsupported otherwise. Index records of sessions that ended are
// removed as they are found.
func (m *Manager[T]) Sessions(ctx context.Context, owner string) ([]SessionInfo, error) {
	list, err := m.ownerSessions(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, len(list))
	for i, o := range list {
		out[i] = o.info
	}
	return out, nil
}

// DestroyAll ends every live session of owner except the one whose handle is
// except ("" for none), and returns how many it ended: "log out everywhere
// else" after a password change. Like Sessions, it needs a backend.Indexer.
func (m *Manager[T]) DestroyAll(ctx context.Context, owner, except string) (int, error) {
	list, err := m.ownerSessions(ctx, owner)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range list {
		if o.info.Handle == except {
			continue
		}
		if err := m.destroyKey(ctx, nil, owner, o.key, o.info.Handle, EventEnded, "DestroyAll"); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ErrNoSuchSession is returned by DestroySession when the owner has no live
// session with the handle given: it never existed, it ended, or it is
// another owner's (the answer is the same, so that it tells nothing about
// other owners' sessions).
var ErrNoSuchSession = errors.New("sessions: no such session for this owner")

// DestroySession ends one of owner's sessions, the one whose handle is
// handle (as listed by Sessions), so that a user can end any of their
// sessions from a "your devices" page (OWASP ASVS 5.0 7.5.2). It refuses,
// with ErrNoSuchSession, a handle that is not one of owner's live sessions:
// pass the owner of the request's own session, never one the client chose.
// Like Sessions, it needs a backend.Indexer. Ending the request's own
// session this way leaves its cookie in the browser (it then finds
// nothing); use Destroy for that.
func (m *Manager[T]) DestroySession(ctx context.Context, owner, handle string) error {
	list, err := m.ownerSessions(ctx, owner)
	if err != nil {
		return err
	}
	for _, o := range list {
		if o.info.Handle == handle {
			return m.destroyKey(ctx, nil, owner, o.key, o.info.Handle, EventEnded, "DestroySession")
		}
	}
	return ErrNoSuchSession
}

// indexID is the name under which owner's sessions are indexed in the
// store: the hex of its hash (see ownerHash), so that no store, and no dump
// of one, holds the owner (often a user id or an e-mail address). The
// index lists session keys per indexID; the readable part of each session
// holds the same hash, which Sessions checks.
func indexID(owner string) string {
	return hex.EncodeToString(ownerHash(owner))
}

type ownedSession struct {
	key  string
	info SessionInfo
}

// ownerSessions returns owner's live sessions, most recently active first.
func (m *Manager[T]) ownerSessions(ctx context.Context, owner string) ([]ownedSession, error) {
	if m.st.indexer == nil {
		return nil, fmt.Errorf("sessions: sessions of an owner: %w", backend.ErrUnsupported)
	}
	if owner == "" {
		return nil, nil
	}
	keys, err := m.st.indexer.Owned(ctx, indexID(owner))
	if err != nil {
		return nil, fmt.Errorf("sessions: sessions of an owner: %w", err)
	}
	// Sessions indexed before owners were hashed for the index are under
	// the owner itself: read them too, until they have all ended.
	legacy, err := m.st.indexer.Owned(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("sessions: sessions of an owner: %w", err)
	}
	for _, k := range legacy {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	now, want := m.cfg.Now(), ownerHash(owner)
	var list []ownedSession
	var dead []string
	for _, key := range keys {
		e, err := m.st.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			dead = append(dead, key)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: sessions of an owner: %w", err)
		}
		if isForward(e.Value) {
			continue // a rotated token's grace record; its session is listed under its own key
		}
		// The readable part is enough: no token is at hand to open the
		// rest, and the owner is only stored hashed there.
		env, err := decodeEnvelope(e.Value)
		if err != nil || !bytes.Equal(env.ownerHash, want) || !alive(now, e.Expires, env.absolute) {
			dead = append(dead, key)
			continue
		}
		last := e.Expires.Add(-m.idleOf(env.life))
		if last.Before(env.created) {
			last = env.created
		}
		s := Session[T]{handle: env.handle}
		list = append(list, ownedSession{key: key, info: SessionInfo{
			Handle: s.Handle(), CreatedAt: env.created, LastSeen: last,
			IdleDeadline: e.Expires, AbsoluteDeadline: env.absolute,
		}})
	}
	if len(dead) > 0 {
		err := m.st.indexer.RemoveOwned(ctx, indexID(owner), dead...)
		if err == nil && len(legacy) > 0 {
			err = m.st.indexer.RemoveOwned(ctx, owner, dead...)
		}
		if err != nil {
			m.cfg.Logger.WarnContext(ctx, "sessions: pruning the owner index failed", "err", err)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].info.LastSeen.After(list[j].info.LastSeen) })
	return list, nil
}

// destroyKey deletes the session stored under key and its index record,
// and tells OnEvent (kind, with reason) once it is gone.
func (m *Manager[T]) destroyKey(ctx context.Context, r *http.Request, owner, key, handle string, kind EventKind, reason string) error {
	if err := m.st.Delete(ctx, key); err != nil {
		return fmt.Errorf("sessions: destroy session %s: %w", handle, err)
	}
	if m.st.indexer != nil && owner != "" {
		if err := m.st.indexer.RemoveOwned(ctx, indexID(owner), key); err != nil {
			m.cfg.Logger.WarnContext(ctx, "sessions: removing from the owner index failed", "session", handle, "err", err)
		}
	}
	m.event(ctx, r, kind, handle, reason)
	return nil
}

// makeRoom enforces MaxSessionsPerOwner before s is attributed to its
// owner: with RefuseNew it fails with ErrTooManySessions when the owner has
// no room; with EvictLeastRecent it returns the sessions to end once s is
// stored (not before: a write that fails must not log out anyone else).
func (m *Manager[T]) makeRoom(ctx context.Context, s *Session[T]) ([]ownedSession, error) {
	if m.cfg.MaxSessionsPerOwner <= 0 || s.owner == "" {
		return nil, nil
	}
	list, err := m.ownerSessions(ctx, s.owner)
	if err != nil {
		return nil, err
	}
	others := list[:0]
	for _, o := range list {
		if o.info.Handle != s.Handle() {
			others = append(others, o)
		}
	}
	excess := len(others) + 1 - m.cfg.MaxSessionsPerOwner
	if excess <= 0 {
		return nil, nil
	}
	if m.cfg.OwnerLimit == RefuseNew {
		return nil, fmt.Errorf("%w: the owner has %d live sessions, MaxSessionsPerOwner is %d", ErrTooManySessions, len(others), m.cfg.MaxSessionsPerOwner)
	}
	// others is most recent first: end the oldest.
	return others[len(others)-excess:], nil
}

// ownerWrite is what ownerBefore leaves for ownerAfter to do.
type ownerWrite struct {
	recorded bool           // the key was recorded before the write: record it again
	atomic   bool           // the write itself records the key and drops the old one's (backend.OwnerRecorder)
	evict    []ownedSession // the owner's sessions to end for room
}

// ownerBefore runs before s is written under key: when s is attributed to
// an owner and the index must learn key (a new session, a new owner, a new
// token), it checks MaxSessionsPerOwner and records key in the owner index
// first, so that every live session of an owner is indexed (a failed write
// leaves only a dead record, which the index tolerates). On a store that
// records owners with the write itself (backend.OwnerRecorder), a write to
// a new key (fresh is true: a new session, Migrate) gets the owner in e
// instead, and nothing is recorded apart.
func (m *Manager[T]) ownerBefore(ctx context.Context, s *Session[T], key string, absolute time.Time, fresh bool, e *backend.Entry) (ownerWrite, error) {
	var ow ownerWrite
	if s.owner == "" || m.st.indexer == nil || (!s.ownerChanged() && key == s.key && !s.isNew) {
		return ow, nil
	}
	if s.ownerChanged() || s.isNew {
		evict, err := m.makeRoom(ctx, s)
		if err != nil {
			return ow, err
		}
		ow.evict = evict
	}
	if fresh && m.st.recordsOwners {
		e.Owner, ow.atomic = indexID(s.owner), true
		return ow, nil
	}
	if err := m.st.indexer.AddOwned(ctx, indexID(s.owner), key, absolute); err != nil {
		return ow, fmt.Errorf("owner index: %w", err)
	}
	ow.recorded = true
	return ow, nil
}

// ownerAfter runs after s was written: it records s's key again (a
// concurrent Sessions or DestroyAll that looked between the first record and
// the write found no entry and pruned the record; not after a write that
// recorded it itself, ow.atomic), ends the sessions
// makeRoom chose, and drops the index records of the previous owner prev and
// of oldKey ("" for none). Failures here only cost a little room in the
// index, or leave an owner one session over the bound until the next login:
// they are logged, not returned, since the write itself landed.
func (m *Manager[T]) ownerAfter(ctx context.Context, s *Session[T], ow ownerWrite, prev, oldKey string) {
	if m.st.indexer == nil {
		return
	}
	if ow.recorded {
		if err := m.st.indexer.AddOwned(ctx, indexID(s.owner), s.key, s.absolute); err != nil {
			m.cfg.Logger.ErrorContext(ctx, "sessions: owner index: recording a session failed; Sessions and DestroyAll may miss it",
				"session", s.Handle(), "err", err)
		}
	}
	for _, o := range ow.evict {
		if err := m.destroyKey(ctx, nil, s.owner, o.key, o.info.Handle, EventEnded, "MaxSessionsPerOwner"); err != nil {
			m.cfg.Logger.WarnContext(ctx, "sessions: ending a session over MaxSessionsPerOwner failed", "session", o.info.Handle, "err", err)
		}
	}
	if prev == "" || (ow.atomic && (prev == s.owner || oldKey == "")) {
		return // (an atomic write dropped the owner's record of the old key)
	}
	var err error
	switch {
	case ow.atomic:
		err = m.st.indexer.RemoveOwned(ctx, indexID(prev), oldKey) // the new key was recorded for s.owner only
	case prev != s.owner && oldKey != "":
		err = m.st.indexer.RemoveOwned(ctx, indexID(prev), oldKey, s.key)
	case prev != s.owner:
		err = m.st.indexer.RemoveOwned(ctx, indexID(prev), s.key)
	case oldKey != "":
		err = m.st.indexer.RemoveOwned(ctx, indexID(prev), oldKey)
	}
	if err != nil {
		m.cfg.Logger.WarnContext(ctx, "sessions: owner index cleanup failed", "session", s.Handle(), "err", err)
	}
}
