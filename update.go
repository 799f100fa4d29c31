package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
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
// Within one Manager, Updates of the same session take turns, and cost one
// conditional write each, or less: an Update starts from the state the one
// before it stored (handed over in the process, no store read), and while a
// write of the session is in flight, the Updates that queue behind it are
// applied together, in order, to the latest state and stored with one write
// (group commit), which the request holding the session's turn makes
// before it lets go of the turn (so its own Update may return up to four
// writes after its own write landed); each request returns only once the
// write holding its change landed, and a change function that fails fails
// only its own request (one that panics makes its own request panic with
// the same value, once the others are answered, and nothing of it is
// stored). Retries are left for changes made by other processes. Changes
// made to s.Data before Update are written with it when the Update runs
// alone; when it is batched with or follows other Updates of the session,
// change is applied to the latest state and those earlier changes are not
// written: make them inside change, or Save them first. (A pending owner,
// binding or CSRF secret is never batched away: such an Update runs
// alone.)
//
// Without a store that implements backend.Conditional, the version check
// before each write is not atomic, and conflicts between processes may go
// unseen.
func (m *Manager[T]) Update(w http.ResponseWriter, r *http.Request, s *Session[T], change func(*T) error) error {
	// A session with a pending owner, binding or CSRF secret is not
	// batched into another request's write (which would not carry them).
	own := &pending{change: change, sess: s, solo: s.metaChanged()}
	err := m.update(w, r, s, own)
	if own.panicked != nil {
		// change panicked, wherever it ran: its own request panics,
		// after every other request of its batch got its outcome.
		panic(own.panicked.v)
	}
	return err
}

// update is Update for its pending own.
func (m *Manager[T]) update(w http.ResponseWriter, r *http.Request, s *Session[T], own *pending) error {
	ctx := r.Context()
	if s.isNew {
		own.one[0] = own
		m.runBatch(ctx, w, s, own.one[:])
		return own.err
	}
	expires := s.expires
	key := s.key
	l, batch, err := m.updating.join(ctx, key, own)
	if err != nil {
		m.revert(s)
		return fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
	}
	if l == nil {
		// The Update before this one applied this change with its own,
		// in one write: take over the state it stored.
		return m.afterBatch(w, s, own, expires)
	}
	defer m.updating.unlock(key, l)
	if batch == nil {
		<-own.done // applied by the holder before, which has delivered it
		return m.afterBatch(w, s, own, expires)
	}
	if h := &l.last; l.hasLast && h.key == s.key && h.version > s.version {
		// The Update before this one in this process saved a later state:
		// take it over, without asking the store.
		if err := m.adopt(s, h); err != nil {
			m.revert(s)
			err = fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
			m.deliver(s, batch, err)
			return err
		}
	}
	m.commitBatch(ctx, w, s, l, batch)
	if !s.isNew {
		m.combine(ctx, l, s)
	}
	return own.err
}

// commitBatch applies and stores batch, taken by the holder of l, on s
// (runBatch), keeps the state stored for the next holder and delivers the
// outcome to the other requests of batch. A batch holding other requests'
// changes is written even if the holder's own request ends meanwhile
// (their requests are alive). Should anything panic on the way (a codec,
// a store), the requests not yet delivered get an error rather than wait
// forever.
func (m *Manager[T]) commitBatch(ctx context.Context, w http.ResponseWriter, s *Session[T], l *keyLock, batch []*pending) {
	defer func() {
		for _, p := range batch {
			if p.sess != any(s) && !p.closed {
				if p.err == nil {
					p.err = fmt.Errorf("sessions: update session %s: the write holding this change panicked in another request", s.Handle())
				}
				p.finish()
			}
		}
	}()
	if len(batch) > 1 {
		ctx = context.WithoutCancel(ctx)
	}
	m.runBatch(ctx, w, s, batch)
	if !s.isNew {
		handOver(l, s)
	}
	m.deliver(s, batch, nil)
}

// handOver keeps in l the state s stored, for the next Update of the
// session in this process (see handoff). Only l's holder calls it.
func handOver[T any](l *keyLock, s *Session[T]) {
	l.last, l.hasLast = handoff{key: s.key, version: s.version, expires: s.expires, issued: s.issued, base: s.base}, true
}

// pending is one Update waiting for its change to be written: by its own
// request, or by the request holding the session's turn, which applies
// every change queued behind it in one write (group commit).
type pending struct {
	change any // func(*T) error
	sess   any // *Session[T]: the request's session, updated when done
	err    error
	// done is closed when err and sess are final; it is made when the
	// Update has to wait (an Update that finds the session's turn free
	// runs its change itself and never waits).
	done   chan struct{}
	closed bool        // done was closed (only the holder that took it reads or sets it)
	taken  bool        // a holder took it from the queue (guarded by keyLocks.mu)
	solo   bool        // only its own request may apply it
	one    [1]*pending // the batch of an Update applied alone
	// panicked holds what change panicked with, re-raised in its own
	// request once the batch is delivered.
	panicked *panicValue
}

// panicValue is what a change function panicked with.
type panicValue struct{ v any }

// errChangePanicked is the outcome of a change function that panicked
// (its request then panics with the same value).
var errChangePanicked = errors.New("sessions: the change function panicked")

// finish closes p.done, once.
func (p *pending) finish() {
	if !p.closed {
		p.closed = true
		close(p.done)
	}
}

// apply runs p's change on d. A panic in it fails p alone: it is kept in
// p, for p's own request to re-raise.
func apply[T any](p *pending, d *T) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.panicked = &panicValue{v}
			err = errChangePanicked
		}
	}()
	return p.change.(func(*T) error)(d)
}

// runBatch applies the changes of batch in order to s.Data, the latest
// state of the session, and stores the result with one conditional write;
// on a conflict with another process it reloads and applies them again. A
// change that fails fails only its own pending (its effect is undone); the
// others' errs are the write's outcome. s is the holder's session.
func (m *Manager[T]) runBatch(ctx context.Context, w http.ResponseWriter, s *Session[T], batch []*pending) {
	for attempt := 1; ; attempt++ {
		// The state before the batch, to undo a change that fails: for a
		// plain T a copy, for others its encoding.
		var startVal T
		var start []byte
		if len(batch) > 1 {
			if m.plain {
				startVal = s.Data
			} else {
				start, _ = m.cfg.Codec.Marshal(&s.Data)
			}
		}
		applied, failed := batch, false // the changes that worked: all of batch until one fails
		for i, p := range batch {
			if m.unstable { // T may hold maps (otherwise there is nothing to make)
				makeMaps(reflect.ValueOf(&s.Data).Elem()) // d.Counts[k]++ on a nil map must not panic
			}
			err := apply(p, &s.Data)
			if err == nil {
				if failed {
					applied = append(applied, p)
				}
				continue
			}
			p.err = err
			if !failed {
				applied, failed = slices.Clone(batch[:i]), true
			}
			if len(batch) == 1 {
				m.revert(s)
				continue
			}
			// Undo it alone: start again and apply the changes that
			// worked (change functions may run more than once).
			switch {
			case m.plain:
				s.Data = startVal
			case start != nil:
				var back T
				_ = m.cfg.Codec.Unmarshal(start, &back)
				s.Data = back
			default: // the start did not encode: the stored state will do
				m.revert(s)
			}
			for _, q := range applied {
				if m.unstable {
					makeMaps(reflect.ValueOf(&s.Data).Elem())
				}
				_ = apply(q, &s.Data)
			}
		}
		if len(applied) == 0 {
			return
		}
		err := m.save(ctx, w, s, conflictRetry)
		// A batch of n Updates gets the attempts n Updates would have had
		// alone: each conflict means another process's write landed.
		if errors.Is(err, ErrConflict) && attempt >= m.cfg.UpdateAttempts*len(applied) {
			m.revert(s)
			err = fmt.Errorf("sessions: update session %s: gave up after %d attempts: %w", s.Handle(), attempt, err)
		} else if errors.Is(err, ErrConflict) {
			if err = m.reload(ctx, w, s); err == nil {
				// Retry at once. Every round some contender's write lands,
				// so the loop always makes progress; a back-off would only
				// hand the session to contenders that have not backed off
				// yet (starvation).
				batch = applied
				continue
			}
			if !errors.Is(err, ErrGone) {
				m.revert(s)
			}
			err = fmt.Errorf("sessions: update session %s: %w", s.Handle(), err)
		}
		for _, p := range applied {
			p.err = err
		}
		return
	}
}

// deliver hands the outcome of a batch to the other requests in it: on
// success each gets the state the holder's session s stored; failing that,
// err (or its own change's error). Then each is woken.
func (m *Manager[T]) deliver(s *Session[T], batch []*pending, err error) {
	for _, p := range batch {
		qs := p.sess.(*Session[T])
		if qs == s {
			continue
		}
		if err != nil && p.err == nil {
			p.err = err
		}
		if p.err == nil {
			var data T
			var derr error
			if m.plain && sameSlice(s.plainOf, s.base.data) {
				data = s.plainVal // plain: the copy shares nothing with s
			} else {
				derr = m.cfg.Codec.Unmarshal(s.base.data, &data)
			}
			if derr != nil {
				p.err = fmt.Errorf("sessions: update session %s: %w", s.Handle(), derr)
			} else {
				qs.Data, qs.version, qs.base, qs.expires, qs.issued = data, s.version, s.base, s.expires, s.issued
				qs.key, qs.keyToken, qs.seal = s.key, s.keyToken, s.seal
				if qs.keyToken != qs.token {
					// Rotated meanwhile: the request's token is no longer
					// the session's, and must not be sent back as if it
					// were (its client holds, or gets, the new one).
					qs.forwarded = true
				}
				qs.owner, qs.bind, qs.csrf, qs.life = s.owner, s.bind, s.csrf, s.life
				qs.plainVal, qs.plainOf = s.plainVal, s.plainOf
			}
		}
		p.finish()
	}
}

// afterBatch finishes an Update whose change another request wrote (or
// failed to): it sets the refreshed cookie, or ends or reverts s.
func (m *Manager[T]) afterBatch(w http.ResponseWriter, s *Session[T], p *pending, expires time.Time) error {
	switch {
	case p.err == nil:
		if !s.expires.Equal(expires) && m.persistent(s) && !s.viaHeader {
			m.sendToken(w, s, m.cfg.Now())
		}
	case errors.Is(p.err, ErrGone):
		m.ended(w, s)
	default:
		m.revert(s)
	}
	return p.err
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
	if s.life == s.base.life {
		s.life = env.life // no pending lifetime: take the stored one
	}
	s.Data, s.version, s.expires, s.issued = data, e.Version, e.Expires, env.issued
	s.base = stored{data: env.data, owner: env.owner, bind: env.bind, csrf: env.csrf, life: env.life}
	return nil
}

// keyLocks is a set of locks, one per key in use, created on demand. Up
// to maxIdleLocks locks no goroutine holds or waits for stay in the set (a
// hot session's lock is not made again for each request); beyond that, an
// unused one picked at random is dropped, into a pool for the next key,
// with its queue's array.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
	idle  int       // locks in the map that no goroutine holds or waits for
	free  sync.Pool // of *keyLock, unused and empty
}

// maxIdleLocks bounds how many unused locks a keyLocks keeps.
const maxIdleLocks = 64

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters

	// last is the state the last holder left, for the next one, if hasLast;
	// only the holder reads or writes them. They live as long as the lock
	// is held or waited for: exactly while Updates of the session queue up.
	last    handoff
	hasLast bool

	// queue holds the Updates waiting for the holder to apply them
	// (guarded by keyLocks.mu).
	queue []*pending
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
	if err := m.decode(h.key, h.base.data, &data); err != nil {
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
	if s.life == s.base.life {
		s.life = h.base.life
	}
	s.Data, s.version, s.expires, s.issued, s.base = data, h.version, h.expires, h.issued, h.base
	return nil
}

// acquire returns key's lock with one more reference, creating it when
// there is none. Called with k.mu held.
func (k *keyLocks) acquire(key string) *keyLock {
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	switch {
	case l == nil:
		if v := k.free.Get(); v != nil {
			l = v.(*keyLock)
		} else {
			l = &keyLock{ch: make(chan struct{}, 1)}
		}
		k.locks[key] = l
	case l.refs == 0:
		k.idle--
	}
	l.refs++
	return l
}

// release drops a reference to key's lock l; the last one forgets the
// state handed over and the queue's pendings and keeps l in the set,
// dropping another unused lock when the set holds maxIdleLocks of them.
// The caller must not use l afterwards.
func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs > 0 {
		return
	}
	clear(l.queue[:cap(l.queue)]) // the pendings are done: let them go
	l.last, l.hasLast = handoff{}, false
	if cap(l.queue) > 64 {
		l.queue = nil // after a burst: let the large array go
	} else {
		l.queue = l.queue[:0]
	}
	if k.idle >= maxIdleLocks {
		// Full: drop another unused lock (the map's order is random), so
		// that the set keeps the locks of keys in use now rather than of
		// the first keys that went quiet.
		for ok, ol := range k.locks {
			if ol.refs == 0 && ol != l {
				delete(k.locks, ok)
				k.free.Put(ol)
				k.idle--
				break
			}
		}
	}
	k.idle++
}

// unlock ends the turn of the holder of key's lock l (from join or lock).
func (k *keyLocks) unlock(key string, l *keyLock) {
	<-l.ch
	k.release(key, l)
}

// join queues p on key's lock and waits until either it holds the lock
// (then l is the lock, for unlock, and batch the Updates it is to apply:
// see take), or a holder applied p (l is nil; p.done is closed), or ctx
// ends while p is still queued (then p is withdrawn and nothing of it was
// applied). A p that a holder took is waited for even past ctx: its
// outcome is on its way, and it must be reported. An Update that finds the
// lock free and nobody queued takes it at once, alone, without making
// p.done.
func (k *keyLocks) join(ctx context.Context, key string, p *pending) (l *keyLock, batch []*pending, err error) {
	k.mu.Lock()
	l = k.acquire(key)
	if len(l.queue) == 0 {
		select {
		case l.ch <- struct{}{}: // free, nobody waiting: hold it, alone
			p.taken = true
			k.mu.Unlock()
			p.one[0] = p
			return l, p.one[:], nil
		default:
		}
	}
	p.done = make(chan struct{})
	l.queue = append(l.queue, p)
	k.mu.Unlock()

	select {
	case l.ch <- struct{}{}: // free meanwhile: no need to wait (nor to make ctx's Done channel)
		return l, k.take(l, p), nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return l, k.take(l, p), nil
	case <-p.done:
		k.release(key, l)
		return nil, nil, nil
	case <-ctx.Done():
		k.mu.Lock()
		if !p.taken {
			l.queue = slices.DeleteFunc(l.queue, func(q *pending) bool { return q == p })
			k.mu.Unlock()
			k.release(key, l)
			return nil, nil, ctx.Err()
		}
		k.mu.Unlock()
		<-p.done
		k.release(key, l)
		return nil, nil, nil
	}
}

// take returns, in order, the Updates queued on l that the holder self may
// apply (itself and every one not solo), marking them taken; solo ones stay
// queued for their own requests. With self nil, it takes what queued
// behind the holder (see Manager.combine).
func (k *keyLocks) take(l *keyLock, self *pending) []*pending {
	k.mu.Lock()
	defer k.mu.Unlock()
	if self != nil && self.taken {
		// A holder before applied self already (its request got the lock
		// as that holder let go of it): take nothing, or the Updates taken
		// here would be applied by nobody.
		return nil
	}
	if self != nil && len(l.queue) == 1 && l.queue[0] == self {
		// Alone: no batch to build.
		self.taken = true
		l.queue[0] = nil
		l.queue = l.queue[:0]
		self.one[0] = self
		return self.one[:]
	}
	var batch []*pending
	rest := l.queue[:0] // filtered in place: the holder keeps batch, not l.queue
	for _, p := range l.queue {
		if p == self || !p.solo {
			p.taken = true
			batch = append(batch, p)
		} else {
			rest = append(rest, p)
		}
	}
	clear(l.queue[len(rest):])
	l.queue = rest
	return batch
}

// lock locks key's lock, waiting at most until ctx ends, and returns the
// lock, whose last field the holder may use, for unlock.
func (k *keyLocks) lock(ctx context.Context, key string) (*keyLock, error) {
	k.mu.Lock()
	l := k.acquire(key)
	k.mu.Unlock()

	select {
	case l.ch <- struct{}{}:
		return l, nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return l, nil
	case <-ctx.Done():
		k.release(key, l)
		return nil, ctx.Err()
	}
}
