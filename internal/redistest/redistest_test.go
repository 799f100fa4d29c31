package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// needBinaries skips the test when redis-server or redis-cli is missing,
// unless Required, in which case it fails.
func needBinaries(t *testing.T) {
	t.Helper()
	if HaveBinaries() {
		return
	}
	if Required() {
		t.Fatalf("redis-server/redis-cli not on PATH and %s=1", RequireEnv)
	}
	t.Skip("redis-server/redis-cli not on PATH")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartServerPing(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	s := StartServer(t)
	if want := "127.0.0.1:" + strconv.Itoa(s.Port()); s.Addr() != want {
		t.Fatalf("Addr() = %q, want %q", s.Addr(), want)
	}
	if !s.Running() {
		t.Fatal("Running() = false after StartServer")
	}
	if got, err := s.Client().Ping(testCtx(t)).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
}

func TestStartServerExtraArgs(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	s := StartServer(t, "--maxmemory", "12345678")
	got, err := s.Client().ConfigGet(testCtx(t), "maxmemory").Result()
	if err != nil || got["maxmemory"] != "12345678" {
		t.Fatalf("CONFIG GET maxmemory = %v, %v", got, err)
	}
}

func TestStopStart(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	ctx := testCtx(t)
	s := StartServer(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	port := s.Port()

	s.Stop()
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if err := ping(s.Addr(), time.Second); err == nil {
		t.Fatal("PING succeeded on a stopped server")
	}
	// Through go-redis too (it retries: bound it).
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Fatal("go-redis PING succeeded on a stopped server")
	}
	s.Stop() // stopping twice is harmless

	s.Start()
	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k after restart: err = %v, want redis.Nil (no persistence)", err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	ctx := testCtx(t)
	cl := StartCluster(t)
	if n := len(cl.Addrs()); n != 3 {
		t.Fatalf("%d addresses, want 3", n)
	}
	cc := cl.Client()
	for i := range 100 {
		k := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	var total int64
	for _, s := range cl.Servers() {
		n, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("DBSIZE on %s: %v", s.Addr(), err)
		}
		t.Logf("%s holds %d keys", s.Addr(), n)
		if n == 0 {
			t.Errorf("no key on %s", s.Addr())
		}
		total += n
	}
	if total != 100 {
		t.Errorf("%d keys on the nodes, want 100", total)
	}

	t.Run("Counter", func(t *testing.T) { testCounterCluster(t, cl) })
}

func TestPauseResumeKill(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	if !CanPause() {
		t.Skip("no SIGSTOP here")
	}
	ctx := testCtx(t)
	s := StartServer(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		do     func()
		answer bool // whether PING gets an answer afterwards
	}{
		{"Pause", s.Pause, false},
		{"Resume", s.Resume, true},
		{"Pause again", s.Pause, false},
		{"Stop while paused", s.Stop, false},
		{"Start", s.Start, true},
		{"Kill", s.Kill, false},
		{"Kill again", s.Kill, false},
		{"Start after Kill", s.Start, true},
	} {
		start := time.Now()
		step.do()
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s took %v", step.name, took)
		}
		err := ping(s.Addr(), 300*time.Millisecond)
		if (err == nil) != step.answer {
			t.Fatalf("after %s: PING error %v, want an answer: %v", step.name, err, step.answer)
		}
		if step.answer != s.Running() && step.name != "Pause" && step.name != "Pause again" {
			t.Errorf("after %s: Running() = %v", step.name, s.Running())
		}
	}
}

func TestClusterWithReplicasFailsOver(t *testing.T) {
	Long(t)
	t.Parallel()
	needBinaries(t)
	cl := StartClusterWith(t, ClusterOptions{Replicas: 1, NodeTimeout: time.Second, ServerArgs: []string{"--repl-diskless-sync-delay", "0"}})
	if n := len(cl.Addrs()); n != 6 {
		t.Fatalf("%d servers, want 6", n)
	}
	primaries := cl.Primaries()
	if len(primaries) != 3 {
		t.Fatalf("%d primaries, want 3", len(primaries))
	}
	for _, p := range primaries {
		if r := cl.ReplicasOf(p); len(r) != 1 || Role(r[0]) != "slave" {
			t.Fatalf("replicas of %s: %d, want 1", p.Addr(), len(r))
		}
	}
	heir := cl.ReplicasOf(primaries[0])[0]
	ctx := testCtx(t)
	cc := cl.Client()
	for i := range 100 {
		if err := cc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Replication is asynchronous: let the replicas catch up before the
	// kill, so that the keys survive it.
	for _, p := range primaries {
		if err := p.Client().Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
			t.Fatal(err)
		}
	}
	victim := primaries[0]
	victim.Kill()
	if err := cl.Healthy(ctx); err == nil {
		t.Fatal("Healthy right after a primary was killed")
	}
	start := time.Now()
	cl.WaitHealthy(15 * time.Second)
	t.Logf("healthy again %v after the kill", time.Since(start).Round(time.Millisecond))
	after := cl.Primaries()
	if len(after) != 3 || slices.Contains(after, victim) || !slices.Contains(after, heir) {
		t.Fatalf("primaries after the failover: %d, victim among them: %v, its replica: %v", len(after), slices.Contains(after, victim), slices.Contains(after, heir))
	}
	cc.ReloadState(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for i := range 100 {
		for {
			v, err := cc.Get(ctx, fmt.Sprintf("key:%d", i)).Result()
			if err == nil {
				if v != strconv.Itoa(i) {
					t.Fatalf("key:%d = %q", i, v)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET key:%d after the failover: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The killed node, restarted, rejoins as the replica of its heir.
	victim.Start()
	restarted := time.Now()
	cl.WaitReplicated(15 * time.Second)
	t.Logf("restarted node in sync as a replica %v after its start", time.Since(restarted).Round(time.Millisecond))
	if r := cl.ReplicasOf(heir); len(r) != 1 || r[0] != victim {
		t.Fatalf("replicas of the new primary: %d, want the restarted node", len(r))
	}
}

func TestStartReplica(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	primary := StartServer(t, "--repl-diskless-sync-delay", "0")
	replica := StartReplica(t, primary)
	ctx := testCtx(t)
	if err := primary.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := primary.Client().Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on the primary: %d, %v; want 1", n, err)
	}
	if v, err := replica.Client().Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET on the replica: %q, %v", v, err)
	}
	if Role(replica) != "slave" || Role(primary) != "master" {
		t.Fatalf("roles: primary %q, replica %q", Role(primary), Role(replica))
	}
}

// check compares a Counter with the expected counts and names.
func check(t *testing.T, what string, c *Counter, commands, roundTrips int64, names ...string) {
	t.Helper()
	if c.Commands() != commands || c.RoundTrips() != roundTrips || !slices.Equal(c.Names(), names) {
		t.Errorf("%s: %d commands, %d round trips, names %q; want %d, %d, %q",
			what, c.Commands(), c.RoundTrips(), c.Names(), commands, roundTrips, names)
	}
	c.Reset()
}

// exerciseCounter runs a plain command, a pipeline and a transaction through
// c and checks what counter saw.
func exerciseCounter(t *testing.T, c redis.UniversalClient, counter *Counter) {
	ctx := testCtx(t)
	Warm(t, c)
	counter.Reset()
	check(t, "after Reset", counter, 0, 0)

	if err := c.Set(ctx, "{t}a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	check(t, "SET", counter, 1, 1, "set")

	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "p1", "1", 0)
		p.Set(ctx, "p2", "2", 0)
		p.Get(ctx, "p3")
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	check(t, "Pipelined", counter, 3, 1, "set", "set", "get")

	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "{t}a")
		p.Expire(ctx, "{t}a", time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(t, "TxPipelined", counter, 4, 1, "multi", "incr", "expire", "exec")
}

func TestCounterSingle(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	c := StartServer(t).Client()
	counter := &Counter{}
	c.AddHook(counter)
	exerciseCounter(t, c, counter)
}

func TestCounterMiniredis(t *testing.T) {
	t.Parallel()
	_, c := Mini(t)
	counter := &Counter{}
	c.AddHook(counter)
	exerciseCounter(t, c, counter)
}

func TestCounterConnectionSetup(t *testing.T) {
	t.Parallel()
	_, c := Mini(t)
	counter := &Counter{}
	c.AddHook(counter)
	// The setup of a new connection runs through the hooks, inside the
	// first command's ProcessHook call: that command is recorded first.
	if err := c.Ping(testCtx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	names := counter.Names()
	t.Logf("first PING on a new client: %d commands, %d round trips: %q",
		counter.Commands(), counter.RoundTrips(), names)
	if len(names) < 2 || names[0] != "ping" || !slices.Contains(names, "hello") {
		t.Errorf("names %q, want ping then the setup, with hello", names)
	}
	// After Warm and Reset, nothing but the counted commands shows, even for
	// pipelines, which go-redis runs on a pool of their own.
	Warm(t, c)
	counter.Reset()
	if _, err := c.Pipelined(testCtx(t), func(p redis.Pipeliner) error {
		p.Ping(testCtx(t))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(t, "pipelined PING after Warm", counter, 1, 1, "ping")
}

func testCounterCluster(t *testing.T, cl *Cluster) {
	ctx := testCtx(t)
	cc := cl.Client()
	counter := &Counter{}
	cc.AddHook(counter)
	// A second counter on every node client, to see the per-node traffic
	// the cluster-level counter does not count again.
	nodes := &Counter{}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(nodes) })

	exerciseCounter(t, cc, counter)

	// Three keys on three different masters: one pipeline at the cluster
	// level, split into one pipeline per node below it.
	var keys []string
	seen := map[string]bool{}
	for i := 0; len(keys) < 3 && i < 1000; i++ {
		k := "spread:" + strconv.Itoa(i)
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !seen[m.Options().Addr] {
			seen[m.Options().Addr] = true
			keys = append(keys, k)
		}
	}
	if len(keys) != 3 {
		t.Fatalf("found keys on %d masters, want 3", len(keys))
	}
	counter.Reset()
	nodes.Reset()
	if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, "v", 0)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(t, "cluster Pipelined over 3 nodes", counter, 3, 1, "set", "set", "set")
	// Below the cluster level: three pipelines, one per node. (Filter on
	// "set": the node clients may also reload the slot map.)
	if sets := count(nodes.Names(), "set"); sets != 3 || nodes.RoundTrips() < 3 {
		t.Errorf("node level: %d SETs in %d round trips, want 3 in >= 3 (names %q)",
			sets, nodes.RoundTrips(), nodes.Names())
	}

	nodes.Reset()
	if err := cc.Get(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	check(t, "cluster GET", counter, 1, 1, "get")
	if gets := count(nodes.Names(), "get"); gets != 1 {
		t.Errorf("node level: %d GETs, want 1 (names %q)", gets, nodes.Names())
	}
}

func count(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

func TestDirty(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	ctx := testCtx(t)
	c := StartServer(t).Client()
	before := Dirty(t, c)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := Dirty(t, c); got != before+1 {
		t.Fatalf("after SET: dirty = %d, want %d", got, before+1)
	}
	if err := c.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	if got := Dirty(t, c); got != before+1 {
		t.Fatalf("after GET: dirty = %d, want %d", got, before+1)
	}
}

func TestSingle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c, real := Single(t)
	if real != HaveBinaries() {
		t.Errorf("real = %v, HaveBinaries() = %v", real, HaveBinaries())
	}
	if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}
}

func TestMini(t *testing.T) {
	t.Parallel()
	m, c := Mini(t)
	if err := c.Set(testCtx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get("k"); err != nil || got != "v" {
		t.Fatalf("miniredis has k = %q, %v", got, err)
	}
}

func TestRequired(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	if !Required() {
		t.Error("Required() = false with 1")
	}
	t.Setenv(RequireEnv, "0")
	if Required() {
		t.Error("Required() = true with 0")
	}
}

func TestLedger(t *testing.T) {
	t.Parallel()
	type answer struct {
		kind  byte // 's' stored (with value), 'f' failed, 'u' unknown, 'o' started over
		value int
	}
	for _, tc := range []struct {
		name                          string
		answers                       []answer
		phantoms, unknownLanded, lost int
	}{
		{"all stored", []answer{{'s', 1}, {'s', 2}, {'s', 3}}, 0, 0, 0},
		{"failed and not stored", []answer{{'s', 1}, {'f', 0}, {'s', 2}}, 0, 0, 0},
		{"failed but stored: phantom", []answer{{'s', 1}, {'f', 0}, {'s', 3}}, 1, 0, 0},
		{"unknown and stored", []answer{{'s', 1}, {'u', 0}, {'s', 3}}, 0, 1, 0},
		{"unknown and not stored", []answer{{'u', 0}, {'s', 1}}, 0, 0, 0},
		{"one unknown cannot explain two", []answer{{'u', 0}, {'f', 0}, {'s', 3}}, 1, 1, 0},
		{"stored then lost", []answer{{'s', 1}, {'s', 2}, {'s', 2}}, 0, 0, 1},
		{"session started again", []answer{{'s', 1}, {'s', 2}, {'s', 1}}, 0, 0, 2},
		{"started over, known", []answer{{'s', 1}, {'s', 2}, {'u', 0}, {'o', 0}, {'s', 1}}, 0, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Ledger
			for _, a := range tc.answers {
				switch a.kind {
				case 's':
					l.AnswerStored(a.value)
				case 'f':
					l.AnswerFailed()
				case 'u':
					l.AnswerUnknown()
				case 'o':
					l.StartedOver()
				}
			}
			if l.Phantoms != tc.phantoms || l.UnknownLanded != tc.unknownLanded || l.Lost != tc.lost {
				t.Errorf("%v; want %d phantoms, %d unknown landed, %d lost", &l, tc.phantoms, tc.unknownLanded, tc.lost)
			}
		})
	}
}

// TestSentinelGroupFailsOver: a primary, a replica and three sentinels;
// SENTINEL FAILOVER promotes the replica, every sentinel and a failover
// client follow, the keys written (and replicated) before are there, and
// the old primary becomes the new one's replica.
func TestSentinelGroupFailsOver(t *testing.T) {
	Long(t)
	t.Parallel()
	needBinaries(t)
	g := StartSentinelWith(t, SentinelOptions{Replicas: 1, Sentinels: 3, InfoPeriod: time.Second, PublishPeriod: time.Second,
		ServerArgs: []string{"--repl-diskless-sync-delay", "0"}})
	if n, m := len(g.Servers()), len(g.Addrs()); n != 2 || m != 3 {
		t.Fatalf("%d servers and %d sentinels, want 2 and 3", n, m)
	}
	first := g.Primary()
	if first != g.Servers()[0] || Role(first) != "master" || Role(g.Servers()[1]) != "slave" {
		t.Fatalf("primary %s (%s), replica %s (%s)", first.Addr(), Role(first), g.Servers()[1].Addr(), Role(g.Servers()[1]))
	}
	ctx := testCtx(t)
	c := g.Client()
	for i := range 100 {
		if err := c.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := first.Client().Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d, %v", n, err)
	}
	f := g.Failover(15 * time.Second)
	t.Logf("promoted %v after SENTINEL FAILOVER, all sentinels switched %v after that",
		f.Promoted.Sub(f.Requested).Round(time.Millisecond), f.Switched.Sub(f.Promoted).Round(time.Millisecond))
	if f.Old != first || f.New != g.Servers()[1] || g.Primary() != f.New {
		t.Fatalf("failover from %s to %s; want from %s to %s", f.Old.Addr(), f.New.Addr(), first.Addr(), g.Servers()[1].Addr())
	}
	for i := range 100 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, err := c.Get(ctx, fmt.Sprintf("key:%d", i)).Result()
			if err == nil && v == strconv.Itoa(i) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET key:%d after the failover: %q, %v", i, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	done := g.WaitReplicated(30 * time.Second)
	t.Logf("old primary a replica in sync %v after the switch", done.Sub(f.Switched).Round(time.Millisecond))
	if r := Role(first); r != "slave" {
		// WaitReplicated saw it a replica in sync; it answers otherwise
		// only if the sentinels failed over again since (on a loaded
		// machine, the new primary can miss their down-after period).
		if p := g.Primary(); p == f.New {
			t.Fatalf("old primary answers ROLE %q, want slave (the sentinels still report %s as the primary)", r, p.Addr())
		}
		t.Logf("old primary answers ROLE %q: the sentinels failed over again since WaitReplicated", r)
	}
}
