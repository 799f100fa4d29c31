package sqlite

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// RecordsOwners reports true: SetIf creating a session and Replace record
// backend.Entry.Owner in the owner table in the same statement as the row
// (the schema's triggers; backend.OwnerRecorder), so that a login costs no
// separate AddOwned.
func (s *Store) RecordsOwners() bool { return true }

// AddOwned records key for owner until limit: one upsert. A limit not
// after this process's clock forgets key instead. The owner's records
// whose limit has passed are not listed by Owned and go with the cleanup.
func (s *Store) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	if err := s.begin(ctx, "add owned"); err != nil {
		return err
	}
	h := ownerHash(owner)
	if !limit.After(s.now()) {
		return s.write(ctx, "add owned", func(ctx context.Context) error {
			_, err := exec(ctx, s.stmt.forgetOwned, h, key)
			return err
		}, s.ownedAs(h, map[string]int64{key: 0}))
	}
	l := micros(limit)
	return s.write(ctx, "add owned", func(ctx context.Context) error {
		_, err := exec(ctx, s.stmt.addOwned, h, key, l)
		return err
	}, s.ownedAs(h, map[string]int64{key: l}))
}

// RemoveOwned forgets keys from owner's records: one DELETE.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := s.begin(ctx, "remove owned"); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	h, list := ownerHash(owner), keyList(keys)
	want := make(map[string]int64, len(keys))
	for _, k := range keys {
		want[k] = 0
	}
	return s.write(ctx, "remove owned", func(ctx context.Context) error {
		_, err := exec(ctx, s.stmt.removeOwned, h, list)
		return err
	}, s.ownedAs(h, want))
}

// keyList is keys as the JSON array the statements take.
func keyList(keys []string) string {
	b, _ := json.Marshal(keys) // strings always marshal
	return string(b)
}

// ownedAs returns the check of an index write whose outcome is open: it
// landed when owner h's records of the keys of want show the limits in
// want (0: no record). Otherwise the rows cannot tell (another write of
// the index may have come after).
func (s *Store) ownedAs(h []byte, want map[string]int64) func(ctx context.Context) (outcome, error) {
	return func(ctx context.Context) (outcome, error) {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		rows, err := s.stmt.ownedLimits.QueryContext(ctx, h, keyList(keys))
		if err != nil {
			return unknownOutcome, err
		}
		defer rows.Close()
		got := make(map[string]int64, len(want))
		for rows.Next() {
			var (
				k string
				l int64
			)
			if err := rows.Scan(&k, &l); err != nil {
				return unknownOutcome, err
			}
			got[k] = l
		}
		if err := rows.Err(); err != nil {
			return unknownOutcome, err
		}
		for k, l := range want {
			if got[k] != l {
				return unknownOutcome, nil
			}
		}
		return landed, nil
	}
}

// Owned returns the keys recorded for owner whose limit is after this
// process's clock: one SELECT.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := s.begin(ctx, "owned"); err != nil {
		return nil, err
	}
	rows, err := s.stmt.owned.QueryContext(ctx, ownerHash(owner), micros(s.now()))
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
