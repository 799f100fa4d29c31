package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/internal/redistest"
)

// noSyncDelay makes a primary sync a replica at once, not after Redis's
// default 5 s (repl-diskless-sync-delay), so that a node that rejoins
// after a failover is a replica in sync sooner and the tests end sooner.
var noSyncDelay = []string{"--repl-diskless-sync-delay", "0"}

// redisDefaults reports whether LOADTEST_REDIS_DEFAULTS=1 asks the
// failover tests to keep Redis's default timings: the sentinels' 10 s
// INFO period (after which they turn an old primary into a replica) and
// the 5 s diskless sync delay. The old primary then rejoins about 15 s
// after a failover, instead of about 1 s.
func redisDefaults() bool { return os.Getenv("LOADTEST_REDIS_DEFAULTS") == "1" }

// failoverArgs returns the servers' extra arguments of the failover
// tests.
func failoverArgs() []string {
	if redisDefaults() {
		return nil
	}
	return noSyncDelay
}

// phaseStats sums the visits that started within a phase of a test.
type phaseStats struct {
	name     string
	took     time.Duration
	visits   int
	byStatus map[int]int
}

func phase(cs []*client, name string, from, to time.Time) phaseStats {
	p := phaseStats{name: name, took: to.Sub(from), byStatus: map[int]int{}}
	for _, c := range cs {
		for _, ev := range c.events {
			if !ev.start.Before(from) && ev.start.Before(to) {
				p.visits++
				p.byStatus[ev.status]++
			}
		}
	}
	return p
}

func (p phaseStats) String() string {
	return fmt.Sprintf("%s: %v, %d visits, %.0f/s, by status %v", p.name, p.took.Round(time.Millisecond),
		p.visits, float64(p.visits)/p.took.Seconds(), p.byStatus)
}

// okWithin counts the visits answered 200 that were sent before to and
// answered after from: those whose write may have been applied within
// [from, to]. A zero to counts none.
func okWithin(cs []*client, from, to time.Time) int {
	n := 0
	for _, c := range cs {
		for _, ev := range c.events {
			if ev.status == http.StatusOK && ev.start.Before(to) && ev.end.After(from) {
				n++
			}
		}
	}
	return n
}

// writeWatch polls a primary's INFO every 5 ms until it answers as a
// replica (or stop is called), and records how many changes it had
// applied (rdb_changes_since_last_save) while it was a primary.
type writeWatch struct {
	stop    chan struct{}
	done    chan struct{}
	samples []sample
}

type sample struct {
	at      time.Time
	changes int64
}

func watchWrites(t *testing.T, srv *redistest.Server) *writeWatch {
	w := &writeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	go func() {
		defer close(w.done)
		defer c.Close()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			info, err := c.Info(context.Background(), "replication", "persistence").Result()
			if err != nil {
				continue
			}
			f := map[string]string{}
			for line := range strings.Lines(info) {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
					f[k] = v
				}
			}
			if f["role"] != "master" {
				return
			}
			n, _ := strconv.ParseInt(f["rdb_changes_since_last_save"], 10, 64)
			w.samples = append(w.samples, sample{time.Now(), n})
		}
	}()
	t.Cleanup(w.end)
	return w
}

// end stops the watch and waits for it.
func (w *writeWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// after returns how many changes the server applied as a primary after
// instant from, and when it was last seen to apply one (zero if none).
func (w *writeWatch) after(from time.Time) (changes int64, last time.Time) {
	w.end()
	var base int64 = -1
	prev := int64(-1)
	for _, s := range w.samples {
		if s.at.Before(from) {
			base = s.changes
		} else if base >= 0 && s.changes > base {
			changes = s.changes - base
		}
		if prev >= 0 && s.changes > prev && s.at.After(from) {
			last = s.at
		}
		prev = s.changes
	}
	return changes, last
}

// app is one loadapp instance of a failover test, how its writes wait,
// and whether its clients may lose increments answered 200.
type app struct {
	name   string
	args   []string
	lossOK bool
}

// startApps starts one loadapp per entry of apps, each under a key
// prefix of its own, with addr (the flags that name Redis) and its args.
func startApps(t *testing.T, apps []app, addr ...string) []string {
	bases := make([]string, len(apps))
	for i, a := range apps {
		args := append(append([]string{"-redis-prefix", "load:" + strconv.Itoa(i) + ":"}, addr...), a.args...)
		bases[i] = startApp(t, args...)
	}
	return bases
}

// TestLoadSentinelFailover: clients increment their counters through
// loadapp on a primary with replicas and three sentinels; an operator
// fails it over (SENTINEL FAILOVER). The old primary keeps running, so
// loadapp goes on writing to it until it hears of the new primary, and
// those writes vanish when the old primary becomes the new one's replica.
// Two loadapps run side by side on each group, 64 clients each, so that
// both meet the same failover:
//
//   - one replica, writes do not wait: the writes answered 200 that the
//     old primary took after the replica's promotion are lost. The test
//     measures that window and the loss, and checks that only increments
//     answered within the window were lost.
//   - one replica, WaitReplicas 1: a write to the old primary after the
//     promotion (its replica is gone) or to the new one before the old
//     one has resynced is answered 504, never 200: nothing answered 200
//     may be lost.
//   - two replicas, WaitReplicas 1: not enough. The second replica still
//     follows the old primary for a while after the promotion and
//     acknowledges its writes, then follows the new primary and drops
//     them: increments answered 200 are lost, within the window.
//   - two replicas, WaitReplicas 2 (every replica): nothing answered 200
//     may be lost.
//   - one replica, min-replicas-to-write 1 on the servers, writes do not
//     wait: the old primary refuses writes (NOREPLICAS, answered 500) as
//     soon as its replica has left it to be promoted, so nothing is lost
//     but what was on the way to the replica at that instant.
//
// In every case no increment answered "failed" may be stored, no answer
// may carry another session's data, and once the old primary is a replica
// in sync again every request succeeds.
func TestLoadSentinelFailover(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	for _, group := range []struct {
		name     string
		replicas int
		args     []string // the servers'
		apps     []app
	}{
		{"replicas=1", 1, nil, []app{{"wait=off", nil, true}, {"wait=1", []string{"-redis-wait", "1"}, false}}},
		{"replicas=2", 2, nil, []app{{"wait=1", []string{"-redis-wait", "1"}, true}, {"wait=2", []string{"-redis-wait", "2"}, false}}},
		{"replicas=1,min-replicas-to-write=1", 1, []string{"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"},
			[]app{{"wait=off", nil, true}}},
	} {
		t.Run(group.name, func(t *testing.T) {
			opts := redistest.SentinelOptions{Replicas: group.replicas, Sentinels: 3, PublishPeriod: time.Second,
				ServerArgs: append(failoverArgs(), group.args...)}
			if !redisDefaults() {
				opts.InfoPeriod = time.Second
			}
			g := redistest.StartSentinelWith(t, opts)
			bases := startApps(t, group.apps, "-redis-sentinel", redistest.SentinelMaster+"@"+strings.Join(g.Addrs(), ","))
			d := duration(t)
			var (
				begin, synced time.Time
				f             redistest.Failover
				watch         *writeWatch
			)
			all := loadAll(t, bases, 0, false, func() {
				begin = time.Now()
				watch = watchWrites(t, g.Primary())
				time.Sleep(d / 2)
				f = g.Failover(20 * time.Second)
				synced = g.WaitReplicated(40 * time.Second)
				time.Sleep(d / 2)
			})
			end := time.Now()
			changes, last := watch.after(f.Promoted)
			window := time.Duration(0)
			if !last.IsZero() {
				window = last.Sub(f.Promoted)
			}
			t.Logf("promoted %v after SENTINEL FAILOVER; sentinels switched %v after that; old primary a replica in sync %v after that",
				f.Promoted.Sub(f.Requested).Round(time.Millisecond), f.Switched.Sub(f.Promoted).Round(time.Millisecond), synced.Sub(f.Switched).Round(time.Millisecond))
			t.Logf("the old primary took writes for %v after the promotion (%d changes)", window.Round(time.Millisecond), changes)
			if window > 3*time.Second {
				t.Errorf("the old primary took writes for %v after the promotion, want at most 3 s (the README's bound)", window.Round(time.Millisecond))
			}
			for i, a := range group.apps {
				t.Run(a.name, func(t *testing.T) {
					cs := all[i]
					s := check(t, cs, a.lossOK)
					statuses(t, "visits during the failover", s.visits, 200, 500, 504)
					until := f.Promoted
					if last.After(until) {
						until = last
					}
					answered := okWithin(cs, f.Requested, until)
					if s.ledger.Lost > answered {
						t.Errorf("%d increments answered 200 were lost, more than the %d answered from the failover's start until the old primary took its last write", s.ledger.Lost, answered)
					}
					steady := phase(cs, "before the failover", begin, f.Requested)
					during := phase(cs, "failover until the old primary is a replica in sync", f.Requested, synced)
					after := phase(cs, "after", synced, end)
					for _, p := range []phaseStats{steady, during, after} {
						t.Log(p)
					}
					figures(t, s, fmt.Sprintf("window %v, %d answered 200 in it | steady %.0f/s | failover+resync %v: %.0f/s, %d errors | after %.0f/s",
						window.Round(time.Millisecond), answered, float64(steady.visits)/steady.took.Seconds(),
						during.took.Round(time.Millisecond), float64(during.visits)/during.took.Seconds(), during.visits-during.byStatus[200],
						float64(after.visits)/after.took.Seconds()))
					if n := after.visits - after.byStatus[200]; n > 0 {
						t.Errorf("%d visits failed after the old primary was a replica in sync again", n)
					}
				})
			}
		})
	}
}

// TestLoadClusterFailover: loadapp on a Cluster of three primaries with a
// replica each, with the client options the README recommends; two of
// them side by side, 64 clients each: one whose writes do not wait, one
// with WaitReplicas 1. A primary is killed (SIGKILL); about a second
// later its replica takes over; then the killed node is started again
// and rejoins as the new primary's replica. Requests on its slots fail
// meanwhile; no increment answered "failed" may be stored, and no answer
// may carry another session's data.
//
//   - wait=off: requests succeed again within 2 s of the cluster being OK.
//     Redis replicates asynchronously: the increments the dead primary
//     acknowledged but had not yet passed to its replica are lost; only
//     those answered just before the kill can be.
//   - wait=1: nothing answered 200 is lost. The new primary has no
//     replica until the killed node has rejoined and synced: its writes
//     are answered 504 until then, and succeed within 2 s after.
func TestLoadClusterFailover(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	apps := []app{{"wait=off", nil, true}, {"wait=1", []string{"-redis-wait", "1"}, false}}
	cluster := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second, ServerArgs: failoverArgs()})
	bases := startApps(t, apps, "-redis-cluster", strings.Join(cluster.Addrs(), ","))
	d := duration(t)
	var begin, killed, ok, synced time.Time
	all := loadAll(t, bases, 0, false, func() {
		begin = time.Now()
		time.Sleep(d / 2)
		victim := cluster.Primaries()[0]
		killed = time.Now()
		victim.Kill()
		ok = cluster.WaitHealthy(20 * time.Second)
		victim.Start()
		synced = cluster.WaitReplicated(20 * time.Second)
		time.Sleep(d / 2)
	})
	end := time.Now()
	t.Logf("cluster OK %v after the kill; killed node a replica in sync %v after that", ok.Sub(killed).Round(time.Millisecond), synced.Sub(ok).Round(time.Millisecond))
	for i, a := range apps {
		t.Run(a.name, func(t *testing.T) {
			cs := all[i]
			s := check(t, cs, a.lossOK)
			statuses(t, "visits during the failover", s.visits, 200, 500, 504)
			if s.ledger.Failed+s.ledger.Unknown == 0 {
				t.Error("no request failed: the kill did not hit the clients")
			}
			answered := okWithin(cs, killed.Add(-time.Second), killed)
			if s.ledger.Lost > answered {
				t.Errorf("%d increments answered 200 were lost, more than the %d answered in the second before the kill", s.ledger.Lost, answered)
			}
			// Without WAIT requests succeed once the cluster is OK; with it,
			// writes on the failed shard wait for its new replica.
			back, since := ok, "OK"
			if !a.lossOK {
				back, since = synced, "in sync"
			}
			recovery := s.lastFail.Sub(back)
			t.Logf("last failure %v after %s", recovery.Round(time.Millisecond), since)
			if recovery > 2*time.Second {
				t.Errorf("requests still failed %v after %s, want at most 2s", recovery.Round(time.Millisecond), since)
			}
			steady := phase(cs, "before the kill", begin, killed)
			during := phase(cs, "kill until the cluster is OK", killed, ok)
			resync := phase(cs, "OK until the killed node is a replica in sync", ok, synced)
			after := phase(cs, "after", synced, end)
			for _, p := range []phaseStats{steady, during, resync, after} {
				t.Log(p)
			}
			figures(t, s, fmt.Sprintf("cluster OK %v after the kill, last failure %v after %s | steady %.0f/s | kill-OK %.0f/s, %d errors | OK-synced %v: %.0f/s, %d errors | after %.0f/s",
				ok.Sub(killed).Round(time.Millisecond), recovery.Round(time.Millisecond), since,
				float64(steady.visits)/steady.took.Seconds(),
				float64(during.visits)/during.took.Seconds(), during.visits-during.byStatus[200],
				resync.took.Round(time.Millisecond), float64(resync.visits)/resync.took.Seconds(), resync.visits-resync.byStatus[200],
				float64(after.visits)/after.took.Seconds()))
		})
	}
}
