package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/redis"
	"github.com/sessionx/sessions/internal/redistest"
)

// The two session types the sizing test stores: a small one (a logged-in
// user, a few roles, a page) and a large one (a cart of 40 lines and a
// history of 20 pages: about 4 KB encoded).
type (
	smallSession struct {
		UserID   int64
		Name     string
		Roles    []string
		Theme    string
		LastPage string
		Visits   int
	}
	largeSession struct {
		UserID  int64
		Name    string
		Cart    []cartLine
		History []string
		Visits  int
	}
	cartLine struct {
		SKU   string
		Title string
		Qty   int
		Cents int64
	}
)

func newSmall(i int) smallSession {
	return smallSession{UserID: int64(100000 + i), Name: fmt.Sprintf("user-%06d", i), Roles: []string{"customer", "newsletter"},
		Theme: "dark", LastPage: "/account/orders?page=2"}
}

func newLarge(i int) largeSession {
	d := largeSession{UserID: int64(100000 + i), Name: fmt.Sprintf("user-%06d", i)}
	for j := range 40 {
		d.Cart = append(d.Cart, cartLine{SKU: fmt.Sprintf("SKU-%08d", i*40+j), Title: "A book with a reasonably long title, volume " + strconv.Itoa(j), Qty: 1 + j%3, Cents: 1999})
	}
	for j := range 20 {
		d.History = append(d.History, fmt.Sprintf("/catalogue/books/%d?ref=search&q=title+%d", j, j))
	}
	return d
}

// sizing is what sizeAndSpeed measures for one session type.
type sizing struct {
	name        string
	encoded     int     // bytes of the hash field d of a session (the sealed envelope)
	keyUsage    float64 // MEMORY USAGE of a session's hash, mean
	ownerUsage  float64 // MEMORY USAGE of an owner's index set (one session), mean
	perSession  float64 // growth of used_memory (clients and backlog aside) per session, owner index included
	readOnly    speed
	modifying   speed
	modifyWait1 speed // with redis.Options.WaitReplicas 1
}

// speed is Redis CPU per request, on the primary and on its replica.
type speed struct {
	requests             int
	primaryUS, replicaUS float64 // CPU µs per request
	perSecond            float64 // requests per second the test drove
}

func (s speed) String() string {
	return fmt.Sprintf("%d requests (%.0f/s): primary %.1f µs CPU each (%.0f requests/s per core), replica %.1f µs",
		s.requests, s.perSecond, s.primaryUS, 1e6/s.primaryUS, s.replicaUS)
}

// TestSizing measures what the README's sizing rule (docs/sizing.md)
// rests on, on a private primary with one replica: the memory a stored
// session takes (MEMORY USAGE of its hash and of its owner's index set,
// and the growth of used_memory per session), for a small and a large T,
// written by the real core (sealed, with an owner); and the Redis CPU a
// request costs (used_cpu_sys + used_cpu_user of INFO cpu, before and
// after driving the core at full speed from 32 goroutines), read-only
// (no refresh due: one EVALSHA) and modifying (a load and a conditional
// save), the latter also with WaitReplicas 1. It logs the figures and
// checks that they are sane.
func TestSizing(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	replica := redistest.StartReplica(t, primary)
	const n = 4000
	small := sizeAndSpeed(t, primary, replica, "small", n, newSmall, func(d *smallSession) { d.Visits++ })
	large := sizeAndSpeed(t, primary, replica, "large", n, newLarge, func(d *largeSession) { d.Visits++ })
	// Redis keeps a hash whose values are all at most
	// hash-max-listpack-value bytes (default 64) as one compact listpack;
	// a session's d is longer, so its hash is a hash table. With a limit
	// above the sealed size it stays compact.
	if err := primary.Client().ConfigSet(t.Context(), "hash-max-listpack-value", "1024").Err(); err != nil {
		t.Fatal(err)
	}
	compact := sizeAndSpeed(t, primary, replica, "small, hash-max-listpack-value 1024,", n, newSmall, nil)
	for _, s := range []sizing{small, large, compact} {
		if s.readOnly.requests == 0 {
			t.Logf("figures: sizing %s T | sealed d %d B | MEMORY USAGE session %.0f B, owner set %.0f B | used_memory per session (with owner) %.0f B",
				s.name, s.encoded, s.keyUsage, s.ownerUsage, s.perSession)
			continue
		}
		t.Logf("figures: sizing %s T | sealed d %d B | MEMORY USAGE session %.0f B, owner set %.0f B | used_memory per session (with owner) %.0f B",
			s.name, s.encoded, s.keyUsage, s.ownerUsage, s.perSession)
		t.Logf("figures: sizing %s T | read-only: %v", s.name, s.readOnly)
		t.Logf("figures: sizing %s T | modifying: %v", s.name, s.modifying)
		t.Logf("figures: sizing %s T | modifying, WaitReplicas 1: %v", s.name, s.modifyWait1)
	}
	if small.perSession < 200 || small.perSession > 2000 {
		t.Errorf("a small session takes %.0f bytes, want between 200 and 2000", small.perSession)
	}
	if compact.perSession >= small.perSession {
		t.Errorf("a small session takes %.0f bytes with hash-max-listpack-value 1024, not less than the %.0f it takes with the default", compact.perSession, small.perSession)
	}
	if large.encoded < 3000 || large.perSession < float64(large.encoded) {
		t.Errorf("a large session: %d bytes sealed, %.0f bytes in Redis; want at least 3000, and no less in Redis", large.encoded, large.perSession)
	}
	for _, s := range []sizing{small, large} {
		if s.readOnly.primaryUS <= 0 || s.modifying.primaryUS <= s.readOnly.primaryUS {
			t.Errorf("%s T: a read-only request costs %.1f µs of Redis CPU, a modifying one %.1f µs: want more than 0, and more for modifying",
				s.name, s.readOnly.primaryUS, s.modifying.primaryUS)
		}
		if s.readOnly.replicaUS > s.modifying.replicaUS {
			t.Errorf("%s T: reads cost the replica more (%.1f µs) than writes (%.1f µs)", s.name, s.readOnly.replicaUS, s.modifying.replicaUS)
		}
	}
}

// sizeAndSpeed stores n sessions of T as logins do (data, owner,
// Migrate) through the core on primary, measures them, then, unless
// change is nil, drives read-only and modifying requests at them.
func sizeAndSpeed[T any](t *testing.T, primary, replica *redistest.Server, name string, n int, data func(int) T, change func(*T)) sizing {
	t.Helper()
	ctx := t.Context()
	pc, rc := primary.Client(), replica.Client()
	prefix := "size:" + strings.NewReplacer(" ", "", ",", "").Replace(name) + ":"
	newMgr := func(wait int) *sessions.Manager[T] {
		client := goredis.NewClient(&goredis.Options{Addr: primary.Addr(), ContextTimeoutEnabled: true, PoolSize: 64})
		t.Cleanup(func() { client.Close() })
		// A generous WaitTimeout: a busy machine's replica may be slow to
		// acknowledge, and every request must succeed.
		st, err := redis.New(ctx, client, redis.Options{Prefix: prefix, WaitReplicas: wait, WaitTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		mgr, err := sessions.New[T](sessions.Config{Store: st, Cookie: sessions.CookieConfig{Name: "s", Insecure: true}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mgr.Close() })
		return mgr
	}
	mgr := newMgr(0)
	login := func(i int) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/login", nil)
		s, err := mgr.Load(rec, req)
		if err != nil {
			t.Fatal(err)
		}
		s.Data = data(i)
		s.SetOwner("user-" + strconv.Itoa(i))
		if err := mgr.Migrate(rec, req, s); err != nil {
			t.Fatal(err)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == "s" && c.Value != "" {
				return "s=" + c.Value
			}
		}
		t.Fatal("login set no cookie")
		return ""
	}

	before := dataMemory(t, pc)
	cookies := make([]string, n)
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				cookies[i] = login(i)
			}
		})
	}
	wg.Wait()
	after := dataMemory(t, pc)
	res := sizing{name: name, perSession: (after - before) / float64(n)}

	keys, err := pc.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var sessionsSeen, owners int
	var sessionSum, ownerSum float64
	for _, k := range keys {
		if sessionsSeen >= 200 && owners >= 200 {
			break
		}
		u, err := pc.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(k, prefix+"owner:") {
			owners++
			ownerSum += float64(u)
		} else {
			if sessionsSeen == 0 {
				d, err := pc.HGet(ctx, k, "d").Result()
				if err != nil {
					t.Fatal(err)
				}
				res.encoded = len(d)
			}
			sessionsSeen++
			sessionSum += float64(u)
		}
	}
	if len(keys) != 2*n || sessionsSeen == 0 || owners == 0 {
		t.Fatalf("%d keys under %s, want %d sessions and %d owner sets", len(keys), prefix, n, n)
	}
	res.keyUsage, res.ownerUsage = sessionSum/float64(sessionsSeen), ownerSum/float64(owners)

	if change == nil {
		return res
	}
	// Requests: every goroutine has its own sessions, so that modifying
	// requests never conflict.
	readH := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = mgr.Get(r).Data
	}))
	modify := func(m *sessions.Manager[T]) http.Handler {
		return m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			change(&m.Get(r).Data)
		}))
	}
	res.readOnly = drive(t, pc, rc, readH, cookies)
	res.modifying = drive(t, pc, rc, modify(mgr), cookies)
	res.modifyWait1 = drive(t, pc, rc, modify(newMgr(1)), cookies)
	return res
}

// drive sends requests with cookies through h from 32 goroutines for
// 1 s, and returns the Redis CPU (primary and replica) per request. A
// request answered other than 200 fails the test.
func drive(t *testing.T, pc, rc *goredis.Client, h http.Handler, cookies []string) speed {
	t.Helper()
	const goroutines = 32
	cpu0, rcpu0 := cpuSeconds(t, pc), cpuSeconds(t, rc)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var count, bad atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		var mine []string
		for i := g; i < len(cookies); i += goroutines {
			mine = append(mine, cookies[i])
		}
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				req := httptest.NewRequest("GET", "/", nil)
				req.Header.Set("Cookie", mine[i%len(mine)])
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					bad.Add(1)
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	cpu1, rcpu1 := cpuSeconds(t, pc), cpuSeconds(t, rc)
	if b := bad.Load(); b > 0 {
		t.Errorf("%d of %d requests not answered 200", b, count.Load())
	}
	c := float64(count.Load())
	return speed{requests: int(c), perSecond: c / took.Seconds(),
		primaryUS: (cpu1 - cpu0) * 1e6 / c, replicaUS: (rcpu1 - rcpu0) * 1e6 / c}
}

// dataMemory returns used_memory without what clients' buffers and the
// replication backlog take: the memory of the keys, the figure that grows
// with the number of sessions.
func dataMemory(t *testing.T, c *goredis.Client) float64 {
	t.Helper()
	m := infoNumber(t, c, "memory", "used_memory")
	for _, f := range []string{"mem_clients_normal", "mem_clients_slaves", "mem_replication_backlog"} {
		m -= infoNumber(t, c, "memory", f)
	}
	return m
}

// cpuSeconds returns used_cpu_sys + used_cpu_user of c's server.
func cpuSeconds(t *testing.T, c *goredis.Client) float64 {
	return infoNumber(t, c, "cpu", "used_cpu_sys") + infoNumber(t, c, "cpu", "used_cpu_user")
}

// infoNumber returns field of INFO section as a number.
func infoNumber(t *testing.T, c *goredis.Client, section, field string) float64 {
	t.Helper()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("INFO %s: %s%q", section, field, v)
			}
			return f
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}
