package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
)

// twoRequests loads the session of cookie twice, as two concurrent requests
// would, then saves the first with N=1 through Save, and returns the second.
func twoRequests(t *testing.T, env *testEnv[visitV1], cookie string) *Session[visitV1] {
	t.Helper()
	first, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	second, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	first.Data.Count = 1
	if err := env.mgr.Save(newHeaderWriter(), httptestRequest(cookie), first); err != nil {
		t.Fatal(err)
	}
	return second
}

func newStoredSession(t *testing.T, env *testEnv[visitV1]) string {
	t.Helper()
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.Data.User = "ann"
	if err := env.mgr.Save(w, httptestRequest(""), s); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	return c.Name + "=" + c.Value
}

func TestConflictPolicies(t *testing.T) {
	tests := []struct {
		policy    ConflictPolicy
		wantCode  int
		wantBody  string
		wantCount int // stored after both requests
	}{
		{ConflictError, http.StatusConflict, "Conflict: Another request changed the session at the same time; this request's change was not saved. Retry it.\n", 1},
		{ConflictKeepTheirs, http.StatusOK, "written", 1},
		{ConflictOverwrite, http.StatusOK, "written", 2},
	}
	for _, tc := range tests {
		t.Run(tc.policy.String(), func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{OnConflict: tc.policy})
			cookie := newStoredSession(t, env)
			// The middleware's request loads, then another request saves
			// N=1, then the middleware's handler sets N=2 and writes.
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := env.mgr.Get(r)
				other, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
				other.Data.Count = 1
				if err := env.mgr.Save(newHeaderWriter(), httptestRequest(cookie), other); err != nil {
					t.Fatal(err)
				}
				s.Data.Count = 2
				fmt.Fprint(w, "written")
			}))
			rec := serve(t, h, "POST", "/", cookie)
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("response %d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
			if s.Data.Count != tc.wantCount {
				t.Errorf("stored Count %d, want %d", s.Data.Count, tc.wantCount)
			}
			if tc.policy != ConflictError && !strings.Contains(env.logs.String(), "conflict") {
				t.Error("the conflict was not logged")
			}
		})
	}
}

func TestConflictOverwriteNeverResurrects(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{OnConflict: ConflictOverwrite})
	cookie := newStoredSession(t, env)
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		other, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
		if err := env.mgr.Destroy(newHeaderWriter(), httptestRequest(cookie), other); err != nil {
			t.Fatal(err)
		}
		s.Data.Count = 5
	}))
	// The session is gone, not changed: 401 (ErrGone), never a write.
	if rec := serve(t, h, "POST", "/", cookie); rec.Code != http.StatusUnauthorized {
		t.Errorf("save after logout with ConflictOverwrite: %d, want 401", rec.Code)
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); !s.IsNew() {
		t.Fatal("ConflictOverwrite brought a destroyed session back")
	}
}

func TestSaveConflictIsErrConflict(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	second := twoRequests(t, env, cookie)
	second.Data.Count = 2
	if err := env.mgr.Save(newHeaderWriter(), httptestRequest(cookie), second); !errors.Is(err, ErrConflict) || !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("second Save: %v, want ErrConflict", err)
	}
}

func TestUpdateReappliesOnConflict(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	second := twoRequests(t, env, cookie)
	calls := 0
	err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), second, func(v *visitV1) error {
		calls++
		v.Count += 10
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("change ran %d times, want 2 (once more after the conflict)", calls)
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); s.Data.Count != 11 {
		t.Errorf("stored Count %d, want 11: the other request's 1 plus this one's 10", s.Data.Count)
	}
}

func TestUpdateReturnsChangeError(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	boom := errors.New("out of stock")
	before := env.store.writes.Load()
	if err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error { return boom }); err != boom {
		t.Fatalf("Update: %v, want the change's error", err)
	}
	if env.store.writes.Load() != before {
		t.Error("a failed change was written")
	}
}

func TestUpdateGivesUpAfterAttempts(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{UpdateAttempts: 3})
	cookie := newStoredSession(t, env)
	s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	// Every attempt, another writer gets in first.
	err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error {
		other, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
		other.Data.Count += 100
		if err := env.mgr.Save(newHeaderWriter(), httptestRequest(cookie), other); err != nil {
			t.Fatal(err)
		}
		v.Count++
		return nil
	})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("Update under constant contention: %v, want ErrConflict after 3 attempts", err)
	}
}

func TestUpdateOnNewSessionCreatesIt(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w := httptest.NewRecorder()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	if err := env.mgr.Update(w, httptestRequest(""), s, func(v *visitV1) error { v.Count = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	if s.IsNew() || len(w.Result().Cookies()) != 1 {
		t.Fatal("Update did not create the new session")
	}
}

// TestKeyLocksReleaseEntries: every holder and waiter gives its reference
// back, also one whose context ends while it waits.
func TestKeyLocksReleaseEntries(t *testing.T) {
	var k keyLocks
	var wg sync.WaitGroup
	n := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := k.lock(context.Background(), "a")
			if err != nil {
				t.Error(err)
				return
			}
			n++ // guarded by the lock
			k.unlock("a", l)
		}()
	}
	wg.Wait()
	if n != 50 || k.waiters("a") != 0 || k.idle != 1 {
		t.Fatalf("n=%d, %d holders or waiters left, %d idle locks; want 50, 0, 1", n, k.waiters("a"), k.idle)
	}
	// A waiter gives up when its context ends.
	l, _ := k.lock(context.Background(), "a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting on a held lock past the deadline: %v", err)
	}
	k.unlock("a", l)
	if k.waiters("a") != 0 || k.idle != 1 {
		t.Fatalf("%d holders or waiters left, %d idle locks; want 0, 1", k.waiters("a"), k.idle)
	}
}

// TestContendedUpdateCostsOneWriteOrLess: Updates of one session in one
// process, all loaded before any of them saved, never cost a refused write
// or a store read: the first writes alone while the others queue, and the
// queued ones are applied together, in order, to the state it stored
// (handed over in the process) and stored with one write (group commit):
// 16 Updates, 2 conditional writes, 0 reads.
func TestContendedUpdateCostsOneWriteOrLess(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	const n = 16
	sessions := make([]*Session[visitV1], n)
	for i := range sessions {
		sessions[i], _ = env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	}
	setIfs, gets := env.store.setIfs.Load(), env.store.reads()
	// The first Update holds its turn until all have queued behind it.
	queued := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error {
				if i == 0 {
					<-queued
				}
				v.Count++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
		if i == 0 {
			for env.mgr.updating.waiters(sessions[0].key) < 1 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	for env.mgr.updating.waiters(sessions[0].key) < n {
		time.Sleep(time.Millisecond)
	}
	close(queued)
	wg.Wait()
	if got := env.store.setIfs.Load() - setIfs; got != 2 {
		t.Errorf("%d contended Updates cost %d conditional writes, want 2 (the first alone, the 15 queued behind it in one)", n, got)
	}
	if got := env.store.reads() - gets; got != 0 {
		t.Errorf("%d contended Updates cost %d store reads, want 0", n, got)
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); s.Data.Count != n {
		t.Fatalf("Count = %d, want %d", s.Data.Count, n)
	}
}

// TestKeyLocksStartClean: a key's lock, once no one holds or waits for it,
// stays for the key's next Update (up to maxIdleLocks of them) or is reused
// for another key (pooled): either way it comes back unlocked, with no
// queue and no handed-over state of the session before; and the set keeps
// no more than maxIdleLocks unused locks.
//
// TestKeyLocksKeepTheHotKey covers which ones it keeps.
func TestKeyLocksStartClean(t *testing.T) {
	var k keyLocks
	for range 2 {
		for i := range 2 * maxIdleLocks {
			key := fmt.Sprint("key", i)
			p := &pending{}
			l, batch, err := k.join(t.Context(), key, p)
			if err != nil || l == nil {
				t.Fatalf("join %s: lock %v, %v", key, l, err)
			}
			if len(batch) != 1 || batch[0] != p || !p.taken || p.done != nil {
				t.Fatalf("join %s alone: batch %v, taken %v, done %v", key, batch, p.taken, p.done)
			}
			if l.hasLast || l.last.key != "" || len(l.queue) != 0 || l.refs != 1 {
				t.Fatalf("the lock of %s came with last %v %+v, queue %v, refs %d", key, l.hasLast, l.last, l.queue, l.refs)
			}
			l.last, l.hasLast = handoff{key: key, version: 7}, true
			k.unlock(key, l)
			if k.waiters(key) != 0 {
				t.Fatalf("%s: %d waiters after unlock", key, k.waiters(key))
			}
		}
		if len(k.locks) != maxIdleLocks || k.idle != maxIdleLocks {
			t.Fatalf("%d lock entries left, %d counted idle; want %d", len(k.locks), k.idle, maxIdleLocks)
		}
	}
}

// TestKeyLocksKeepTheHotKey: once the set holds maxIdleLocks unused locks
// (of sessions that went quiet), a session updated again and again still
// keeps its lock between its Updates: a full set drops another unused lock,
// not the one just released.
func TestKeyLocksKeepTheHotKey(t *testing.T) {
	var k keyLocks
	use := func(key string) *keyLock {
		p := &pending{}
		l, _, err := k.join(t.Context(), key, p)
		if err != nil || l == nil {
			t.Fatalf("join %s: %v", key, err)
		}
		k.unlock(key, l)
		return l
	}
	for i := range maxIdleLocks {
		use(fmt.Sprint("quiet", i))
	}
	first := use("hot")
	for range 100 {
		if l := use("hot"); l != first {
			t.Fatal("the hot key's lock was dropped between its Updates")
		}
	}
	if len(k.locks) != maxIdleLocks || k.idle != maxIdleLocks {
		t.Fatalf("%d locks, %d counted idle; want %d", len(k.locks), k.idle, maxIdleLocks)
	}
}

// waiters returns how many goroutines hold or wait for key's lock.
func (k *keyLocks) waiters(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.locks[key]; l != nil {
		return l.refs
	}
	return 0
}

// TestBatchedChangeThatFailsFailsOnlyItsRequest: in a group commit, a
// change function that fails fails its own Update and leaves no trace;
// the others are stored; a queued Update whose context ends before a
// holder took it is withdrawn, applied nowhere.
func TestBatchedChangeThatFailsFailsOnlyItsRequest(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	const n = 8
	queued := make(chan struct{})
	errs := make([]error, n)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for i := range n {
		s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error {
				if i == 0 {
					<-queued
				}
				v.Count += 10
				if i == 3 {
					v.User = "half-done"
					return boom
				}
				return nil
			})
		}()
		for env.mgr.updating.waiters(s.key) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	// One more, whose context ends while it waits in the queue.
	s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	ctx, cancel := context.WithCancel(context.Background())
	late := make(chan error)
	go func() {
		late <- env.mgr.Update(newHeaderWriter(), httptestRequest(cookie).WithContext(ctx), s, func(v *visitV1) error {
			v.Count += 1000
			return nil
		})
	}()
	for env.mgr.updating.waiters(s.key) < n+1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-late; !errors.Is(err, context.Canceled) {
		t.Fatalf("a withdrawn Update: %v, want context.Canceled", err)
	}
	close(queued)
	wg.Wait()
	for i, err := range errs {
		if (i == 3) != errors.Is(err, boom) || (i != 3 && err != nil) {
			t.Fatalf("Update %d: %v", i, err)
		}
	}
	got, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	if got.Data.Count != 10*(n-1) || got.Data.User != "ann" {
		t.Fatalf("stored %+v, want Count %d and User ann: the failed change and the withdrawn one left nothing", got.Data, 10*(n-1))
	}
}

// TestGroupCommitLosesNoIncrement: many requests of one session in one
// process, each loading the session and then counting with Update, as fast
// as they can: every Update that returned nil is in the stored counter.
// (A holder that got the lock after a holder before it had applied its own
// change once took the queue and applied nothing of it: about 1 increment
// in 2,000 was lost.)
func TestGroupCommitLosesNoIncrement(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	cookie := newStoredSession(t, env)
	const goroutines, each = 48, 400
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s, err := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
				if err != nil {
					t.Error(err)
					return
				}
				if err := env.mgr.Update(newHeaderWriter(), httptestRequest(cookie), s, func(v *visitV1) error { v.Count++; return nil }); err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	got, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	if int64(got.Data.Count) != ok.Load() {
		t.Fatalf("%d Updates succeeded, the counter holds %d", ok.Load(), got.Data.Count)
	}
}
