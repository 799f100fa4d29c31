package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessionx/sessions/backend"
)

// SetIf stores e under key only if the live row's version is old (old 0:
// only if no live row is there, writing over a dead one), live judged at
// now. It returns backend.ErrNotFound when old != 0 and no live row is
// stored, backend.ErrConflict when the live row has another version (or,
// with old 0, exists). One statement: an UPDATE (or an INSERT ... ON
// CONFLICT for old 0) whose answer tells the three cases apart; only when a
// concurrent writer changed the row between the statement's snapshot and
// its write does a second SELECT settle which case it is.
func (s *Store) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	id := writeID()
	return s.write(ctx, "set", func(ctx context.Context, replay bool) error {
		switch {
		case !e.Expires.After(now) && old == 0:
			var live bool
			if err := s.db.QueryRow(ctx, s.sql.deleteDead, key, now).Scan(&live); err != nil {
				return err
			}
			if live {
				return backend.ErrConflict
			}
			return nil
		case !e.Expires.After(now):
			return s.settle(ctx, key, old, now, id, replay, s.sql.deleteIf, key, now, int64(old), id)
		case old == 0:
			var written bool
			if e.Owner != "" {
				err := s.db.QueryRow(ctx, s.sql.createOwned, key, now, nonNil(e.Value), int64(e.Version), e.Expires,
					limitArg(e.Limit), id, int64(e.Idle), ownerHash(e.Owner)).Scan(&written)
				if err != nil {
					return err
				}
			} else {
				tag, err := s.db.Exec(ctx, s.sql.create, key, now, nonNil(e.Value), int64(e.Version), e.Expires, limitArg(e.Limit), id, int64(e.Idle))
				if err != nil {
					return err
				}
				written = tag.RowsAffected() == 1
			}
			if written {
				return nil
			}
			if replay { // perhaps the row is this write's, sent before
				return s.lookup(ctx, key, 0, now, id)
			}
			return backend.ErrConflict
		default:
			return s.settle(ctx, key, old, now, id, replay, s.sql.update,
				key, now, int64(old), nonNil(e.Value), int64(e.Version), e.Expires, limitArg(e.Limit), id, int64(e.Idle))
		}
	})
}

// settle runs a conditional write statement answering (done, live version
// in its snapshot) and maps the answer to nil, backend.ErrNotFound or
// backend.ErrConflict, reading the row again (lookup) when the snapshot
// cannot tell: the live version it saw was old (a concurrent writer got
// there between the snapshot and the write), or the write is being sent
// again (the row may hold this write already).
func (s *Store) settle(ctx context.Context, key string, old uint64, now time.Time, id int64, replay bool, sql string, args ...any) error {
	var (
		done bool
		seen *int64
	)
	if err := s.db.QueryRow(ctx, sql, args...).Scan(&done, &seen); err != nil {
		return err
	}
	switch {
	case done:
		return nil
	case replay || (seen != nil && uint64(*seen) == old):
		return s.lookup(ctx, key, old, now, id)
	case seen == nil:
		return backend.ErrNotFound
	default:
		return backend.ErrConflict
	}
}

// lookup reads the row under key after a conditional write of version old
// with write id id did not write it: nil if the row holds that write (sent
// before, its answer lost), else backend.ErrNotFound when no live row is
// there and old != 0, else backend.ErrConflict.
func (s *Store) lookup(ctx context.Context, key string, old uint64, now time.Time, id int64) error {
	var (
		version    int64
		live, ours bool
	)
	err := s.db.QueryRow(ctx, s.sql.lookup, key, now, id).Scan(&version, &live, &ours)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		live = false
	case err != nil:
		return err
	case ours:
		return nil
	}
	if !live && old != 0 {
		return backend.ErrNotFound
	}
	return backend.ErrConflict
}

// Replace moves the entry under oldKey, which must hold version old, to
// newKey, which must hold no live row, live judged at now: one statement,
// so no observer sees both rows or neither. It locks the old row first, so
// that its answer is exact: backend.ErrNotFound when oldKey has no live row,
// backend.ErrConflict when it holds another version or newKey is taken. An
// Expires not after now deletes the old row and writes nothing.
func (s *Store) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "replace"); err != nil {
		return err
	}
	id := writeID()
	return s.write(ctx, "replace", func(ctx context.Context, replay bool) error {
		var (
			moved bool
			seen  *int64
		)
		args := []any{oldKey, int64(old), now, newKey, nonNil(e.Value), int64(e.Version), e.Expires, limitArg(e.Limit), id, int64(e.Idle)}
		stmt := s.sql.replace
		if e.Owner != "" {
			stmt, args = s.sql.replaceOwned, append(args, ownerHash(e.Owner))
		}
		err := s.db.QueryRow(ctx, stmt, args...).Scan(&moved, &seen)
		switch {
		case err != nil:
			return err
		case moved:
			return nil
		case replay:
			// The move may have happened on the try whose answer was
			// lost: then the new row holds this write.
			if err := s.lookup(ctx, newKey, 0, now, id); err == nil {
				return nil
			}
		}
		if seen == nil {
			return backend.ErrNotFound
		}
		return backend.ErrConflict
	})
}

// write runs a write whose statement can be sent again safely (see
// Options.ResolveWithin). When its outcome is unknown, it sends it again
// (replay true) until PostgreSQL answers, the context ends or ResolveWithin
// passes. Answers (nil, backend.ErrNotFound, backend.ErrConflict, an error
// from the server) are returned as they are, other errors wrapped.
func (s *Store) write(ctx context.Context, op string, run func(ctx context.Context, replay bool) error) error {
	err := run(ctx, false)
	if err == nil || isAnswer(err) {
		return err
	}
	if !outcomeUnknown(err) {
		return wrap(op, err)
	}
	if s.resolve < 0 {
		return unknown(op, err, nil)
	}
	first := err
	deadline := time.Now().Add(s.resolve)
	wait := 20 * time.Millisecond
	for {
		if !time.Now().Add(wait).Before(deadline) {
			return unknown(op, first, fmt.Errorf("not resolved within %v: last try: %w", s.resolve, err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return unknown(op, first, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
		err = run(ctx, true)
		if err == nil || isAnswer(err) {
			return err
		}
		if ctx.Err() != nil {
			return unknown(op, first, ctx.Err())
		}
		if !retryable(err) {
			return unknown(op, first, err)
		}
	}
}

// unknown is the error of a write whose outcome could not be found out.
func unknown(op string, first, then error) error {
	if then == nil {
		return fmt.Errorf("sessions: postgres %s: %w: %w", op, backend.ErrUnknownOutcome, first)
	}
	return fmt.Errorf("sessions: postgres %s: %w: %w (then: %w)", op, backend.ErrUnknownOutcome, first, then)
}

// isAnswer reports whether err is a store's answer to a write that was
// carried out: the key was missing or held another version.
func isAnswer(err error) bool {
	return errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrConflict)
}

// outcomeUnknown reports whether err leaves open whether a statement was
// applied: anything but an error PostgreSQL answered with (the statement
// failed and was rolled back) or one that happened before anything was sent
// (a failure to connect or to acquire the connection).
func outcomeUnknown(err error) bool {
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	switch {
	case errors.As(err, &pgErr), errors.As(err, &connErr), pgconn.SafeToRetry(err):
		return false
	}
	return true
}

// retryable reports whether sending a write again may succeed: a failure
// to connect or of the connection, or the server saying that it is starting,
// shutting down or that the transaction lost a race it may win next time.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || // connection exception
			strings.HasPrefix(pgErr.Code, "57P") || // admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization failure, deadlock
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || outcomeUnknown(err)
}
