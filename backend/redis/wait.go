package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/backend"
)

// maxRedirects bounds how many MOVED and ASK answers one try of a write
// follows in WAIT mode (go-redis's default for a ClusterClient).
const maxRedirects = 3

// setWait checks and keeps opts.WaitReplicas and WaitTimeout.
func (s *Store) setWait(opts Options) error {
	if opts.WaitReplicas <= 0 {
		return nil
	}
	s.waitReplicas = opts.WaitReplicas
	s.waitTimeout = opts.WaitTimeout
	if s.waitTimeout <= 0 {
		s.waitTimeout = DefaultWaitTimeout
	}
	var read time.Duration // as go-redis normalised it: > 0 a timeout, else none
	switch c := s.client.(type) {
	case *goredis.Client:
		read = c.Options().ReadTimeout
	case *goredis.ClusterClient:
		read = c.Options().ReadTimeout
	default:
		return fmt.Errorf("sessions: redis store: WaitReplicas needs a *redis.Client (one node or Sentinel) or a *redis.ClusterClient, not a %T", s.client)
	}
	if read > 0 && s.waitTimeout >= read {
		return fmt.Errorf("sessions: redis store: WaitTimeout %v is not shorter than the client's ReadTimeout %v, which would end the wait first", s.waitTimeout, read)
	}
	return nil
}

// notReplicated is what a try of a write reports when Redis applied the
// write but fewer replicas than Options.WaitReplicas acknowledged it in
// time (or the answer to WAIT was lost): the write is on the primary, and
// a failover may lose it.
type notReplicated struct {
	acked, want int
	within      time.Duration
	err         error // why WAIT did not answer, if it did not
}

func (e *notReplicated) Error() string {
	if e.err != nil {
		return fmt.Sprintf("applied on the primary, but the wait for %d replicas failed: %v", e.want, e.err)
	}
	return fmt.Sprintf("applied on the primary, but %d of %d replicas acknowledged it within %v: a failover may lose it", e.acked, e.want, e.within)
}

// notSent wraps an error that kept a write from being sent at all.
type notSent struct{ err error }

func (e notSent) Error() string { return "not sent: " + e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// try sends one copy of a write script and returns its answer; in WAIT
// mode (Options.WaitReplicas) the script and a WAIT go out together, and
// a write Redis applied that too few replicas acknowledged is reported
// with a *notReplicated error.
func (s *Store) try(ctx context.Context, sc *script, keys []string, args []any) (int64, error) {
	if s.waitReplicas <= 0 {
		return s.eval(ctx, sc, true, keys, args...).Int64()
	}
	node, err := s.primaryFor(ctx, keys[0])
	if err != nil {
		return 0, notSent{err}
	}
	asking := false
	for redirects := 0; ; redirects++ {
		cmd, wait, timeout := s.evalWait(ctx, node, asking, sc, keys, args)
		if err := cmd.Err(); err != nil {
			if next, ask := s.redirect(ctx, err); next != nil && redirects < maxRedirects {
				node, asking = next, ask
				continue
			}
			s.noteFailure(err)
			return 0, err
		}
		n, err := cmd.Int64()
		if err != nil || n != replyDone {
			return n, err // nothing written: nothing to wait for
		}
		acked, err := wait.Result()
		if err != nil || int(acked) < s.waitReplicas {
			return n, &notReplicated{acked: int(acked), want: s.waitReplicas, within: timeout, err: err}
		}
		return n, nil
	}
}

// primaryFor returns the client of the node that holds key: the client
// itself, or on a Cluster the key's primary.
func (s *Store) primaryFor(ctx context.Context, key string) (*goredis.Client, error) {
	if s.cluster != nil {
		return s.cluster.MasterForKey(ctx, key)
	}
	return s.client.(*goredis.Client), nil // setWait made sure
}

// redirect returns, for a MOVED or ASK answer on a Cluster, the client of
// the node it names and whether it was ASK (the next try must send ASKING
// first); nil when err is neither or the node is not known.
func (s *Store) redirect(ctx context.Context, err error) (*goredis.Client, bool) {
	if s.cluster == nil {
		return nil, false
	}
	addr, moved := goredis.IsMovedError(err)
	ask := false
	if !moved {
		if addr, ask = goredis.IsAskError(err); !ask {
			return nil, false
		}
	}
	if moved {
		s.cluster.ReloadState(ctx)
	}
	var (
		mu    sync.Mutex
		found *goredis.Client
	)
	_ = s.cluster.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
		if c.Options().Addr == addr {
			mu.Lock()
			found = c
			mu.Unlock()
		}
		return nil
	})
	return found, ask
}

// evalWait sends, in one pipeline on one connection of node, the script
// (by its hash, and whole if node does not know it; after ASKING when
// asking) and WAIT for Options.WaitReplicas replicas. It returns both
// commands and the WAIT's timeout.
func (s *Store) evalWait(ctx context.Context, node *goredis.Client, asking bool, sc *script, keys []string, args []any) (*goredis.Cmd, *goredis.IntCmd, time.Duration) {
	timeout := s.waitFor(ctx)
	run := func(name, body string) (*goredis.Cmd, *goredis.IntCmd) {
		pipe := node.Pipeline()
		if asking {
			_ = pipe.Process(ctx, goredis.NewStatusCmd(ctx, "asking"))
		}
		cmd := goredis.NewCmd(ctx, evalArgs(name, body, keys, args)...)
		_ = pipe.Process(ctx, oneTry{cmd}) // go-redis sends the pipeline once
		wait := goredis.NewIntCmd(ctx, "wait", s.waitReplicas, timeout.Milliseconds())
		_ = pipe.Process(ctx, wait)
		_, _ = pipe.Exec(ctx)
		return cmd, wait
	}
	cmd, wait := run("evalsha", sc.hash)
	if err := cmd.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, wait = run("eval", sc.src)
	}
	return cmd, wait, timeout
}

// waitFor returns the WAIT timeout of a write: Options.WaitTimeout, but
// ending 10 ms before the context's deadline, and at least 1 ms (WAIT 0
// would wait for ever).
func (s *Store) waitFor(ctx context.Context) time.Duration {
	d := s.waitTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-10*time.Millisecond)
	}
	return max(d, time.Millisecond).Truncate(time.Millisecond)
}

// errCopyNotCovered is the cause of a write in WAIT mode whose success was
// answered to a copy sent again: if an earlier copy landed, the copy's
// script changed nothing and its WAIT covered none of it.
var errCopyNotCovered = errors.New("applied (answered to a copy sent again), but the copy's WAIT covers only what the copy wrote, perhaps nothing: whether replicas have the write is unknown")

// unknownNotReplicated wraps the error of a write Redis applied but that
// too few replicas acknowledged.
func unknownNotReplicated(err error) error {
	return fmt.Errorf("%w: %w", backend.ErrUnknownOutcome, err)
}
