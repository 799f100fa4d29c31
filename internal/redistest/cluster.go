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

// clusterSize is the number of primaries StartCluster runs.
const clusterSize = 3

// Cluster is a private Redis Cluster of three primaries and no replicas, on
// 127.0.0.1, created by StartCluster and stopped at cleanup.
type Cluster struct {
	t       testing.TB
	servers []*Server
}

// StartCluster starts three redis-server processes in cluster mode
// (--cluster-enabled yes --cluster-config-file <dir>/nodes-P.conf
// --cluster-node-timeout 5000) on free loopback ports, joins them with
// "redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes", and
// waits, at most 20 s, until every node reports cluster_state:ok and knows
// three masters, and a ClusterClient can SET and GET keys on every node. It
// fails the test otherwise, or if the binaries are missing. All three
// servers are stopped at cleanup.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found on PATH (install Redis, e.g. apt-get install redis-server): %v", err)
	}
	c := &Cluster{t: t}
	for range clusterSize {
		c.servers = append(c.servers, startServer(t, func(port int, dir string) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-node-timeout", "5000",
			}
		}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()

	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	if err := c.waitHealthy(ctx); err != nil {
		t.Fatalf("redistest: cluster %v not ready after %s: %v", c.Addrs(), clusterTimeout, err)
	}
	return c
}

// Addrs returns the addresses ("127.0.0.1:port") of the three primaries.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Servers returns the three primaries, e.g. to stop one of them or to talk
// to a single node through Server.Client.
func (c *Cluster) Servers() []*Server {
	return append([]*Server(nil), c.servers...)
}

// Client returns a new go-redis ClusterClient seeded with all three
// addresses, with 2 s dial, read and write timeouts. It is closed at
// cleanup.
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

// waitHealthy polls until every node reports cluster_state:ok and three
// masters, then until a ClusterClient can SET and GET a set of keys that
// spans all nodes; it leaves no keys behind.
func (c *Cluster) waitHealthy(ctx context.Context) error {
	nodes := make([]*redis.Client, len(c.servers))
	for i, s := range c.servers {
		nodes[i] = redis.NewClient(&redis.Options{
			Addr:         s.Addr(),
			DialTimeout:  clientTimeout,
			ReadTimeout:  clientTimeout,
			WriteTimeout: clientTimeout,
			MaxRetries:   -1,
		})
		defer nodes[i].Close()
	}
	if err := retry(ctx, func() error {
		for _, n := range nodes {
			if err := nodeReady(ctx, n); err != nil {
				return fmt.Errorf("%s: %w", n.Options().Addr, err)
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
	// Thirty fixed keys hash to slots on all three nodes (checked below).
	keys := make([]string, 30)
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
		for _, n := range nodes {
			size, err := n.DBSize(ctx).Result()
			if err != nil {
				return fmt.Errorf("DBSIZE on %s: %w", n.Options().Addr, err)
			}
			if size == 0 {
				return fmt.Errorf("no warm-up key landed on %s", n.Options().Addr)
			}
		}
		for _, k := range keys {
			if err := cc.Del(ctx, k).Err(); err != nil {
				return fmt.Errorf("DEL %s: %w", k, err)
			}
		}
		return nil
	})
}

// nodeReady checks that a node reports cluster_state:ok and knows exactly
// clusterSize healthy masters.
func nodeReady(ctx context.Context, n *redis.Client) error {
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
	masters := 0
	for line := range strings.Lines(nodes) {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		flags := strings.Split(fields[2], ",")
		if slices.Contains(flags, "master") && !slices.Contains(flags, "fail") && !slices.Contains(flags, "fail?") {
			masters++
		}
	}
	if masters != clusterSize {
		return fmt.Errorf("knows %d healthy masters, want %d", masters, clusterSize)
	}
	return nil
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
