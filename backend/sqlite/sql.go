package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The store's statements, with the placeholders of names.fill. Times are
// INTEGER microseconds since the Unix epoch; every time parameter is the
// caller's: the core's now for the operations that take one (Touch, SetIf,
// Replace, GetTouch), this process's clock for the others. None reads
// SQLite's clock.
//
// Every write is one statement, so one transaction of its own, which takes
// the file's write lock before it reads anything (SQLite begins a
// statement's write transaction first): no transaction reads and then
// upgrades to a write, the case where SQLite answers SQLITE_BUSY at once
// instead of waiting.
const (
	// ?1 key, ?2 now. A live row, or none.
	sqlGet = `SELECT value, version, expires, limit_at, idle FROM {table} WHERE key = ?1 AND expires > ?2`

	// ?1 key, ?2 expires as read, ?3 limit as read, ?4 idle as read, ?5
	// now, ?6 new expires. GetTouch's slide, after its SELECT found the
	// refresh due: it writes only if the deadline, limit and idle timeout
	// the decision was made on are still the row's, and returns the row as
	// written.
	sqlSlide = `UPDATE {table} SET expires = ?6
WHERE key = ?1 AND expires = ?2 AND limit_at IS ?3 AND idle = ?4 AND expires > ?5
RETURNING value, version, expires, limit_at, idle`

	// ?1 key, ?2 value, ?3 version, ?4 expires, ?5 limit, ?6 idle, ?7 write
	// id.
	sqlSet = `INSERT INTO {table} (key, value, version, expires, limit_at, idle, writes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
	expires = excluded.expires, limit_at = excluded.limit_at, idle = excluded.idle,
	writes = substr(excluded.writes || ' ' || writes, 1, 67)`

	// ?1 key.
	sqlDelete = `DELETE FROM {table} WHERE key = ?1`

	// ?1 key, ?2 now, ?3 value, ?4 version, ?5 expires, ?6 limit, ?7 idle,
	// ?8 owner hash (NULL: none), ?9 write id. Inserts, or writes over a
	// dead row; one row changed when done. With an owner, the triggers
	// record the key under it in the same statement.
	sqlCreate = `INSERT INTO {table} (key, value, version, expires, limit_at, idle, owner, writes)
VALUES (?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
	expires = excluded.expires, limit_at = excluded.limit_at, idle = excluded.idle,
	owner = excluded.owner, writes = excluded.writes
WHERE expires <= ?2`

	// ?1 key, ?2 now, ?3 old version, ?4 value, ?5 version, ?6 expires, ?7
	// limit, ?8 idle, ?9 write id. One row changed when done.
	sqlUpdate = `UPDATE {table} SET value = ?4, version = ?5, expires = ?6, limit_at = ?7, idle = ?8,
	writes = substr(?9 || ' ' || writes, 1, 67)
WHERE key = ?1 AND version = ?3 AND expires > ?2`

	// ?1 key, ?2 now, ?3 old version: SetIf with a dead Expires removes the
	// live row of version ?3.
	sqlDeleteIf = `DELETE FROM {table} WHERE key = ?1 AND version = ?3 AND expires > ?2`

	// ?1 key, ?2 now: whether a live row is there.
	sqlLive = `SELECT EXISTS (SELECT 1 FROM {table} WHERE key = ?1 AND expires > ?2)`

	// ?1 key, ?2 now, ?3 write id: what a write left, read back when its
	// outcome is open, or when it wrote nothing and the answer (gone or
	// changed) is to be told. No row: none at all.
	sqlLookup = `SELECT version, expires, expires > ?2, instr(writes, ?3) > 0 FROM {table} WHERE key = ?1`

	// ?1 key, ?2 now, ?3 expires. Moves a live row's deadline to ?3, capped
	// at its limit; when that is not after now, to now, which ends the row
	// (it is dead to every statement from then on, and the cleanup deletes
	// it). One row changed when a live row was there.
	sqlTouch = `UPDATE {table} SET expires = max(min(?3, coalesce(limit_at, ?3)), ?2)
WHERE key = ?1 AND expires > ?2`

	// ?1 old key, ?2 old version, ?3 now, ?4 new key, ?5 value, ?6 version,
	// ?7 expires, ?8 limit, ?9 write id, ?10 idle, ?11 owner hash (NULL:
	// none). Moves the row, in one statement, only if the old one is live
	// at version ?2 and the new key holds no live row; a dead row under the
	// new key is replaced (OR REPLACE). The old key is gone the moment the
	// new one appears: no observer sees both or neither. With an owner, the
	// triggers record the new key under it and drop its record of the old
	// one, in the same statement.
	sqlReplace = `UPDATE OR REPLACE {table} SET key = ?4, value = ?5, version = ?6, expires = ?7, limit_at = ?8,
	idle = ?10, owner = ?11, writes = ?9
WHERE key = ?1 AND version = ?2 AND expires > ?3
AND NOT EXISTS (SELECT 1 FROM {table} WHERE key = ?4 AND expires > ?3)`

	// ?1 old key, ?2 old version, ?3 now: Replace with a dead Expires
	// removes the old row and writes nothing.
	sqlReplaceDead = `DELETE FROM {table} WHERE key = ?1 AND version = ?2 AND expires > ?3`

	// ?1 old key, ?2 now, ?3 new key: the old key's live version (NULL:
	// none) and whether the new key holds a live row, read when a Replace
	// moved nothing.
	sqlReplaceSeen = `SELECT (SELECT version FROM {table} WHERE key = ?1 AND expires > ?2),
	EXISTS (SELECT 1 FROM {table} WHERE key = ?3 AND expires > ?2)`

	// ?1 owner hash, ?2 key, ?3 limit. Records key until ?3. Records past
	// their limit go with the cleanup (and Owned never lists them).
	sqlAddOwned = `INSERT INTO {owners} (owner, key, limit_at) VALUES (?1, ?2, ?3)
ON CONFLICT (owner, key) DO UPDATE SET limit_at = excluded.limit_at`

	// ?1 owner hash, ?2 key.
	sqlForgetOwned = `DELETE FROM {owners} WHERE owner = ?1 AND key = ?2`

	// ?1 owner hash, ?2 the keys as a JSON array of strings.
	sqlRemoveOwned = `DELETE FROM {owners} WHERE owner = ?1 AND key IN (SELECT value FROM json_each(?2))`

	// ?1 owner hash, ?2 now.
	sqlOwned = `SELECT key FROM {owners} WHERE owner = ?1 AND limit_at > ?2`

	// ?1 owner hash, ?2 the keys as a JSON array: the limits of those
	// recorded, read back after an index write whose outcome is open.
	sqlOwnedLimits = `SELECT key, limit_at FROM {owners} WHERE owner = ?1 AND key IN (SELECT value FROM json_each(?2))`

	// ?1 now, ?2 batch size. One batch of the cleanup: at most ?2 dead
	// rows, found through the expires index, deleted by rowid.
	sqlCleanup = `DELETE FROM {table} WHERE rowid IN (
	SELECT rowid FROM {table} WHERE expires <= ?1 ORDER BY expires LIMIT ?2
)`

	// ?1 now, ?2 batch size: the same for owner records past their limit.
	sqlCleanupOwners = `DELETE FROM {owners} WHERE rowid IN (
	SELECT rowid FROM {owners} WHERE limit_at <= ?1 ORDER BY limit_at LIMIT ?2
)`
)

// statements are a store's statements, filled in with its names and
// prepared once: database/sql prepares each on every connection that runs
// it, once.
type statements struct {
	get, slide, set, del, create, update, deleteIf, live, lookup *sql.Stmt
	touch, replace, replaceDead, replaceSeen                     *sql.Stmt
	addOwned, forgetOwned, removeOwned, owned, ownedLimits       *sql.Stmt
	cleanup, cleanupOwners                                       *sql.Stmt
}

// prepare fills in and prepares every statement of n on db.
func prepare(ctx context.Context, db *sql.DB, n names) (statements, error) {
	var st statements
	for _, p := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&st.get, sqlGet}, {&st.slide, sqlSlide}, {&st.set, sqlSet}, {&st.del, sqlDelete},
		{&st.create, sqlCreate}, {&st.update, sqlUpdate}, {&st.deleteIf, sqlDeleteIf},
		{&st.live, sqlLive}, {&st.lookup, sqlLookup}, {&st.touch, sqlTouch},
		{&st.replace, sqlReplace}, {&st.replaceDead, sqlReplaceDead}, {&st.replaceSeen, sqlReplaceSeen},
		{&st.addOwned, sqlAddOwned}, {&st.forgetOwned, sqlForgetOwned}, {&st.removeOwned, sqlRemoveOwned},
		{&st.owned, sqlOwned}, {&st.ownedLimits, sqlOwnedLimits},
		{&st.cleanup, sqlCleanup}, {&st.cleanupOwners, sqlCleanupOwners},
	} {
		stmt, err := db.PrepareContext(ctx, n.fill(p.sql))
		if err != nil {
			st.close()
			return statements{}, fmt.Errorf("sessions: sqlite store: preparing a statement (SQLite 3.37 or later needed): %w", err)
		}
		*p.to = stmt
	}
	return st, nil
}

// close closes every prepared statement.
func (st statements) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.get, st.slide, st.set, st.del, st.create, st.update, st.deleteIf,
		st.live, st.lookup, st.touch, st.replace, st.replaceDead, st.replaceSeen,
		st.addOwned, st.forgetOwned, st.removeOwned, st.owned, st.ownedLimits, st.cleanup, st.cleanupOwners} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
