// Package postgres is a session store on PostgreSQL through pgx v5, with
// every optional capability of backend.Store: conditional writes
// (backend.Conditional), an atomic move for Migrate (backend.Replacer), a
// load that slides the deadline in the same statement (backend.GetToucher)
// and the owner index (backend.Indexer), kept in the same statement as a
// login's write (backend.OwnerRecorder). Many application servers pointed at
// the same database share their sessions.
//
// It is a Go module of its own, so that applications that do not use it
// download no SQL driver. Construct it around the pool the application
// already has; the store never opens connections of its own and never
// closes the pool:
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app")
//	err = postgres.CreateSchema(ctx, pool, postgres.Options{}) // once, or apply SchemaSQL with your migrations
//	store, err := postgres.New(ctx, pool, postgres.Options{})
//	defer store.Close() // stops the cleanup goroutine
//	mgr, err := sessions.New[Visit](sessions.Config{Store: store})
//
// # What is stored
//
// One row per session in the table Options.Table (default "sessions"):
//
//	key      text, primary key   the SHA-256 of the session's token, unpadded URL-safe base64
//	value    bytea               the core's envelope: timestamps, handle, owner's hash, and the
//	                             session's data, CSRF secret and binding sealed (AES-256-GCM)
//	                             under a key derived from the token
//	version  bigint              counted up by every write (a uint64, same bits)
//	expires  timestamptz         the idle deadline: the row is dead from then on
//	limit_at timestamptz         the absolute deadline (NULL: none); no touch passes it
//	idle     bigint              the session's own idle timeout (ns; 0: the application's),
//	                             which a load slides expires by (backend.Entry.Idle)
//	writes   bigint[]            random ids of the last four writes (see Lost replies)
//
// The token never reaches the database, and the store does not implement
// backend.InProcess, so the core seals what it stores: a dump or a backup
// of the tables reveals no token, no session data, no CSRF secret and no
// owner. The owner index is the table Options.Table+"_owners" (owner bytea,
// key text, limit_at timestamptz; primary key owner, key), whose owner column
// is the SHA-256 of the owner string the core gives, itself the owner's
// keyed hash. Options.Table+"_schema" holds the schema's version
// (SchemaVersion).
//
// # Schema
//
// The schema is the file schema.sql, embedded in the package: the three
// tables, an index on expires and one on the owner records' limit_at.
// CreateSchema applies it (idempotent, in one transaction, under an
// advisory lock, so that instances starting together may all call it);
// SchemaSQL returns it for a table name, for applications that run their
// migrations with a tool of their own. New checks that the schema is there
// at SchemaVersion. The table name is validated (letters, digits,
// underscores, optionally "schema.table") and always quoted: no SQL reaches
// a statement through it.
//
// # Statements per request
//
// Counted through the sessions core and its middleware with a pgx
// QueryTracer (TestRoundTrips); once a connection has prepared a statement
// (pgx caches prepared statements per connection), each is one round trip:
//
//	anonymous visitor who stores nothing   0
//	read-only, refresh not due             1  (writes no row: no dead tuple, no WAL)
//	read-only, refresh due                 1  (load and slide in one statement)
//	modifying                              2  (load, conditional UPDATE)
//	Migrate                                1 more (Replace), which also records the
//	                                       owner in the index (backend.OwnerRecorder);
//	                                       1 more when the session changes owners
//	                                       (RemoveOwned of the old owner's record)
//	creating a session                     1  (INSERT ... ON CONFLICT)
//
// The load is one statement whether or not a refresh is due: a CTE whose
// UPDATE matches only a live row whose deadline is due to move (and is not
// at its limit), followed by a SELECT that returns the row as the
// statement's snapshot saw it when the UPDATE wrote nothing. A read whose
// refresh is not due therefore writes no tuple and takes no transaction id
// (TestReadWritesNothing checks the WAL position and the table statistics).
//
// # Conditional writes, Migrate
//
// SetIf with a version is an UPDATE ... WHERE key = $1 AND version = $old AND
// expires > $now, whose statement also returns the live version its
// snapshot saw, which tells a session that is gone (backend.ErrNotFound)
// from one another request changed (backend.ErrConflict); only when a
// concurrent writer got in between the snapshot and the write does a second
// SELECT settle it. SetIf with version 0 is an INSERT ... ON CONFLICT DO
// UPDATE ... WHERE the existing row is dead: a new session only where no
// live row is. Replace is one statement: it locks the old row (SELECT ... FOR
// UPDATE in a CTE, which waits for a concurrent writer and sees its latest
// version), inserts the new row only if the old one is live at the version
// loaded and the new key holds no live row, and deletes the old row only if
// the new one was written: both or neither, and no observer sees both keys
// or neither.
//
// # Clock
//
// Every statement compares deadlines with a time it is given, never with
// the database's now(): the core's now for the operations that take one
// (Touch, SetIf, Replace, GetTouch), this process's clock for the others
// (Get, Set, the owner index, the cleanup). A row whose expires is not after
// that time is dead to every statement: it is not returned, extended or
// written back over as live. So skew between the application and the
// database can never revive a session, and a load never returns a row past
// its deadline by the core's clock.
//
// # Expiry and cleanup
//
// Dead rows are invisible at once; a background goroutine reclaims them
// every Options.CleanupInterval (default 1 minute), in batches of
// Options.CleanupBatch rows (default 1000): each batch one short DELETE of
// rows found through the index on expires, by tuple id, skipping rows a
// request holds locked (FOR UPDATE SKIP LOCKED), so that no batch waits for
// a request nor holds locks for long. Owner records past their limit go the
// same way. Close stops the goroutine; Cleanup runs one pass by hand (with a
// negative CleanupInterval, from a cron job say). bench/RESULTS.md
// (BenchmarkPostgresCleanup) times the removal of 1,000,000 expired rows
// and the longest wait of a request served meanwhile.
//
// # Lost replies
//
// A write whose connection breaks after it was sent (the server stopped, the
// network failed) may or may not have been committed. Every write carries a
// random 64-bit write id, which the row keeps among the ids of its last four
// writes, and every write statement does nothing when its id is already
// there. So the store sends a write whose outcome is unknown again, until
// PostgreSQL answers, for at most Options.ResolveWithin (default 5 s) and
// never past the context's deadline, and reports what happened: success for
// a write that landed (even if other writers built on it meanwhile), the
// conflict or the missing session otherwise. When it cannot find out, the
// error matches backend.ErrUnknownOutcome (the core's middleware answers
// 504): never a plain failure for a write that may have landed
// (TestWriteWithLostReplyIsResolved drops the server's answer in a proxy).
// A SetIf that ends a session (a dead Expires) therefore leaves the row,
// emptied and dead, with its write id, for the cleanup to delete. Errors PostgreSQL answered with (the statement failed and was
// rolled back) and failures to connect (nothing was sent) are returned as
// they are.
package postgres
