-- Schema of github.com/sessionx/sessions/backend/sqlite, version 1.
--
-- CreateSchema runs this file in one transaction (BEGIN IMMEDIATE), with its
-- placeholders (the names table, owners, schema_table, expires_idx,
-- owners_limit_idx, owner_insert_trg and owner_update_trg in braces)
-- replaced by the quoted names derived from Options.Table (default
-- "sessions": sessions, sessions_owners, sessions_schema,
-- sessions_expires_idx, sessions_owners_limit_idx, sessions_owner_insert,
-- sessions_owner_update). SchemaSQL returns it so filled in, for
-- applications that run their migrations with a tool of their own. Every
-- statement is idempotent (IF NOT EXISTS, INSERT OR IGNORE). It needs
-- SQLite 3.37 or later (STRICT tables; RETURNING needs 3.35).
--
-- Times are INTEGER microseconds since the Unix epoch (UTC). Every statement
-- of the store compares them with the application's clock (the sessions
-- core's now), passed as a parameter, never with SQLite's clock ('now'):
-- skew between the two never revives a session.

-- One row per session. key is the SHA-256 of the session's token in
-- unpadded URL-safe base64 (43 characters); the token itself never reaches
-- the file. value is the core's envelope, sealed with a key derived from
-- the token: the session's data, owner, binding and CSRF secret are not
-- readable here. A row whose expires is not after the caller's now is dead:
-- no statement returns, extends or writes back over it as live, and the
-- cleanup deletes it.
CREATE TABLE IF NOT EXISTS {table} (
	key      TEXT    NOT NULL PRIMARY KEY,
	value    BLOB    NOT NULL,
	-- Counted up by every write of the session (a uint64, stored as the
	-- INTEGER of the same 64 bits); conditional writes compare it.
	version  INTEGER NOT NULL,
	-- The idle deadline: the row is dead from this instant on.
	expires  INTEGER NOT NULL,
	-- The absolute deadline: no touch moves expires past it. NULL: none.
	limit_at INTEGER,
	-- The session's own idle timeout in nanoseconds, which a load slides
	-- expires by; 0: the application's default (backend.Entry.Idle).
	idle     INTEGER NOT NULL DEFAULT 0,
	-- The owner (the SHA-256 of the owner string the core gives) of the
	-- write that last put the session under this key, for the triggers
	-- below; NULL: none given. Get never returns it.
	owner    BLOB,
	-- Random ids (16 hex digits each) of the last four writes, newest
	-- first, so that a write whose outcome the driver left open (the
	-- context ended while it ran) is recognised when read back
	-- (Options.ResolveWithin).
	writes   TEXT    NOT NULL DEFAULT ''
) STRICT;

-- The cleanup deletes expired rows in batches found through this index.
CREATE INDEX IF NOT EXISTS {expires_idx} ON {table} (expires);

-- The owner index (backend.Indexer): which session keys belong to an owner,
-- until when (microseconds; 9223372036854775807 for a session without an
-- absolute deadline). owner is the SHA-256 of the owner string the core
-- gives (which is itself the owner's keyed hash, never the user id).
CREATE TABLE IF NOT EXISTS {owners} (
	owner    BLOB    NOT NULL,
	key      TEXT    NOT NULL,
	limit_at INTEGER NOT NULL,
	PRIMARY KEY (owner, key)
) STRICT;

-- The cleanup deletes records past their limit through this index.
CREATE INDEX IF NOT EXISTS {owners_limit_idx} ON {owners} (limit_at);

-- backend.OwnerRecorder: a session written under a new key with an owner
-- (SetIf creating it, Replace moving it) is recorded under that owner in
-- the same statement, so in the same transaction: a new row ...
CREATE TRIGGER IF NOT EXISTS {owner_insert_trg} AFTER INSERT ON {table}
WHEN NEW.owner IS NOT NULL
BEGIN
	INSERT INTO {owners} (owner, key, limit_at)
	VALUES (NEW.owner, NEW.key, coalesce(NEW.limit_at, 9223372036854775807))
	ON CONFLICT (owner, key) DO UPDATE SET limit_at = excluded.limit_at;
END;

-- ... and a row moved to a new key (Replace), or written over a dead one
-- (SetIf creating it): the statements that name key or owner in their SET.
-- A move also drops the owner's record of the old key.
CREATE TRIGGER IF NOT EXISTS {owner_update_trg} AFTER UPDATE OF key, owner ON {table}
WHEN NEW.owner IS NOT NULL
BEGIN
	DELETE FROM {owners} WHERE owner = NEW.owner AND key = OLD.key AND OLD.key <> NEW.key;
	INSERT INTO {owners} (owner, key, limit_at)
	VALUES (NEW.owner, NEW.key, coalesce(NEW.limit_at, 9223372036854775807))
	ON CONFLICT (owner, key) DO UPDATE SET limit_at = excluded.limit_at;
END;

-- The schema's version, for later migrations: New refuses a table whose
-- version it does not know.
CREATE TABLE IF NOT EXISTS {schema_table} (
	version INTEGER PRIMARY KEY
) STRICT;
INSERT OR IGNORE INTO {schema_table} (version) VALUES (1);
