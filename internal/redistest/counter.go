package redistest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Counter is a go-redis v9 hook that counts the commands a client sends and
// the round trips it makes. Attach it with client.AddHook(counter). It is
// safe for concurrent use.
//
// A single command (ProcessHook) counts as one command and one round trip. A
// pipeline (ProcessPipelineHook) counts len(cmds) commands and one round
// trip; go-redis hands a TxPipeline (MULTI/EXEC) to the hook with the MULTI
// and EXEC included, so TxPipelined with n queued commands counts n+2
// commands ("multi", ..., "exec") and one round trip.
//
// On a *redis.ClusterClient, AddHook installs the hook on the cluster client
// only: it runs once per command or pipeline at the cluster level, before
// routing, and not again in the per-node clients (those have their own hook
// chains, reachable through ClusterClient.OnNewNode). So a command counts
// once even when MOVED redirects or retries send it several times (as on a
// *redis.Client, where retries also happen inside the hook), a
// cluster pipeline counts one round trip even though it is split into one
// pipeline per node, and the client's own traffic (CLUSTER SLOTS, COMMAND,
// ForEachShard calls) is not counted. Attaching the same Counter both with
// AddHook and through OnNewNode would count commands twice.
//
// Connection setup (HELLO, CLIENT SETINFO) goes through the hooks of a
// *redis.Client too: call Warm, then Reset, before counting.
type Counter struct {
	commands   atomic.Int64
	roundTrips atomic.Int64

	mu    sync.Mutex
	names []string
}

var _ redis.Hook = (*Counter)(nil)

// DialHook passes dials through uncounted.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook {
	return next
}

// ProcessHook counts one command and one round trip per call.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.record(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts len(cmds) commands and one round trip per call,
// for pipelines and MULTI/EXEC transactions alike.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.record(cmds...)
		return next(ctx, cmds)
	}
}

func (c *Counter) record(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		c.names = append(c.names, strings.ToLower(cmd.Name()))
	}
	c.commands.Add(int64(len(cmds)))
	c.roundTrips.Add(1)
}

// Commands returns the number of commands counted since creation or Reset.
func (c *Counter) Commands() int64 {
	return c.commands.Load()
}

// RoundTrips returns the number of round trips (single commands plus
// pipelines and transactions) counted since creation or Reset.
func (c *Counter) RoundTrips() int64 {
	return c.roundTrips.Load()
}

// Names returns the lowercased names of the commands counted since creation
// or Reset, in order (e.g. "evalsha", "ping"; "multi" and "exec" for
// transactions).
func (c *Counter) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

// Reset sets all counts to zero and forgets the names.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commands.Store(0)
	c.roundTrips.Store(0)
	c.names = nil
}
