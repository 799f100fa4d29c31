// Package sqlite is a session store embedded in the application: one SQLite
// file, no server to run. Sessions survive a restart of the application
// (TestSessionsSurviveReopen), and several processes on one machine may
// share the file, each through a Store of its own, and see each other's
// sessions at once (TestSessionsSharedBetweenStores,
// TestTwoProcessesShareTheFile). It has every optional capability of
// backend.Store but backend.InProcess and backend.ExpiryNotifier:
// conditional writes (backend.Conditional), an atomic move for Migrate
// (backend.Replacer), a load that slides the deadline (backend.GetToucher)
// and the owner index (backend.Indexer), kept in the same statement as a
// login's write (backend.OwnerRecorder). It passes the conformance suite
// (TestConformance) and the core's suites (TestConcurrency, TestSecurity,
// TestWrites, TestLifetime, TestEvents, TestHeaderTokens, TestMerge,
// TestDump).
//
// It is a Go module of its own, so that applications that do not use it
// download no SQL driver.
//
// # Driver
//
// The store uses modernc.org/sqlite, SQLite's C source translated to Go:
// no cgo and no C toolchain, so the application still builds with
// CGO_ENABLED=0, and cross-compiles without a C cross-compiler to the
// platforms the driver supports. It is a database/sql driver, registered
// as "sqlite" (DriverName) by importing this package, and the most used
// cgo-free SQLite for Go. The store needs SQLite 3.37 or later (STRICT
// tables; UPDATE ... RETURNING, which the load's slide uses, came with
// 3.35); v1.62.0 of the driver, which this module requires, bundles 3.54
// (TestSQLiteVersion). github.com/ncruces/go-sqlite3, which runs SQLite
// compiled to WebAssembly in the wazero runtime, would serve too, but it
// brings a WebAssembly runtime into every program that imports the store,
// for no gain to a session store. New is written for a *sql.DB of any
// database/sql driver of SQLite 3.37 or later, but only modernc.org/sqlite
// is tested, and DSN writes its data source names only.
//
// # Constructing it
//
// For a file of the store's own, Open does everything: it opens the file
// (creating it if need be) with the pragmas below, creates the schema if it
// is not there, and returns a Store whose Close closes the file:
//
//	store, err := sqlite.Open(ctx, "/var/lib/app/sessions.db", sqlite.Options{})
//	defer store.Close() // stops the cleanup goroutine and the checkpointer, closes the file
//	mgr, err := sessions.New[Visit](sessions.Config{Store: store})
//
// To keep sessions in a file the application uses as well, open the handle
// with OpenDB (or sql.Open(DriverName, DSN(path, opts))), create the schema
// once with CreateSchema (or apply SchemaSQL with your migration tool), and
// hand the handle to New; the application keeps and closes it:
//
//	db, err := sqlite.OpenDB("/var/lib/app/app.db", sqlite.Options{})
//	err = sqlite.CreateSchema(ctx, db, sqlite.Options{}) // idempotent
//	store, err := sqlite.New(ctx, db, sqlite.Options{})   // never creates anything
//	defer store.Close()
//
// Open refuses "", ":memory:" and file: URIs (TestOpenRefusesNonFiles):
// sessions that live in the process belong in backend/memory. Its context
// bounds it, also while another connection holds a lock the opening needs
// (TestOpenHonoursTheContext). New checks,
// on one of the handle's connections, that it is in WAL mode with a
// busy_timeout above 0, and that the schema is there at SchemaVersion,
// naming what to do otherwise (TestNewChecksTheHandle, TestSchemaVersion).
// CreateSchema runs in one BEGIN IMMEDIATE transaction, so processes
// starting together may all call it (TestCreateSchemaConcurrently).
//
// # What is stored
//
// One row per session in the STRICT table Options.Table (default
// "sessions"), as schema.sql declares it:
//
//	key      TEXT, primary key  the SHA-256 of the session's token, unpadded URL-safe base64
//	value    BLOB               the core's envelope: timestamps, handle, the owner's hash, and
//	                            the session's data, CSRF secret and binding sealed under a key
//	                            derived from the token
//	version  INTEGER            counted up by every write (a uint64, same 64 bits)
//	expires  INTEGER            the idle deadline, in microseconds since the Unix epoch: the row
//	                            is dead from then on
//	limit_at INTEGER NULL       the absolute deadline (NULL: none); no touch passes it
//	idle     INTEGER            the session's own idle timeout (ns; 0: the application's),
//	                            which a load slides expires by (backend.Entry.Idle)
//	owner    BLOB NULL          the SHA-256 of the owner the core gave the write that put the
//	                            session under this key, for the triggers below; never returned
//	writes   TEXT               random ids of its last writes, up to four (see Open outcomes)
//
// The owner index is the table Options.Table+"_owners" (owner BLOB, key
// TEXT, limit_at INTEGER; primary key owner, key), whose owner column is
// the SHA-256 of the owner string the core gives (itself a hash of the
// owner, never the user id). Options.Table+"_schema" holds SchemaVersion.
// An index on expires and one on the owner records' limit_at serve the
// cleanup, and two triggers record a session's owner in the same statement
// as the write that puts it under a new key (backend.OwnerRecorder,
// TestConformance/OwnerRecordedOnCreate and OwnerRecordedOnReplace). The
// table name is validated (ASCII letters, digits and underscores) and
// always quoted: no SQL reaches a statement through it (TestTableNames,
// FuzzSchemaSQL).
//
// The token never reaches the file, and the store does not implement
// backend.InProcess (the file outlives the process and is copied by
// backups), so the core seals what it stores: a copy of the file reveals no
// token, no session data, no CSRF secret and no owner (TestDump reads every
// column of every table of the file, SQLite's own included).
//
// # Pragmas
//
// DSN, which Open and OpenDB use, sets on every connection
// (TestDSNPragmas):
//
//   - journal_mode(WAL): readers and the writer do not wait for each other
//     (TestWriteLockHeldElsewhere: a load goes on while another connection
//     holds the write lock). The mode is kept in the file. SQLite's WAL
//     mode needs the processes sharing a file on one machine (it keeps an
//     index in shared memory): not on a network file system.
//   - busy_timeout(Options.BusyTimeout, default 5 s): a write waits for the
//     write lock held by another connection or process instead of failing
//     at once with SQLITE_BUSY; past the timeout it fails with SQLITE_BUSY,
//     and a wait ends with the context of the call
//     (TestWriteLockHeldElsewhere).
//   - synchronous(NORMAL): in WAL mode a commit does not wait for fsync.
//     A process that ends without closing anything, as a crash does,
//     loses nothing it was told was stored (the child process of
//     TestTwoProcessesShareTheFile); SQLite documents that a power cut may
//     lose the last commits but does not corrupt the file. Append
//     "&_synchronous=FULL" to the DSN for an fsync per commit (ExampleDSN,
//     TestDSNAppended; a second _pragma=synchronous(FULL) would not win:
//     the driver runs the _pragma parameters in alphabetical order).
//   - wal_autocheckpoint(0): no commit copies the -wal file back into the
//     database file, which SQLite otherwise does inside the commit that
//     brings the -wal file past 1,000 pages, at that request's expense.
//     Each Store checkpoints instead, from a goroutine of its own, after a
//     write of its own, at most once per CheckpointEvery (1 s), with
//     PASSIVE checkpoints, which wait for no reader nor writer
//     (TestStoreCheckpoints). A handle opened with DSN and written without
//     a Store does not checkpoint by itself (TestStoreCheckpoints).
//
// # Statements per request
//
// Counted through the sessions core and its middleware, on the driver's
// connections (TestStatementsPerRequest, which also counts BEGIN, COMMIT
// and ROLLBACK; no request sends any: every statement is a transaction of
// its own):
//
//	anonymous visitor who stores nothing   0
//	creating a session                     1  INSERT ... ON CONFLICT DO UPDATE ... WHERE the row is dead
//	read-only, refresh not due             1  SELECT (commits nothing: the file is not written)
//	read-only, refresh due                 2  SELECT, UPDATE ... RETURNING of expires
//	modifying                              2  SELECT, conditional UPDATE
//	modifying, refresh due                 3  SELECT, UPDATE ... RETURNING of expires, conditional UPDATE
//	Migrate (login)                        2  SELECT, UPDATE OR REPLACE of the key (Replace), which also
//	                                          records the owner (backend.OwnerRecorder)
//	Migrate to another owner               3  the same, and RemoveOwned of the old owner's record
//	Destroy                                2  SELECT, DELETE; 3 with an owner (RemoveOwned)
//
// A load reads first, with a SELECT that neither takes the write lock nor
// writes anything, and slides the deadline only when the refresh is due, with an UPDATE ...
// RETURNING that applies only if the deadline, limit and idle timeout are
// still those read. One UPDATE ... RETURNING for every load would take the
// file's write lock on each, and loads would queue behind the writes of
// every process. So a read whose refresh is not due commits nothing
// (TestReadsWriteNothing: 200 such loads leave PRAGMA data_version and the
// -wal file as they were).
//
// # Conditional writes, Migrate
//
// SetIf with a version is UPDATE ... WHERE key = ?key AND version = ?old
// AND expires > ?now. SetIf with version 0 is INSERT ... ON CONFLICT (key) DO
// UPDATE ... WHERE the row there is dead: a new session only where no live
// row is. Replace is one UPDATE OR REPLACE that changes the row's key, only
// if the row is live at the version loaded and no live row holds the new
// key; OR REPLACE lets it take the place of a dead row there
// (TestConformance/ReplaceOverExpired). One statement is one transaction,
// so no observer sees both keys or neither. A write that changes nothing
// costs one SELECT more, which tells a session that is gone
// (backend.ErrNotFound) from one another request changed
// (backend.ErrConflict) (TestAnswersCostOneRead).
//
// Every write is one statement in a transaction of its own: no request
// holds a transaction open across statements, and no transaction reads
// first and then turns into a write (the case where SQLite answers
// SQLITE_BUSY at once instead of waiting). Writers wait for the file's write lock in SQLite's busy handler
// (Options.BusyTimeout), this Store's as another process's; the Store puts
// no queue of its own in front of them (one was tried and starved contended
// Updates of two Managers: each write, queued behind the other Manager's,
// found the session changed). 32 goroutines on two Managers of one Store
// increment one session 6,400 times with Update and lose none, none failing
// (TestConcurrency); two processes, 4 goroutines each, do the same on one
// file (TestTwoProcessesShareTheFile, which ends with PRAGMA
// integrity_check). The busy handler serves no queue: it polls with
// growing sleeps, up to 100 ms apart, so under sustained contention a
// writer that has waited long retries less often than the newcomers.
//
// # Clock
//
// Every statement compares deadlines with a time it is given, never with
// SQLite's clock ('now', CURRENT_TIMESTAMP): the core's now for the
// operations that take one (Touch, SetIf, Replace, GetTouch), this
// process's clock for the others (Get, Set, the owner index, the cleanup)
// (TestNoStatementReadsTheDatabaseClock). A row whose expires is not after
// that time is dead to every statement: it is not returned, extended or
// written back over as live (TestConformance/CoreClockAhead*). Deadlines
// are kept to the microsecond.
//
// # Expiry and cleanup
//
// Dead rows are invisible at once; a background goroutine deletes them
// every Options.CleanupInterval (default 1 minute; a negative interval
// starts none, for Cleanup by hand), with the owner records past their
// limit (TestCleanupRunsInBackgroundUntilClose). It works in batches of
// Options.CleanupBatch rows (default 1000), each one DELETE of rows found
// through the index on expires (TestCleanupStatementUsesTheExpiresIndex),
// so a short transaction of its own, until a batch finds fewer rows
// (TestCleanupDeletesExpiredInBatches); between two batches it pauses as
// long as the last one took, at most 100 ms (TestCleanupPausesBetweenBatches).
// A batch and the Store's other writes take turns in the process: a write
// that finds a batch running waits on a channel and starts the moment it
// ends, and a batch waits for the writes under way (TestWriteGate). They
// would otherwise take turns in SQLite's busy handler, which has no queue
// and sleeps longer at each try (up to 100 ms), so that a write could miss
// one pause after another. Writes through other handles and processes
// still wait for a batch in the busy handler. Each process runs its own
// cleanup; their batches wait for each other like any writes. The store does not implement backend.ExpiryNotifier: a row
// may be deleted by another process's cleanup, whose Managers this process
// does not hear. Close stops the goroutine.
//
// On a 2-core machine, with nothing else writing, the cleanup deleted
// 1,000,000 expired sessions and 1,000,000 owner records in 24 s, a batch
// of 1,000 rows holding the write lock for 3.9 ms (the median;
// BenchmarkCleanupQuiet). While 8 clients kept loading and changing
// sessions through the cleaning Store and another Store on the file
// (BenchmarkCleanup, with the write gate), it took 297 s: of 4,721,060
// requests served meanwhile none failed, the 99th percentile took 3.8 ms
// and the longest 2.0 s (a write through the other Store waits for a
// batch in SQLite's busy handler). Before the gate: 155 s, 1,462,482
// requests, 7.5 ms and 2.9 s. TestCleanupOfManyExpiredRowsUnderLoad does the same with 20,000
// sessions.
//
// # Open outcomes
//
// An embedded database loses no reply on a network, but the driver can
// leave a write's outcome open all the same: when the context of a
// statement ends while it runs, modernc.org/sqlite interrupts it and
// returns the context's error, also when the statement had committed before
// the interrupt came. SQLite itself is exact: by then the statement's
// transaction has committed or rolled back, and the rows say which. Every
// write that stores a row carries a random write id, which the row keeps
// among the ids of its last writes (up to four). After such an error the
// store reads the rows back, with a context of its own bounded by
// Options.ResolveWithin (default 1 s), and reports success for a write that
// landed (its write id, or the state it sets, is in the rows), the
// context's error for one that did not (the rows still show what it would
// have changed), and an error matching backend.ErrUnknownOutcome when the
// rows cannot tell or the read fails (the core's middleware answers 504):
// never a plain failure for a write that landed
// (TestWriteReportedCancelledAfterItLandedIsResolved,
// TestWriteCancelledBeforeItRanIsNotApplied, TestOpenOutcomeUnresolved;
// TestCancelledWritesReportTheTruth cancels 300 real writes at random
// moments and checks each answer against the file). Errors SQLite answered
// with (SQLITE_BUSY past the busy timeout, SQLITE_FULL, SQLITE_READONLY)
// come from statements it rolled back and are returned as they are
// (TestWriteLockHeldElsewhere, TestDiskFull, TestReadOnlyFile).
//
// # Faults
//
// A file that cannot grow (a full disk; the test caps max_page_count)
// fails the write that does not fit with SQLITE_FULL, and the middleware
// answers 500 without setting a cookie; the sessions stored before stay,
// and writes go on once room is made (TestDiskFull). A handle that cannot
// write the file serves the sessions stored and fails the writes
// (SQLITE_READONLY; TestReadOnlyFile). Columns holding values of the wrong
// type (a table altered by hand) and files overwritten with garbage are
// errors, never a panic and never a missing session; a value whose bytes
// are garbage makes the core start a new session, with a warning
// (TestCorruptRows, TestCorruptFile).
package sqlite
