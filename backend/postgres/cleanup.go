package postgres

import (
	"context"
	"math/rand/v2"
	"time"
)

// cleanupTimeout bounds one cleanup statement (one batch).
const cleanupTimeout = 30 * time.Second

// maxCleanupPause bounds the pause between two batches.
const maxCleanupPause = 100 * time.Millisecond

// Cleanup deletes the rows of sessions whose deadline has passed by this
// process's clock, and the owner records whose limit has passed, and returns
// how many rows it deleted. It works in batches of at most
// Options.CleanupBatch rows, each one short DELETE of its own (found through
// the index on expires, by tuple id) that skips rows a request holds locked
// and so never waits for one. Between two batches it pauses as long as the
// last one took (at most 100 ms), so that it takes at most half of the
// server's time from requests. It stops when a batch finds fewer rows than
// the batch size, when ctx ends, or when the store is closed. Rows dead by the
// caller's clock are already invisible to every other statement; Cleanup
// only reclaims their space. The background goroutine calls it every
// Options.CleanupInterval; with several application instances, each runs
// its own, and their batches skip each other's rows.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "cleanup"); err != nil {
		return 0, err
	}
	var total int64
	for _, sql := range []string{s.sql.cleanup, s.sql.cleanupOwners} {
		for {
			if err := s.begin(ctx, "cleanup"); err != nil {
				return total, err
			}
			bctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
			start := time.Now()
			tag, err := s.db.Exec(bctx, sql, s.now(), s.batch)
			cancel()
			if err != nil {
				return total, wrap("cleanup", err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < int64(s.batch) {
				break
			}
			// Leave the server as much time for requests as the batch
			// took: the cleanup uses at most half of its connection's
			// time, and its WAL flushes do not queue up.
			pause := time.NewTimer(min(time.Since(start), maxCleanupPause))
			select {
			case <-ctx.Done():
				pause.Stop()
				return total, wrap("cleanup", ctx.Err())
			case <-pause.C:
			}
		}
	}
	return total, nil
}

// cleanupLoop runs Cleanup every interval, the first time after a random
// part of it, until ctx ends (Close).
func (s *Store) cleanupLoop(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	t := time.NewTimer(rand.N(interval) + 1)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := s.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.WarnContext(ctx, "sessions: postgres cleanup failed", "table", s.names.table, "deleted", n, "err", err)
		case n > 0:
			s.log.DebugContext(ctx, "sessions: postgres cleanup", "table", s.names.table, "deleted", n, "took", time.Since(start))
		}
		t.Reset(interval)
	}
}
