package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/internal/redistest"
)

// internalStore returns a store on a private redis-server (the test fails
// without one when redistest.Required, and is skipped otherwise) and a
// client to the same server.
func internalStore(t *testing.T) (*Store, *goredis.Client) {
	t.Helper()
	if !redistest.HaveBinaries() {
		if redistest.Required() {
			t.Fatalf("redis-server not on PATH and %s=1", redistest.RequireEnv)
		}
		t.Skip("redis-server not on PATH")
	}
	client := redistest.StartServer(t).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, client, Options{Prefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	return s, client
}

// dump returns every key with its hash fields or set members, sorted.
func dump(t *testing.T, c *goredis.Client) string {
	t.Helper()
	ctx := t.Context()
	keys := c.Keys(ctx, "*").Val()
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %v %v %v\n", k, c.HGetAll(ctx, k).Val(), c.ZRangeWithScores(ctx, k, 0, -1).Val(), c.PExpireTime(ctx, k).Val())
	}
	return b.String()
}

// TestCopyOfLandedWriteSucceedsEvenLate: the scripts check whether a write
// already landed before they check its not-after time, so that a copy of
// a write that landed, arriving past its not-after time, reports success
// (the write happened); a write that did not land, arriving late, is
// refused and changes nothing.
func TestCopyOfLandedWriteSucceedsEvenLate(t *testing.T) {
	s, c := internalStore(t)
	ctx := t.Context()
	future := time.Now().Add(time.Hour).UnixMilli()
	const past = 1 // Redis's clock is past it
	exp := time.Now().Add(30 * time.Minute).UnixMilli()
	seed := func(t *testing.T) {
		t.Helper()
		if err := c.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"t:k", "t:other"} {
			if err := c.HSet(ctx, k, "d", "v1", "v", 1, "e", exp, "l", 0, "w1", "id0").Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.ZAdd(ctx, "t:owner", goredis.Z{Score: float64(future), Member: "k"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		name string
		sc   *script
		keys []string
		args func(id string, na int64) []any
	}{
		{"set", setScript, []string{"t:k"}, func(id string, na int64) []any {
			return []any{"v2", 2, exp + 1, 0, id, na, 0}
		}},
		{"setIf", setIfScript, []string{"t:k"}, func(id string, na int64) []any {
			return []any{"1", now, "v2", 2, exp + 1, 0, id, na, 0}
		}},
		{"replace", replaceScript, []string{"t:k", "t:k2"}, func(id string, na int64) []any {
			return []any{"1", now, "v2", 2, exp + 1, 0, id, na, 0}
		}},
		{"touch", touchScript, []string{"t:k"}, func(_ string, na int64) []any {
			return []any{now, exp + 60000, na}
		}},
		{"delete", deleteScript, []string{"t:k"}, func(_ string, na int64) []any {
			return []any{na}
		}},
		{"addOwned", addOwnedScript, []string{"t:owner"}, func(_ string, na int64) []any {
			return []any{now, future + 1, "k2", na}
		}},
		{"removeOwned", removeOwnedScript, []string{"t:owner"}, func(_ string, na int64) []any {
			return []any{na, "k"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(id string, na int64) int64 {
				t.Helper()
				n, err := s.eval(ctx, tc.sc, true, tc.keys, tc.args(id, na)...).Int64()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			// Late, not landed: refused, nothing changes.
			seed(t)
			before := dump(t, c)
			if n := run("idA", past); n != replyLate {
				t.Errorf("a late write answered %d, want %d (late)", n, replyLate)
			}
			if after := dump(t, c); after != before {
				t.Errorf("a late write changed Redis:\nbefore %s\nafter  %s", before, after)
			}
			// In time: applied. Then a copy of it, late: success, no change.
			if n := run("idB", future); n != replyDone {
				t.Fatalf("a write in time answered %d, want %d", n, replyDone)
			}
			landed := dump(t, c)
			if landed == before {
				t.Fatal("the write in time changed nothing: the test tests nothing")
			}
			if n := run("idB", past); n != replyDone {
				t.Errorf("a late copy of a write that landed answered %d, want %d (done)", n, replyDone)
			}
			if after := dump(t, c); after != landed {
				t.Errorf("a late copy changed Redis:\nbefore %s\nafter  %s", landed, after)
			}
		})
	}
}

// TestNotAfterIsInRedisClock: a write's not-after time is its context's
// deadline told in Redis's clock, early by at most a few milliseconds,
// never late.
func TestNotAfterIsInRedisClock(t *testing.T) {
	s, c := internalStore(t)
	for _, tc := range []struct {
		name   string
		within time.Duration // of the context, 0: none
		want   time.Duration
	}{
		{"context deadline", 2 * time.Second, 2 * time.Second},
		{"deadline after ResolveWithin", time.Hour, DefaultResolveWithin},
		{"no deadline", 0, DefaultResolveWithin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.within > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.within)
				defer cancel()
			}
			lo, err := c.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			na, until := s.notAfter(ctx)
			hi, err := c.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			// Redis's clock read before and after: na must lie within
			// [lo+want-slack, hi+want].
			min := lo.Add(tc.want).Add(-20 * time.Millisecond).UnixMilli()
			max := hi.Add(tc.want).UnixMilli()
			if na < min || na > max {
				t.Errorf("not-after %d, want within [%d, %d] (Redis's clock + %v)", na, min, max, tc.want)
			}
			if d := time.Until(until); d > tc.want || d < tc.want-100*time.Millisecond {
				t.Errorf("until is %v away, want %v", d, tc.want)
			}
		})
	}
}
