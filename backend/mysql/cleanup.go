package mysql

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// cleanupTimeout bounds one cleanup statement.
const cleanupTimeout = 30 * time.Second

// maxCleanupPause bounds the pause between two batches.
const maxCleanupPause = 100 * time.Millisecond

// Cleanup deletes the rows of sessions whose deadline has passed by this
// process's clock, and the owner records whose limit has passed, and
// returns how many rows it deleted. It works in batches of at most
// Options.CleanupBatch rows, each two short statements in autocommit mode:
// a SELECT of the next dead rows' keys through the index on expires (a
// plain read, which locks nothing, starting where the last batch ended),
// then a DELETE of those rows by primary key, only if still dead. So no
// statement scans a range with locks (no gap locks in the way of new
// sessions under REPEATABLE READ), each holds at most a batch of row locks
// for the time of one DELETE, and each is deterministic for statement-based
// replication (unlike a DELETE ... LIMIT). Between two batches it pauses as
// long as the last one took (at most 100 ms), so that it takes at most
// half of its connection's time. It stops when a batch finds fewer rows
// than the batch size, when ctx ends, or when the store is closed. Rows
// dead by the caller's clock are already invisible to every other
// statement; Cleanup only reclaims their space. The background goroutine
// calls it every Options.CleanupInterval; with several application
// instances, each runs its own, and a row one of them deleted is simply
// not found by the other's DELETE.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "cleanup"); err != nil {
		return 0, err
	}
	var total int64
	for _, owners := range []bool{false, true} {
		from := int64(math.MinInt64)
		for {
			if err := s.begin(ctx, "cleanup"); err != nil {
				return total, err
			}
			start := time.Now()
			found, deleted, last, err := s.cleanupBatch(ctx, owners, from)
			total += deleted
			if err != nil {
				return total, wrap("cleanup", err)
			}
			if found < s.batch || (deleted == 0 && last == from) {
				break // the last batch; or rows this run cannot delete
			}
			from = last
			// Leave the server as much time for requests as the batch
			// took: the cleanup uses at most half of its connection's
			// time, and its purge and redo writes do not queue up.
			if !sleep(ctx, min(time.Since(start), maxCleanupPause)) {
				return total, wrap("cleanup", ctx.Err())
			}
		}
	}
	return total, nil
}

// cleanupBatch deletes one batch of dead rows (of the owner records with
// owners) whose deadline is at least from: it returns how many it found,
// how many it deleted and the last one's deadline.
func (s *Store) cleanupBatch(ctx context.Context, owners bool, from int64) (found int, deleted, last int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	now := micros(s.now())
	find, del := s.sql.deadKeys, s.sql.deleteKeys
	if owners {
		find, del = s.sql.deadOwners, s.sql.deleteOwners
	}
	rows, err := s.db.QueryContext(ctx, find, from, now, s.batch)
	if err != nil {
		return 0, 0, from, err
	}
	defer rows.Close()
	args := make([]any, 0, 2*s.batch+1)
	for rows.Next() {
		var owner, key []byte
		dest := []any{&key, &last}
		if owners {
			dest = []any{&owner, &key, &last}
		}
		if err := rows.Scan(dest...); err != nil {
			return found, 0, from, err
		}
		if owners {
			args = append(args, owner)
		}
		args = append(args, key)
		found++
	}
	if err := rows.Err(); err != nil {
		return found, 0, from, err
	}
	rows.Close()
	if found == 0 {
		return 0, 0, from, nil
	}
	args = append(args, now)
	res, err := s.db.ExecContext(ctx, withList(del, found), args...)
	if err != nil {
		return found, 0, last, err
	}
	deleted, err = res.RowsAffected()
	return found, deleted, last, err
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
			s.log.WarnContext(ctx, "sessions: mysql cleanup failed", "table", s.names.table, "deleted", n, "err", err)
		case n > 0:
			s.log.DebugContext(ctx, "sessions: mysql cleanup", "table", s.names.table, "deleted", n, "took", time.Since(start))
		}
		t.Reset(interval)
	}
}
