package mysql

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sessionx/sessions/backend"
)

// maxAttempts bounds the loops of a write whose rows change under it
// between its statements (a create whose key is deleted between the INSERT
// and the UPDATE, say): they settle in one or two rounds.
const maxAttempts = 4

// errChanging is the error of a write whose row kept changing under it for
// maxAttempts rounds.
var errChanging = errors.New("the row kept changing under the write")

// writeID returns a fresh random write id: 8 bytes.
func writeID() []byte {
	return binary.BigEndian.AppendUint64(nil, rand.Uint64())
}

// SetIf stores e under key only if the live row's version is old (old 0:
// only if no live row is there, writing over a dead one), live judged at
// now. It returns backend.ErrNotFound when old != 0 and no live row is
// stored, backend.ErrConflict when the live row has another version (or,
// with old 0, exists).
//
// With a version, it is one UPDATE ... WHERE key = ? AND version = ? AND
// expires > ?now; only when it matches nothing does a SELECT tell a session
// that is gone from one another request changed. With old 0, it is one
// INSERT; only when the key is taken, an UPDATE over a dead row and, if
// that matches nothing, the SELECT. An Expires not after now ends the row
// of version old (an UPDATE that empties it and sets its deadline to 0);
// with old 0 it stores nothing and reads whether a live row is in the way.
func (s *Store) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	id := writeID()
	return s.write(ctx, "set", func(ctx context.Context, replay bool) error {
		switch {
		case !e.Expires.After(now) && old == 0:
			err := s.query(ctx, s.sql.live, []any{key, micros(now)}, new(int))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return nil
			case err != nil:
				return err
			}
			return backend.ErrConflict
		case !e.Expires.After(now):
			n, err := s.exec(ctx, s.sql.end, id, key, old, micros(now), id)
			if err != nil || n == 1 {
				return err
			}
			return s.settle(ctx, key, old, now, id)
		case old == 0:
			return s.create(ctx, key, now, id, e)
		default:
			n, err := s.exec(ctx, s.sql.update, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id,
				key, old, micros(now), id)
			if err != nil || n == 1 {
				return err
			}
			return s.settle(ctx, key, old, now, id)
		}
	})
}

// create stores e under key if no live row is there: an INSERT, and, when
// the key is taken, an UPDATE of the row only if it is dead.
func (s *Store) create(ctx context.Context, key string, now time.Time, id []byte, e backend.Entry) error {
	for range maxAttempts {
		_, err := s.exec(ctx, s.sql.insert, key, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id)
		if !isDuplicate(err) {
			return err
		}
		n, err := s.exec(ctx, s.sql.overwriteDead, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id,
			key, micros(now), id)
		if err != nil || n == 1 {
			return err
		}
		_, _, live, ours, err := s.lookup(ctx, key, now, id)
		switch {
		case err != nil:
			return err
		case ours: // this write, sent before
			return nil
		case live:
			return backend.ErrConflict
		}
		// The dead row was deleted (or written) in between: try again.
	}
	return errChanging
}

// settle answers a conditional write of version old, with write id id,
// that matched no row: nil if the row holds that write (sent before, its
// answer lost), else backend.ErrNotFound when no live row is there, else
// backend.ErrConflict. One SELECT.
func (s *Store) settle(ctx context.Context, key string, old uint64, now time.Time, id []byte) error {
	_, _, live, ours, err := s.lookup(ctx, key, now, id)
	switch {
	case err != nil:
		return err
	case ours:
		return nil
	case !live && old != 0:
		return backend.ErrNotFound
	}
	return backend.ErrConflict
}

// lookup reads what a write with write id id finds under key: whether a
// row is there, its version, whether it is live at now, whether it holds
// the write. One SELECT.
func (s *Store) lookup(ctx context.Context, key string, now time.Time, id []byte) (found bool, version uint64, live, ours bool, err error) {
	err = s.query(ctx, s.sql.lookup, []any{micros(now), id, key}, &version, &live, &ours)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, false, false, nil
	}
	return err == nil, version, live, ours, err
}

// Replace moves the entry under oldKey, which must hold version old, to
// newKey, which must hold no live row, live judged at now: one UPDATE that
// rewrites the row's primary key, so no observer sees both rows or neither.
// InnoDB locks the old row and checks its version on its latest committed
// state, as SELECT ... FOR UPDATE would, within the one statement. It
// returns backend.ErrNotFound when oldKey has no live row,
// backend.ErrConflict when it holds another version or newKey is taken.
// Only when the UPDATE matches nothing does a SELECT tell which; only when
// a dead row holds newKey (error 1062) does a DELETE remove it and the
// UPDATE go again. An Expires not after now ends the old row (as SetIf
// does) and writes nothing. A newKey equal to oldKey is taken (by the old
// row): ErrConflict, or ErrNotFound when that row is not live.
func (s *Store) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "replace"); err != nil {
		return err
	}
	id := writeID()
	return s.write(ctx, "replace", func(ctx context.Context, replay bool) error {
		if !e.Expires.After(now) {
			n, err := s.exec(ctx, s.sql.end, id, oldKey, old, micros(now), id)
			if err != nil || n == 1 {
				return err
			}
			return s.settle(ctx, oldKey, old, now, id)
		}
		if newKey == oldKey { // the new key is taken, by the old row if it is live
			_, _, live, _, err := s.lookup(ctx, oldKey, now, id)
			switch {
			case err != nil:
				return err
			case live:
				return backend.ErrConflict
			}
			return backend.ErrNotFound
		}
		for range maxAttempts {
			n, err := s.exec(ctx, s.sql.move, newKey, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id,
				oldKey, old, micros(now), id)
			switch {
			case isDuplicate(err):
				// The old row matched, and a row holds newKey: remove it
				// if it is dead and move again, else newKey is taken.
				d, err := s.exec(ctx, s.sql.deleteDead, newKey, micros(now))
				if err != nil {
					return err
				}
				if d == 0 {
					return backend.ErrConflict
				}
				continue
			case err != nil || n == 1:
				return err
			}
			if replay { // the move may have happened on a try whose answer was lost
				if _, _, _, ours, err := s.lookup(ctx, newKey, now, id); err != nil || ours {
					return err
				}
			}
			return s.settle(ctx, oldKey, old, now, id)
		}
		return errChanging
	})
}

// exec runs a write statement on a connection of its own from the pool, so
// that a failure to get one (nothing sent) is told apart from a failure of
// the statement, and returns the rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return 0, notSent{err}
	}
	defer c.Close()
	res, err := c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, sent(err)
	}
	return res.RowsAffected()
}

// query runs a query of a write, as exec does, and scans its one row into
// dest.
func (s *Store) query(ctx context.Context, query string, args []any, dest ...any) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return notSent{err}
	}
	defer c.Close()
	if err := c.QueryRowContext(ctx, query, args...).Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return sent(err)
	}
	return nil
}

// write runs a write whose statements can be sent again safely (see
// Options.ResolveWithin). A deadlock victim (error 1213: the server rolled
// the statement back) is run again at once, a few times. When the outcome
// is unknown, it runs it again (replay true) until the server answers, the
// context ends or ResolveWithin passes. Answers (nil, backend.ErrNotFound,
// backend.ErrConflict) are returned as they are, other errors wrapped.
func (s *Store) write(ctx context.Context, op string, run func(ctx context.Context, replay bool) error) error {
	var (
		first     error // the first error that left the outcome unknown
		deadline  time.Time
		wait      = 20 * time.Millisecond
		deadlocks int
	)
	for {
		err := run(ctx, first != nil)
		switch {
		case err == nil || isAnswer(err):
			return err
		case isDeadlock(err) && deadlocks < maxDeadlockRetries:
			// Rolled back: this try wrote nothing. Go again after a
			// moment, so that the winner can finish.
			deadlocks++
			if !sleep(ctx, time.Duration(rand.Int64N(int64(5*time.Millisecond)))) {
				if first == nil {
					return wrap(op, ctx.Err())
				}
				return unknown(op, first, ctx.Err())
			}
			continue
		case first == nil && !outcomeUnknown(err):
			return failed(op, err)
		case first == nil:
			first = err
			if s.resolve < 0 {
				return unknown(op, first, nil)
			}
			deadline = time.Now().Add(s.resolve)
		case ctx.Err() != nil:
			return unknown(op, first, ctxErr(ctx, first))
		case !retryable(err):
			return unknown(op, first, err)
		}
		if !time.Now().Add(wait).Before(deadline) {
			return unknown(op, first, fmt.Errorf("not resolved within %v: last try: %w", s.resolve, err))
		}
		if !sleep(ctx, wait) {
			return unknown(op, first, ctxErr(ctx, first))
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// sleep waits d, or until ctx ends: it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ctxErr is ctx's error, or nil when first already is it.
func ctxErr(ctx context.Context, first error) error {
	if err := ctx.Err(); err != nil && !errors.Is(first, err) {
		return err
	}
	return nil
}

// unknown is the error of a write whose outcome could not be found out.
func unknown(op string, first, then error) error {
	if then == nil {
		return fmt.Errorf("sessions: mysql %s: %w: %w", op, backend.ErrUnknownOutcome, first)
	}
	return fmt.Errorf("sessions: mysql %s: %w: %w (then: %w)", op, backend.ErrUnknownOutcome, first, then)
}

// isAnswer reports whether err is a store's answer to a write that was
// carried out: the key was missing or held another version.
func isAnswer(err error) bool {
	return errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrConflict)
}
