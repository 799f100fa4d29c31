package sessions

import (
	"context"
	"errors"
	"fmt"
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
		if err := m.destroyKey(ctx, owner, o.key, o.info.Handle); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

type ownedSession struct {
	key  string
	info SessionInfo
}

// ownerSessions returns owner's live sessions, most recently active first.
func (m *Manager[T]) ownerSessions(ctx context.Context, owner string) ([]ownedSession, error) {
	if m.indexer == nil {
		return nil, fmt.Errorf("sessions: sessions of an owner: %w", backend.ErrUnsupported)
	}
	if owner == "" {
		return nil, nil
	}
	keys, err := m.indexer.Owned(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("sessions: sessions of an owner: %w", err)
	}
	now := m.now()
	var list []ownedSession
	var dead []string
	for _, key := range keys {
		e, err := m.store.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			dead = append(dead, key)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: sessions of an owner: %w", err)
		}
		if _, fwd := decodeForward(e.Value); fwd {
			continue // a rotated token's grace record; its session is listed under its own key
		}
		env, err := decodeEnvelope(e.Value)
		if err != nil || env.owner != owner || !alive(now, e.Expires, env.absolute) {
			dead = append(dead, key)
			continue
		}
		last := e.Expires.Add(-m.idle)
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
		if err := m.indexer.RemoveOwned(ctx, owner, dead...); err != nil {
			m.logger.WarnContext(ctx, "sessions: pruning the owner index failed", "err", err)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].info.LastSeen.After(list[j].info.LastSeen) })
	return list, nil
}

// destroyKey deletes the session stored under key and its index record.
func (m *Manager[T]) destroyKey(ctx context.Context, owner, key, handle string) error {
	if err := m.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("sessions: destroy session %s: %w", handle, err)
	}
	if m.indexer != nil && owner != "" {
		if err := m.indexer.RemoveOwned(ctx, owner, key); err != nil {
			m.logger.WarnContext(ctx, "sessions: removing from the owner index failed", "session", handle, "err", err)
		}
	}
	m.logger.InfoContext(ctx, "sessions: destroyed", "session", handle)
	return nil
}

// makeRoom enforces MaxSessionsPerOwner before s is attributed to its owner.
func (m *Manager[T]) makeRoom(ctx context.Context, s *Session[T]) error {
	if m.maxPerOwner <= 0 || s.owner == "" {
		return nil
	}
	list, err := m.ownerSessions(ctx, s.owner)
	if err != nil {
		return err
	}
	others := list[:0]
	for _, o := range list {
		if o.info.Handle != s.Handle() {
			others = append(others, o)
		}
	}
	excess := len(others) + 1 - m.maxPerOwner
	if excess <= 0 {
		return nil
	}
	if m.ownerLimit == RefuseNew {
		// Undo the attribution, so that the commit that follows does not
		// try it again; the application decides what to answer.
		err := fmt.Errorf("%w: the owner has %d live sessions, MaxSessionsPerOwner is %d", ErrTooManySessions, len(others), m.maxPerOwner)
		s.owner, s.ownerChanged = s.indexedOwner, false
		return err
	}
	// others is most recent first: end the oldest.
	for _, o := range others[len(others)-excess:] {
		if err := m.destroyKey(ctx, s.owner, o.key, o.info.Handle); err != nil {
			return err
		}
	}
	return nil
}
