package bench

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/backend/redis"
)

// storeKeys and redisKeys are how many sessions the memory and Redis store
// benchmarks spread their operations over.
const (
	storeKeys = 10_000
	redisKeys = 1_000
)

// storeOps are the backend.Store operations measured, each on a stored key.
var storeOps = []struct {
	name string
	op   func(ctx context.Context, s backend.Store, key string, e backend.Entry) error
}{
	{"get", func(ctx context.Context, s backend.Store, key string, _ backend.Entry) error {
		_, err := s.Get(ctx, key)
		return err
	}},
	{"set", func(ctx context.Context, s backend.Store, key string, e backend.Entry) error {
		return s.Set(ctx, key, e)
	}},
	{"touch", func(ctx context.Context, s backend.Store, key string, e backend.Entry) error {
		return s.Touch(ctx, key, time.Now(), e.Expires)
	}},
}

// fillStore stores n copies of e and returns their keys.
func fillStore(b *testing.B, s backend.Store, e backend.Entry, n int) []string {
	b.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = benchKey(i)
		if err := s.Set(context.Background(), keys[i], e); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// liveEntry returns a copy of the sample session entry that lives for 30
// minutes from now (12 hours at most).
func liveEntry(b *testing.B) backend.Entry {
	e := sampleEntry(b)
	now := time.Now()
	e.Expires, e.Limit = now.Add(30*time.Minute), now.Add(12*time.Hour)
	return e
}

// filledMemoryStore returns a memory store holding storeKeys copies of the
// live sample entry, the entry and their keys; the store closes at cleanup.
func filledMemoryStore(b *testing.B) (*memory.Store, backend.Entry, []string) {
	b.Helper()
	st := memory.New(memory.Options{SweepInterval: -1})
	b.Cleanup(func() { st.Close() })
	e := liveEntry(b)
	return st, e, fillStore(b, st, e, storeKeys)
}

// BenchmarkStore measures Get, Set and Touch on the memory store, serially
// and under b.RunParallel (GOMAXPROCS goroutines), and on a real Redis.
// The entry is what the library stores for a small session.
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	for _, op := range storeOps {
		b.Run("memory/"+op.name+"/serial", func(b *testing.B) {
			st, e, keys := filledMemoryStore(b)
			b.ReportAllocs()
			measureCores(b, func() {
				i := 0
				for b.Loop() {
					if err := op.op(ctx, st, keys[i%storeKeys], e); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
		b.Run("memory/"+op.name+"/parallel", func(b *testing.B) {
			st, e, keys := filledMemoryStore(b)
			b.ReportAllocs()
			b.ResetTimer()
			measureCores(b, func() {
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(storeKeys) // each goroutine walks the keys from its own place
					for pb.Next() {
						if err := op.op(ctx, st, keys[i%storeKeys], e); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		})
	}
	// The ceiling: CPU-only work sharing nothing (SHA-256 of 32 bytes), to
	// show what RunParallel can gain on this machine at best at the time
	// of the run.
	b.Run("ceiling/serial", func(b *testing.B) {
		measureCores(b, func() {
			var h [32]byte
			for b.Loop() {
				h = sha256.Sum256(h[:])
			}
		})
	})
	b.Run("ceiling/parallel", func(b *testing.B) {
		measureCores(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				var h [32]byte
				for pb.Next() {
					h = sha256.Sum256(h[:])
				}
			})
		})
	})
	// One Redis round trip with nothing else: PING through go-redis, the
	// floor of every Redis request's cost per round trip on this machine.
	b.Run("redis/ping", func(b *testing.B) {
		client, cnt := redisClient(b)
		cnt.reset()
		for b.Loop() {
			if err := client.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
		cnt.report(b)
	})
	for _, op := range storeOps {
		b.Run("redis/"+op.name, func(b *testing.B) {
			client, cnt := redisClient(b)
			st, err := redis.New(ctx, client, redis.Options{Prefix: "bench:store:"})
			if err != nil {
				b.Fatal(err)
			}
			e := liveEntry(b)
			keys := fillStore(b, st, e, redisKeys) // also warms the connection
			b.ReportAllocs()
			cnt.reset()
			i := 0
			for b.Loop() {
				if err := op.op(ctx, st, keys[i%redisKeys], e); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cnt.report(b)
		})
	}
	// What a modifying request's save costs: SetIf (backend.Conditional),
	// the version checked and the write id recorded in one script.
	b.Run("redis/setif", func(b *testing.B) {
		client, cnt := redisClient(b)
		st, err := redis.New(ctx, client, redis.Options{Prefix: "bench:store:"})
		if err != nil {
			b.Fatal(err)
		}
		e := liveEntry(b)
		keys := fillStore(b, st, e, redisKeys)
		versions := make([]uint64, redisKeys)
		for i := range versions {
			versions[i] = e.Version
		}
		b.ReportAllocs()
		cnt.reset()
		i := 0
		for b.Loop() {
			k := i % redisKeys
			next := e
			next.Version = versions[k] + 1
			if err := st.SetIf(ctx, keys[k], versions[k], time.Now(), next); err != nil {
				b.Fatal(err)
			}
			versions[k]++
			i++
		}
		cnt.report(b)
	})
}
