package postgres

import "strings"

// The store's statements, with the placeholders of names.fill. Every time
// parameter is the caller's: the core's now for the operations that take one
// (Touch, SetIf, Replace, GetTouch), this process's clock for the others.
// None reads the database's clock.
const (
	// $1 key, $2 now. A live row, or none.
	sqlGet = `SELECT value, version, expires, limit_at, idle FROM {table} WHERE key = $1 AND expires > $2`

	// $1 key, $2 now, $3 ifBefore, $4 expires. Returns the live row and
	// whether it was touched. The UPDATE writes only a row whose refresh is
	// due and whose deadline really moves (not at its limit); when it writes
	// nothing, the SELECT returns the row as the statement's snapshot saw
	// it. A load whose refresh is not due thus writes no tuple and takes no
	// transaction id: no dead tuple, no WAL. A row with an idle timeout of
	// its own slides by it, as backend.Slide computes: to now + idle, when
	// its deadline is before that less the smaller of $4 - $3 and idle/10.
	sqlGetTouch = `WITH touched AS (
	UPDATE {table} SET expires = least({slide_to}, coalesce(limit_at, {slide_to}))
	WHERE key = $1 AND expires > $2 AND expires < {slide_if_before}
	AND least({slide_to}, coalesce(limit_at, {slide_to})) > expires
	RETURNING value, version, expires, limit_at, idle
)
SELECT value, version, expires, limit_at, idle, true FROM touched
UNION ALL
SELECT value, version, expires, limit_at, idle, false FROM {table}
WHERE key = $1 AND expires > $2 AND NOT EXISTS (SELECT FROM touched)`

	// $1 key, $2 value, $3 version, $4 expires, $5 limit, $6 write id, $7
	// idle. Sent again with the same write id, it changes nothing.
	sqlSet = `INSERT INTO {table} AS t (key, value, version, expires, limit_at, writes, idle)
VALUES ($1, $2, $3, $4, $5, ARRAY[$6::bigint], $7)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
	expires = EXCLUDED.expires, limit_at = EXCLUDED.limit_at, idle = EXCLUDED.idle,
	writes = (EXCLUDED.writes || t.writes)[1:4]
WHERE NOT ($6 = ANY (t.writes))`

	// $1 key.
	sqlDelete = `DELETE FROM {table} WHERE key = $1`

	// $1 key, $2 now, $3 value, $4 version, $5 expires, $6 limit, $7 write
	// id, $8 idle. Inserts, or writes over a dead row; one row affected when
	// done.
	sqlCreate = `INSERT INTO {table} AS t (key, value, version, expires, limit_at, writes, idle)
VALUES ($1, $3, $4, $5, $6, ARRAY[$7::bigint], $8)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
	expires = EXCLUDED.expires, limit_at = EXCLUDED.limit_at, writes = EXCLUDED.writes, idle = EXCLUDED.idle
WHERE t.expires <= $2 AND NOT ($7 = ANY (t.writes))`

	// $1 key, $2 now, $3 old version, $4 value, $5 version, $6 expires, $7
	// limit, $8 write id, $9 idle. Returns whether it wrote, and the live
	// version the statement's snapshot saw (NULL: none), which tells gone
	// from changed.
	sqlUpdate = `WITH w AS (
	UPDATE {table} SET value = $4, version = $5, expires = $6, limit_at = $7, idle = $9,
		writes = (ARRAY[$8::bigint] || writes)[1:4]
	WHERE key = $1 AND version = $3 AND expires > $2 AND NOT ($8 = ANY (writes))
	RETURNING 1
)
SELECT EXISTS (SELECT FROM w), (SELECT version FROM {table} WHERE key = $1 AND expires > $2)`

	// $1 key, $2 now, $3 old version, $4 write id: SetIf with a dead
	// Expires ends the live row of version $3: its value is emptied and its
	// deadline set to the epoch, and the row stays, holding the write id,
	// until the cleanup, so that the write sent again after a lost reply
	// finds that it landed (a DELETE would leave nothing to find). Returns
	// whether it did, and the live version seen.
	sqlDeleteIf = `WITH d AS (
	UPDATE {table} SET value = '', expires = 'epoch', limit_at = NULL,
		writes = (ARRAY[$4::bigint] || writes)[1:4]
	WHERE key = $1 AND version = $3 AND expires > $2 AND NOT ($4 = ANY (writes))
	RETURNING 1
)
SELECT EXISTS (SELECT FROM d), (SELECT version FROM {table} WHERE key = $1 AND expires > $2)`

	// $1 key, $2 now: SetIf with old 0 and a dead Expires stores nothing;
	// it removes a dead row and reports whether a live one is in the way.
	sqlDeleteDead = `WITH d AS (
	DELETE FROM {table} WHERE key = $1 AND expires <= $2 RETURNING 1
)
SELECT EXISTS (SELECT FROM {table} WHERE key = $1 AND expires > $2)`

	// $1 key, $2 now, $3 write id: what a write that may have been applied
	// left, read after the write was sent again.
	sqlLookup = `SELECT version, expires > $2, $3 = ANY (writes) FROM {table} WHERE key = $1`

	// $1 key, $2 now, $3 expires. Moves a live row's deadline to $3, capped
	// at its limit, or deletes it when that is not after now. Returns
	// whether a live row was there.
	sqlTouch = `WITH d AS (
	DELETE FROM {table} WHERE key = $1 AND expires > $2 AND least($3, coalesce(limit_at, $3)) <= $2 RETURNING 1
), u AS (
	UPDATE {table} SET expires = least($3, coalesce(limit_at, $3))
	WHERE key = $1 AND expires > $2 AND least($3, coalesce(limit_at, $3)) > $2 RETURNING 1
)
SELECT EXISTS (SELECT FROM d) OR EXISTS (SELECT FROM u)`

	// $1 old key, $2 old version, $3 now, $4 new key, $5 value, $6 version,
	// $7 expires, $8 limit, $9 write id, $10 idle. The old row is locked first (o:
	// FOR UPDATE waits for a concurrent writer and then sees its latest
	// version), the new row is written only if the old one is live at
	// version $2 and the new key holds no live row (n), and the old row is
	// deleted only if the new one was written (d), or, with a dead $7, if
	// the old one matched: both or neither. Returns whether the move
	// happened and the old row's latest live version (NULL: none).
	sqlReplace = `WITH o AS (
	SELECT version, expires FROM {table} WHERE key = $1 FOR UPDATE
), n AS (
	INSERT INTO {table} AS t (key, value, version, expires, limit_at, writes, idle)
	SELECT $4, $5, $6, $7, $8, ARRAY[$9::bigint], $10 FROM o
	WHERE o.version = $2 AND o.expires > $3 AND $7 > $3
	ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
		expires = EXCLUDED.expires, limit_at = EXCLUDED.limit_at, writes = EXCLUDED.writes, idle = EXCLUDED.idle
	WHERE t.expires <= $3
	RETURNING 1
), d AS (
	DELETE FROM {table} WHERE key = $1 AND version = $2 AND expires > $3
	AND (EXISTS (SELECT FROM n) OR ($7 <= $3 AND EXISTS (SELECT FROM o WHERE o.version = $2 AND o.expires > $3)))
	RETURNING 1
)
SELECT EXISTS (SELECT FROM d), (SELECT version FROM o WHERE expires > $3)`

	// $1 owner hash, $2 key, $3 limit, $4 now. Records key until $3 and
	// drops the owner's records whose limit has passed.
	sqlAddOwned = `WITH pruned AS (
	DELETE FROM {owners} WHERE owner = $1 AND limit_at <= $4 AND key <> $2
)
INSERT INTO {owners} (owner, key, limit_at) VALUES ($1, $2, $3)
ON CONFLICT (owner, key) DO UPDATE SET limit_at = EXCLUDED.limit_at`

	// $1 owner hash, $2 key.
	sqlForgetOwned = `DELETE FROM {owners} WHERE owner = $1 AND key = $2`

	// $1 owner hash, $2 keys.
	sqlRemoveOwned = `DELETE FROM {owners} WHERE owner = $1 AND key = ANY ($2)`

	// $1 owner hash, $2 now.
	sqlOwned = `SELECT key FROM {owners} WHERE owner = $1 AND limit_at > $2`

	// $1 now, $2 batch size. One batch of the cleanup: at most $2 dead rows,
	// found through the expires index, skipping rows a request has locked,
	// deleted by their tuple ids.
	sqlCleanup = `DELETE FROM {table} WHERE ctid = ANY (ARRAY (
	SELECT ctid FROM {table} WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)) AND expires <= $1`

	// $1 now, $2 batch size: the same for owner records past their limit.
	sqlCleanupOwners = `DELETE FROM {owners} WHERE ctid = ANY (ARRAY (
	SELECT ctid FROM {owners} WHERE limit_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)) AND limit_at <= $1`
)

// sqlCreateOwned is sqlCreate that also records the key under an owner
// ($9, its hash) until the limit (none: for ever) in the same statement,
// if and only if it wrote the row (backend.OwnerRecorder). Returns whether
// it wrote.
const sqlCreateOwned = `WITH n AS (
` + sqlCreate + `
	RETURNING 1
), o AS (
	INSERT INTO {owners} (owner, key, limit_at) SELECT $9, $1, coalesce($6, 'infinity') FROM n
	ON CONFLICT (owner, key) DO UPDATE SET limit_at = EXCLUDED.limit_at
)
SELECT EXISTS (SELECT FROM n)`

// replaceOwners is what sqlReplaceOwned adds to sqlReplace: when the row
// moved (n), the new key is recorded under the owner ($11, its hash) and
// the owner's record of the old key dropped, in the same statement.
const replaceOwners = `, ro AS (
	DELETE FROM {owners} WHERE owner = $11 AND key = $1 AND EXISTS (SELECT FROM n)
), ao AS (
	INSERT INTO {owners} (owner, key, limit_at) SELECT $11, $4, coalesce($8, 'infinity') FROM n
	ON CONFLICT (owner, key) DO UPDATE SET limit_at = EXCLUDED.limit_at
)
SELECT EXISTS (SELECT FROM d)`

// sqlReplaceOwned is sqlReplace with the owner index kept in the same
// statement (backend.OwnerRecorder).
var sqlReplaceOwned = strings.Replace(sqlReplace, "\nSELECT EXISTS (SELECT FROM d)", "\n"+replaceOwners, 1)

// statements are a store's statements, filled in with its names once.
type statements struct {
	get, getTouch, set, del, create, update, deleteIf, deleteDead, lookup, touch, replace string
	createOwned, replaceOwned                                                             string
	addOwned, forgetOwned, removeOwned, owned                                             string
	cleanup, cleanupOwners                                                                string
}

func newStatements(n names) statements {
	return statements{
		get: n.fill(sqlGet), getTouch: n.fill(sqlGetTouch), set: n.fill(sqlSet), del: n.fill(sqlDelete),
		create: n.fill(sqlCreate), update: n.fill(sqlUpdate), deleteIf: n.fill(sqlDeleteIf),
		deleteDead: n.fill(sqlDeleteDead), lookup: n.fill(sqlLookup), touch: n.fill(sqlTouch),
		replace: n.fill(sqlReplace), createOwned: n.fill(sqlCreateOwned), replaceOwned: n.fill(sqlReplaceOwned),
		addOwned: n.fill(sqlAddOwned), forgetOwned: n.fill(sqlForgetOwned),
		removeOwned: n.fill(sqlRemoveOwned), owned: n.fill(sqlOwned),
		cleanup: n.fill(sqlCleanup), cleanupOwners: n.fill(sqlCleanupOwners),
	}
}
