package mysql

import "strings"

// The store's statements, with the placeholders of names.fill. Every one is
// a single statement run in autocommit mode: the store never opens a
// transaction, so it sends no BEGIN or COMMIT and holds no lock past one
// statement. Every time parameter is the caller's, in microseconds since the
// Unix epoch: the core's now for the operations that take one (Touch,
// SetIf, Replace, GetTouch), this process's clock for the others. None reads
// the database's clock.
//
// No statement uses INSERT ... ON DUPLICATE KEY UPDATE on the sessions
// table: its affected-row count depends on the DSN's clientFoundRows, its
// VALUES() is deprecated in MySQL 8.0.20 and later while the row alias that
// replaces it is not MariaDB's, and under REPEATABLE READ it takes next-key
// locks that deadlock concurrent inserts. A create is a plain INSERT, and
// only when the key is taken (error 1062) an UPDATE over a dead row.
//
// Every UPDATE whose affected-row count the store reads changes the row
// whenever it matches (it records a new write id, moves the key, or moves
// expires later), so the count is the same with clientFoundRows on or off.
const (
	// key, now. A live row, or none.
	sqlGet = "SELECT `value`, version, expires, limit_at, idle FROM {table} WHERE `key` = ? AND expires > ?"

	// new expires, key, version read, expires read. GetTouch's slide: it
	// writes only the row as it was read (so never back over a concurrent
	// write), and only later.
	sqlSlide = "UPDATE {table} SET expires = ? WHERE `key` = ? AND version = ? AND expires = ?"

	// key, value, version, expires, limit, idle, write id.
	sqlInsert = "INSERT INTO {table} (`key`, `value`, version, expires, limit_at, idle, writes) VALUES (?, ?, ?, ?, ?, ?, ?)"

	// value, version, expires, limit, idle, write id, key, write id. Set
	// over an existing row; sent again with the same write id, it changes
	// nothing.
	sqlOverwrite = "UPDATE {table} SET `value` = ?, version = ?, expires = ?, limit_at = ?, idle = ?, {push_id} WHERE `key` = ? AND {not_ours}"

	// value, version, expires, limit, idle, write id, key, now, write id.
	// A create (SetIf with old 0) over a dead row.
	sqlOverwriteDead = "UPDATE {table} SET `value` = ?, version = ?, expires = ?, limit_at = ?, idle = ?, {push_id} WHERE `key` = ? AND expires <= ? AND {not_ours}"

	// value, version, expires, limit, idle, write id, key, old version,
	// now, write id. SetIf of a live row at version old.
	sqlUpdate = "UPDATE {table} SET `value` = ?, version = ?, expires = ?, limit_at = ?, idle = ?, {push_id} WHERE `key` = ? AND version = ? AND expires > ? AND {not_ours}"

	// write id, key, old version, now, write id. SetIf (or Replace) with a
	// dead Expires ends the live row of version old: its value is emptied
	// and its deadline set to 0, and the row stays, holding the write id,
	// until the cleanup, so that a write sent again after a lost reply
	// finds that it landed.
	sqlEnd = "UPDATE {table} SET `value` = '', expires = 0, limit_at = NULL, {push_id} WHERE `key` = ? AND version = ? AND expires > ? AND {not_ours}"

	// key, now. Whether a live row is there.
	sqlLive = "SELECT 1 FROM {table} WHERE `key` = ? AND expires > ?"

	// now, write id, key. What a write that did not apply (or may have
	// applied before) finds: the row's version, whether it is live, whether
	// it holds the write.
	sqlLookup = "SELECT version, expires > ?, {ours} FROM {table} WHERE `key` = ?"

	// expires, expires, write id, key, now, write id. Moves a live row's
	// deadline, capped at its limit.
	sqlTouch = "UPDATE {table} SET expires = LEAST(?, COALESCE(limit_at, ?)), {push_id} WHERE `key` = ? AND expires > ? AND {not_ours}"

	// key, now. Touch to a dead deadline removes the live row.
	sqlDeleteLive = "DELETE FROM {table} WHERE `key` = ? AND expires > ?"

	// key.
	sqlDelete = "DELETE FROM {table} WHERE `key` = ?"

	// key, now. Replace removes a dead row in the way of the move.
	sqlDeleteDead = "DELETE FROM {table} WHERE `key` = ? AND expires <= ?"

	// new key, value, version, expires, limit, idle, write id, old key,
	// old version, now, write id. Replace: one UPDATE that rewrites the
	// row's primary key. InnoDB locks the old row, checks its version and
	// deadline on its latest committed state (an UPDATE reads as SELECT ...
	// FOR UPDATE does) and moves it, atomically: no observer sees both keys
	// or neither. A row under the new key fails it with error 1062.
	sqlMove = "UPDATE {table} SET `key` = ?, `value` = ?, version = ?, expires = ?, limit_at = ?, idle = ?, {push_id} WHERE `key` = ? AND version = ? AND expires > ? AND {not_ours}"

	// owner hash, key, limit, limit. ON DUPLICATE KEY UPDATE without
	// VALUES(): the limit is passed twice.
	sqlAddOwned = "INSERT INTO {owners} (owner, `key`, limit_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE limit_at = ?"

	// owner hash, key.
	sqlForgetOwned = "DELETE FROM {owners} WHERE owner = ? AND `key` = ?"

	// owner hash, keys ({list}: one ? per key).
	sqlRemoveOwned = "DELETE FROM {owners} WHERE owner = ? AND `key` IN ({list})"

	// owner hash, now.
	sqlOwned = "SELECT `key` FROM {owners} WHERE owner = ? AND limit_at > ?"

	// from, now, round size. One round of the cleanup finds at most that
	// many dead rows through the index on expires, in order, from the last
	// round's last deadline on (so that it does not walk again over the
	// index entries the last rounds deleted, which InnoDB purges later): a
	// plain read, which locks nothing.
	sqlDeadKeys = "SELECT `key`, expires FROM {table} WHERE expires >= ? AND expires <= ? ORDER BY expires LIMIT ?"

	// keys ({list}), now. Then deletes them by primary key, only if still
	// dead: one short statement that locks only these rows. The primary
	// key is forced (hence the multiple-table syntax: MySQL takes no index
	// hint in a single-table DELETE): when few of the rows are still there
	// (another instance's cleanup deleted them) MariaDB's optimizer prefers
	// a range on the index on expires, which under REPEATABLE READ locks the
	// next entry past the dead ones too, that of the live session with the
	// nearest deadline: its next request would wait for the DELETE, or
	// deadlock with it (TestCleanupDeleteLocksNoLiveRow).
	sqlDeleteKeys = "DELETE {table} FROM {table} FORCE INDEX (PRIMARY) WHERE `key` IN ({list}) AND expires <= ?"

	// from, now, round size: the same for owner records past their limit.
	sqlDeadOwners = "SELECT owner, `key`, limit_at FROM {owners} WHERE limit_at >= ? AND limit_at <= ? ORDER BY limit_at LIMIT ?"

	// (owner hash, key) pairs ({pairs}), now; the primary key forced, as
	// above.
	sqlDeleteOwners = "DELETE {owners} FROM {owners} FORCE INDEX (PRIMARY) WHERE (owner, `key`) IN ({pairs}) AND limit_at <= ?"
)

// statements are a store's statements, filled in with its names once.
type statements struct {
	get, slide, insert, overwrite, overwriteDead, update, end, live, lookup string
	touch, deleteLive, del, deleteDead, move                                string
	addOwned, forgetOwned, removeOwned, owned                               string
	deadKeys, deleteKeys, deadOwners, deleteOwners                          string
}

func newStatements(n names) statements {
	return statements{
		get: n.fill(sqlGet), slide: n.fill(sqlSlide), insert: n.fill(sqlInsert),
		overwrite: n.fill(sqlOverwrite), overwriteDead: n.fill(sqlOverwriteDead), update: n.fill(sqlUpdate),
		end: n.fill(sqlEnd), live: n.fill(sqlLive), lookup: n.fill(sqlLookup),
		touch: n.fill(sqlTouch), deleteLive: n.fill(sqlDeleteLive), del: n.fill(sqlDelete),
		deleteDead: n.fill(sqlDeleteDead), move: n.fill(sqlMove),
		addOwned: n.fill(sqlAddOwned), forgetOwned: n.fill(sqlForgetOwned),
		removeOwned: n.fill(sqlRemoveOwned), owned: n.fill(sqlOwned),
		deadKeys: n.fill(sqlDeadKeys), deleteKeys: n.fill(sqlDeleteKeys),
		deadOwners: n.fill(sqlDeadOwners), deleteOwners: n.fill(sqlDeleteOwners),
	}
}

// withList returns sql with {list} replaced by n placeholders and {pairs}
// by n pairs of them.
func withList(sql string, n int) string {
	switch {
	case strings.Contains(sql, "{list}"):
		return strings.Replace(sql, "{list}", strings.TrimSuffix(strings.Repeat("?, ", n), ", "), 1)
	case strings.Contains(sql, "{pairs}"):
		return strings.Replace(sql, "{pairs}", strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", "), 1)
	}
	return sql
}
