// Package mysql is a session store on MySQL or MariaDB through database/sql
// and github.com/go-sql-driver/mysql, with every optional capability of
// backend.Store: conditional writes (backend.Conditional), an atomic move
// for Migrate (backend.Replacer), a load that slides the deadline
// (backend.GetToucher) and the owner index (backend.Indexer). Many
// application servers pointed at the same database share their sessions.
//
// It is a Go module of its own, so that applications that do not use it
// download no SQL driver. Construct it around the *sql.DB the application
// already has; the store never opens connections of its own and never
// closes the *sql.DB:
//
//	db, err := sql.Open("mysql", "app:secret@tcp(db.internal:3306)/app?interpolateParams=true")
//	err = mysql.CreateSchema(ctx, db, mysql.Options{}) // once, or apply SchemaSQL with your migrations
//	store, err := mysql.New(ctx, db, mysql.Options{})
//	defer store.Close() // stops the cleanup goroutine
//	mgr, err := sessions.New[Visit](sessions.Config{Store: store})
//
// Point it at the primary: a replica's reads may lag behind the writes the
// conditional writes are checked against. (This package and the driver are
// both named mysql: where code needs both by name, import one under another,
// e.g. gomysql "github.com/go-sql-driver/mysql".)
//
// # DSN
//
// The store requires nothing of the DSN: its columns are binary (no
// character set or collation applies), its deadlines integers (parseTime
// and loc do not matter), its statements read the same with any sql_mode
// (ANSI_QUOTES, PIPES_AS_CONCAT and NO_BACKSLASH_ESCAPES included), with
// clientFoundRows on or off, and at REPEATABLE READ or READ COMMITTED
// (TestConformanceWhateverTheDSN runs the conformance suite with each of
// these the other way). It recommends:
//
//   - interpolateParams=true: the driver sends each statement with its
//     arguments in one COM_QUERY, one round trip. Without it, database/sql
//     prepares every statement on the server, executes it and closes it:
//     two round trips per statement (the close is not answered). The
//     driver escapes the arguments for the connection's character set and
//     refuses interpolation with the few multibyte sets where that is
//     unsafe.
//   - timeout=5s (or so): how long dialing the server may take; with the
//     driver's default, a request waits for the operating system's TCP
//     timeout while the server is unreachable.
//   - db.SetMaxIdleConns at about the number of requests served at once:
//     database/sql keeps 2 idle connections by default, so that under load
//     it closes connections and opens new ones (a TCP and MySQL handshake)
//     for a good part of the requests; and db.SetConnMaxLifetime below the
//     server's wait_timeout.
//
// multiStatements is not needed (and widens what an SQL injection elsewhere
// in the application can do); readTimeout and writeTimeout are not needed
// either (every call honours its context).
//
// # What is stored
//
// One row per session in the InnoDB table Options.Table (default
// "sessions"):
//
//	key      VARBINARY(255), primary key  the SHA-256 of the session's token, unpadded URL-safe base64
//	value    MEDIUMBLOB            the core's envelope: timestamps, handle, owner's hash, and the
//	                               session's data, CSRF secret and binding sealed (AES-256-GCM)
//	                               under a key derived from the token; at most 16 MiB
//	version  BIGINT UNSIGNED       counted up by every write
//	expires  BIGINT                the idle deadline, in microseconds since the Unix epoch: the
//	                               row is dead from then on (0: ended by a conditional write)
//	limit_at BIGINT NULL           the absolute deadline (NULL: none); no touch passes it
//	idle     BIGINT                the session's own idle timeout (ns; 0: the application's),
//	                               which a load slides expires by (backend.Entry.Idle)
//	writes   VARBINARY(32)         random 8-byte ids of the last four writes (see Lost replies)
//
// Deadlines are integers, not DATETIME or TIMESTAMP: an integer is the same
// instant whatever the server's and the connection's time_zone and the
// DSN's parseTime and loc, has no 2038 limit (TIMESTAMP has), and keeps the
// microseconds. To read one by hand: FROM_UNIXTIME(expires / 1000000).
//
// The token never reaches the database, and the store does not implement
// backend.InProcess, so the core seals what it stores: a dump, a backup or
// the binary log of the tables reveals no token, no session data, no CSRF
// secret and no owner (TestDump). The owner index is the table
// Options.Table+"_owners" (owner BINARY(32), key VARBINARY(255), limit_at
// BIGINT; primary key owner, key), whose owner column is the SHA-256 of the
// owner string the core gives, itself the owner's keyed hash.
// Options.Table+"_schema" holds the schema's version (SchemaVersion).
//
// # Schema
//
// The schema is the file schema.sql, embedded in the package: the three
// tables, with an index on expires and one on the owner records' limit_at
// declared inside CREATE TABLE. CreateSchema applies it (idempotent,
// statement by statement, under a named lock, GET_LOCK, so that instances
// starting together may all call it; MySQL commits each DDL statement at
// once, so there is no transaction around them); SchemaSQL returns it for a
// table name, for applications that run their migrations with a tool of
// their own. New checks that the schema is there at SchemaVersion. The
// table name is validated (letters, digits, underscores, optionally
// "database.table") and always quoted with backticks: no SQL reaches a
// statement through it.
//
// # Statements per request
//
// Counted on the wire, as commands the server receives, through the
// sessions core and its middleware (TestRoundTrips), with
// interpolateParams=true; every statement runs in autocommit mode, so the
// store sends no BEGIN and no COMMIT, ever:
//
//	anonymous visitor who stores nothing   0
//	read-only, refresh not due             1  SELECT (writes nothing: no undo, no redo, no binary log)
//	read-only, refresh due                 2  SELECT, UPDATE of expires
//	modifying                              2  SELECT, conditional UPDATE
//	modifying, refresh due                 3  SELECT, UPDATE of expires, conditional UPDATE
//	creating a session                     1  INSERT
//	Migrate (login)                        2  SELECT, UPDATE of the primary key (Replace); with an
//	                                          owner 4: the owner index's two AddOwned around it
//	Destroy                                2  SELECT, DELETE; 3 with an owner (RemoveOwned)
//
// Without interpolateParams, every figure doubles (a prepare and an execute
// per statement, and an unanswered close). Rarer paths cost one or two
// statements more: a conditional write that does not apply reads the row
// (SELECT) to tell a session that is gone (backend.ErrNotFound) from one
// another request changed (backend.ErrConflict); a create over a dead row
// gets error 1062 from its INSERT and sends an UPDATE; a Replace onto a
// dead row deletes it and moves again.
//
// MariaDB has no UPDATE ... RETURNING (and MySQL no RETURNING at all), so a
// load cannot slide the deadline and return the row in one statement, as
// the PostgreSQL store does. The store reads first: a read whose refresh
// is not due (the common case: once per Config.TouchInterval per session
// at most is one due) is one SELECT and writes nothing (TestReadWritesNothing
// checks the server's counters); a due one adds an UPDATE that writes the
// row only if it is still as read (same version, same deadline), so it
// never writes back over a concurrent write. Reading first also keeps the
// slide's computation (backend.Slide) in Go, the same code as every other
// store's. Multi-statement packets or stored procedures could save a round
// trip on the due refresh and the rarer paths, but they would need
// multiStatements=true in the application's DSN or CREATE ROUTINE
// privileges and procedure code to migrate with the schema; neither is
// worth one round trip every TouchInterval.
//
// # Conditional writes, Migrate, locking
//
// SetIf with a version is an UPDATE ... WHERE key = ? AND version = ? AND
// expires > ?now; only when it matches nothing does a SELECT tell gone from
// changed. SetIf with version 0 is a plain INSERT; only when the key is
// taken (error 1062) an UPDATE ... WHERE expires <= ?now writes over a dead
// row. Replace is one UPDATE that rewrites the row's primary key, WHERE key
// = ?old AND version = ? AND expires > ?now: InnoDB locks the old row,
// checks its version on the latest committed state (an UPDATE reads as
// SELECT ... FOR UPDATE does), and moves it in one atomic statement, so no
// observer sees both keys or neither, and a row under the new key fails it
// with error 1062 (ErrConflict if that row is live).
//
// No statement of the sessions table uses INSERT ... ON DUPLICATE KEY
// UPDATE: its affected-row count depends on clientFoundRows, its VALUES()
// is deprecated since MySQL 8.0.20 while the row alias replacing it is not
// MariaDB's, and under REPEATABLE READ it takes next-key locks that make
// concurrent inserts deadlock. Every statement locks at most the rows it
// names by primary key, for the one statement; under REPEATABLE READ (the
// default) a statement that finds no row locks the gap where it would be,
// for that statement only. Every UPDATE whose count the store reads
// changes the row when it matches (a new write id, key or later deadline),
// so the count is the same with clientFoundRows on or off.
//
// A statement chosen as a deadlock's victim (error 1213: the server rolled
// it back, nothing was written; MariaDB Galera reports certification
// conflicts so too) is sent again at once, up to five times, then reported
// as an error that says so (TestDeadlockVictimIsRetried). A lock wait
// timeout (error 1205, after innodb_lock_wait_timeout, 50 s by default:
// only a transaction of the application's own holding a session row could
// cause one) is reported as an error saying that another transaction held
// the row and nothing was written (TestLockWaitTimeoutIsReported).
//
// # Clock
//
// Every statement compares deadlines with a time it is given, never with
// the database's NOW(): the core's now for the operations that take one
// (Touch, SetIf, Replace, GetTouch), this process's clock for the others
// (Get, Set, the owner index, the cleanup). A row whose expires is not
// after that time is dead to every statement: it is not returned, extended
// or written back over as live. So skew between the application and the
// database can never revive a session (TestAppClockAhead,
// TestNoStatementReadsTheDatabaseClock). Deadlines are kept to the
// microsecond, rounded down, which can only shorten a session.
//
// # Expiry and cleanup
//
// Dead rows are invisible at once; a background goroutine reclaims them
// every Options.CleanupInterval (default 1 minute), in rounds: a SELECT of
// the primary keys of up to 100,000 dead rows through the index on expires
// (a plain read, which locks nothing, resuming where the last round ended,
// so that it does not walk again over the index entries InnoDB has yet to
// purge), then DELETEs of those rows by primary key, only if still dead, in
// batches of Options.CleanupBatch rows (default 1000) taken in primary-key
// order. So no statement locks a range (no gap locks in the way of new
// sessions), each DELETE holds at most a batch of row locks for its own few
// milliseconds, and each is deterministic for statement-based replication
// (a DELETE ... LIMIT is not). The DELETE forces the primary key: when few
// of its rows were left (another instance deleted them), MariaDB's
// optimizer chose a range on the index on expires, whose next-key lock
// held the live session with the nearest deadline, and a request
// deadlocked with the cleanup (TestCleanupDeleteLocksNoLiveRow). The
// primary-key order is for the disk: sessions die in deadline order but
// sit in token order, so batches in deadline order touched about one table
// page per row, and a table larger than the buffer pool was read and
// written many times over; in key order a round sweeps the table once.
// Between batches the cleanup pauses as long as the batch took (at most
// 100 ms). Owner records past their limit go the same way. Close stops the
// goroutine; Cleanup runs one pass by hand (with a negative
// CleanupInterval, from a cron job say).
//
// In bench/run-sql.sh (MariaDB 10.11 with its default settings: a 128 MiB
// buffer pool, which the table outgrows, and a flush of the redo log at
// every commit; one session's requests beside the cleanup of 1,000,000
// rows, on a 2-core machine), the cleanup took 45 s; read-only requests
// meanwhile waited at most 36 ms (5.3 ms with no cleanup), requests that
// write (every one slides the deadline) at most 19.3 ms (6.9 ms), none
// failed. Before, with batches in deadline order, the same script's
// cleanup took 131 s beside read-only requests (the longest 14.6 ms: the
// slower cleanup loaded the server less) and 146 s beside writing ones,
// one of which waited 183 ms. The one DELETE statement of
// alexedwards/scs's store took 9 s, and a request waited 6.1 s for its
// locks meanwhile. TestCleanupOfManyExpiredRows deletes 100,000 sessions
// while 8 clients load, change, create and log in sessions of the same
// table: none fails.
//
// # Lost replies
//
// A write whose connection breaks after it was sent (the server stopped,
// the network failed) may or may not have been committed. Every write
// carries a random 8-byte write id, which the row keeps among the ids of
// its last four writes, and every write statement does nothing to a row
// that holds its id. A conditional write that ends a session (a dead
// Expires) empties the row and sets its deadline to 0 rather than deleting
// it, so that its id stays until the cleanup. So the store sends a write
// whose outcome is unknown again, until the server answers, for at most
// Options.ResolveWithin (default 5 s) and never past the context's
// deadline, and reports what happened: success for a write that landed
// (even if other writers built on it meanwhile), the conflict or the
// missing session otherwise. When it cannot find out, the error matches
// backend.ErrUnknownOutcome (the core's middleware answers 504): never a
// plain failure for a write that may have landed
// (TestWriteWithLostReplyIsResolved drops the server's answer in a proxy).
// Errors the server answered with (the statement failed and was rolled
// back) and failures before anything was sent (no connection to be had, or
// driver.ErrBadConn, which the driver returns only then) are returned as
// they are. A context that ends while a statement waits makes the driver
// close the connection, but the server may still run the statement (it
// learns of the closed connection only when it answers): such a write's
// outcome is unknown too.
//
// # MySQL 8 and MariaDB
//
// The tests run on MariaDB 10.11 (internal/mariadbtest starts a private
// server). To keep to what MySQL 8.0 and MariaDB 10.6 and later share, the
// store uses: no RETURNING, no CTE around a write, no ON DUPLICATE KEY
// UPDATE on the sessions table (and, on the owner index, none with VALUES()
// or a row alias), no CREATE INDEX IF NOT EXISTS, no SKIP LOCKED or
// NOWAIT, no SET STATEMENT (MariaDB) or SET_VAR hint (MySQL), no
// sequences, JSON or date and time types, and no session variable (their
// names differ: tx_isolation, transaction_isolation); only LEFT, CONCAT,
// SUBSTRING, LEAST, COALESCE, row constructors in IN, LIMIT with a
// placeholder, GET_LOCK and RELEASE_LOCK, and the error numbers both
// servers share (1062, 1205, 1213, 1146, 1049). The column names that are
// reserved words (key, value) are quoted. Untested on MySQL 8, for want of a
// server on the machine where this store was built: the statements' plans
// (the cleanup's range scan on the index on expires, the row-constructor
// IN of the owner cleanup), its caching_sha2_password authentication
// (the driver needs TLS or allowPublicKeyRetrieval=true for it), and its
// choice of deadlock victims. Set SESSIONS_MYSQL_DSN to a MySQL 8 DSN to run
// the tests against one (internal/mariadbtest).
package mysql
