package bench

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	sessions "github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// quietLogger is the Managers' logger: the library logs the creation of
// every session at Info, which would interleave with the benchmark output
// (no benchmark times a session's creation).
var quietLogger = slog.New(slog.DiscardHandler)

// redisEnv names the environment variable holding the address of the Redis
// server the Redis benchmarks use. They are skipped when it is unset.
const redisEnv = "SESSIONS_BENCH_REDIS"

// Visit is the session data of every request benchmark: a user id, a name, a
// counter and a short slice. This library stores it as a typed struct; scs
// and gorilla/sessions store the same four values in their maps.
type Visit struct {
	UserID int64
	Name   string
	Count  int64
	Roles  []string
}

func newVisit() Visit {
	return Visit{UserID: 42, Name: "Ann Example", Roles: []string{"admin", "editor"}}
}

// counter is a go-redis hook counting commands and round trips: one command
// and one round trip per ProcessHook call, len(cmds) commands and one round
// trip per ProcessPipelineHook call (MULTI and EXEC included for
// transactions). It is a copy, without the command names, of
// internal/redistest.Counter, which another module cannot import.
type counter struct {
	cmds, rtts atomic.Int64
}

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.cmds.Add(1)
		c.rtts.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.rtts.Add(1)
		return next(ctx, cmds)
	}
}

func (c *counter) reset() {
	c.cmds.Store(0)
	c.rtts.Store(0)
}

// report adds cmds/op and rtt/op to b's results, for the b.N iterations
// since the last reset.
func (c *counter) report(b *testing.B) {
	if c == nil {
		return
	}
	b.ReportMetric(float64(c.cmds.Load())/float64(b.N), "cmds/op")
	b.ReportMetric(float64(c.rtts.Load())/float64(b.N), "rtt/op")
}

// redisClient returns a client to the Redis at $SESSIONS_BENCH_REDIS with a
// counter hooked in, or skips b when the variable is unset. The client is
// closed at cleanup.
func redisClient(b *testing.B) (*goredis.Client, *counter) {
	b.Helper()
	addr := os.Getenv(redisEnv)
	if addr == "" {
		b.Skip(redisEnv + " is not set: skipping the Redis benchmark")
	}
	c := goredis.NewClient(&goredis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
	})
	b.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		b.Fatalf("redis at %s: %v", addr, err)
	}
	cnt := &counter{}
	c.AddHook(cnt)
	return c, cnt
}

// benchKey returns the i-th store key, shaped like the keys the library
// uses: the unpadded URL-safe base64 of a SHA-256 (43 characters).
func benchKey(i int) string {
	var in [8]byte
	binary.BigEndian.PutUint64(in[:], uint64(i))
	sum := sha256.Sum256(in[:])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// recordingStore is a memory store that remembers the last entry written
// with SetIf, to get the bytes the library really stores for a session.
type recordingStore struct {
	*memory.Store
	last backend.Entry
}

func (s *recordingStore) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	s.last = e
	s.last.Value = append([]byte(nil), e.Value...)
	return s.Store.SetIf(ctx, key, old, now, e)
}

// sampleEntry returns the entry the library stores for a new session holding
// newVisit(): the envelope around its msgpack encoding.
func sampleEntry(tb testing.TB) backend.Entry {
	tb.Helper()
	rs := &recordingStore{Store: memory.New(memory.Options{SweepInterval: -1})}
	defer rs.Close()
	mgr, err := sessions.New[Visit](sessions.Config{Store: rs, Logger: quietLogger})
	if err != nil {
		tb.Fatal(err)
	}
	defer mgr.Close()
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mgr.Get(r).Data = newVisit()
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rs.last.Value == nil {
		tb.Fatalf("creating a sample session: status %d, nothing stored: %v", rec.Code, rs.last.Value == nil)
	}
	return rs.last
}

// writeBody is the response every request handler writes, whatever the
// library: a short text made of the session's four values.
func writeBody(w http.ResponseWriter, uid int64, name string, count int64, roles int) {
	b := make([]byte, 0, 64)
	b = append(b, "user "...)
	b = strconv.AppendInt(b, uid, 10)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, " visits "...)
	b = strconv.AppendInt(b, count, 10)
	b = append(b, " roles "...)
	b = strconv.AppendInt(b, int64(roles), 10)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}
