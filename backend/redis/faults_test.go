package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/internal/redistest"
)

// needPause skips t where a redis-server cannot be paused (SIGSTOP).
func needPause(t *testing.T) {
	t.Helper()
	needBinaries(t)
	if !redistest.CanPause() {
		t.Skip("pausing redis-server needs SIGSTOP (unix)")
	}
}

// snapshot returns every key under prefix p with its contents, hash
// fields and sorted-set members with their scores, as one sorted string.
func snapshot(t *testing.T, c *goredis.Client, p string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, p+"*").Result()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: ", k)
		switch typ := c.Type(ctx, k).Val(); typ {
		case "hash":
			m := c.HGetAll(ctx, k).Val()
			fields := make([]string, 0, len(m))
			for f, v := range m {
				fields = append(fields, f+"="+v)
			}
			slices.Sort(fields)
			b.WriteString(strings.Join(fields, " "))
		case "zset":
			for _, z := range c.ZRangeWithScores(ctx, k, 0, -1).Val() {
				fmt.Fprintf(&b, "%v=%v ", z.Member, z.Score)
			}
		default:
			b.WriteString(typ)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// waitAnswers waits until srv answers again after Resume, then a little
// more, so that Redis has run whatever it had buffered while paused.
func waitAnswers(t *testing.T, c *goredis.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis does not answer after Resume: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestWriteArrivingAfterItsDeadlineIsRefused: Redis hangs (SIGSTOP) with
// a write of the store in its socket buffer until past the write's
// context deadline. The store must report the write's outcome as unknown
// (backend.ErrUnknownOutcome, not a plain failure: it was sent), and when
// Redis runs it later, it must refuse it: nothing changes.
func TestWriteArrivingAfterItsDeadlineIsRefused(t *testing.T) {
	redistest.Long(t)
	needPause(t)
	srv := redistest.StartServer(t)
	admin := srv.Client()
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	st := newStore(t, client)
	p := prefix(t)

	later := func() time.Time { return time.Now().Add(time.Hour) }
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"Set", func(ctx context.Context) error {
			return st.Set(ctx, "k", backend.Entry{Value: []byte("v2"), Expires: later(), Version: 2})
		}},
		{"SetIf", func(ctx context.Context) error {
			return st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: later(), Version: 2})
		}},
		{"SetIf new", func(ctx context.Context) error {
			return st.SetIf(ctx, "new", 0, time.Now(), backend.Entry{Value: []byte("n1"), Expires: later(), Version: 1})
		}},
		{"Replace", func(ctx context.Context) error {
			return st.Replace(ctx, "k", 1, "k2", time.Now(), backend.Entry{Value: []byte("v2"), Expires: later(), Version: 2})
		}},
		{"Touch", func(ctx context.Context) error {
			return st.Touch(ctx, "k", time.Now(), time.Now().Add(2*time.Hour))
		}},
		{"Delete", func(ctx context.Context) error { return st.Delete(ctx, "k") }},
		{"AddOwned", func(ctx context.Context) error { return st.AddOwned(ctx, "u", "k3", later()) }},
		{"RemoveOwned", func(ctx context.Context) error { return st.RemoveOwned(ctx, "u", "k") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if err := st.Set(ctx, "k", backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(90 * time.Minute), Version: 1}); err != nil {
				t.Fatal(err)
			}
			if err := st.AddOwned(ctx, "u", "k", later()); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, admin, p)
			if before == "" {
				t.Fatal("nothing stored before the write")
			}

			srv.Pause()
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			start := time.Now()
			err := tc.write(wctx)
			took := time.Since(start)
			cancel()
			time.Sleep(200 * time.Millisecond) // well past the deadline
			srv.Resume()
			waitAnswers(t, admin)

			if !errors.Is(err, backend.ErrUnknownOutcome) {
				t.Errorf("%s sent to a hung Redis: %v, want an error wrapping backend.ErrUnknownOutcome", tc.name, err)
			}
			if took > time.Second {
				t.Errorf("%s returned after %v, long past its 300ms deadline", tc.name, took)
			}
			if after := snapshot(t, admin, p); after != before {
				t.Errorf("Redis applied the %s after its deadline:\nbefore:\n%safter:\n%s", tc.name, before, after)
			}
			if err := admin.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCommitPastDeadlineAnswers504AndStoresNothing: Redis hangs between a
// request's load and its commit, past the request's deadline. The answer
// is the ErrorHandler's 504 (outcome unknown), never a 500 ("failed"), and
// when Redis resumes the increment is not stored.
func TestCommitPastDeadlineAnswers504AndStoresNothing(t *testing.T) {
	needPause(t)
	srv := redistest.StartServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	a := newApp(t, newStore(t, client), sessions.Config{Now: time.Now})
	_, _, cookie := a.do(t, "/inc", "")

	h := a.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := a.mgr.Get(r)
		s.Data.N++
		srv.Pause() // Redis hangs after the load, before the commit
		fmt.Fprint(w, s.Data.N)
	}))
	req := httptest.NewRequest("GET", "/inc", nil)
	req.Header.Set("Cookie", cookie)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(ctx))
	time.Sleep(200 * time.Millisecond)
	srv.Resume()
	waitAnswers(t, srv.Client())

	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("commit to a hung Redis answered %d %q, want 504 (outcome unknown)", rec.Code, rec.Body.String())
	}
	if _, body, _ := a.do(t, "/read", cookie); body != "1" {
		t.Errorf("after Redis resumed the counter is %s, want 1: the increment answered %d was stored", body, rec.Code)
	}
}

// fillRedis sets maxmemory a little above what c's server uses, with
// policy, and fills it with keys outside t's prefix until a write is
// refused (noeviction) or keys are evicted (other policies).
func fillRedis(t *testing.T, c *goredis.Client, policy string) {
	t.Helper()
	ctx := t.Context()
	used := memoryUsed(t, c)
	for _, kv := range [][2]string{{"maxmemory-policy", policy}, {"maxmemory", strconv.FormatInt(used+512<<10, 10)}} {
		if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	filler := strings.Repeat("x", 4096)
	for i := 0; i < 100000; i++ {
		err := c.Set(ctx, fmt.Sprintf("filler:%d", i), filler, time.Hour).Err()
		if err != nil && strings.Contains(err.Error(), "OOM") {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if policy != "noeviction" && i%64 == 0 {
			if evicted(t, c) > 0 {
				return
			}
		}
	}
	t.Fatal("Redis never reached its maxmemory")
}

// memoryUsed returns INFO memory's used_memory.
func memoryUsed(t *testing.T, c *goredis.Client) int64 {
	t.Helper()
	return infoField(t, c, "memory", "used_memory")
}

// evicted returns INFO stats' evicted_keys.
func evicted(t *testing.T, c *goredis.Client) int64 {
	t.Helper()
	return infoField(t, c, "stats", "evicted_keys")
}

func infoField(t *testing.T, c *goredis.Client, section, field string) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %s%q", section, field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// TestReadWithRefreshDueServedAtMaxmemory: Redis at maxmemory with
// noeviction refuses writes. A read whose idle-deadline refresh is due
// still serves the session (the slide is skipped), a change is refused
// with the ErrorHandler's 500 and nothing of it stored, and once memory is
// free again the next read slides the deadline.
func TestReadWithRefreshDueServedAtMaxmemory(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	a := newApp(t, newStore(t, client), sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute})
	_, _, cookie := a.do(t, "/inc", "")
	key := func() string {
		keys, err := client.Keys(t.Context(), prefix(t)+"*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys under the prefix: %v, %v", keys, err)
		}
		return keys[0]
	}()
	expireAt := func() time.Duration {
		at, err := client.PExpireTime(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	fillRedis(t, client, "noeviction")
	first := expireAt()

	a.clock.Advance(2 * time.Minute) // refresh due
	for i := range 3 {
		if code, body, _ := a.do(t, "/read", cookie); code != 200 || body != "1" {
			t.Fatalf("read %d with refresh due at maxmemory: %d %q, want 200 and the session (1)", i, code, body)
		}
	}
	if got := expireAt(); got != first {
		t.Errorf("the deadline moved from %v to %v at maxmemory", first, got)
	}
	if code, _, _ := a.do(t, "/inc", cookie); code != http.StatusInternalServerError {
		t.Errorf("a change at maxmemory answered %d, want 500", code)
	}

	if err := client.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := a.do(t, "/read", cookie); code != 200 || body != "1" {
		t.Fatalf("read after memory was freed: %d %q, want 200 and 1 (the refused change not stored)", code, body)
	}
	if got := expireAt(); got <= first {
		t.Errorf("the read after memory was freed did not slide the deadline (%v, before %v)", got, first)
	}
}

// TestDestroyAllAtMaxmemory: at maxmemory with noeviction (the
// recommended policy) nothing of the owner index is lost, and ending
// sessions needs no memory: a logout works, and DestroyAll ends every
// other session of the owner.
func TestDestroyAllAtMaxmemory(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	a := newApp(t, newStore(t, client), sessions.Config{Now: time.Now})
	login := a.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := a.mgr.Get(r)
		s.Data.User = "alice"
		s.SetOwner("alice")
		if err := a.mgr.Migrate(w, r, s); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	var cookies []string
	for range 5 {
		rec := httptest.NewRecorder()
		login.ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
		if rec.Code != 200 {
			t.Fatalf("login: %d", rec.Code)
		}
		c := rec.Result().Cookies()[0]
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	fillRedis(t, client, "noeviction")
	// A logout, then "log out everywhere".
	logout := a.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.mgr.Destroy(w, r, a.mgr.Get(r)); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/logout", nil)
	req.Header.Set("Cookie", cookies[0])
	logout.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("logout at maxmemory: %d %q", rec.Code, rec.Body.String())
	}
	list, err := a.mgr.Sessions(t.Context(), "alice")
	if err != nil || len(list) != 4 {
		t.Fatalf("Sessions at maxmemory after a logout: %d, %v; want 4", len(list), err)
	}
	n, err := a.mgr.DestroyAll(t.Context(), "alice", "")
	if err != nil || n != 4 {
		t.Fatalf("DestroyAll at maxmemory: %d, %v; want 4", n, err)
	}
	for _, c := range cookies {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", c)
		s, err := a.mgr.Load(httptest.NewRecorder(), req)
		if err != nil || !s.IsNew() {
			t.Fatalf("a session after DestroyAll: %v, new %v", err, s != nil && s.IsNew())
		}
	}
}

// TestClusterRecoversWithinTwoSeconds: clients increment their sessions'
// counters on a 3+3 cluster, with a ClusterClient of go-redis's defaults
// (the slot map reloaded every 60 s). A primary is killed; once a replica
// took over and the cluster is OK again, requests must succeed again
// within 2 s, and no increment answered "failed" may be stored.
func TestClusterRecoversWithinTwoSeconds(t *testing.T) {
	redistest.Long(t)
	needBinaries(t)
	cluster := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cluster.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	a := newApp(t, newStore(t, client), sessions.Config{Now: time.Now})

	const workers = 16
	type worker struct {
		cookie   string
		ledger   redistest.Ledger
		lastFail time.Time // when the last failed request ended
	}
	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = &worker{}
		code, _, cookie := a.do(t, "/inc", "")
		if code != 200 {
			t.Fatalf("first request: %d", code)
		}
		ws[i].cookie = cookie
		ws[i].ledger.AnswerStored(1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := httptest.NewRequest("GET", "/inc", nil).WithContext(t.Context())
				req.Header.Set("Cookie", w.cookie)
				ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
				rec := httptest.NewRecorder()
				a.handler.ServeHTTP(rec, req.WithContext(ctx))
				cancel()
				switch rec.Code {
				case 200:
					n, _ := strconv.Atoi(rec.Body.String())
					w.ledger.AnswerStored(n)
				case http.StatusGatewayTimeout:
					w.ledger.AnswerUnknown()
					w.lastFail = time.Now()
				default:
					w.ledger.AnswerFailed()
					w.lastFail = time.Now()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	victim := cluster.Primaries()[0]
	killed := time.Now()
	victim.Kill()
	ok := cluster.WaitHealthy(20 * time.Second)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	var sum redistest.Ledger
	var lastFail time.Time
	for i, w := range ws {
		if w.lastFail.After(lastFail) {
			lastFail = w.lastFail
		}
		// One more increment, to read the final counter.
		code, body, _ := a.do(t, "/inc", w.cookie)
		if code != 200 {
			t.Errorf("worker %d: final request answered %d", i, code)
			continue
		}
		n, _ := strconv.Atoi(body)
		w.ledger.AnswerStored(n)
		sum.Add(&w.ledger)
		if w.ledger.Phantoms > 0 {
			t.Errorf("worker %d: %v", i, &w.ledger)
		}
	}
	t.Logf("cluster OK %v after the kill; %v", ok.Sub(killed).Round(time.Millisecond), &sum)
	if sum.Failed+sum.Unknown == 0 {
		t.Fatal("no request failed: the kill did not hit the clients")
	}
	recovery := lastFail.Sub(ok)
	t.Logf("last failure %v after the cluster was OK", recovery.Round(time.Millisecond))
	if recovery > 2*time.Second {
		t.Errorf("requests still failed %v after the cluster was OK again, want at most 2s", recovery.Round(time.Millisecond))
	}
}
