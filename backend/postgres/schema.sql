-- Schema of github.com/sessionx/sessions/backend/postgres, version 1.
--
-- CreateSchema runs this file in one transaction, with its placeholders (the
-- names table, owners, schema_table, expires_idx and owners_limit_idx in
-- braces) replaced by the quoted names derived from Options.Table (default
-- "sessions": sessions, sessions_owners, sessions_schema,
-- sessions_expires_idx, sessions_owners_limit_idx). SchemaSQL returns it so
-- filled in, for applications that run their migrations with a tool of their
-- own. Every statement is idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING).
--
-- Times are timestamptz. Every statement of the store compares them with the
-- application's clock (the sessions core's now), passed as a parameter,
-- never with the database's now(): skew between the two never revives a
-- session.

-- One row per session. key is the SHA-256 of the session's token in
-- unpadded URL-safe base64 (43 characters); the token itself never reaches
-- the database. value is the core's envelope, sealed with a key derived from
-- the token: the session's data, owner, binding and CSRF secret are not
-- readable here. A row whose expires is not after the caller's now is dead:
-- no statement returns, extends or writes back over it as live, and the
-- cleanup deletes it.
CREATE TABLE IF NOT EXISTS {table} (
	key      text COLLATE "C" PRIMARY KEY,
	value    bytea       NOT NULL,
	-- Counted up by every write of the session (a uint64, stored as the
	-- bigint of the same bits); conditional writes compare it.
	version  bigint      NOT NULL,
	-- The idle deadline: the row is dead from this instant on.
	expires  timestamptz NOT NULL,
	-- The absolute deadline: no touch moves expires past it. NULL: none.
	limit_at timestamptz,
	-- The session's own idle timeout in nanoseconds, which a load slides
	-- expires by; 0: the application's default (backend.Entry.Idle).
	idle     bigint      NOT NULL DEFAULT 0,
	-- Random ids of the last four writes, newest first, so that a write
	-- sent again after its reply was lost is recognised and not applied
	-- twice (Options.ResolveWithin).
	writes   bigint[]    NOT NULL DEFAULT '{}'
);

-- The cleanup deletes expired rows in batches found through this index.
CREATE INDEX IF NOT EXISTS {expires_idx} ON {table} (expires);

-- The owner index (backend.Indexer): which session keys belong to an owner,
-- until when. owner is the SHA-256 of the owner string the core gives (which
-- is itself the owner's hash, never the user id).
CREATE TABLE IF NOT EXISTS {owners} (
	owner    bytea            NOT NULL,
	key      text COLLATE "C" NOT NULL,
	limit_at timestamptz      NOT NULL,
	PRIMARY KEY (owner, key)
);

-- The cleanup deletes records past their limit through this index.
CREATE INDEX IF NOT EXISTS {owners_limit_idx} ON {owners} (limit_at);

-- The schema's version, for later migrations: New refuses a table whose
-- version it does not know.
CREATE TABLE IF NOT EXISTS {schema_table} (
	version integer PRIMARY KEY
);
INSERT INTO {schema_table} (version) VALUES (1) ON CONFLICT DO NOTHING;
