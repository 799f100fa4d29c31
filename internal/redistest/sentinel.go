package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name under which the sentinels of StartSentinel
// and StartSentinelWith monitor their primary.
const SentinelMaster = "sessions-primary"

// sentinelTimeout bounds how long StartSentinelWith waits for the group to
// be ready: replicas in sync, every sentinel knowing the primary, every
// replica and every other sentinel.
const sentinelTimeout = 20 * time.Second

// SentinelOptions configures StartSentinelWith. Its zero value is what
// StartSentinel starts: a primary without replicas, watched by one
// sentinel.
type SentinelOptions struct {
	// Replicas is the number of replicas of the primary; default 0. A
	// failover needs at least one.
	Replicas int

	// Sentinels is the number of sentinel processes; default 1.
	Sentinels int

	// Quorum is how many sentinels must agree that the primary is down
	// before one of them fails over; default a majority of Sentinels.
	Quorum int

	// DownAfter is the sentinels' down-after-milliseconds: how long the
	// primary may not answer before a sentinel counts it as down. Default
	// 5 s.
	DownAfter time.Duration

	// InfoPeriod, when set, is how often each sentinel asks the servers
	// for INFO (SENTINEL DEBUG info-period; Redis's default is 10 s, 1 s
	// for the replicas of a primary being failed over). After a failover
	// a sentinel turns the old primary into a replica when it next looks
	// at it: a shorter period makes that happen sooner. Needs Redis 7.
	InfoPeriod time.Duration

	// PublishPeriod, when set, is how often each sentinel says hello to
	// the others through the primary (SENTINEL DEBUG publish-period;
	// default 2 s): a shorter one makes the sentinels find each other
	// sooner, so the group is ready sooner. Needs Redis 7. At least
	// minPublishPeriod: a sentinel that sees a replica report itself a
	// primary turns it back into a replica after 4 publish periods unless
	// it has heard of a failover meanwhile (sentinel.c), and the failover's
	// leader sees the promotion only at its next INFO of the replica (every
	// second) before it tells the others; with 200 ms (800 ms to wait) a
	// CI run saw a sentinel undo a failover that way, then the group fail
	// over back to the old primary, which took writes for 11 s.
	PublishPeriod time.Duration

	// ServerArgs are added to the command line of the primary and of every
	// replica (e.g. "--repl-diskless-sync-delay", "0", which makes a
	// replica's full sync start at once instead of after Redis's default
	// 5 s).
	ServerArgs []string
}

// minPublishPeriod is the shortest SentinelOptions.PublishPeriod: 4 of
// them (how long a sentinel waits before it undoes what looks like a stray
// promotion) must outlast a failover leader's next INFO of the promoted
// replica (1 s) and its announcement, with room for a loaded machine.
const minPublishPeriod = time.Second

// Sentinel is a Redis primary, its replicas and the sentinels that watch
// them, all private to a test and stopped at cleanup. Which server is the
// primary changes with failovers: see Primary.
type Sentinel struct {
	t         testing.TB
	servers   []*Server // the primary first, then the replicas, as started
	sentinels []*Server
}

// StartSentinel starts a primary (StartServer) and one sentinel monitoring
// it: StartSentinelWith with the zero SentinelOptions.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return StartSentinelWith(t, SentinelOptions{})
}

// StartSentinelWith starts a primary, opts.Replicas replicas of it
// (--replicaof) and opts.Sentinels redis-sentinel processes monitoring it
// under SentinelMaster, each on a free loopback port, and waits, at most
// 20 s, until every replica is in sync and every sentinel reports the
// primary, knows every replica and every other sentinel (so that a
// failover can start at once). It fails the test otherwise. Everything is
// stopped at cleanup.
func StartSentinelWith(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	opts.Replicas = max(opts.Replicas, 0)
	opts.Sentinels = max(opts.Sentinels, 1)
	if opts.Quorum <= 0 {
		opts.Quorum = opts.Sentinels/2 + 1
	}
	if opts.DownAfter <= 0 {
		opts.DownAfter = 5 * time.Second
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH: %v", err)
	}
	s := &Sentinel{t: t}
	primary := StartServer(t, opts.ServerArgs...)
	s.servers = append(s.servers, primary)
	for range opts.Replicas {
		args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port())}, opts.ServerArgs...)
		s.servers = append(s.servers, StartServer(t, args...))
	}

	dir := t.TempDir()
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-sentinel output:\n%s", out.String())
		}
	})
	for range opts.Sentinels {
		body := func(port int) string {
			return fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
				"sentinel monitor %s 127.0.0.1 %d %d\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s 10000\n",
				port, dir, SentinelMaster, primary.Port(), opts.Quorum,
				SentinelMaster, opts.DownAfter.Milliseconds(), SentinelMaster)
		}
		s.sentinels = append(s.sentinels, startSentinelProcess(t, bin, dir, out, body))
	}
	if opts.PublishPeriod > 0 && opts.PublishPeriod < minPublishPeriod {
		t.Fatalf("redistest: PublishPeriod %v is below %v: sentinels could undo a failover (see SentinelOptions)", opts.PublishPeriod, minPublishPeriod)
	}
	var debug []any
	if opts.InfoPeriod > 0 {
		debug = append(debug, "info-period", opts.InfoPeriod.Milliseconds())
	}
	if opts.PublishPeriod > 0 {
		debug = append(debug, "publish-period", opts.PublishPeriod.Milliseconds())
	}
	if len(debug) > 0 {
		for _, sn := range s.sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: clientTimeout, ReadTimeout: clientTimeout})
			err := c.Process(context.Background(), redis.NewStatusCmd(context.Background(), append([]any{"sentinel", "debug"}, debug...)...))
			c.Close()
			if err != nil {
				t.Fatalf("redistest: SENTINEL DEBUG %v on %s: %v", debug, sn.Addr(), err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), sentinelTimeout)
	defer cancel()
	if err := retry(ctx, func() error { return s.ready(ctx, primary) }); err != nil {
		t.Fatalf("redistest: sentinel group not ready after %s: %v", sentinelTimeout, err)
	}
	return s
}

// startSentinelProcess starts one redis-sentinel with the configuration
// body(port) on a free port, retrying with another port when it cannot
// bind, and registers its Stop on cleanup.
func startSentinelProcess(t testing.TB, bin, dir string, out *syncBuffer, body func(port int) string) *Server {
	t.Helper()
	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick a free port: %v", err)
		}
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		if err := os.WriteFile(conf, []byte(body(port)), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel config: %v", err)
		}
		srv := &Server{t: t, port: port, args: []string{conf, "--sentinel"}, out: out}
		p, err := srv.launch(bin)
		if err != nil {
			t.Fatalf("redistest: start sentinel: %v", err)
		}
		if err = waitReady(srv.Addr(), p, startTimeout); err == nil {
			srv.proc = p
			t.Cleanup(srv.Stop)
			return srv
		}
		lastErr = err
		stopProcess(p)
	}
	t.Fatalf("redistest: sentinel did not start: %v", lastErr)
	return nil
}

// ready reports what is not yet so of: every replica in sync with
// primary, every sentinel reporting primary, knowing every replica (not
// down) and every other sentinel.
func (s *Sentinel) ready(ctx context.Context, primary *Server) error {
	for _, r := range s.servers {
		if r == primary {
			continue
		}
		if err := replicaInSync(ctx, r, primary); err != nil {
			return err
		}
	}
	want := []string{"127.0.0.1", strconv.Itoa(primary.Port())}
	for _, sn := range s.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: clientTimeout, ReadTimeout: clientTimeout, MaxRetries: -1})
		err := func() error {
			defer c.Close()
			got, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", sn.Addr(), err)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("sentinel %s reports primary %v, want %v", sn.Addr(), got, want)
			}
			replicas, err := c.Replicas(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", sn.Addr(), err)
			}
			up := 0
			for _, r := range replicas {
				if !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") {
					up++
				}
			}
			if up != len(s.servers)-1 {
				return fmt.Errorf("sentinel %s knows %d replicas up, want %d", sn.Addr(), up, len(s.servers)-1)
			}
			others, err := c.Sentinels(ctx, SentinelMaster).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL SENTINELS: %w", sn.Addr(), err)
			}
			if len(others) != len(s.sentinels)-1 {
				return fmt.Errorf("sentinel %s knows %d other sentinels, want %d", sn.Addr(), len(others), len(s.sentinels)-1)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// replicaInSync reports whether r is a replica of primary with its link
// up, nil when so.
func replicaInSync(ctx context.Context, r, primary *Server) error {
	n := nodeClient(r.Addr())
	defer n.Close()
	info, err := n.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", r.Addr(), err)
	}
	f := infoFields(info)
	if f["role"] != "slave" || f["master_port"] != strconv.Itoa(primary.Port()) || f["master_link_status"] != "up" {
		return fmt.Errorf("%s is not a replica in sync with %s: role %s, master_port %s, link %s",
			r.Addr(), primary.Addr(), f["role"], f["master_port"], f["master_link_status"])
	}
	return nil
}

// infoFields parses the "field:value" lines of an INFO answer.
func infoFields(info string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// Addr returns the first sentinel's address.
func (s *Sentinel) Addr() string { return s.sentinels[0].Addr() }

// Addrs returns every sentinel's address.
func (s *Sentinel) Addrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sn := range s.sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// Servers returns the primary and the replicas, in the order they were
// started (the first primary first).
func (s *Sentinel) Servers() []*Server { return slices.Clone(s.servers) }

// Sentinels returns the sentinel processes (to stop one, say).
func (s *Sentinel) Sentinels() []*Server { return slices.Clone(s.sentinels) }

// Primary returns the server the sentinels report as the primary now (the
// first sentinel that answers). It fails the test if none answers within
// 5 s or the address is none of the group's servers.
func (s *Sentinel) Primary() *Server {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	addr, err := s.primaryAddr(ctx)
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	for _, srv := range s.servers {
		if srv.Addr() == addr {
			return srv
		}
	}
	s.t.Fatalf("redistest: the sentinels report primary %s, not one of the group's servers", addr)
	return nil
}

// primaryAddr asks the sentinels, in turn, for the primary's address.
func (s *Sentinel) primaryAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, sn := range s.sentinels {
		if !sn.Running() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: clientTimeout, ReadTimeout: clientTimeout, MaxRetries: -1})
		got, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil && len(got) == 2 {
			return got[0] + ":" + got[1], nil
		}
		lastErr = fmt.Errorf("sentinel %s: %v %v", sn.Addr(), got, err)
	}
	return "", fmt.Errorf("no sentinel reports the primary: %w", lastErr)
}

// Client returns a go-redis failover client that finds the primary
// through the sentinels (all of them), with 2 s dial, read and write
// timeouts. It is closed at cleanup.
func (s *Sentinel) Client() *redis.Client {
	s.t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: s.Addrs(),
		DialTimeout:   clientTimeout,
		ReadTimeout:   clientTimeout,
		WriteTimeout:  clientTimeout,
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Failover is what Sentinel.Failover saw.
type Failover struct {
	Old, New *Server

	// Requested is when SENTINEL FAILOVER was sent; Promoted when the new
	// primary first answered ROLE as a master (it accepts writes from
	// then on); Switched when every sentinel first reported it as the
	// primary (clients learn of it from then on).
	Requested, Promoted, Switched time.Time
}

// Failover makes the group fail over as an operator would: it sends
// SENTINEL FAILOVER to the first sentinel (which promotes a replica
// without asking the others, the primary being up), then waits, at most
// timeout, until a replica answers ROLE as a master and every running
// sentinel reports it as the primary. The old primary stays up: the
// sentinels turn it into a replica of the new one afterwards (see
// WaitReplicated). It fails the test otherwise.
func (s *Sentinel) Failover(timeout time.Duration) Failover {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f := Failover{Old: s.Primary()}
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].Addr(), DialTimeout: clientTimeout, ReadTimeout: clientTimeout, MaxRetries: -1})
	defer c.Close()
	f.Requested = time.Now()
	if err := c.Failover(ctx, SentinelMaster).Err(); err != nil {
		s.t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	for f.New == nil {
		for _, srv := range s.servers {
			if srv == f.Old || !srv.Running() {
				continue
			}
			if role(ctx, srv) == "master" {
				f.New, f.Promoted = srv, time.Now()
				break
			}
		}
		if f.New == nil {
			if !sleep(ctx, 5*time.Millisecond) {
				s.t.Fatalf("redistest: no replica promoted %s after SENTINEL FAILOVER", timeout)
			}
		}
	}
	for {
		all := true
		for _, sn := range s.sentinels {
			if !sn.Running() {
				continue
			}
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: clientTimeout, ReadTimeout: clientTimeout, MaxRetries: -1})
			got, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			c.Close()
			if err != nil || len(got) != 2 || got[0]+":"+got[1] != f.New.Addr() {
				all = false
				break
			}
		}
		if all {
			f.Switched = time.Now()
			return f
		}
		if !sleep(ctx, 5*time.Millisecond) {
			s.t.Fatalf("redistest: the sentinels do not all report the new primary %s %s after SENTINEL FAILOVER", f.New.Addr(), timeout)
		}
	}
}

// WaitReplicated waits, at most timeout, until every running server of
// the group other than the primary (as the sentinels report it) is its
// replica with the link up, and the primary counts them all as online
// replicas; it returns when that first held, and fails the test if it
// does not within timeout. After a Failover the old primary becomes a
// replica only once a sentinel has told it to (sentinels look at it every
// 10 s) and it has synced.
func (s *Sentinel) WaitReplicated(timeout time.Duration) time.Time {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	for {
		if err = s.replicated(ctx); err == nil {
			return time.Now()
		}
		if !sleep(ctx, 20*time.Millisecond) {
			s.t.Fatalf("redistest: replicas not in sync after %s: %v", timeout, err)
		}
	}
}

func (s *Sentinel) replicated(ctx context.Context) error {
	addr, err := s.primaryAddr(ctx)
	if err != nil {
		return err
	}
	var primary *Server
	for _, srv := range s.servers {
		if srv.Addr() == addr {
			primary = srv
		}
	}
	if primary == nil {
		return fmt.Errorf("primary %s is none of the group's servers", addr)
	}
	want := 0
	for _, r := range s.servers {
		if r == primary || !r.Running() {
			continue
		}
		want++
		if err := replicaInSync(ctx, r, primary); err != nil {
			return err
		}
	}
	n := nodeClient(primary.Addr())
	defer n.Close()
	info, err := n.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	online := strings.Count(info, "state=online")
	if infoFields(info)["role"] != "master" || online != want {
		return fmt.Errorf("primary %s: role %s, %d online replicas, want %d", primary.Addr(), infoFields(info)["role"], online, want)
	}
	return nil
}

// role returns the first element of ROLE from srv ("master", "slave",
// ...), or "" when it does not answer.
func role(ctx context.Context, srv *Server) string {
	n := nodeClient(srv.Addr())
	defer n.Close()
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	res, err := n.Do(ctx, "ROLE").Slice()
	if err != nil || len(res) == 0 {
		return ""
	}
	r, _ := res[0].(string)
	return r
}

// Role returns what srv answers to ROLE first: "master", "slave" or
// "sentinel", or "" when it does not answer within 500 ms.
func Role(srv *Server) string {
	return role(context.Background(), srv)
}

// sleep waits d, or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
