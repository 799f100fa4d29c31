package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/sessionx/sessions/backend"
)

// ConflictPolicy says what the middleware does when its end-of-request save
// finds that another request changed, migrated or destroyed the session since
// this request loaded it (ErrConflict). See Config.OnConflict.
type ConflictPolicy int

const (
	// ConflictError, the default, keeps the other request's change and
	// drops this one's: the response the handler was about to write is
	// replaced by Config.ErrorHandler's answer to an error wrapping
	// ErrConflict (the default ErrorHandler answers 409 Conflict), so the
	// client knows its change did not land and may retry. Nothing is lost
	// silently.
	ConflictError ConflictPolicy = iota

	// ConflictKeepTheirs keeps the other request's change and drops this
	// one's, but lets the handler's response go out as written, with a
	// warning in the log. Suits handlers whose session changes are
	// best-effort (a "last page seen" field).
	ConflictKeepTheirs

	// ConflictOverwrite writes this request's data over the other one's,
	// as session libraries without versions do (last writer wins). It never
	// brings back a destroyed or migrated session: that still gives
	// ErrConflict. Use it only when losing the other request's change is
	// acceptable.
	ConflictOverwrite

	// conflictRetry is Update's: ConflictError, but a conflict leaves the
	// session's pending changes in place, for the retry after a reload.
	conflictRetry ConflictPolicy = -1
)

// String returns the policy's name.
func (p ConflictPolicy) String() string {
	switch p {
	case ConflictError:
		return "ConflictError"
	case ConflictKeepTheirs:
		return "ConflictKeepTheirs"
	case ConflictOverwrite:
		return "ConflictOverwrite"
	}
	return fmt.Sprintf("ConflictPolicy(%d)", int(p))
}

// DefaultUpdateAttempts is how many times Update applies its function before
// it gives up on a session under constant contention.
const DefaultUpdateAttempts = 64

// Update applies change to s.Data and saves the session at once. Use it for
// every change computed from the data itself (counters, carts, lists):
// concurrent requests then never lose each other's changes and never fail
// with a conflict. Plain assignments (s.Data.LastPage = p) may stay plain:
// the commit merges them with other requests' changes (see Config.OnConflict).
//
// Before change runs, every nil map of s.Data (in T and in the structs it
// holds, not behind pointers or in slices) is made empty, so that
// `d.Counts[k]++` works on a new session; a new session whose data is still
// empty after change (maps and slices empty, everything else zero) is not
// stored. When
// another request changed the session since it was loaded (ErrConflict),
// Update reloads the latest stored data into s and applies change again,
// up to Config.UpdateAttempts times, so that
// concurrent requests never lose each other's increments. change must
// therefore be a function of the data it is given (count++, append), safe to
// run more than once.
//
// All or nothing: when Update returns an error, nothing of it was stored and
// s is back to its stored state (as Save leaves it), so that the middleware's
// commit cannot store afterwards what Update reported as failed. Update
// returns change's error as is; ErrGone when the session ended meanwhile
// (it is not brought back; s is then a new session and w clears the
// cookie); an error wrapping ErrConflict when every attempt met a conflict;
// and other errors as Save does. On a new session it creates the session, as
// Save does.
//
// Within one Manager, Updates of the same session take turns (a lock per
// session, held while Update runs), so that requests served by one process
// do not spend round trips conflicting with each other; retries are left for
// requests served by other processes.
//
// Without a store that implements backend.Conditional, the version check
// before each write is not atomic, and conflicts between processes may go
// unseen.
func (m *Manager[T]) Update(w http.ResponseWriter, r *http.Request, s *Session[T], change func(*T) error) error {
	ctx := r.Context()
	var turn *keyLock
	if !s.isNew {
		unlock, l, err := m.updating.lock(ctx, s.key)
		if err != nil {
			m.revert(s)
			return fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
		}
		defer unlock()
		turn = l
		if h := l.last; h != nil && h.key == s.key && h.version > s.version {
			// The Update before this one in this process saved a later
			// state: take it over, without asking the store.
			if err := m.adopt(s, h); err != nil {
				m.revert(s)
				return fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
			}
		}
	}
	defer func() {
		if turn != nil && !s.isNew {
			// Hand the state this Update leaves to the next one.
			turn.last = &handoff{key: s.key, version: s.version, expires: s.expires, issued: s.issued, base: s.base}
		}
	}()
	for attempt := 1; ; attempt++ {
		makeMaps(reflect.ValueOf(&s.Data).Elem()) // d.Counts[k]++ on a nil map must not panic
		if err := change(&s.Data); err != nil {
			m.revert(s)
			return err
		}
		err := m.save(ctx, w, s, conflictRetry)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt >= m.cfg.UpdateAttempts {
			m.revert(s)
			return fmt.Errorf("sessions: update session %s: gave up after %d attempts: %w", s.Handle(), attempt, err)
		}
		if err := m.reload(ctx, w, s); err != nil {
			if !errors.Is(err, ErrGone) {
				m.revert(s)
			}
			return fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
		}
		// Retry at once. Every round some contender's write lands, so
		// the loop always makes progress; a back-off would only hand the
		// session to contenders that have not backed off yet (starvation).
	}
}

// reload replaces s's stored state and Data with what the store holds now
// under s's key, keeping s's pending owner. When the session is gone
// (destroyed, migrated, expired), s ends (see Manager.ended) and the error
// wraps ErrGone.
func (m *Manager[T]) reload(ctx context.Context, w http.ResponseWriter, s *Session[T]) error {
	p, e, err := m.current(ctx, s) // rotated meanwhile: follow it
	var env envelope
	if err == nil {
		if env, err = openAt(p, e); err == nil && env.handle != s.handle {
			err = backend.ErrNotFound // another session is stored under the key
		}
	}
	if errors.Is(err, backend.ErrNotFound) {
		m.ended(w, s)
		return fmt.Errorf("reload: %w", ErrGone)
	}
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	var data T
	if err := m.cfg.Codec.Unmarshal(env.data, &data); err != nil {
		return fmt.Errorf("reload: decode session data: %w", err)
	}
	if p.key != s.key {
		s.key, s.keyToken, s.seal, s.forwarded = p.key, p.token, p.seal, true
	}
	if s.owner == s.base.owner {
		s.owner = env.owner // no pending owner: take the stored one
	}
	if env.csrf != nil {
		s.csrf = env.csrf // another request's token may be in a page already
	}
	if env.bind != nil {
		s.bind = env.bind
	}
	s.Data, s.version, s.expires, s.issued = data, e.Version, e.Expires, env.issued
	s.base = stored{data: env.data, owner: env.owner, bind: env.bind, csrf: env.csrf}
	return nil
}

// keyLocks is a set of locks, one per key in use, created on demand and
// dropped when no goroutine holds or waits for them.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters

	// last is the state the last holder left, for the next one; only the
	// holder reads or writes it. It lives as long as the lock is held or
	// waited for: exactly while Updates of the session queue up.
	last *handoff
}

// handoff is a session's state as the last Update in this process saved it
// (or found it): enough for the next Update of the session to start from
// it without a store round trip. The next write is conditional all the
// same, so a change by another process since is still seen.
type handoff struct {
	key             string
	version         uint64
	expires, issued time.Time
	base            stored
}

// adopt puts the state h into s, keeping s's pending owner (as reload
// does).
func (m *Manager[T]) adopt(s *Session[T], h *handoff) error {
	var data T
	if err := m.cfg.Codec.Unmarshal(h.base.data, &data); err != nil {
		return fmt.Errorf("decode the handed-over state: %w", err)
	}
	if s.owner == s.base.owner {
		s.owner = h.base.owner
	}
	if bytes.Equal(s.csrf, s.base.csrf) {
		s.csrf = h.base.csrf
	}
	if h.base.bind != nil {
		s.bind = h.base.bind
	}
	s.Data, s.version, s.expires, s.issued, s.base = data, h.version, h.expires, h.issued, h.base
	return nil
}

// lock locks key's lock, waiting at most until ctx ends, and returns its
// unlock function and the lock, whose last field the holder may use.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), l *keyLock, err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l = k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, l, nil
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
}
