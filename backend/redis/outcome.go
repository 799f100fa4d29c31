package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/backend"
)

// errLate is the answer of a write that reached Redis after its not-after
// time: Redis refused it, nothing was changed, and no copy of it will ever
// be applied.
var errLate = fmt.Errorf("the write reached Redis after its deadline and was not applied: %w", context.DeadlineExceeded)

// oneTry is a command that go-redis must not send again by itself
// (Cmder.NoRetry): for a write, the store decides about sending it again,
// knowing which errors leave its outcome open.
type oneTry struct{ *goredis.Cmd }

// NoRetry tells go-redis not to retry the command.
func (oneTry) NoRetry() bool { return true }

// eval runs sc with keys and args, by its hash, and whole if Redis does
// not know it. A write (once) goes out once per call: go-redis does not
// retry it (it still follows MOVED and ASK, whose answers say the node
// did not apply it). A read may be retried by go-redis as its options say.
func (s *Store) eval(ctx context.Context, sc *script, once bool, keys []string, args ...any) *goredis.Cmd {
	cmd := s.evalCmd(ctx, "evalsha", sc.hash, once, keys, args)
	if err := cmd.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = s.evalCmd(ctx, "eval", sc.src, once, keys, args)
	}
	if err := cmd.Err(); err != nil {
		s.noteFailure(err)
	}
	return cmd
}

func (s *Store) evalCmd(ctx context.Context, name, body string, once bool, keys []string, args []any) *goredis.Cmd {
	cmd := goredis.NewCmd(ctx, evalArgs(name, body, keys, args)...)
	if once {
		_ = s.client.Process(ctx, oneTry{cmd})
	} else {
		_ = s.client.Process(ctx, cmd)
	}
	return cmd
}

// evalArgs returns the arguments of EVAL or EVALSHA (name) of body with
// keys and args.
func evalArgs(name, body string, keys []string, args []any) []any {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, body, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return append(a, args...)
}

// notApplied reports whether err, the error of one try of a command,
// proves that Redis did not apply it: Redis answered with an error, or the
// command never went out whole (no connection, or the write to the socket
// failed: Redis never executes a command it did not receive whole).
// Anything else (a broken connection, a timeout or the context's end
// while the answer was awaited) leaves open whether Redis applied it.
func notApplied(err error) bool {
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "write") {
		return true
	}
	var ns notSent
	if errors.As(err, &ns) {
		return true
	}
	return errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrClosed)
}

// notAfter returns a write's not-after time in Redis's clock (Unix ms),
// and the instant of this process it stands for: the context's deadline,
// or ResolveWithin from now (DefaultResolveWithin when retries are off),
// whichever comes first.
func (s *Store) notAfter(ctx context.Context) (int64, time.Time) {
	bound := s.resolve
	if bound <= 0 {
		bound = DefaultResolveWithin
	}
	until := time.Now().Add(bound)
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	na, _ := s.redisMillis(until)
	return max(na, 1), until
}

// write runs the write script sc on keys with args, which hold its
// not-after time (see notAfter; until is the same instant in this
// process's clock), and settles its outcome:
//
//   - Redis's answer is the outcome: replyLate means it refused the write
//     as late, errLate; in WAIT mode (Options.WaitReplicas), a write
//     Redis applied but too few replicas acknowledged is unknown;
//   - an error that proves the write was not applied (notApplied) is
//     returned as it is: the write failed;
//   - any other error leaves the outcome open: the write is sent again
//     (with the same write id, so a copy of a write that landed changes
//     nothing and reports success) until Redis answers it, until, or the
//     context ends. A write Redis still has not answered then is reported
//     with an error wrapping backend.ErrUnknownOutcome. In WAIT mode so
//     is a success answered to a copy: its WAIT may not cover the copy
//     that landed.
//
// replayed reports whether the answer came from a copy sent again.
func (s *Store) write(ctx context.Context, until time.Time, sc *script, keys []string, args []any) (n int64, replayed bool, err error) {
	n, err = s.try(ctx, sc, keys, args)
	var nr *notReplicated
	switch {
	case errors.As(err, &nr):
		return 0, false, unknownNotReplicated(err)
	case err == nil && n == replyLate:
		return 0, false, errLate
	case err == nil:
		return n, false, nil
	case notApplied(err):
		return 0, false, err
	case s.resolve < 0:
		return 0, false, unknown(err, "not sent again (ResolveWithin < 0)")
	}
	first := err
	wait := 5 * time.Millisecond
	for {
		left := time.Until(until)
		if left <= 0 {
			return 0, false, unknown(first, "no answer in time; last try: "+err.Error())
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false, unknown(first, "the context ended: "+ctx.Err().Error())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
		n, err = s.try(ctx, sc, keys, args)
		switch {
		case errors.As(err, &nr):
			return 0, true, unknownNotReplicated(err)
		case err == nil && n == replyLate:
			return 0, true, errLate
		case err == nil && n == replyDone && s.waitReplicas > 0:
			return 0, true, unknownNotReplicated(errCopyNotCovered)
		case err == nil:
			return n, true, nil
		}
		// An error, even an answer from Redis (out of memory, the cluster
		// is down, ...), says nothing of the first copy: it may still be
		// on its way. Only an answer to the write itself settles it.
	}
}

// unknown wraps the first error of a write whose outcome the store could
// not learn.
func unknown(first error, why string) error {
	return fmt.Errorf("%w: sent, then %w (%s)", backend.ErrUnknownOutcome, first, why)
}

// reloadEvery is how often at most a failure asks a ClusterClient to
// reload its slot map.
const reloadEvery = 250 * time.Millisecond

// noteFailure asks a Cluster client to reload its slot map (at most every
// reloadEvery) after a command failed without Redis's answer (a node could
// not be reached: it may be down and replaced by a replica) or with
// CLUSTERDOWN (the cluster is changing). Go-redis only reloads by itself on
// MOVED and ASK, which a dead node never sends, and every
// ClusterStateReloadInterval (60 s by default); until then it keeps
// sending a dead primary's slots to it. The reload runs in the background.
func (s *Store) noteFailure(err error) {
	if s.cluster == nil || errors.Is(err, context.Canceled) || errors.Is(err, goredis.ErrClosed) {
		return
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !goredis.HasErrorPrefix(err, "CLUSTERDOWN") {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastReload.Load()
	if now-last < int64(reloadEvery) || !s.lastReload.CompareAndSwap(last, now) {
		return
	}
	s.cluster.ReloadState(context.Background())
}
