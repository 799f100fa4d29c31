package redis_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/redis"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/lostreply"
	"github.com/sessionx/sessions/internal/redistest"
	"github.com/sessionx/sessions/internal/testclock"
	"github.com/sessionx/sessions/sessionstest"
)

// prefix returns a key prefix of t's own, so that tests sharing a Redis never
// see each other's keys.
func prefix(t testing.TB) string {
	return "test:" + strings.ReplaceAll(t.Name(), "/", ":") + ":"
}

// cookieName is the session cookie's name with the default Config.
const cookieName = "__Host-session"

// newStore returns a store on client under t's prefix.
func newStore(t testing.TB, client goredis.UniversalClient) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redis.New(ctx, client, redis.Options{Prefix: prefix(t)})
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	return st
}

// needBinaries skips t when redis-server is missing, unless CI requires it.
func needBinaries(t *testing.T) {
	t.Helper()
	if redistest.HaveBinaries() {
		return
	}
	if redistest.Required() {
		t.Fatalf("redis-server not on PATH and %s=1", redistest.RequireEnv)
	}
	t.Skip("redis-server not on PATH: this test needs a real Redis")
}

func TestConformanceSingleNode(t *testing.T) {
	client, real := redistest.Single(t)
	t.Logf("real redis-server: %v", real)
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestConformanceMiniredis(t *testing.T) {
	_, client := redistest.Mini(t)
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestConformanceCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, cluster.Client()) })
}

type visit struct {
	N    int
	User string
}

// app is a Manager on a Redis store and a handler: /inc increments N, /read
// only reads.
type app struct {
	mgr     *sessions.Manager[visit]
	handler http.Handler
	clock   *testclock.Clock // starts at the real time: Redis expires keys by its own clock
	ran     atomic.Int64     // how many times the inner handler ran
}

func newApp(t *testing.T, store backend.Store, cfg sessions.Config) *app {
	t.Helper()
	a := &app{clock: testclock.New(time.Now())}
	cfg.Store = store
	if cfg.Now == nil {
		cfg.Now = a.clock.Now
	}
	mgr, err := sessions.New[visit](cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.mgr = mgr
	a.handler = mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.ran.Add(1)
		s := mgr.Get(r)
		if r.URL.Path == "/inc" {
			s.Data.N++
		}
		fmt.Fprint(w, s.Data.N)
	}))
	return a
}

// do runs one request and returns the status, the body and the session
// cookie header to send next ("" if none was set).
func (a *app) do(t *testing.T, path, cookie string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == cookieName && c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	return rec.Code, rec.Body.String(), cookie
}

func TestRoundTrips(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	counter := &redistest.Counter{}
	client.AddHook(counter)
	a := newApp(t, newStore(t, client), sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute})
	redistest.Warm(t, client)
	admin := srv.Client()

	steps := []struct {
		name       string
		advance    time.Duration
		path       string
		roundTrips int64
		writes     bool // whether Redis applied any write
	}{
		{"create", 0, "/inc", 1, true},
		{"read, refresh not due", time.Minute, "/read", 1, false},
		{"read, refresh due: load and slide in one trip", 3 * time.Minute, "/read", 1, true},
		{"save a change, refresh not due", time.Minute, "/inc", 2, true},
		{"read again, nothing due", time.Minute, "/read", 1, false},
		{"change with refresh due", 3 * time.Minute, "/inc", 2, true},
	}
	cookie := ""
	for _, st := range steps {
		a.clock.Advance(st.advance)
		counter.Reset()
		dirty := redistest.Dirty(t, admin)
		var code int
		code, _, cookie = a.do(t, st.path, cookie)
		if code != 200 {
			t.Fatalf("%s: status %d", st.name, code)
		}
		if got := counter.RoundTrips(); got != st.roundTrips {
			t.Errorf("%s: %d round trips (%v), want %d", st.name, got, counter.Names(), st.roundTrips)
		}
		if got := counter.Commands(); got != st.roundTrips {
			t.Errorf("%s: %d commands (%v), want one per round trip", st.name, got, counter.Names())
		}
		if wrote := redistest.Dirty(t, admin) != dirty; wrote != st.writes {
			t.Errorf("%s: Redis applied writes: %v, want %v", st.name, wrote, st.writes)
		}
	}
}

func TestTTLNeverOutlivesAbsoluteDeadline(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	a := newApp(t, newStore(t, client), sessions.Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour, TouchInterval: time.Minute})
	var s *sessions.Session[visit]
	_, _, cookie := a.do(t, "/inc", "")
	for i := 0; i < 6; i++ {
		a.clock.Advance(10 * time.Minute)
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", cookie)
		var err error
		if s, err = a.mgr.Load(httptest.NewRecorder(), req); err != nil {
			t.Fatal(err)
		}
		if s.IsNew() {
			break
		}
		keys, err := client.Keys(t.Context(), prefix(t)+"*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys under the prefix: %v, %v", keys, err)
		}
		expireAt, err := client.PExpireTime(t.Context(), keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		if expireAt <= 0 {
			t.Fatalf("key has no TTL (%v)", expireAt)
		}
		if limit := s.AbsoluteDeadline().UnixMilli(); expireAt.Milliseconds() > limit {
			t.Fatalf("after %d min the key expires at %d ms, past the absolute deadline %d ms", (i+1)*10, expireAt.Milliseconds(), limit)
		}
	}
}

func TestIdleSessionGoneFromRedisByTTL(t *testing.T) {
	client, _ := redistest.Single(t)
	a := newApp(t, newStore(t, client), sessions.Config{IdleTimeout: 500 * time.Millisecond, Now: time.Now})
	_, _, cookie := a.do(t, "/inc", "")
	if cookie == "" {
		t.Fatal("no session")
	}
	if n, _ := client.Keys(t.Context(), prefix(t)+"*").Result(); len(n) != 1 {
		t.Fatalf("keys after creating: %v", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys, err := client.Keys(t.Context(), prefix(t)+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle session still in Redis 5 s after its idle deadline: %v", keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countKeys returns how many keys lie under prefix, read atomically on one node.
func countKeys(ctx context.Context, c *goredis.Client, prefix string) (int64, error) {
	return c.Eval(ctx, "return #redis.call('KEYS', ARGV[1])", nil, prefix+"*").Int64()
}

func TestMigrateIsAtomicOnSingleNode(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	a := newApp(t, newStore(t, client), sessions.Config{})
	_, _, cookie := a.do(t, "/inc", "")

	// An observer counts the session's keys, atomically, while it is
	// migrated again and again: it must always see exactly one.
	ctx, cancel := context.WithCancel(t.Context())
	observer := srv.Client()
	var seen sync.Map
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			n, err := countKeys(ctx, observer, prefix(t))
			if err == nil {
				seen.Store(n, true)
			}
		}
	}()
	for i := 0; i < 300; i++ {
		req := httptest.NewRequest("POST", "/login", nil)
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		s, err := a.mgr.Load(rec, req)
		if err != nil || s.IsNew() {
			t.Fatalf("load %d: %v (new %v)", i, err, s != nil && s.IsNew())
		}
		if err := a.mgr.Migrate(rec, req, s); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
		old := cookie
		cookie = cookieName + "=" + rec.Result().Cookies()[0].Value
		if old == cookie {
			t.Fatal("Migrate kept the token")
		}
	}
	cancel()
	<-done
	seen.Range(func(k, _ any) bool {
		if k.(int64) != 1 {
			t.Errorf("an observer saw %d keys for one session during Migrate", k)
		}
		return true
	})
	if _, ok := seen.Load(int64(1)); !ok {
		t.Fatal("the observer saw nothing")
	}
}

func TestMigrateOnCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	a := newApp(t, newStore(t, cluster.Client()), sessions.Config{})
	_, _, cookie := a.do(t, "/inc", "")
	for i := 0; i < 20; i++ {
		req := httptest.NewRequest("POST", "/login", nil)
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		s, err := a.mgr.Load(rec, req)
		if err != nil || s.IsNew() || s.Data.N != 1 {
			t.Fatalf("load %d: %v %+v", i, err, s)
		}
		if err := a.mgr.Migrate(rec, req, s); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
		next := cookieName + "=" + rec.Result().Cookies()[0].Value
		if code, body, _ := a.do(t, "/read", cookie); code != 200 || body != "0" {
			t.Fatalf("old token after Migrate on the cluster: %d %q, want a new session", code, body)
		}
		cookie = next
	}
	var total atomic.Int64
	err := cluster.Client().ForEachMaster(t.Context(), func(ctx context.Context, c *goredis.Client) error {
		n, err := countKeys(ctx, c, prefix(t))
		total.Add(n)
		return err
	})
	if err != nil || total.Load() != 1 {
		t.Fatalf("keys left on the cluster: %d (%v), want 1", total.Load(), err)
	}
}

func TestNewWithUnreachableRedis(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := redis.New(ctx, client, redis.Options{})
	if err == nil || st != nil {
		t.Fatalf("New with nothing listening: %v, %v", st, err)
	}
	if !strings.Contains(err.Error(), "cannot reach Redis") {
		t.Errorf("error %q does not say Redis is unreachable", err)
	}
	if _, err := redis.New(ctx, nil, redis.Options{}); err == nil {
		t.Error("New with a nil client gave no error")
	}
}

func TestContextDeadlineIsHonoured(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()
	st := newStore(t, client)
	// Pause every client for two seconds: the store's call must give up at
	// its context deadline instead.
	if err := srv.Client().Do(t.Context(), "CLIENT", "PAUSE", 2000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := st.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with a paused Redis: %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 1500*time.Millisecond {
		t.Errorf("Get returned after %v, past its 200ms deadline and near the pause's end", waited)
	}
}

func TestRedisDownAndBack(t *testing.T) {
	needBinaries(t)
	// Persistence on, so that the data survives the restart as it would in
	// production.
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 500 * time.Millisecond, ContextTimeoutEnabled: true})
	defer client.Close()
	a := newApp(t, newStore(t, client), sessions.Config{})
	_, _, cookie := a.do(t, "/inc", "")
	var body string
	_, body, _ = a.do(t, "/inc", cookie)
	if body != "2" {
		t.Fatalf("before the outage: %q", body)
	}

	srv.Stop()
	for _, path := range []string{"/read", "/inc"} {
		ran := a.ran.Load()
		code, body, setCookie := a.do(t, path, cookie)
		if code != http.StatusInternalServerError {
			t.Fatalf("%s with Redis down: %d %q, want 500", path, code, body)
		}
		if a.ran.Load() != ran {
			t.Fatalf("%s with Redis down: the handler ran with a blank session", path)
		}
		if setCookie != cookie {
			t.Fatalf("%s with Redis down: the cookie was replaced", path)
		}
	}
	// A new visitor whose handler stores data cannot be saved either: 500.
	if code, _, _ := a.do(t, "/inc", ""); code != http.StatusInternalServerError {
		t.Fatalf("new session with Redis down: %d, want 500", code)
	}

	srv.Start()
	var code int
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ = a.do(t, "/inc", cookie)
		if code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 200 || body != "3" {
		t.Fatalf("after Redis came back: %d %q, want 200 and the session's counter at 3", code, body)
	}
}

func TestSessionsSharedBetweenManagers(t *testing.T) {
	client, _ := redistest.Single(t)
	one := newApp(t, newStore(t, client), sessions.Config{})
	two := newApp(t, newStore(t, client), sessions.Config{})
	_, _, cookie := one.do(t, "/inc", "")
	if _, body, _ := two.do(t, "/inc", cookie); body != "2" {
		t.Fatalf("second manager read %q, want the first one's session (2)", body)
	}
	if _, body, _ := one.do(t, "/read", cookie); body != "2" {
		t.Fatalf("first manager read %q after the second saved, want 2", body)
	}
}

func TestConformanceSentinel(t *testing.T) {
	needBinaries(t)
	sentinel := redistest.StartSentinel(t)
	client := sentinel.Client()
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestMigrateThroughSentinel(t *testing.T) {
	needBinaries(t)
	sentinel := redistest.StartSentinel(t)
	a := newApp(t, newStore(t, sentinel.Client()), sessions.Config{})
	_, _, cookie := a.do(t, "/inc", "")
	req := httptest.NewRequest("POST", "/login", nil)
	req.Header.Set("Cookie", cookie)
	rec := httptest.NewRecorder()
	s, err := a.mgr.Load(rec, req)
	if err != nil || s.IsNew() {
		t.Fatalf("load: %v", err)
	}
	if err := a.mgr.Migrate(rec, req, s); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	next := cookieName + "=" + rec.Result().Cookies()[0].Value
	if _, body, _ := a.do(t, "/read", next); body != "1" {
		t.Fatalf("new token through Sentinel: %q, want 1", body)
	}
	if _, body, _ := a.do(t, "/read", cookie); body != "0" {
		t.Fatalf("old token through Sentinel: %q, want a new session", body)
	}
	if n, err := countKeys(t.Context(), sentinel.Primary().Client(), prefix(t)); err != nil || n != 1 {
		t.Fatalf("keys on the primary: %d, %v; want 1", n, err)
	}
}

func TestConcurrencyRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store { return newStore(t, client) }, sessionstest.Options{})
}

func TestConcurrencySentinel(t *testing.T) {
	needBinaries(t)
	client := redistest.StartSentinel(t).Client()
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store { return newStore(t, client) }, sessionstest.Options{})
}

func TestConcurrencyCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store { return newStore(t, cluster.Client()) }, sessionstest.Options{})
}

// dumpRedis returns every key under t's prefix and every value: hash
// fields and values (HGETALL), sorted set members (ZRANGE), strings (GET),
// as a copy of Redis would hold them.
func dumpRedis(client goredis.UniversalClient) sessionstest.Dump {
	return func(t *testing.T, _ backend.Store) [][]byte {
		t.Helper()
		ctx := t.Context()
		var out [][]byte
		scan := func(ctx context.Context, c goredis.UniversalClient) error {
			iter := c.Scan(ctx, 0, prefix(t)+"*", 100).Iterator()
			for iter.Next(ctx) {
				key := iter.Val()
				out = append(out, []byte(key))
				switch typ, err := c.Type(ctx, key).Result(); {
				case err != nil:
					return err
				case typ == "hash":
					m, err := c.HGetAll(ctx, key).Result()
					if err != nil {
						return err
					}
					for f, v := range m {
						out = append(out, []byte(f), []byte(v))
					}
				case typ == "zset":
					zs, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
					if err != nil {
						return err
					}
					for _, z := range zs {
						out = append(out, []byte(fmt.Sprint(z.Member)), []byte(fmt.Sprint(z.Score)))
					}
				case typ == "string":
					v, err := c.Get(ctx, key).Bytes()
					if err != nil {
						return err
					}
					out = append(out, v)
				default:
					return fmt.Errorf("key %q of type %s", key, typ)
				}
			}
			return iter.Err()
		}
		var err error
		if cc, ok := client.(*goredis.ClusterClient); ok {
			var mu sync.Mutex
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				return scan(ctx, c)
			})
		} else {
			err = scan(ctx, client)
		}
		if err != nil {
			t.Fatalf("dumping Redis: %v", err)
		}
		return out
	}
}

func TestDumpRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunDump(t, func(t *testing.T) backend.Store { return newStore(t, client) }, dumpRedis(client))
}

func TestDumpSentinel(t *testing.T) {
	needBinaries(t)
	client := redistest.StartSentinel(t).Client()
	sessionstest.RunDump(t, func(t *testing.T) backend.Store { return newStore(t, client) }, dumpRedis(client))
}

func TestDumpCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	client := cluster.Client()
	sessionstest.RunDump(t, func(t *testing.T) backend.Store { return newStore(t, client) }, dumpRedis(client))
}

func TestMergeRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunMerge(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestMergeCluster(t *testing.T) {
	needBinaries(t)
	client := redistest.StartCluster(t).Client()
	sessionstest.RunMerge(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestWritesRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestWritesSentinel(t *testing.T) {
	needBinaries(t)
	client := redistest.StartSentinel(t).Client()
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestWritesCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store { return newStore(t, cluster.Client()) })
}

// TestFailedLoginDoesNotLogOldTokenInUnderMaxmemory: a Redis at maxmemory
// with noeviction refuses writes. A login there either happens whole or
// not at all: when Migrate fails, the old token still gives the session as
// stored, without the user, and the response sets no cookie. (Redis 7 lets
// a script that already wrote go on past the limit, so the returning
// visitor's move, which deletes the old key first, may land whole; a new
// visitor's first write is refused.)
func TestFailedLoginDoesNotLogOldTokenInUnderMaxmemory(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	a := newApp(t, newStore(t, client), sessions.Config{})
	_, _, cookie := a.do(t, "/inc", "")
	ctx := t.Context()
	info, err := client.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var usedMemory int64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			usedMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if usedMemory == 0 {
		t.Fatalf("no used_memory in INFO memory:\n%s", info)
	}
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", strconv.FormatInt(usedMemory+256<<10, 10)}} {
		if err := client.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Fill Redis until it refuses writes.
	filler := strings.Repeat("x", 4096)
	full := false
	for i := 0; i < 10000 && !full; i++ {
		err := client.Set(ctx, fmt.Sprintf("%sfiller:%d", prefix(t), i), filler, 0).Err()
		full = err != nil && strings.Contains(err.Error(), "OOM")
	}
	if !full {
		t.Fatal("Redis never refused a write under maxmemory")
	}

	var migrateErr error
	login := a.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := a.mgr.Get(r)
		s.Data.N = 1000 // the login's change
		s.SetOwner("user-1")
		if migrateErr = a.mgr.Migrate(w, r, s); migrateErr != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	}))
	failed := 0
	for _, c := range []string{cookie, ""} { // a returning and a new visitor
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/login", nil)
		if c != "" {
			req.Header.Set("Cookie", c)
		}
		login.ServeHTTP(rec, req)
		if migrateErr == nil {
			// Whole: the new token has the login, the old one nothing.
			next := ""
			for _, ck := range rec.Result().Cookies() {
				next = ck.Name + "=" + ck.Value
			}
			if _, body, _ := a.do(t, "/read", next); body != "1000" {
				t.Fatalf("a login that succeeded under maxmemory: the new token gives %q", body)
			}
			if _, body, _ := a.do(t, "/read", c); c != "" && body != "0" {
				t.Fatalf("a login that succeeded under maxmemory: the old token gives %q", body)
			}
			continue
		}
		failed++
		if !strings.Contains(migrateErr.Error(), "OOM") {
			t.Fatalf("Migrate under maxmemory: %v, want Redis's OOM error", migrateErr)
		}
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("failed login answered %d, want the handler's 500", rec.Code)
		}
		if line := rec.Header().Get("Set-Cookie"); line != "" {
			t.Errorf("the failed login's response sets a cookie: %q", line)
		}
		if _, body, _ := a.do(t, "/read", c); c != "" && body != "1" {
			t.Fatalf("after a failed login the old token gives %q, want the session as stored (1)", body)
		}
	}
	if failed == 0 {
		t.Fatal("no login failed under maxmemory")
	}
}

// newLossyStore returns a store whose client reaches srv through a
// lostreply.Proxy, with go-redis's MaxRetries set to maxRetries.
func newLossyStore(t *testing.T, srv *redistest.Server, maxRetries int) (*lostreply.Proxy, *goredis.Client, *redis.Store) {
	t.Helper()
	proxy := lostreply.NewProxy(t, srv.Addr())
	client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: maxRetries})
	t.Cleanup(func() { client.Close() })
	return proxy, client, newStore(t, client)
}

func TestWriteWithLostReplyIsResolved(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	proxy, _, st := newLossyStore(t, srv, 0)
	ctx := t.Context()
	e := backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(time.Minute), Version: 1}
	if err := st.SetIf(ctx, "k", 0, time.Now(), e); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		write func() error
		check func(t *testing.T)
	}{
		{"SetIf", func() error {
			return st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: time.Now().Add(time.Minute), Version: 2})
		}, func(t *testing.T) {
			got, err := st.Get(ctx, "k")
			if err != nil || string(got.Value) != "v2" || got.Version != 2 {
				t.Fatalf("after the replayed SetIf: %+v, %v", got, err)
			}
		}},
		{"Replace", func() error {
			return st.Replace(ctx, "k", 2, "k2", time.Now(), backend.Entry{Value: []byte("v3"), Expires: time.Now().Add(time.Minute), Version: 3})
		}, func(t *testing.T) {
			if _, err := st.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("old key after the replayed Replace: %v", err)
			}
			if got, err := st.Get(ctx, "k2"); err != nil || string(got.Value) != "v3" {
				t.Fatalf("new key after the replayed Replace: %+v, %v", got, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drops := proxy.Drops()
			proxy.DropNextReply()
			if err := tc.write(); err != nil {
				t.Fatalf("a write Redis applied but whose reply was lost: %v, want success", err)
			}
			if proxy.Drops() != drops+1 {
				t.Fatal("the proxy dropped no reply: the test tested nothing")
			}
			tc.check(t)
		})
	}

	// A different writer of the same version is not mistaken for a replay.
	if err := st.SetIf(ctx, "k2", 2, time.Now(), backend.Entry{Value: []byte("v3"), Expires: time.Now().Add(time.Minute), Version: 3}); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("another writer's SetIf from a stale version: %v, want ErrConflict", err)
	}
}

// ownerKey is the documented key of owner's index set under t's prefix.
func ownerKey(t testing.TB, owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return prefix(t) + "owner:" + hex.EncodeToString(sum[:])
}

func TestOwnerSetExpiresWithItsLastLimit(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	st := newStore(t, client)
	ctx := t.Context()
	owner := "user {42}: ünï"
	key := ownerKey(t, owner)

	start := time.Now()
	first, last := start.Add(300*time.Millisecond), start.Add(900*time.Millisecond)
	for _, rec := range []struct {
		key   string
		limit time.Time
	}{{"k1", first}, {"k2", last}} {
		if err := st.AddOwned(ctx, owner, rec.key, rec.limit); err != nil {
			t.Fatal(err)
		}
	}
	checkSet := func(when string, members []string, expireAt time.Time) {
		t.Helper()
		got, err := client.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, members) {
			t.Errorf("%s: members of %s = %q, want %q", when, key, got, members)
		}
		at, err := client.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if at <= 0 {
			t.Fatalf("%s: the owner set has no TTL (PEXPIRETIME %v)", when, at)
		}
		// Exactly the highest limit: no later (it would outlive its last
		// session), no sooner (it would take live records with it).
		if at.Milliseconds() != expireAt.UnixMilli() {
			t.Errorf("%s: the owner set expires at %d ms, want %d ms (the highest limit)", when, at.Milliseconds(), expireAt.UnixMilli())
		}
	}
	checkSet("after two AddOwned", []string{"k1", "k2"}, last)
	if score, err := client.ZScore(ctx, key, "k2").Result(); err != nil || int64(score) != last.UnixMilli() {
		t.Errorf("score of k2 = %v, %v; want its limit %d", score, err, last.UnixMilli())
	}

	// After k1's limit, the next AddOwned drops it; a lower limit leaves
	// the TTL at the highest one.
	time.Sleep(time.Until(first.Add(50 * time.Millisecond)))
	if err := st.AddOwned(ctx, owner, "k3", time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(last.Add(-100 * time.Millisecond)) {
		t.Skip("inconclusive: too slow to check the set before its last limit")
	}
	checkSet("after AddOwned past the first limit", []string{"k2", "k3"}, last)

	// Once every limit has passed, Redis forgets the set by itself.
	giveUp := last.Add(3 * time.Second)
	for {
		n, err := client.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("owner set still in Redis %v after its last limit", time.Since(last).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if keys, err := st.Owned(ctx, owner); err != nil || len(keys) != 0 {
		t.Errorf("Owned after the set expired = %q, %v; want none", keys, err)
	}

	// Removing the last member, or giving it a past limit, deletes the
	// set at once.
	for _, tc := range []struct {
		name   string
		remove func() error
	}{
		{"RemoveOwned", func() error { return st.RemoveOwned(ctx, owner, "k") }},
		{"AddOwned with a past limit", func() error { return st.AddOwned(ctx, owner, "k", time.Now().Add(-time.Second)) }},
	} {
		if err := st.AddOwned(ctx, owner, "k", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := tc.remove(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n, err := client.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("after %s of the last member: EXISTS = %d, %v; want 0", tc.name, n, err)
		}
	}
}

func TestIndexerWriteWithLostReplyIsResolved(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	proxy, _, st := newLossyStore(t, srv, 0)
	ctx := t.Context()
	limit := time.Now().Add(time.Minute)
	if err := st.AddOwned(ctx, "u", "k1", limit); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func() error
		want  []string
	}{
		{"AddOwned", func() error { return st.AddOwned(ctx, "u", "k2", limit) }, []string{"k1", "k2"}},
		{"RemoveOwned", func() error { return st.RemoveOwned(ctx, "u", "k1") }, []string{"k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drops := proxy.Drops()
			proxy.DropNextReply()
			if err := tc.write(); err != nil {
				t.Fatalf("a write Redis applied but whose reply was lost: %v, want success", err)
			}
			if proxy.Drops() != drops+1 {
				t.Fatal("the proxy dropped no reply: the test tested nothing")
			}
			got, err := st.Owned(ctx, "u")
			slices.Sort(got)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Owned after the replayed %s = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
}

func TestSecurityRealRedis(t *testing.T) {
	needBinaries(t)
	client := redistest.StartServer(t).Client()
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestSecuritySentinel(t *testing.T) {
	needBinaries(t)
	client := redistest.StartSentinel(t).Client()
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store { return newStore(t, client) })
}

func TestSecurityCluster(t *testing.T) {
	needBinaries(t)
	cluster := redistest.StartCluster(t)
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store { return newStore(t, cluster.Client()) })
}

func TestWriteWithLostReplyThenAnotherWriterIsResolved(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	proxy, _, st := newLossyStore(t, srv, -1)
	direct := newStore(t, srv.Client()) // same prefix: the same keys
	ctx := t.Context()
	exp := time.Now().Add(time.Minute)
	if err := st.SetIf(ctx, "k", 0, time.Now(), backend.Entry{Value: []byte("v1"), Expires: exp, Version: 1}); err != nil {
		t.Fatal(err)
	}
	// The write lands, its reply is lost, and before the store tries again
	// another writer builds on it. The replay must still report success.
	proxy.OnDrop(func() {
		if err := direct.SetIf(ctx, "k", 2, time.Now(), backend.Entry{Value: []byte("v3"), Expires: exp, Version: 3}); err != nil {
			t.Errorf("the other writer: %v", err)
		}
	})
	proxy.DropNextReply()
	if err := st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: exp, Version: 2}); err != nil {
		t.Fatalf("a write that landed, then was built on, was reported as %v", err)
	}
	if got, _ := st.Get(ctx, "k"); string(got.Value) != "v3" || got.Version != 3 {
		t.Fatalf("stored %+v, want the other writer's v3", got)
	}
}

// TestCallersClockAheadWritesNothing checks that an entry whose deadline has
// passed by the caller's clock, though not by Redis's, is answered as missing
// by every operation that takes now, and that none of them writes anything:
// neither the hash nor its TTL changes.
func TestCallersClockAheadWritesNothing(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	st := newStore(t, client)
	ctx := t.Context()
	start := time.Now()
	e := backend.Entry{Value: []byte("v"), Expires: start.Add(time.Hour), Limit: start.Add(2 * time.Hour), Version: 3}
	if err := st.Set(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	key := prefix(t) + "k"
	before, err := client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := client.PExpireTime(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	now := start.Add(90 * time.Minute) // the caller's clock: past e.Expires
	next := backend.Entry{Value: []byte("w"), Expires: now.Add(time.Hour), Version: 4}
	dirty := redistest.Dirty(t, client)
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Touch", func() error { return st.Touch(ctx, "k", now, now.Add(10*time.Minute)) }},
		{"GetTouch", func() error {
			_, _, err := st.GetTouch(ctx, "k", now, now.Add(time.Hour), now.Add(10*time.Minute))
			return err
		}},
		{"SetIf", func() error { return st.SetIf(ctx, "k", 3, now, next) }},
		{"Replace", func() error { return st.Replace(ctx, "k", 3, "k2", now, next) }},
	} {
		if err := c.call(); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%s with the caller's clock past the deadline: %v, want ErrNotFound", c.name, err)
		}
	}
	if d := redistest.Dirty(t, client); d != dirty {
		t.Errorf("Redis applied %d writes, want none", d-dirty)
	}
	after, err := client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("hash after the calls = %v, want %v", after, before)
	}
	if ttl2, err := client.PExpireTime(ctx, key).Result(); err != nil || ttl2 != ttl {
		t.Errorf("PEXPIRETIME after the calls = %v, %v; want %v", ttl2, err, ttl)
	}
	if n, err := client.Exists(ctx, prefix(t)+"k2").Result(); err != nil || n != 0 {
		t.Errorf("new key of the Replace: EXISTS = %d, %v; want 0", n, err)
	}
}

// TestWritesEndedByCallersClockStoreNothing checks that a deadline not after
// the caller's now removes the key, though Redis's clock is behind: a Touch
// into the past, and a SetIf or Replace of an entry that has already ended.
func TestWritesEndedByCallersClockStoreNothing(t *testing.T) {
	client, _ := redistest.Single(t)
	st := newStore(t, client)
	ctx := t.Context()
	start := time.Now()
	now := start.Add(10 * time.Minute)
	ended := backend.Entry{Value: []byte("w"), Expires: start.Add(5 * time.Minute), Version: 2} // live by Redis's clock only
	for _, c := range []struct {
		name string
		call func() error
		gone []string
	}{
		{"Touch", func() error { return st.Touch(ctx, "k", now, start.Add(5*time.Minute)) }, []string{"k"}},
		{"SetIf", func() error { return st.SetIf(ctx, "k", 1, now, ended) }, []string{"k"}},
		{"Replace", func() error { return st.Replace(ctx, "k", 1, "k2", now, ended) }, []string{"k", "k2"}},
	} {
		if err := st.Set(ctx, "k", backend.Entry{Value: []byte("v"), Expires: start.Add(time.Hour), Version: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.call(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		for _, k := range c.gone {
			if n, err := client.Exists(ctx, prefix(t)+k).Result(); err != nil || n != 0 {
				t.Errorf("after %s with a deadline before the caller's now: EXISTS %s = %d, %v; want 0", c.name, k, n, err)
			}
		}
	}
}
