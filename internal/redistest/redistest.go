// Package redistest holds test helpers that run private Redis servers for
// tests: a single redis-server, a Sentinel group (a primary, its replicas
// and one or more sentinels, which a test can make fail over), a Redis
// Cluster (three primaries, with or without replicas), or an in-process
// miniredis when the binaries are not installed. Everything binds to 127.0.0.1 only, every
// wait is bounded in time, and everything that is started is stopped by
// t.Cleanup. Faults are at hand: a server can be stopped and started
// again, killed (SIGKILL) or paused (SIGSTOP) and resumed, and a cluster
// reports when it is healthy again after a failover.
//
// It also provides Counter, a go-redis hook that counts commands and round
// trips, Dirty, which reads how many writes a server has applied, so tests
// can assert how much a piece of code talks to Redis, and Ledger, one
// client's account of a counter it increments, which tells whether the
// answers it got were true.
package redistest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// RequireEnv names the environment variable that, when set to "1", makes a
// missing redis-server a test failure instead of a reason to skip or to fall
// back to miniredis. CI sets it where Redis is installed.
const RequireEnv = "SESSIONS_REQUIRE_REDIS"

// Bounds on the time the helpers wait for Redis.
const (
	startTimeout   = 10 * time.Second // until a started server answers PING
	stopTimeout    = 5 * time.Second  // from SIGTERM until SIGKILL
	clusterTimeout = 20 * time.Second // from cluster create until it serves
	commandTimeout = 5 * time.Second  // for one helper command (Warm, Dirty)
	clientTimeout  = 2 * time.Second  // dial/read/write timeouts of clients
)

// Required reports whether the environment demands a real Redis, that is
// whether the variable named by RequireEnv is "1".
func Required() bool {
	return os.Getenv(RequireEnv) == "1"
}

// HaveBinaries reports whether both redis-server and redis-cli are found on
// PATH.
func HaveBinaries() bool {
	for _, name := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(name); err != nil {
			return false
		}
	}
	return true
}

// Single gives a test "a single Redis". When HaveBinaries reports true it
// starts a private redis-server (see StartServer) and returns a client to it
// and real == true. Otherwise, when Required reports true, it fails the test;
// else it starts a miniredis, logs that it fell back to it, and returns a
// client to it and real == false. The client is closed at cleanup.
func Single(t testing.TB) (client redis.UniversalClient, real bool) {
	t.Helper()
	if HaveBinaries() {
		return StartServer(t).Client(), true
	}
	if Required() {
		t.Fatalf("redis-server not on PATH and %s=1", RequireEnv)
	}
	_, c := Mini(t)
	t.Log("redis-server not found: falling back to miniredis")
	return c, false
}

// Mini starts an in-process miniredis on a free loopback port and returns it
// with a go-redis client to it. Both are closed at cleanup.
//
// A miniredis does not expire keys as time passes, only when told to
// FastForward; Mini runs a goroutine that fast-forwards it by the real time
// elapsed every 20ms, so that TTLs behave as on a real server.
func Mini(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return m, newClient(t, m.Addr())
}

// Warm does the connection setup (dial, HELLO, CLIENT SETINFO, ...) that a
// client does on first use, so that a test can count commands afterwards:
// it sends a PING, a pipelined PING and a PING in MULTI/EXEC, because
// go-redis keeps a separate connection pool for pipelines. On a
// *redis.ClusterClient it does so on every shard's node client through
// ForEachShard, which also loads the slot map. Go-redis runs the setup
// commands through the client's hooks, so a Counter attached at the client
// level sees them as well as Warm's own PINGs: call Counter.Reset after
// Warm. (A test that later needs more connections at once, e.g. concurrent
// requests, sees the setup of those too.) Warm fails the test if a PING
// fails.
func Warm(t testing.TB, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return warm(ctx, n)
		})
	} else {
		err = warm(ctx, c)
	}
	if err != nil {
		t.Fatalf("redistest: warm-up PING: %v", err)
	}
}

func warm(ctx context.Context, c redis.Cmdable) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	ping := func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }
	if _, err := c.Pipelined(ctx, ping); err != nil {
		return err
	}
	_, err := c.TxPipelined(ctx, ping)
	return err
}

// Dirty returns rdb_changes_since_last_save from INFO persistence: the number
// of writes the server has applied since it started (the helpers' servers
// never save). Comparing it before and after a request proves whether the
// request wrote anything. It fails the test if the field cannot be read
// (miniredis does not report it).
func Dirty(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		t.Fatalf("redistest: INFO persistence: %v", err)
	}
	const field = "rdb_changes_since_last_save:"
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("redistest: bad %s%q", field, v)
			}
			return n
		}
	}
	t.Fatalf("redistest: INFO persistence has no %s field", strings.TrimSuffix(field, ":"))
	return 0
}

// newClient returns a go-redis client to addr with bounded timeouts, closed
// at cleanup.
func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  clientTimeout,
		ReadTimeout:  clientTimeout,
		WriteTimeout: clientTimeout,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Long marks t as a long test (a fault under load, a failover): it is
// skipped under go test -short, except where Required reports true (CI),
// so that CI always runs it.
func Long(t testing.TB) {
	t.Helper()
	if testing.Short() && !Required() {
		t.Skip("long test: skipped with -short (runs when " + RequireEnv + "=1)")
	}
}
