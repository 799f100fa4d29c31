package sessions

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// gatedLoads is a fake load: it reads state when it is sent, then, for the
// first send, waits for gate, so that a test holds a load on its way.
type gatedLoads struct {
	state atomic.Value // string: what the store holds
	gate  chan struct{}
	first atomic.Bool
	sends atomic.Int64
}

func newGatedLoads(v string) *gatedLoads {
	g := &gatedLoads{gate: make(chan struct{})}
	g.state.Store(v)
	return g
}

func (g *gatedLoads) send(ctx context.Context) func() (backend.Entry, bool, error) {
	return func() (backend.Entry, bool, error) {
		g.sends.Add(1)
		if err := ctx.Err(); err != nil {
			return backend.Entry{}, false, err
		}
		v := g.state.Load().(string) // read when sent
		if g.first.CompareAndSwap(false, true) {
			<-g.gate
		}
		return backend.Entry{Value: []byte(v)}, false, nil
	}
}

// waitFor polls cond until it holds, or fails t after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued returns how many requests of key wait behind the load on its way.
func (g *loadGroups) queued(key string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.lines[key]
	if l == nil || l.waiting == nil {
		return 0, false
	}
	return l.waiting.joined + 1, true
}

func TestLoadsArrivingDuringALoadShareOneCall(t *testing.T) {
	var g loadGroups
	fake := newGatedLoads("v1")
	ctx := t.Context()
	first := make(chan error, 1)
	go func() {
		_, _, err := g.do(ctx, "k", fake.send(ctx))
		first <- err
	}()
	waitFor(t, "the first load to be sent", func() bool { return fake.sends.Load() == 1 })
	const n = 10
	var wg sync.WaitGroup
	values := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			e, _, err := g.do(ctx, "k", fake.send(ctx))
			if err != nil {
				t.Errorf("load %d: %v", i, err)
			}
			values[i] = e.Value
		})
	}
	waitFor(t, "the loads to queue", func() bool { q, _ := g.queued("k"); return q == n })
	close(fake.gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := fake.sends.Load(); got != 2 {
		t.Errorf("%d store calls for %d loads, want 2 (the one on its way, and one for all that arrived meanwhile)", got, n+1)
	}
	for i := range values {
		if string(values[i]) != "v1" {
			t.Errorf("load %d got %q, want v1", i, values[i])
		}
		values[i][0] = 'x' // each caller's own copy: the race detector and the check below see sharing
	}
	for i := 1; i < n; i++ {
		if &values[i][0] == &values[0][0] {
			t.Fatalf("loads %d and 0 share one Value", i)
		}
	}
	if len(g.lines) != 0 {
		t.Errorf("%d lines left after every load returned", len(g.lines))
	}
}

// TestLoadNeverSharesACallSentBeforeIt: a write that completed before a
// request arrived must be seen by that request, although a load sent before
// the write (which holds the old state) is still on its way.
func TestLoadNeverSharesACallSentBeforeIt(t *testing.T) {
	var g loadGroups
	fake := newGatedLoads("before the write")
	ctx := t.Context()
	first := make(chan backend.Entry, 1)
	go func() {
		e, _, _ := g.do(ctx, "k", fake.send(ctx))
		first <- e
	}()
	waitFor(t, "the first load to be sent", func() bool { return fake.sends.Load() == 1 })
	fake.state.Store("after the write") // the write completes
	later := make(chan backend.Entry, 1)
	go func() {
		e, _, _ := g.do(ctx, "k", fake.send(ctx))
		later <- e
	}()
	waitFor(t, "the later load to queue", func() bool { _, ok := g.queued("k"); return ok })
	close(fake.gate)
	if e := <-first; string(e.Value) != "before the write" {
		t.Errorf("the load sent before the write got %q", e.Value)
	}
	if e := <-later; string(e.Value) != "after the write" {
		t.Errorf("a load that arrived after the write got %q, want the write", e.Value)
	}
}

// TestLoadSharedWithACancelledSenderLoadsAgain: the request that sends a
// shared load goes away (its context is cancelled); the requests that
// joined it load on their own instead of failing.
func TestLoadSharedWithACancelledSenderLoadsAgain(t *testing.T) {
	var g loadGroups
	fake := newGatedLoads("v")
	ctx := t.Context()
	go g.do(ctx, "k", fake.send(ctx))
	waitFor(t, "the first load to be sent", func() bool { return fake.sends.Load() == 1 })
	gone, cancel := context.WithCancel(ctx)
	cancel()
	go g.do(gone, "k", fake.send(gone)) // sends the next load, with its context ended
	waitFor(t, "the sender of the next load to queue", func() bool { _, ok := g.queued("k"); return ok })
	joined := make(chan error, 1)
	var got backend.Entry
	go func() {
		var err error
		got, _, err = g.do(ctx, "k", fake.send(ctx))
		joined <- err
	}()
	waitFor(t, "the joiner to queue", func() bool { q, _ := g.queued("k"); return q == 2 })
	close(fake.gate)
	if err := <-joined; err != nil {
		t.Fatalf("the joiner of a cancelled sender's load: %v, want its own load", err)
	}
	if string(got.Value) != "v" {
		t.Errorf("got %q", got.Value)
	}
}

// slowStore is a memory store seen as outside the process (sealed, loads
// coalesced), whose GetTouch takes a while and is counted.
type slowStore struct {
	*memory.Store
	getTouches atomic.Int64
}

func (s *slowStore) InProcess() bool { return false }

func (s *slowStore) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	s.getTouches.Add(1)
	time.Sleep(2 * time.Millisecond)
	return s.Store.GetTouch(ctx, key, now, ifBefore, expires)
}

// TestHotSessionLoadsCoalesce: 32 concurrent requests of one session
// through the middleware cost fewer store loads than requests, and each
// sees the session.
func TestHotSessionLoadsCoalesce(t *testing.T) {
	st := &slowStore{Store: memory.New(memory.Options{})}
	t.Cleanup(func() { st.Close() })
	mgr, err := New[struct{ N int }](Config{Store: st, Cookie: CookieConfig{Name: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if r.URL.Path == "/inc" {
			if err := mgr.Update(w, r, s, func(d *struct{ N int }) error { d.N++; return nil }); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprint(w, s.Data.N)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/inc", nil))
	cookie := rec.Result().Cookies()[0]
	st.getTouches.Store(0)
	const n = 32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "/read", nil)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != "1" {
				t.Errorf("a concurrent read: %d %q, want 200 1", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	loads := st.getTouches.Load()
	t.Logf("%d concurrent reads of one session: %d store loads", n, loads)
	if loads >= n/2 {
		t.Errorf("%d store loads for %d concurrent reads of one session, want them shared (fewer than %d)", loads, n, n/2)
	}
}
