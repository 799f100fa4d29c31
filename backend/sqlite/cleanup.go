package sqlite

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"time"
)

// cleanupTimeout bounds one cleanup statement (one batch), its wait for the
// write lock included.
const cleanupTimeout = 30 * time.Second

// maxCleanupPause bounds the pause between two batches.
const maxCleanupPause = 100 * time.Millisecond

// Cleanup deletes the rows of sessions whose deadline has passed by this
// process's clock, and the owner records whose limit has passed, and
// returns how many rows it deleted. It works in batches of at most
// Options.CleanupBatch rows, each one DELETE of its own (the rows found
// through the index on expires, or on the records' limit), so each its own
// short transaction: a batch holds the file's write lock for about 4 ms per
// 1,000 rows (the median of BenchmarkCleanupQuiet), and waits for that lock
// like any other write; the Store's own writes wait for a batch in the
// process, starting the moment it ends (writeGate). Between two batches it pauses as long as the last
// one took (at most 100 ms), so that it takes at most half of the write
// lock's time from requests; reads never wait for it (WAL mode). It stops
// when a batch finds fewer rows than the batch size, when ctx ends, or when
// the store is closed. Rows dead by the caller's clock are already
// invisible to every other statement; Cleanup only reclaims their space
// (SQLite reuses the freed pages; the file does not shrink). The background
// goroutine calls it every Options.CleanupInterval; with several processes
// on one file, each runs its own, and their batches wait for each other.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "cleanup"); err != nil {
		return 0, err
	}
	var total int64
	for _, stmt := range []*sql.Stmt{s.stmt.cleanup, s.stmt.cleanupOwners} {
		size := s.batch
		for {
			if err := s.begin(ctx, "cleanup"); err != nil {
				return total, err
			}
			start := time.Now()
			n, err := s.cleanupBatch(ctx, stmt, size)
			if err != nil {
				return total, wrap("cleanup", err)
			}
			total += n
			if n < int64(size) {
				break
			}

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

// cleanupBatch runs one batch of stmt, of at most size rows.
// It holds the write gate meanwhile: this Store's other writes wait for the
// batch in the process rather than in SQLite's busy handler (writeGate).
func (s *Store) cleanupBatch(ctx context.Context, stmt *sql.Stmt, size int) (int64, error) {
	bctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	open, err := s.gate.close(bctx)
	if err != nil {
		return 0, err
	}
	defer open()
	defer s.wrote()
	return exec(bctx, stmt, micros(s.now()), size)
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
			s.log.WarnContext(ctx, "sessions: sqlite cleanup failed", "table", s.names.plain, "deleted", n, "err", err)
		case n > 0:
			s.log.DebugContext(ctx, "sessions: sqlite cleanup", "table", s.names.plain, "deleted", n, "took", time.Since(start))
		}
		t.Reset(interval)
	}
}
