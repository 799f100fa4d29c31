package redis_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/redis"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/lostreply"
	"github.com/sessionx/sessions/internal/redistest"
)

// noSyncDelay makes a primary sync a new replica at once.
var noSyncDelay = []string{"--repl-diskless-sync-delay", "0"}

// newWaitStore returns a store on client under t's prefix that waits for
// replicas replicas, at most within.
func newWaitStore(t testing.TB, client goredis.UniversalClient, replicas int, within time.Duration) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redis.New(ctx, client, redis.Options{Prefix: prefix(t), WaitReplicas: replicas, WaitTimeout: within})
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	return st
}

// writes are one of each of the store's writes, in an order in which
// each succeeds, on keys "k", "k2" and owner "u".
func writes(st *redis.Store) []struct {
	name  string
	write func(ctx context.Context) error
} {
	later := func() time.Time { return time.Now().Add(time.Hour) }
	return []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"Set", func(ctx context.Context) error {
			return st.Set(ctx, "k", backend.Entry{Value: []byte("v1"), Expires: later(), Version: 1})
		}},
		{"SetIf", func(ctx context.Context) error {
			return st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: later(), Version: 2})
		}},
		{"Touch", func(ctx context.Context) error { return st.Touch(ctx, "k", time.Now(), later().Add(time.Hour)) }},
		{"AddOwned", func(ctx context.Context) error { return st.AddOwned(ctx, "u", "k", later()) }},
		{"Replace", func(ctx context.Context) error {
			return st.Replace(ctx, "k", 2, "k2", time.Now(), backend.Entry{Value: []byte("v3"), Expires: later(), Version: 3})
		}},
		{"RemoveOwned", func(ctx context.Context) error { return st.RemoveOwned(ctx, "u", "k") }},
		{"Delete", func(ctx context.Context) error { return st.Delete(ctx, "k2") }},
	}
}

// TestWaitWriteIsOnReplicaWhenItReturns: with WaitReplicas 1, every write
// goes out with a WAIT in the same round trip, and when it returns the
// replica already holds exactly what the primary holds.
func TestWaitWriteIsOnReplicaWhenItReturns(t *testing.T) {
	needBinaries(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	replica := redistest.StartReplica(t, primary)
	client := primary.Client()
	st := newWaitStore(t, client, 1, time.Second)
	counter := &redistest.Counter{}
	client.AddHook(counter)
	redistest.Warm(t, client)
	p := prefix(t)
	pc, rc := primary.Client(), replica.Client()
	for _, w := range writes(st) {
		counter.Reset()
		if err := w.write(t.Context()); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if got := counter.Names(); !slices.Equal(got, []string{"evalsha", "wait"}) || counter.RoundTrips() != 1 {
			t.Errorf("%s sent %v in %d round trips, want [evalsha wait] in 1", w.name, got, counter.RoundTrips())
		}
		// No sleep: the replica must have the write already.
		if on, want := snapshot(t, rc, p), snapshot(t, pc, p); on != want {
			t.Errorf("after %s the replica holds\n%s\nthe primary\n%s", w.name, on, want)
		}
	}
}

// TestWaitTimeoutIsUnknownOutcome: when the replica does not acknowledge
// (it hangs: SIGSTOP), a write returns within about WaitTimeout with an
// error wrapping backend.ErrUnknownOutcome, never a plain failure, and the
// write is on the primary. Through the core, the request is answered 504.
// A write that Redis refuses (a conflict) is still answered as such.
func TestWaitTimeoutIsUnknownOutcome(t *testing.T) {
	needPause(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	replica := redistest.StartReplica(t, primary)
	client := goredis.NewClient(&goredis.Options{Addr: primary.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	const within = 200 * time.Millisecond
	st := newWaitStore(t, client, 1, within)
	a := newApp(t, st, sessions.Config{Now: time.Now})
	// The session is made by a store that does not wait, so that a busy
	// machine's slow replica cannot make it unknown.
	_, _, cookie := newApp(t, newStore(t, client), sessions.Config{Now: time.Now}).do(t, "/inc", "")
	if cookie == "" {
		t.Fatal("no session made")
	}
	p := prefix(t)

	replica.Pause()
	defer replica.Resume()
	for _, w := range writes(st) {
		before := snapshot(t, primary.Client(), p)
		start := time.Now()
		err := w.write(t.Context())
		took := time.Since(start)
		if !errors.Is(err, backend.ErrUnknownOutcome) {
			t.Errorf("%s with the replica hung: %v, want an error wrapping ErrUnknownOutcome", w.name, err)
		}
		if took < within || took > within+time.Second {
			t.Errorf("%s returned after %v, want about the WaitTimeout %v", w.name, took, within)
		}
		if snapshot(t, primary.Client(), p) == before {
			t.Errorf("%s answered unknown but is not on the primary", w.name)
		}
	}
	if err := st.SetIf(t.Context(), "gone", 3, time.Now(), backend.Entry{Value: []byte("x"), Expires: time.Now().Add(time.Hour), Version: 4}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("SetIf of a missing key with the replica hung: %v, want ErrNotFound", err)
	}

	code, body, _ := a.do(t, "/inc", cookie)
	if code != http.StatusGatewayTimeout {
		t.Errorf("an increment not acknowledged by the replica answered %d %q, want 504", code, body)
	}
	replica.Resume()
	if _, body, _ := a.do(t, "/read", cookie); body != "2" {
		t.Errorf("the increment answered 504 is not on the primary: counter %s, want 2", body)
	}
}

// TestWaitForMoreReplicasThanThereAre: WaitReplicas 2 with one replica
// makes every write unknown (it is on the primary and one replica), and
// New refuses a WaitTimeout the client's ReadTimeout would cut short, and
// clients that cannot run WAIT on the connection that wrote.
func TestWaitForMoreReplicasThanThereAre(t *testing.T) {
	needBinaries(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	redistest.StartReplica(t, primary)
	st := newWaitStore(t, primary.Client(), 2, 50*time.Millisecond)
	err := st.Set(t.Context(), "k", backend.Entry{Value: []byte("v"), Expires: time.Now().Add(time.Hour), Version: 1})
	if !errors.Is(err, backend.ErrUnknownOutcome) {
		t.Errorf("a write acknowledged by 1 of 2 replicas: %v, want ErrUnknownOutcome", err)
	}
	if got, err := st.Get(t.Context(), "k"); err != nil || got.Version != 1 {
		t.Errorf("the write is not on the primary: %+v, %v", got, err)
	}

	ctx := t.Context()
	slow := goredis.NewClient(&goredis.Options{Addr: primary.Addr(), ReadTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { slow.Close() })
	if _, err := redis.New(ctx, slow, redis.Options{WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond}); err == nil {
		t.Error("New took a WaitTimeout as long as the client's ReadTimeout")
	}
	if _, err := redis.New(ctx, slow, redis.Options{WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond}); err != nil {
		t.Errorf("New refused a WaitTimeout shorter than the ReadTimeout: %v", err)
	}
	if _, err := redis.New(ctx, slow, redis.Options{WaitReplicas: 1}); err == nil {
		t.Errorf("New took the default WaitTimeout (%v), longer than the client's ReadTimeout", redis.DefaultWaitTimeout)
	}
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"one": primary.Addr()}})
	t.Cleanup(func() { ring.Close() })
	if _, err := redis.New(ctx, ring, redis.Options{WaitReplicas: 1}); err == nil {
		t.Error("New took WaitReplicas on a Ring")
	}
}

// TestWaitCopyOfWriteIsUnknown: with WAIT, a write whose answer was lost
// and whose copy found it applied reports an unknown outcome: the copy's
// WAIT does not cover the first copy.
func TestWaitCopyOfWriteIsUnknown(t *testing.T) {
	needBinaries(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	redistest.StartReplica(t, primary)
	proxy := lostreply.NewProxy(t, primary.Addr())
	client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: 0})
	t.Cleanup(func() { client.Close() })
	st := newWaitStore(t, client, 1, time.Second)
	ctx := t.Context()
	if err := st.Set(ctx, "k", backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(time.Hour), Version: 1}); err != nil {
		t.Fatal(err)
	}
	proxy.DropNextReply()
	err := st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: time.Now().Add(time.Hour), Version: 2})
	if proxy.Drops() != 1 {
		t.Fatal("the proxy dropped no reply: the test tested nothing")
	}
	if !errors.Is(err, backend.ErrUnknownOutcome) {
		t.Errorf("a write whose copy found it applied: %v, want ErrUnknownOutcome", err)
	}
	if got, err := st.Get(ctx, "k"); err != nil || got.Version != 2 {
		t.Errorf("after the copy: %+v, %v; want version 2 stored", got, err)
	}
}

// TestWaitConformanceReplica: the store suite, with every write waiting
// for a replica.
func TestWaitConformanceReplica(t *testing.T) {
	needBinaries(t)
	primary := redistest.StartServer(t, noSyncDelay...)
	redistest.StartReplica(t, primary)
	client := primary.Client()
	storetest.Run(t, func(t *testing.T) backend.Store { return newWaitStore(t, client, 1, time.Second) })
}

// TestWaitOnClusterGoesToKeysNode: on a Cluster, the WAIT of a write goes
// to the key's primary. With the replica of one primary hung, writes of
// the keys on that primary are unknown and all others succeed; then, after
// a manual failover of another shard (its primary becomes its replica's
// replica, and answers MOVED), writes follow the MOVED answers to the new
// primaries and are acknowledged there.
func TestWaitOnClusterGoesToKeysNode(t *testing.T) {
	redistest.Long(t)
	needPause(t)
	cluster := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second, ServerArgs: noSyncDelay})
	// A long reload interval: after the manual failover the client's map
	// is stale until a MOVED answer.
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cluster.Addrs(), ContextTimeoutEnabled: true, ClusterStateReloadInterval: time.Hour})
	t.Cleanup(func() { client.Close() })
	var mu sync.Mutex
	var moved int
	client.OnNewNode(func(c *goredis.Client) {
		c.AddHook(movedCounter{&mu, &moved})
	})
	// A second for the replicas that answer: a busy machine may be slow.
	// The keys are written concurrently, so that those whose replica hangs
	// take that second together.
	st := newWaitStore(t, client, 1, time.Second)
	ctx := t.Context()
	primaries := cluster.Primaries()
	hung, other := primaries[0], primaries[1]
	on := func(key string) string {
		c, err := client.MasterForKey(ctx, prefix(t)+key)
		if err != nil {
			t.Fatal(err)
		}
		return c.Options().Addr
	}
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	entry := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(time.Hour), Version: 1}

	replica := cluster.ReplicasOf(hung)[0]
	replica.Pause()
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() { errs[i] = st.Set(ctx, k, entry) })
	}
	wg.Wait()
	replica.Resume()
	onHung := 0
	for i, k := range keys {
		if on(k) == hung.Addr() {
			onHung++
			if !errors.Is(errs[i], backend.ErrUnknownOutcome) {
				t.Errorf("%s, on the primary whose replica hangs: %v, want ErrUnknownOutcome", k, errs[i])
			}
		} else if errs[i] != nil {
			t.Errorf("%s, on a primary whose replica answers: %v", k, errs[i])
		}
	}
	if onHung == 0 || onHung == len(keys) {
		t.Fatalf("%d of %d keys on the primary whose replica hung: the test tests nothing", onHung, len(keys))
	}

	// Manual failover of another shard: its replica takes over, and the
	// old primary answers MOVED.
	heir := cluster.ReplicasOf(other)[0]
	if err := heir.Client().Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for redistest.Role(heir) != "master" || len(cluster.ReplicasOf(heir)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("CLUSTER FAILOVER did not complete in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cluster.WaitReplicated(10 * time.Second)
	entry.Version = 2
	for _, k := range keys {
		if err := st.Set(ctx, k, entry); err != nil {
			t.Errorf("%s after the manual failover: %v", k, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if moved == 0 {
		t.Error("no write met a MOVED answer: the test tested nothing")
	}
	t.Logf("%d writes followed a MOVED answer", moved)
}

// movedCounter counts the pipelines of which a command was answered MOVED.
type movedCounter struct {
	mu *sync.Mutex
	n  *int
}

func (movedCounter) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (movedCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h movedCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if _, ok := goredis.IsMovedError(c.Err()); ok {
				h.mu.Lock()
				*h.n++
				h.mu.Unlock()
				break
			}
		}
		return err
	}
}

// TestReadWithRefreshDueServedWithoutReplicas: a primary with
// min-replicas-to-write 1 and no replica refuses writes (NOREPLICAS). A
// read whose idle-deadline refresh is due still serves the session (the
// slide is skipped, as at maxmemory), Touch reports success and changes
// nothing, and a change is refused with the ErrorHandler's 500, nothing
// of it stored.
func TestReadWithRefreshDueServedWithoutReplicas(t *testing.T) {
	needBinaries(t)
	srv := redistest.StartServer(t)
	client := srv.Client()
	st := newStore(t, client)
	a := newApp(t, st, sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute})
	_, _, cookie := a.do(t, "/inc", "")
	keys, err := client.Keys(t.Context(), prefix(t)+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys under the prefix: %v, %v", keys, err)
	}
	before := snapshot(t, client, prefix(t))
	if err := client.ConfigSet(t.Context(), "min-replicas-to-write", "1").Err(); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(2 * time.Minute) // refresh due
	for i := range 3 {
		if code, body, _ := a.do(t, "/read", cookie); code != 200 || body != "1" {
			t.Fatalf("read %d with refresh due and no replica: %d %q, want 200 and the session (1)", i, code, body)
		}
	}
	key := strings.TrimPrefix(keys[0], prefix(t))
	if err := st.Touch(t.Context(), key, a.clock.Now(), a.clock.Now().Add(time.Hour)); err != nil {
		t.Errorf("Touch refused for want of replicas: %v, want success (nothing changed)", err)
	}
	if code, _, _ := a.do(t, "/inc", cookie); code != http.StatusInternalServerError {
		t.Errorf("a change with no replica answered %d, want 500", code)
	}
	if after := snapshot(t, client, prefix(t)); after != before {
		t.Errorf("Redis changed without a replica:\nbefore %s\nafter  %s", before, after)
	}
}
