package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sessionx/sessions/backend"
)

// maxTries bounds how often a conditional write is sent again when it
// wrote nothing and a read right after finds the row as it expected: a
// writer outside this Store (another process) changed it in between.
const maxTries = 3

// writeID returns a fresh random write id: 16 hex digits.
func writeID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// ownerArg is the owner column's value for a write: the owner's hash, or
// NULL for none.
func ownerArg(owner string) any {
	if owner == "" {
		return nil
	}
	return ownerHash(owner)
}

// ownerHash is the owner columns' value: the SHA-256 of owner, so that any
// string (NUL bytes included) fits and no owner is stored as given.
func ownerHash(owner string) []byte {
	sum := sha256.Sum256([]byte(owner))
	return sum[:]
}

// exec runs a write statement and returns how many rows it changed (not
// counting the triggers' changes).
func exec(ctx context.Context, stmt *sql.Stmt, args ...any) (int64, error) {
	r, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// write runs a write (waiting for a cleanup batch of this Store to end:
// writeGate; then for SQLite's write lock: Options.BusyTimeout): run
// sends its statements; check reads back what they left, should the driver
// not say (see outcome). Answers (nil, backend.ErrNotFound,
// backend.ErrConflict) are returned as they are, other errors wrapped.
func (s *Store) write(ctx context.Context, op string, run func(ctx context.Context) error, check func(ctx context.Context) (outcome, error)) error {
	if err := s.gate.enter(ctx); err != nil {
		return wrap(op, err)
	}
	err := run(ctx)
	s.gate.leave()
	s.wrote() // (also after a failure: the checkpointer runs the more often, never less)
	switch {
	case err == nil || isAnswer(err):
		return err
	case outcomeOpen(err):
		return s.settleOutcome(ctx, op, err, check)
	}
	return wrap(op, err)
}

// isAnswer reports whether err is a store's answer to a write that was
// carried out: the key was missing or held another version.
func isAnswer(err error) bool {
	return errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrConflict)
}

// row is what sqlLookup reads of a row.
type row struct {
	found, live, ours bool
	version           uint64
	expires           int64
}

// lookup reads the row under key: its version and deadline, whether it is
// live at now and whether it holds the write id.
func (s *Store) lookup(ctx context.Context, key string, now int64, id string) (row, error) {
	var (
		r       row
		version int64
	)
	err := s.stmt.lookup.QueryRowContext(ctx, key, now, id).Scan(&version, &r.expires, &r.live, &r.ours)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return row{}, nil
	case err != nil:
		return row{}, err
	}
	r.found, r.version = true, uint64(version)
	return r, nil
}

// conditional sends stmt, a write of key expecting it live at version old
// (old != 0), and answers: nil when it changed a row; otherwise, from the
// row read right after, backend.ErrNotFound when no live row is there,
// backend.ErrConflict when it holds another version. A row found live at
// version old (another process wrote in between) makes it send stmt
// again, up to maxTries times.
func (s *Store) conditional(ctx context.Context, key string, old uint64, now int64, stmt *sql.Stmt, args ...any) error {
	for try := 1; ; try++ {
		n, err := exec(ctx, stmt, args...)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		r, err := s.lookup(ctx, key, now, "")
		switch {
		case err != nil:
			return err
		case !r.live:
			return backend.ErrNotFound
		case r.version != old || try == maxTries:
			return backend.ErrConflict
		}
	}
}

// SetIf stores e under key only if the live row's version is old (old 0:
// only if no live row is there, writing over a dead one), live judged at
// now. It returns backend.ErrNotFound when old != 0 and no live row is
// stored, backend.ErrConflict when the live row has another version (or,
// with old 0, exists). One statement when it writes: an UPDATE, or for old
// 0 an INSERT ... ON CONFLICT DO UPDATE ... WHERE the row there is dead,
// which with an Entry.Owner also records the key under it (the schema's
// triggers, in the same statement: backend.OwnerRecorder). A write that
// changes nothing is followed by one SELECT, which tells gone from
// changed. An Expires not after now removes the live row of version old
// (with old 0 it stores nothing, and only reads whether a live row is in
// the way).
func (s *Store) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	nowUS := micros(now)
	switch {
	case !e.Expires.After(now) && old == 0:
		var live bool
		if err := s.stmt.live.QueryRowContext(ctx, key, nowUS).Scan(&live); err != nil {
			return wrap("set", err)
		}
		if live {
			return backend.ErrConflict
		}
		return nil

	case !e.Expires.After(now):
		return s.write(ctx, "set", func(ctx context.Context) error {
			return s.conditional(ctx, key, old, nowUS, s.stmt.deleteIf, key, nowUS, int64(old))
		}, func(ctx context.Context) (outcome, error) {
			r, err := s.lookup(ctx, key, nowUS, "")
			if err != nil || !r.live || r.version != old {
				return unknownOutcome, err // deleted, by this write or another
			}
			return notApplied, nil
		})

	case old == 0:
		id := writeID()
		return s.write(ctx, "set", func(ctx context.Context) error {
			n, err := exec(ctx, s.stmt.create, key, nowUS, nonNil(e.Value), int64(e.Version), micros(e.Expires),
				limitArg(e.Limit), int64(e.Idle), ownerArg(e.Owner), id)
			switch {
			case err != nil:
				return err
			case n == 0:
				return backend.ErrConflict // a live row is in the way
			}
			return nil
		}, func(ctx context.Context) (outcome, error) {
			r, err := s.lookup(ctx, key, nowUS, id)
			switch {
			case err != nil:
				return unknownOutcome, err
			case r.ours:
				return landed, nil
			case !r.live:
				return notApplied, nil
			}
			return unknownOutcome, nil
		})

	default:
		id := writeID()
		return s.write(ctx, "set", func(ctx context.Context) error {
			return s.conditional(ctx, key, old, nowUS, s.stmt.update, key, nowUS, int64(old),
				nonNil(e.Value), int64(e.Version), micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id)
		}, func(ctx context.Context) (outcome, error) {
			r, err := s.lookup(ctx, key, nowUS, id)
			switch {
			case err != nil:
				return unknownOutcome, err
			case r.ours:
				return landed, nil
			case r.live && r.version == old:
				return notApplied, nil
			}
			return unknownOutcome, nil
		})
	}
}

// Replace moves the entry under oldKey, which must hold version old, to
// newKey, which must hold no live row, live judged at now: one statement
// (UPDATE OR REPLACE of the row's key, which replaces a dead row under
// newKey), so the move is one transaction and no observer sees both rows or
// neither. With an Entry.Owner, the schema's triggers record newKey under
// it and drop its record of oldKey in the same statement
// (backend.OwnerRecorder). A move that does not happen is followed by one
// SELECT, which tells backend.ErrNotFound (oldKey has no live row) from
// backend.ErrConflict (it holds another version, or newKey is taken). An
// Expires not after now deletes the old row and writes nothing.
func (s *Store) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := s.begin(ctx, "replace"); err != nil {
		return err
	}
	nowUS := micros(now)
	if !e.Expires.After(now) {
		return s.write(ctx, "replace", func(ctx context.Context) error {
			return s.conditional(ctx, oldKey, old, nowUS, s.stmt.replaceDead, oldKey, int64(old), nowUS)
		}, func(ctx context.Context) (outcome, error) {
			r, err := s.lookup(ctx, oldKey, nowUS, "")
			if err != nil || !r.live || r.version != old {
				return unknownOutcome, err
			}
			return notApplied, nil
		})
	}
	id := writeID()
	return s.write(ctx, "replace", func(ctx context.Context) error {
		for try := 1; ; try++ {
			n, err := exec(ctx, s.stmt.replace, oldKey, int64(old), nowUS, newKey,
				nonNil(e.Value), int64(e.Version), micros(e.Expires), limitArg(e.Limit), id, int64(e.Idle), ownerArg(e.Owner))
			if err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			var (
				seen  sql.NullInt64
				taken bool
			)
			if err := s.stmt.replaceSeen.QueryRowContext(ctx, oldKey, nowUS, newKey).Scan(&seen, &taken); err != nil {
				return err
			}
			switch {
			case !seen.Valid:
				return backend.ErrNotFound
			case uint64(seen.Int64) != old || taken || try == maxTries:
				return backend.ErrConflict
			}
		}
	}, func(ctx context.Context) (outcome, error) {
		moved, err := s.lookup(ctx, newKey, nowUS, id)
		if err != nil {
			return unknownOutcome, err
		}
		if moved.ours {
			return landed, nil
		}
		from, err := s.lookup(ctx, oldKey, nowUS, "")
		if err != nil {
			return unknownOutcome, err
		}
		if from.live && from.version == old && !moved.live {
			return notApplied, nil
		}
		return unknownOutcome, nil
	})
}

// Set stores e under key, replacing whatever is there: one upsert. An
// Expires not after this process's clock (the zero time included) deletes
// the row instead.
func (s *Store) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	now := s.now()
	if !e.Expires.After(now) {
		return s.Delete(ctx, key)
	}
	id := writeID()
	return s.write(ctx, "set", func(ctx context.Context) error {
		_, err := exec(ctx, s.stmt.set, key, nonNil(e.Value), int64(e.Version), micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id)
		return err
	}, func(ctx context.Context) (outcome, error) {
		r, err := s.lookup(ctx, key, micros(now), id)
		if err != nil || !r.ours {
			return unknownOutcome, err
		}
		return landed, nil
	})
}

// Touch moves the deadline of the live entry under key to expires, capped
// at its Limit, or ends it (its deadline set to now) when that is not
// after now: one UPDATE. A row whose deadline is not after now is
// backend.ErrNotFound and is left alone.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := s.begin(ctx, "touch"); err != nil {
		return err
	}
	nowUS, to := micros(now), micros(expires)
	return s.write(ctx, "touch", func(ctx context.Context) error {
		n, err := exec(ctx, s.stmt.touch, key, nowUS, to)
		if err == nil && n == 0 {
			return backend.ErrNotFound
		}
		return err
	}, func(ctx context.Context) (outcome, error) {
		// The deadline the touch sets, if it shows, is as good as the
		// touch having landed.
		r, err := s.lookup(ctx, key, nowUS, "")
		if err != nil || !r.found || (r.expires != to && (to > nowUS || r.live)) {
			return unknownOutcome, err
		}
		return landed, nil
	})
}

// Delete removes the row under key: one DELETE. Deleting a missing key is
// not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete"); err != nil {
		return err
	}
	return s.write(ctx, "delete", func(ctx context.Context) error {
		_, err := exec(ctx, s.stmt.del, key)
		return err
	}, func(ctx context.Context) (outcome, error) {
		r, err := s.lookup(ctx, key, 0, "")
		switch {
		case err != nil:
			return unknownOutcome, err
		case r.found:
			return notApplied, nil
		}
		return landed, nil
	})
}
