-- Schema of github.com/sessionx/sessions/backend/mysql, version 1.
--
-- CreateSchema runs these statements one at a time (the driver sends one
-- statement per call unless the DSN says multiStatements=true, which this
-- package does not need), with the names table, owners and schema_table in
-- braces replaced by the quoted names derived from Options.Table (default
-- "sessions": `sessions`, `sessions_owners`, `sessions_schema`). SchemaSQL
-- returns it so filled in, for applications that run their migrations with
-- a tool of their own. Every statement is idempotent (IF NOT EXISTS,
-- INSERT IGNORE).
--
-- Only SQL that MySQL 8.0 and MariaDB 10.6 and later both accept: the
-- indexes are declared inside CREATE TABLE (MySQL has no CREATE INDEX IF
-- NOT EXISTS), and there are no CHECK constraints, generated columns,
-- functional defaults or RETURNING.
--
-- Deadlines are BIGINT microseconds since 1970-01-01 00:00:00 UTC, not
-- DATETIME or TIMESTAMP: an integer means the same instant whatever the
-- server's and the connection's time_zone and the DSN's parseTime and loc,
-- has no 2038 limit (TIMESTAMP) and keeps the microseconds. Every statement
-- of the store compares them with the application's clock (the sessions
-- core's now), passed as a parameter, never with the database's NOW(): skew
-- between the two never revives a session. To read them by hand:
-- FROM_UNIXTIME(expires / 1000000).
--
-- Binary columns only (VARBINARY, BINARY, MEDIUMBLOB): no character set or
-- collation applies to keys, owners or values, so the server's and the
-- connection's character sets do not matter and comparisons are bytewise.

-- One row per session. key is the SHA-256 of the session's token in
-- unpadded URL-safe base64 (43 bytes); the token itself never reaches the
-- database. value is the core's envelope, sealed with a key derived from
-- the token: the session's data, owner, binding and CSRF secret are not
-- readable here; MEDIUMBLOB holds up to 16 MiB (and the server's
-- max_allowed_packet bounds a statement: 16 MiB by default on MariaDB,
-- 64 MiB on MySQL 8). A row whose expires is not after the caller's now is
-- dead: no statement returns, extends or writes back over it as live, and
-- the cleanup deletes it.
CREATE TABLE IF NOT EXISTS {table} (
	`key`    VARBINARY(255)  NOT NULL,
	`value`  MEDIUMBLOB      NOT NULL,
	-- Counted up by every write of the session; conditional writes
	-- compare it.
	version  BIGINT UNSIGNED NOT NULL,
	-- The idle deadline (microseconds since the Unix epoch): the row is
	-- dead from this instant on. 0 marks a row ended by a conditional write.
	expires  BIGINT          NOT NULL,
	-- The absolute deadline: no touch moves expires past it. NULL: none.
	limit_at BIGINT          NULL,
	-- The session's own idle timeout in nanoseconds, which a load slides
	-- expires by; 0: the application's default (backend.Entry.Idle).
	idle     BIGINT          NOT NULL DEFAULT 0,
	-- Random 8-byte ids of the last four writes, newest first, so that a
	-- write sent again after its reply was lost is recognised and not
	-- applied twice (Options.ResolveWithin).
	writes   VARBINARY(32)   NOT NULL DEFAULT '',
	PRIMARY KEY (`key`),
	-- The cleanup finds dead rows in batches through this index.
	KEY expires_idx (expires)
) ENGINE=InnoDB;

-- The owner index (backend.Indexer): which session keys belong to an owner,
-- until when. owner is the SHA-256 of the owner string the core gives
-- (which is itself the owner's hash, never the user id).
CREATE TABLE IF NOT EXISTS {owners} (
	owner    BINARY(32)     NOT NULL,
	`key`    VARBINARY(255) NOT NULL,
	limit_at BIGINT         NOT NULL,
	PRIMARY KEY (owner, `key`),
	-- The cleanup finds records past their limit through this index.
	KEY limit_idx (limit_at)
) ENGINE=InnoDB;

-- The schema's version, for later migrations: New refuses a table whose
-- version it does not know.
CREATE TABLE IF NOT EXISTS {schema_table} (
	version INT NOT NULL,
	PRIMARY KEY (version)
) ENGINE=InnoDB;

INSERT IGNORE INTO {schema_table} (version) VALUES (1);
