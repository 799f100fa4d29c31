package mysql

import (
	"context"
	"crypto/sha256"
	"time"
)

// ownerLen is the length of the owner column's values (BINARY(32)).
const ownerLen = sha256.Size

// ownerHash is the owner column's value: the SHA-256 of owner, so that any
// string (NUL bytes, 1 KiB owners included) fits a BINARY(32) and no owner
// is stored as given.
func ownerHash(owner string) []byte {
	sum := sha256.Sum256([]byte(owner))
	return sum[:]
}

// AddOwned records key for owner until limit: one INSERT ... ON DUPLICATE
// KEY UPDATE (the owner table's rows are small and hold nothing to keep;
// its deadlocks under concurrent adds to one owner, from the next-key locks
// of REPEATABLE READ, are retried). A limit not after this process's clock
// forgets key instead (one DELETE). Records past their limit are invisible
// to Owned at once and deleted by the cleanup.
func (s *Store) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	if err := s.begin(ctx, "add owned"); err != nil {
		return err
	}
	now, h := s.now(), ownerHash(owner)
	return s.write(ctx, "add owned", func(ctx context.Context, _ bool) error {
		var err error
		if limit.After(now) {
			_, err = s.exec(ctx, s.sql.addOwned, h, key, micros(limit), micros(limit))
		} else {
			_, err = s.exec(ctx, s.sql.forgetOwned, h, key)
		}
		return err
	})
}

// RemoveOwned forgets keys from owner's records: one DELETE.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := s.begin(ctx, "remove owned"); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(keys))
	args = append(args, ownerHash(owner))
	for _, k := range keys {
		args = append(args, k)
	}
	q := withList(s.sql.removeOwned, len(keys))
	return s.write(ctx, "remove owned", func(ctx context.Context, _ bool) error {
		_, err := s.exec(ctx, q, args...)
		return err
	})
}

// Owned returns the keys recorded for owner whose limit is after this
// process's clock: one SELECT.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := s.begin(ctx, "owned"); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.sql.owned, ownerHash(owner), micros(s.now()))
	if err != nil {
		return nil, wrap("owned", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, wrap("owned", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("owned", err)
	}
	return keys, nil
}
