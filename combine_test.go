package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
)

// gatedStore is a countingStore whose conditional writes first call gate
// with their ordinal (1 for the first SetIf after arm); a gate that returns
// an error fails the write without storing it. After a write that landed,
// it calls after, when set.
type gatedStore struct {
	*countingStore
	n     atomic.Int64
	gate  atomic.Pointer[func(n int64) error]
	after atomic.Pointer[func(n int64)]
}

func (g *gatedStore) arm(gate func(n int64) error) {
	g.n.Store(0)
	g.gate.Store(&gate)
}

func (g *gatedStore) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	f := g.gate.Load()
	if f == nil {
		return g.countingStore.SetIf(ctx, key, old, now, e)
	}
	n := g.n.Add(1)
	if err := (*f)(n); err != nil {
		g.setIfs.Add(1)
		return err
	}
	err := g.countingStore.SetIf(ctx, key, old, now, e)
	if a := g.after.Load(); a != nil && err == nil {
		(*a)(n)
	}
	return err
}

// combineRig is one stored session (Count 0) and a holder Update of it
// whose write waits at the gate until the test has queued others behind
// it.
type combineRig struct {
	env      *testEnv[visitV1]
	store    *gatedStore
	cookie   string
	holder   *Session[visitV1]
	holdErr  chan error
	writing  chan struct{} // the holder's write is at the gate
	release  chan struct{} // lets the holder's write through
	waiters  []*Session[visitV1]
	waitErrs []error
	wg       sync.WaitGroup
}

// newCombineRig starts the holder's Update (Count += 1) with ctx and
// queues n Updates (Count += 10 each) behind it; the second write
// (ordinal 2) passes through second, which may block or fail it.
func newCombineRig(t *testing.T, ctx context.Context, n int, second func() error) *combineRig {
	t.Helper()
	clock := newFakeClock()
	inner := newCountingStore(t, clock.Now)
	r := &combineRig{store: &gatedStore{countingStore: inner}, holdErr: make(chan error, 1),
		writing: make(chan struct{}), release: make(chan struct{})}
	r.env = newTestEnv[visitV1](t, Config{Store: r.store, Now: clock.Now})
	r.env.store, r.env.clock = inner, clock
	r.cookie = newStoredSession(t, r.env)
	r.holder, _ = r.env.mgr.Load(newHeaderWriter(), httptestRequest(r.cookie))
	r.waiters = make([]*Session[visitV1], n)
	for i := range r.waiters {
		r.waiters[i], _ = r.env.mgr.Load(newHeaderWriter(), httptestRequest(r.cookie))
	}
	r.waitErrs = make([]error, n)
	r.store.arm(func(k int64) error {
		switch k {
		case 1:
			close(r.writing)
			<-r.release
		case 2:
			return second()
		}
		return nil
	})
	go func() {
		r.holdErr <- r.env.mgr.Update(newHeaderWriter(), httptestRequest(r.cookie).WithContext(ctx), r.holder,
			func(v *visitV1) error { v.Count++; return nil })
	}()
	<-r.writing // the holder took its batch (itself) and is writing
	for i, s := range r.waiters {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.waitErrs[i] = r.env.mgr.Update(newHeaderWriter(), httptestRequest(r.cookie), s,
				func(v *visitV1) error { v.Count += 10; return nil })
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); r.env.mgr.updating.waiters(r.holder.key) < n+1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Updates queued behind the holder", r.env.mgr.updating.waiters(r.holder.key)-1, n)
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

// stored returns the session's stored Count.
func (r *combineRig) stored(t *testing.T) int {
	t.Helper()
	s, err := r.env.mgr.Load(newHeaderWriter(), httptestRequest(r.cookie))
	if err != nil || s.IsNew() {
		t.Fatalf("loading the session: %v (new: %v)", err, s != nil && s.IsNew())
	}
	return s.Data.Count
}

// TestHolderWritesWhatQueuedBehindIt: the Updates that queue while the
// holder of a session's turn writes are written by that holder, in one
// more write, before it lets go of the turn (flat combining), not each
// woken to take the turn: the holder's Update returns only after that
// write, and none of the queued requests ever holds the turn.
func TestHolderWritesWhatQueuedBehindIt(t *testing.T) {
	const n = 6
	second := make(chan struct{})
	proceed := make(chan struct{})
	r := newCombineRig(t, t.Context(), n, func() error {
		close(second)
		<-proceed
		return nil
	})
	close(r.release)
	<-second // the write of the queued Updates is under way
	select {
	case err := <-r.holdErr:
		t.Fatalf("the holder's Update returned (%v) while the write of the Updates queued behind it was under way: it let go of the turn", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(proceed)
	if err := <-r.holdErr; err != nil {
		t.Fatalf("holder: %v", err)
	}
	r.wg.Wait()
	for i, err := range r.waitErrs {
		if err != nil {
			t.Errorf("queued Update %d: %v", i, err)
		}
	}
	if got := r.store.n.Load(); got != 2 {
		t.Errorf("%d conditional writes for the holder and %d queued Updates, want 2", got, n)
	}
	if got, want := r.stored(t), 1+10*n; got != want {
		t.Errorf("stored Count = %d, want %d", got, want)
	}
	for i, s := range r.waiters {
		if s.Data.Count != 1+10*n {
			t.Errorf("queued Update %d sees Count %d, want the state its write stored (%d)", i, s.Data.Count, 1+10*n)
		}
	}
	if r.holder.Data.Count != 1 {
		t.Errorf("the holder's session holds Count %d, want 1: what its own write stored", r.holder.Data.Count)
	}
}

// TestFailedCombinedWriteFailsOnlyTheQueued: when the holder's write for
// the Updates queued behind it fails (the store fails, or the session is
// gone meanwhile), those Updates report it, nothing of them is stored, and
// the holder's own Update, whose write landed, still succeeds with its
// session as it stored it.
func TestFailedCombinedWriteFailsOnlyTheQueued(t *testing.T) {
	down := errors.New("store down")
	for _, tc := range []struct {
		name   string
		second func(r **combineRig) error
		want   error
	}{
		{"store error", func(**combineRig) error { return down }, down},
		{"session gone", func(r **combineRig) error { return backend.ErrNotFound }, ErrGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 4
			var r *combineRig
			r = newCombineRig(t, t.Context(), n, func() error { return tc.second(&r) })
			close(r.release)
			if err := <-r.holdErr; err != nil {
				t.Fatalf("holder: %v, want nil (its write landed)", err)
			}
			r.wg.Wait()
			for i, err := range r.waitErrs {
				if !errors.Is(err, tc.want) {
					t.Errorf("queued Update %d: %v, want %v", i, err, tc.want)
				}
			}
			for i, s := range r.waiters {
				if s.Data.Count >= 10 {
					t.Errorf("queued Update %d kept its change (Count %d) after its failure", i, s.Data.Count)
				}
			}
			if r.holder.IsNew() || r.holder.Data.Count != 1 {
				t.Errorf("holder's session: new %v, Count %d; want its stored state, Count 1", r.holder.IsNew(), r.holder.Data.Count)
			}
			if got := r.stored(t); got != 1 {
				t.Errorf("stored Count = %d, want 1 (the holder's change only)", got)
			}
		})
	}
}

// TestHolderWithEndedContextLeavesTheQueueToItsRequests: a holder whose
// request's context ended as its write landed does not write for the Updates
// queued behind it (the write would fail for them); they take their turns
// themselves and are stored.
func TestHolderWithEndedContextLeavesTheQueueToItsRequests(t *testing.T) {
	const n = 5
	ctx, cancel := context.WithCancel(t.Context())
	r := newCombineRig(t, ctx, n, func() error { return nil })
	after := func(k int64) {
		if k == 1 {
			cancel() // the holder's request ends just after its write landed
		}
	}
	r.store.after.Store(&after)
	close(r.release)
	if err := <-r.holdErr; err != nil {
		t.Fatalf("holder: %v, want nil (its write landed before it looked at its context)", err)
	}
	r.wg.Wait()
	for i, err := range r.waitErrs {
		if err != nil {
			t.Errorf("queued Update %d: %v", i, err)
		}
	}
	if got, want := r.stored(t), 1+10*n; got != want {
		t.Errorf("stored Count = %d, want %d", got, want)
	}
}

// queueBehind starts an Update of s whose change (Count += 1) waits until
// n more Updates of the session have queued behind it, and returns once
// that change runs (the Update holds the session's turn), with a channel
// for its outcome.
func queueBehind(t *testing.T, env *testEnv[visitV1], cookie string, s *Session[visitV1], n int) <-chan error {
	t.Helper()
	out, running := make(chan error, 1), make(chan struct{})
	key := s.key
	go func() {
		out <- env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error {
			close(running)
			for deadline := time.Now().Add(10 * time.Second); env.mgr.updating.waiters(key) < n+1; {
				if time.Now().After(deadline) {
					return fmt.Errorf("%d of %d Updates queued behind the holder", env.mgr.updating.waiters(key)-1, n)
				}
				time.Sleep(time.Millisecond)
			}
			v.Count++
			return nil
		})
	}()
	<-running
	return out
}

// TestCombinedUpdateAfterRotationSendsNoOldToken: a queued Update that the
// holder writes after another request rotated the session is told the
// session's new key, and its response does not send its request's
// rotated-away token back as the session's cookie (the client would fall
// back to it and lose the session when its grace ends).
func TestCombinedUpdateAfterRotationSendsNoOldToken(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{IdleTimeout: 2 * time.Hour, RotateEvery: time.Hour, RotateGrace: 10 * time.Second})
	c0 := newStoredSession(t, env)
	holder, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(c0))
	waiter, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(c0))
	env.clock.Advance(61 * time.Minute)
	rw := newHeaderWriter()
	if _, err := env.mgr.Load(rw, httptestRequest(c0)); err != nil { // another request rotates the token
		t.Fatal(err)
	}
	rc := rw.Result().Cookies()
	if len(rc) != 1 || rc[0].Name+"="+rc[0].Value == c0 {
		t.Fatalf("the load after RotateEvery set %v, want the rotated token", rc)
	}
	c1 := rc[0].Name + "=" + rc[0].Value
	held := queueBehind(t, env, c0, holder, 1)
	ww := newHeaderWriter()
	if err := env.mgr.Update(ww, httptestRequest(c0), waiter, func(v *visitV1) error { v.Count += 10; return nil }); err != nil {
		t.Fatalf("queued Update: %v", err)
	}
	if err := <-held; err != nil {
		t.Fatalf("holder: %v", err)
	}
	for _, c := range ww.Result().Cookies() {
		if c.Name+"="+c.Value == c0 {
			t.Errorf("the queued Update's response sets the rotated-away token %s", c0)
		}
	}
	env.clock.Advance(time.Minute) // past the old token's grace
	s, err := env.mgr.Load(newHeaderWriter(), httptestRequest(c1))
	if err != nil || s.IsNew() || s.Data.Count != 11 {
		t.Fatalf("the session under the new token: %v, new %v, Count %d; want Count 11", err, s != nil && s.IsNew(), s.Data.Count)
	}
}

// TestPanickingChangeInABatchPanicsOnlyItsRequest: a change function that
// panics while the holder applies it with others fails its own request
// alone (that request panics with the same value, and nothing of it is
// stored); the holder and the other queued Updates are answered as if it
// had not been there.
func TestPanickingChangeInABatchPanicsOnlyItsRequest(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	holder, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	bad, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	good, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	held := queueBehind(t, env, cookie, holder, 2)
	recovered := make(chan any, 1)
	badQueued := make(chan struct{})
	go func() {
		defer func() { recovered <- recover() }()
		close(badQueued)
		_ = env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), bad, func(v *visitV1) error {
			v.Count += 100
			panic("boom")
		})
	}()
	<-badQueued
	for deadline := time.Now().Add(10 * time.Second); env.mgr.updating.waiters(holder.key) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the bad one queues first
	}
	goodErr := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), good, func(v *visitV1) error { v.Count += 10; return nil })
	if err := <-held; err != nil {
		t.Errorf("holder: %v", err)
	}
	if goodErr != nil {
		t.Errorf("the other queued Update: %v", goodErr)
	}
	select {
	case v := <-recovered:
		if v != "boom" {
			t.Errorf("the panicking Update's request recovered %v, want boom", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the panicking Update's request never returned")
	}
	s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	if s.Data.Count != 11 {
		t.Errorf("stored Count = %d, want 11 (holder 1 + 10; the panicking change's 100 not stored)", s.Data.Count)
	}
	if env.mgr.updating.waiters(holder.key) != 0 {
		t.Errorf("%d holders or waiters left on the session's lock", env.mgr.updating.waiters(holder.key))
	}
}

// TestHolderContextEndingDuringCombinedWriteFailsNoWaiter: the holder's
// request ending while it writes for the Updates queued behind it does not
// cut that write short: their requests are alive, and are answered with
// its outcome (stored), not with the holder's context error.
func TestHolderContextEndingDuringCombinedWriteFailsNoWaiter(t *testing.T) {
	const n = 3
	ctx, cancel := context.WithCancel(t.Context())
	r := newCombineRig(t, ctx, n, func() error { cancel(); return nil })
	close(r.release)
	if err := <-r.holdErr; err != nil {
		t.Fatalf("holder: %v", err)
	}
	r.wg.Wait()
	for i, err := range r.waitErrs {
		if err != nil {
			t.Errorf("queued Update %d: %v, want nil (its change was written)", i, err)
		}
	}
	if got, want := r.stored(t), 1+10*n; got != want {
		t.Errorf("stored Count = %d, want %d", got, want)
	}
}
