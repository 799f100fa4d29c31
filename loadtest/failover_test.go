package loadtest

import (
	"context"
	"fmt"
	"net/http"
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

// waitModes are the two ways the failover tests run the store: writes
// answered once the primary has them (Redis's default), and writes that
// wait for one replica (redis.Options.WaitReplicas 1).
var waitModes = []struct {
	name string
	args []string
}{
	{"wait=off", nil},
	{"wait=on", []string{"-redis-wait", "1"}},
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
// [from, to].
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

// TestLoadSentinelFailover: 64 clients increment their counters through
// loadapp on a primary with one replica and three sentinels; an operator
// fails it over (SENTINEL FAILOVER). The old primary keeps running, so
// clients that have not yet heard of the new primary go on writing to it,
// and those writes vanish when it becomes the new primary's replica.
//
//   - wait=off: the writes answered 200 that the old primary took after
//     the replica's promotion are lost. The test measures that window and
//     the loss, and checks that only increments answered within the
//     window were lost, and that nothing answered "failed" was stored.
//   - wait=on: every write waits for a replica, so a write to the old
//     primary after the promotion (its replica is gone) or to the new one
//     before the old one has resynced is answered 504, never 200: nothing
//     answered 200 may be lost.
func TestLoadSentinelFailover(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	for _, mode := range waitModes {
		t.Run(mode.name, func(t *testing.T) {
			g := redistest.StartSentinelWith(t, redistest.SentinelOptions{Replicas: 1, Sentinels: 3,
				InfoPeriod: time.Second, PublishPeriod: 200 * time.Millisecond, ServerArgs: noSyncDelay})
			base := startApp(t, append([]string{"-redis-sentinel", redistest.SentinelMaster + "@" + strings.Join(g.Addrs(), ",")}, mode.args...)...)
			d := duration(t)
			var (
				begin, synced time.Time
				f             redistest.Failover
				watch         *writeWatch
			)
			cs := load(t, base, 0, false, func() {
				begin = time.Now()
				watch = watchWrites(t, g.Primary())
				time.Sleep(d / 2)
				f = g.Failover(20 * time.Second)
				synced = g.WaitReplicated(30 * time.Second)
				time.Sleep(d / 2)
			})
			end := time.Now()
			changes, last := watch.after(f.Promoted)
			window := time.Duration(0)
			if !last.IsZero() {
				window = last.Sub(f.Promoted)
			}
			s := check(t, cs, mode.args == nil)
			statuses(t, "visits during the failover", s.visits, 200, 500, 504)
			answered := okWithin(cs, f.Promoted, last)
			t.Logf("promoted %v after SENTINEL FAILOVER; sentinels switched %v after that; old primary a replica in sync %v after that",
				f.Promoted.Sub(f.Requested).Round(time.Millisecond), f.Switched.Sub(f.Promoted).Round(time.Millisecond), synced.Sub(f.Switched).Round(time.Millisecond))
			t.Logf("the old primary took writes for %v after the promotion (%d changes); %d visits answered 200 were in flight then",
				window.Round(time.Millisecond), changes, answered)
			if s.ledger.Lost > answered {
				t.Errorf("%d increments answered 200 were lost, more than the %d answered while the old primary took writes after the promotion", s.ledger.Lost, answered)
			}
			if window > 3*time.Second {
				t.Errorf("the old primary took writes for %v after the promotion, want at most 3 s (the README's bound)", window.Round(time.Millisecond))
			}
			steady := phase(cs, "before the failover", begin, f.Requested)
			during := phase(cs, "failover until the old primary is a replica in sync", f.Requested, synced)
			after := phase(cs, "after", synced, end)
			for _, p := range []phaseStats{steady, during, after} {
				t.Log(p)
			}
			figures(t, s, fmt.Sprintf("window %v | steady %.0f/s | failover+resync %v: %.0f/s, %d errors | after %.0f/s",
				window.Round(time.Millisecond), float64(steady.visits)/steady.took.Seconds(),
				during.took.Round(time.Millisecond), float64(during.visits)/during.took.Seconds(), during.visits-during.byStatus[200],
				float64(after.visits)/after.took.Seconds()))
			if n := after.visits - after.byStatus[200]; n > 0 {
				t.Errorf("%d visits failed after the old primary was a replica in sync again", n)
			}
		})
	}
}

// TestLoadClusterFailover: loadapp on a Cluster of three primaries with a
// replica each, with the client options the README recommends. A primary
// is killed (SIGKILL); about a second later its replica takes over;
// then the killed node is started again and rejoins as the new primary's
// replica. Requests on its slots fail meanwhile; no increment answered
// "failed" may be stored, and no answer may carry another session's data.
//
//   - wait=off: requests succeed again within 2 s of the cluster being OK.
//     Redis replicates asynchronously: the increments the dead primary
//     acknowledged but had not yet passed to its replica are lost; only
//     those answered just before the kill can be.
//   - wait=on: nothing answered 200 is lost. The new primary has no
//     replica until the killed node has rejoined and synced: its writes
//     are answered 504 until then, and succeed within 2 s after.
func TestLoadClusterFailover(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	for _, mode := range waitModes {
		t.Run(mode.name, func(t *testing.T) {
			cluster := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second, ServerArgs: noSyncDelay})
			base := startApp(t, append([]string{"-redis-cluster", strings.Join(cluster.Addrs(), ",")}, mode.args...)...)
			d := duration(t)
			var begin, killed, ok, synced time.Time
			cs := load(t, base, 0, false, func() {
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
			s := check(t, cs, mode.args == nil)
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
			back := ok
			if mode.args != nil {
				back = synced
			}
			recovery := s.lastFail.Sub(back)
			t.Logf("cluster OK %v after the kill; killed node a replica in sync %v after that; last failure %v after %s",
				ok.Sub(killed).Round(time.Millisecond), synced.Sub(ok).Round(time.Millisecond), recovery.Round(time.Millisecond),
				map[bool]string{true: "OK", false: "in sync"}[mode.args == nil])
			if recovery > 2*time.Second {
				t.Errorf("requests still failed %v after that, want at most 2s", recovery.Round(time.Millisecond))
			}
			steady := phase(cs, "before the kill", begin, killed)
			during := phase(cs, "kill until the cluster is OK", killed, ok)
			resync := phase(cs, "OK until the killed node is a replica in sync", ok, synced)
			after := phase(cs, "after", synced, end)
			for _, p := range []phaseStats{steady, during, resync, after} {
				t.Log(p)
			}
			figures(t, s, fmt.Sprintf("cluster OK %v after the kill, last failure %v after that | steady %.0f/s | kill-OK %.0f/s, %d errors | OK-synced %v: %.0f/s, %d errors | after %.0f/s",
				ok.Sub(killed).Round(time.Millisecond), recovery.Round(time.Millisecond),
				float64(steady.visits)/steady.took.Seconds(),
				float64(during.visits)/during.took.Seconds(), during.visits-during.byStatus[200],
				resync.took.Round(time.Millisecond), float64(resync.visits)/resync.took.Seconds(), resync.visits-resync.byStatus[200],
				float64(after.visits)/after.took.Seconds()))
		})
	}
}
