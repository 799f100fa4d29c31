package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name under which StartSentinel's sentinel monitors
// its primary.
const SentinelMaster = "sessions-primary"

// Sentinel is a primary redis-server watched by one redis-sentinel process,
// both private to a test.
type Sentinel struct {
	t       testing.TB
	primary *Server
	addr    string
}

// StartSentinel starts a primary (StartServer) and a sentinel monitoring it
// under SentinelMaster on another free loopback port, and waits until the
// sentinel reports the primary's address. Both are stopped at cleanup.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	primary := StartServer(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH: %v", err)
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-sentinel output:\n%s", out.String())
		}
	})
	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick a free port: %v", err)
		}
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds %s 5000\n",
			port, dir, SentinelMaster, primary.Port(), SentinelMaster)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel config: %v", err)
		}
		s := &Server{t: t, port: port, args: []string{conf, "--sentinel"}, out: out}
		p, err := s.launch(bin)
		if err != nil {
			t.Fatalf("redistest: start sentinel: %v", err)
		}
		if err = waitReady(s.Addr(), p, startTimeout); err == nil {
			s.proc = p
			t.Cleanup(s.Stop)
			sn := &Sentinel{t: t, primary: primary, addr: s.Addr()}
			sn.waitMaster()
			return sn
		}
		lastErr = err
		stopProcess(p)
	}
	t.Fatalf("redistest: sentinel did not start: %v", lastErr)
	return nil
}

// waitMaster waits until the sentinel answers with the primary's address.
func (s *Sentinel) waitMaster() {
	s.t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	want := []string{"127.0.0.1", strconv.Itoa(s.primary.Port())}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		cancel()
		if err == nil && len(got) == 2 && got[0] == want[0] && got[1] == want[1] {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: sentinel does not report the primary: %v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr returns the sentinel's address.
func (s *Sentinel) Addr() string { return s.addr }

// Primary returns the monitored primary.
func (s *Sentinel) Primary() *Server { return s.primary }

// Client returns a go-redis failover client that finds the primary through
// the sentinel. It is closed at cleanup.
func (s *Sentinel) Client() *redis.Client {
	s.t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: []string{s.addr},
		DialTimeout:   2 * time.Second,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}
