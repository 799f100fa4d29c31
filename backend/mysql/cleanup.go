package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// cleanupTimeout bounds one cleanup statement.
const cleanupTimeout = 30 * time.Second

// maxCleanupPause bounds the pause between two batches.
const maxCleanupPause = 100 * time.Millisecond

// cleanupChunk is the most dead rows whose primary keys one round of the
// cleanup reads (through the index on expires) before it deletes them in
// primary-key order: with the core's 43-byte keys, about 10 MB of memory
// at most while the round sorts them.
const cleanupChunk = 100_000

// Cleanup deletes the rows of sessions whose deadline has passed by this
// process's clock, and the owner records whose limit has passed, and
// returns how many rows it deleted. It works in rounds: a SELECT of the
// primary keys of the next dead rows (up to 100,000) through the index on
// expires (a plain read, which locks nothing, starting where the last
// round ended), then DELETEs of those rows by primary key, only if still
// dead, in batches of at most Options.CleanupBatch rows taken in
// primary-key order, each one short statement in autocommit mode. So no
// statement scans a range with locks (no gap locks in the way of new
// sessions under REPEATABLE READ), each holds at most a batch of row locks
// for the time of one DELETE, and each is deterministic for statement-based
// replication (unlike a DELETE ... LIMIT). The order matters to the disk:
// sessions expire in deadline order but sit in primary-key (random token)
// order, so batches taken in deadline order would each touch as many
// table pages as they hold rows, and a table larger than the buffer pool
// would read and write every page many times over; in primary-key order
// the batches of a round sweep the table once, each page read and written
// once per round. Between two batches it pauses as long as the last one
// took (at most 100 ms), so that it takes at most half of its connection's
// time. It stops when a round finds fewer rows than it may take, when ctx
// ends, or when the store is closed. Rows dead by the caller's clock are
// already invisible to every other statement; Cleanup only reclaims their
// space. The background goroutine calls it every Options.CleanupInterval;
// with several application instances, each runs its own, and a row one of
// them deleted is simply not found by the other's DELETE.
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
			dead, last, err := s.findDead(ctx, owners, from, s.chunk)
			if err != nil {
				return total, wrap("cleanup", err)
			}
			if s.afterFind != nil {
				s.afterFind()
			}
			var deleted int64
			for i := 0; i < dead.len(); i += s.batch {
				if i > 0 {
					if err := s.begin(ctx, "cleanup"); err != nil {
						return total, err
					}
				}
				start := time.Now()
				n, err := s.deleteDead(ctx, owners, dead, i, min(i+s.batch, dead.len()))
				deleted += n
				total += n
				if err != nil {
					return total, wrap("cleanup", err)
				}
				if i+s.batch >= dead.len() && dead.len() < s.chunk {
					break // the pass's last batch: nothing to leave room for
				}
				// Leave the server as much time for requests as the batch
				// took: the cleanup uses at most half of its connection's
				// time, and its purge and redo writes do not queue up.
				if !sleep(ctx, min(time.Since(start), maxCleanupPause)) {
					return total, wrap("cleanup", ctx.Err())
				}
			}
			if dead.len() < s.chunk || (deleted == 0 && last == from) {
				break // the last round; or rows this run cannot delete
			}
			from = last
		}
	}
	return total, nil
}

// deadRows are the primary keys of dead rows, packed in one buffer: a
// session's key, or an owner record's owner hash (32 bytes) and key.
type deadRows struct {
	buf  []byte
	ends []int // row i is buf[ends[i-1]:ends[i]]
}

func (d *deadRows) len() int { return len(d.ends) }

func (d *deadRows) row(i int) []byte {
	from := 0
	if i > 0 {
		from = d.ends[i-1]
	}
	return d.buf[from:d.ends[i]]
}

// sort puts the rows in primary-key order: bytewise, as InnoDB orders
// binary columns.
func (d *deadRows) sort() {
	idx := make([]int, d.len())
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(d.row(a), d.row(b)) })
	buf, ends := make([]byte, 0, len(d.buf)), make([]int, 0, len(d.ends))
	for _, i := range idx {
		buf = append(buf, d.row(i)...)
		ends = append(ends, len(buf))
	}
	d.buf, d.ends = buf, ends
}

// findDead returns the primary keys of at most limit dead rows (of the
// owner records with owners) whose deadline is at least from, in
// primary-key order, and the greatest deadline among them (from when it
// found none).
func (s *Store) findDead(ctx context.Context, owners bool, from int64, limit int) (dead deadRows, last int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	find := s.sql.deadKeys
	if owners {
		find = s.sql.deadOwners
	}
	rows, err := s.db.QueryContext(ctx, find, from, micros(s.now()), limit)
	if err != nil {
		return dead, from, err
	}
	defer rows.Close()
	last = from
	var owner, key sql.RawBytes
	dest := []any{&key, &last}
	if owners {
		dest = []any{&owner, &key, &last}
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return dead, from, err
		}
		if owners && len(owner) != ownerLen {
			return dead, from, fmt.Errorf("an owner record's owner has %d bytes, want %d", len(owner), ownerLen)
		}
		dead.buf = append(append(dead.buf, owner...), key...)
		dead.ends = append(dead.ends, len(dead.buf))
	}
	if err := rows.Err(); err != nil {
		return dead, from, err
	}
	dead.sort()
	return dead, last, nil
}

// deleteDead deletes the rows i to j-1 of dead (owner records with owners)
// that are still dead, in one statement, and returns how many it deleted.
func (s *Store) deleteDead(ctx context.Context, owners bool, dead deadRows, i, j int) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	del, per := s.sql.deleteKeys, 1
	if owners {
		del, per = s.sql.deleteOwners, 2
	}
	args := make([]any, 0, per*(j-i)+1)
	for k := i; k < j; k++ {
		r := dead.row(k)
		if owners {
			args = append(args, r[:ownerLen], r[ownerLen:])
		} else {
			args = append(args, r)
		}
	}
	args = append(args, micros(s.now()))
	res, err := s.db.ExecContext(ctx, withList(del, j-i), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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
