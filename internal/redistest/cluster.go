package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configures StartClusterWith. Its zero value is the cluster
// StartCluster starts: three primaries, no replicas, a 5 s node timeout.
type ClusterOptions struct {
	// Primaries is the number of primaries; default and minimum 3 (Redis
	// Cluster needs a majority of primaries to agree that one failed).
	Primaries int

	// Replicas is the number of replicas of each primary; default 0. With
	// at least one, the cluster fails over when a primary dies: after
	// about NodeTimeout a replica is promoted and takes over its slots.
	Replicas int

	// NodeTimeout is the --cluster-node-timeout: how long a node may not
	// answer before its peers count it as failing. Default 5 s.
	NodeTimeout time.Duration

	// ServerArgs are added to every server's command line (e.g.
	// "--repl-diskless-sync-delay", "0", so that a node restarted after a
	// failover syncs as a replica at once, not after Redis's default 5 s).
	ServerArgs []string
}

// Cluster is a private Redis Cluster on 127.0.0.1, created by StartCluster
// or StartClusterWith and stopped at cleanup.
type Cluster struct {
	t         testing.TB
	servers   []*Server
	primaries int
}

// StartCluster starts a cluster of three primaries and no replicas:
// StartClusterWith with the zero ClusterOptions.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith starts Primaries*(1+Replicas) redis-server processes in
// cluster mode (--cluster-enabled yes --cluster-config-file
// <dir>/nodes-P.conf --cluster-node-timeout N) on free loopback ports,
// joins them with "redis-cli --cluster create ... --cluster-replicas R
// --cluster-yes", and waits, at most 20 s, until WaitHealthy holds, every
// replica is in sync with its primary, and a ClusterClient can SET and GET
// keys on every primary. It fails the test otherwise, or if the binaries
// are missing. All servers are stopped at cleanup.
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found on PATH (install Redis, e.g. apt-get install redis-server): %v", err)
	}
	opts.Primaries = max(opts.Primaries, 3)
	opts.Replicas = max(opts.Replicas, 0)
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 5 * time.Second
	}
	c := &Cluster{t: t, primaries: opts.Primaries}
	for range opts.Primaries * (1 + opts.Replicas) {
		c.servers = append(c.servers, startServer(t, func(port int, dir string) []string {
			return append([]string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
			}, opts.ServerArgs...)
		}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()

	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	if err := c.waitReady(ctx); err != nil {
		t.Fatalf("redistest: cluster %v not ready after %s: %v", c.Addrs(), clusterTimeout, err)
	}
	return c
}

// Addrs returns the addresses ("127.0.0.1:port") of all the cluster's
// servers, primaries and replicas, in the order they were started.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Servers returns all the cluster's servers, e.g. to stop one of them or to
// talk to a single node through Server.Client. Which of them are primaries
// changes with failovers: see Primaries.
func (c *Cluster) Servers() []*Server {
	return append([]*Server(nil), c.servers...)
}

// Primaries returns the running servers that serve slots as primaries now,
// as the first running node that answers CLUSTER NODES sees it. It fails
// the test if no node answers within 5 s.
func (c *Cluster) Primaries() []*Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var lastErr error
	for _, s := range c.servers {
		if !s.Running() {
			continue
		}
		n := nodeClient(s.Addr())
		nodes, err := n.ClusterNodes(ctx).Result()
		n.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var out []*Server
		for _, node := range parseNodes(nodes) {
			if node.master && !node.failed && node.slots > 0 {
				if srv := c.server(node.addr); srv != nil && srv.Running() {
					out = append(out, srv)
				}
			}
		}
		return out
	}
	c.t.Fatalf("redistest: no cluster node answers CLUSTER NODES: %v", lastErr)
	return nil
}

// ReplicasOf returns the running servers that replicate primary now, as
// each of them says (INFO replication: a replica whose primary is
// primary, whatever the state of its link). It fails the test if a
// running server does not answer within 5 s.
func (c *Cluster) ReplicasOf(primary *Server) []*Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var out []*Server
	for _, s := range c.servers {
		if s == primary || !s.Running() {
			continue
		}
		n := nodeClient(s.Addr())
		info, err := n.Info(ctx, "replication").Result()
		n.Close()
		if err != nil {
			c.t.Fatalf("redistest: INFO replication on %s: %v", s.Addr(), err)
		}
		if f := infoFields(info); f["role"] == "slave" && f["master_port"] == strconv.Itoa(primary.Port()) {
			out = append(out, s)
		}
	}
	return out
}

// WaitReplicated waits, at most timeout, until every running server but
// as many as the cluster has primaries is a replica whose link to its
// primary is up, and returns when that first held. It fails the test otherwise.
// A node restarted after a failover rejoins as a replica of the primary
// that took its place, and syncs.
func (c *Cluster) WaitReplicated(timeout time.Duration) time.Time {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	for {
		if err = c.replicated(ctx); err == nil {
			return time.Now()
		}
		if !sleep(ctx, 20*time.Millisecond) {
			c.t.Fatalf("redistest: cluster replicas not in sync after %s: %v", timeout, err)
		}
	}
}

func (c *Cluster) replicated(ctx context.Context) error {
	running, synced := 0, 0
	for _, s := range c.servers {
		if !s.Running() {
			continue
		}
		running++
		n := nodeClient(s.Addr())
		info, err := n.Info(ctx, "replication").Result()
		n.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		}
		f := infoFields(info)
		if f["role"] == "slave" {
			if f["master_link_status"] != "up" {
				return fmt.Errorf("replica %s: link to its primary %s", s.Addr(), f["master_link_status"])
			}
			synced++
		}
	}
	if synced != running-c.primaries {
		return fmt.Errorf("%d replicas in sync, want %d (all running servers but the %d primaries)", synced, running-c.primaries, c.primaries)
	}
	return nil
}

// server returns the cluster's server at addr, or nil.
func (c *Cluster) server(addr string) *Server {
	for _, s := range c.servers {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Client returns a new go-redis ClusterClient seeded with every server's
// address, with 2 s dial, read and write timeouts and go-redis's other
// defaults. It is closed at cleanup.
func (c *Cluster) Client() *redis.ClusterClient {
	c.t.Helper()
	return newClusterClient(c.t, c.Addrs())
}

func newClusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        addrs,
		DialTimeout:  clientTimeout,
		ReadTimeout:  clientTimeout,
		WriteTimeout: clientTimeout,
	})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// nodeClient is a client to one node that does not retry, for polling.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  clientTimeout,
		ReadTimeout:  clientTimeout,
		WriteTimeout: clientTimeout,
		MaxRetries:   -1,
	})
}

// Healthy reports, by asking every running server, whether the cluster is
// OK: every running node says cluster_state:ok, knows as many healthy
// primaries as the cluster was started with, and, in its CLUSTER NODES,
// maps every one of the 16384 slots to a primary that is running. It returns nil when so, else
// what is not.
func (c *Cluster) Healthy(ctx context.Context) error {
	running := 0
	for _, s := range c.servers {
		if !s.Running() {
			continue
		}
		running++
		n := nodeClient(s.Addr())
		err := c.nodeHealthy(ctx, n)
		n.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		}
	}
	if running == 0 {
		return errors.New("no server is running")
	}
	return nil
}

// WaitHealthy polls Healthy every 20 ms until it holds, and returns when
// it first did; it fails the test if that takes longer than timeout.
func (c *Cluster) WaitHealthy(timeout time.Duration) time.Time {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		err := c.Healthy(ctx)
		if err == nil {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("redistest: cluster not healthy after %s: %v", timeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// nodeHealthy checks one node's view: cluster_state:ok, the cluster's
// number of healthy primaries with slots, each of them running, together
// serving all 16384 slots.
func (c *Cluster) nodeHealthy(ctx context.Context, n *redis.Client) error {
	info, err := n.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return errors.New("cluster_state is not ok")
	}
	nodes, err := n.ClusterNodes(ctx).Result()
	if err != nil {
		return err
	}
	masters, covered := 0, 0
	for _, node := range parseNodes(nodes) {
		if !node.master || node.failed || node.slots == 0 {
			continue
		}
		if srv := c.server(node.addr); srv == nil || !srv.Running() {
			return fmt.Errorf("%d slots are served by %s, which is not running", node.slots, node.addr)
		}
		masters++
		covered += node.slots
	}
	if masters != c.primaries {
		return fmt.Errorf("knows %d healthy primaries with slots, want %d", masters, c.primaries)
	}
	if covered != 16384 {
		return fmt.Errorf("%d of 16384 slots covered", covered)
	}
	return nil
}

// node is one line of CLUSTER NODES.
type node struct {
	addr   string // host:port, without the cluster bus port
	master bool
	failed bool // flagged fail or fail?
	slots  int  // how many slots it serves
}

func parseNodes(s string) []node {
	var out []node
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := strings.Split(f[2], ",")
		nd := node{
			addr:   addr,
			master: slices.Contains(flags, "master"),
			failed: slices.Contains(flags, "fail") || slices.Contains(flags, "fail?"),
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being imported or migrated, also listed as a range
			}
			lo, hi, isRange := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil && b >= a {
				nd.slots += b - a + 1
			}
		}
		out = append(out, nd)
	}
	return out
}

// waitReady waits until the cluster is Healthy, every replica is in sync
// (master_link_status:up), then until a ClusterClient can SET and GET a
// set of keys that spans all primaries; it leaves no keys behind.
func (c *Cluster) waitReady(ctx context.Context) error {
	nodes := make([]*redis.Client, len(c.servers))
	for i, s := range c.servers {
		nodes[i] = nodeClient(s.Addr())
		defer nodes[i].Close()
	}
	if err := retry(ctx, func() error { return c.Healthy(ctx) }); err != nil {
		return err
	}
	if err := retry(ctx, func() error {
		for _, n := range nodes {
			info, err := n.Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Options().Addr, err)
			}
			if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
				return fmt.Errorf("replica %s not in sync", n.Options().Addr)
			}
		}
		return nil
	}); err != nil {
		return err
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        c.Addrs(),
		DialTimeout:  clientTimeout,
		ReadTimeout:  clientTimeout,
		WriteTimeout: clientTimeout,
	})
	defer cc.Close()
	// Fixed keys spread over the slots, so that every primary gets some
	// (checked below).
	keys := make([]string, 10*c.primaries)
	for i := range keys {
		keys[i] = "redistest:warm:" + strconv.Itoa(i)
	}
	return retry(ctx, func() error {
		for _, k := range keys {
			if err := cc.Set(ctx, k, k, 0).Err(); err != nil {
				return fmt.Errorf("SET %s: %w", k, err)
			}
			if v, err := cc.Get(ctx, k).Result(); err != nil || v != k {
				return fmt.Errorf("GET %s = %q, %v", k, v, err)
			}
		}
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			size, err := n.DBSize(ctx).Result()
			if err != nil {
				return fmt.Errorf("DBSIZE on %s: %w", n.Options().Addr, err)
			}
			if size == 0 {
				return fmt.Errorf("no warm-up key landed on %s", n.Options().Addr)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := cc.Del(ctx, k).Err(); err != nil {
				return fmt.Errorf("DEL %s: %w", k, err)
			}
		}
		return nil
	})
}

// retry calls f every 100 ms until it succeeds or ctx is done, and returns
// f's last error in the latter case.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
