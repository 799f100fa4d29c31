package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// DriverName is the database/sql driver Open and OpenDB use:
// modernc.org/sqlite's, which this package imports (and so registers).
const DriverName = "sqlite"

// Open opens (creating it if need be) the SQLite database file at path
// with the pragmas the store needs (see DSN), creates the store's schema in
// it if it is not there (CreateSchema), and returns a Store on it that
// owns the handle: Close closes it. ctx bounds the opening: Open returns
// an error wrapping ctx's when it ends, also while the first connection
// waits for a lock another connection holds (which the driver, whose
// connect takes no context, waits for until Options.BusyTimeout; the
// abandoned handle is closed when it is done). path is a file system
// path; "" and ":memory:" are refused (a memory database is one per
// connection: use backend/memory for sessions that live in the process).
//
// Open is for a file of the application's own. To share a *sql.DB with the
// application, or to create the schema with a migration tool, open it with
// OpenDB (or sql.Open(DriverName, DSN(path, opts))) and use New.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if _, err := DSN(path, opts); err != nil {
		return nil, err
	}
	if _, err := tableNames(opts.Table); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sessions: sqlite store: opening %s: %w", path, err)
	}
	type opened struct {
		s   *Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := open(ctx, path, opts)
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		return o.s, o.err
	case <-ctx.Done():
		go func() {
			if o := <-done; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, fmt.Errorf("sessions: sqlite store: opening %s: %w", path, ctx.Err())
	}
}

// open is Open, but for ctx: the driver's connect does not heed it.
func open(ctx context.Context, path string, opts Options) (*Store, error) {
	db, err := OpenDB(path, opts)
	if err != nil {
		return nil, err
	}
	if err := CreateSchema(ctx, db, opts); err != nil {
		db.Close()
		return nil, err
	}
	s, err := newStore(ctx, db, opts, true)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenDB returns a *sql.DB on the SQLite file at path, opened with DSN(path,
// opts), whose pool keeps up to max(4, GOMAXPROCS) connections open and
// idle (each connection sets its pragmas and prepares the store's
// statements once). Reads run in parallel on them (WAL mode); writes take
// the file's write lock one at a time whatever the pool's size. It checks
// that the file opens as an SQLite database in WAL mode. The caller closes
// the handle.
func OpenDB(path string, opts Options) (*sql.DB, error) {
	dsn, err := DSN(path, opts)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(DriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("sessions: sqlite store: opening %s: %w", path, err)
	}
	conns := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := checkPragmas(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (opening %s)", err, path)
	}
	return db, nil
}

// DSN returns the data source name of modernc.org/sqlite (driver DriverName)
// that opens the file at path as the store needs it, for an application that
// opens its own *sql.DB (with sql.Open, or through sqlite.NewConnector to
// wrap the connections) and hands it to New; append "&_pragma=..." for
// pragmas of your own (modernc.org/sqlite runs the _pragma parameters
// busy_timeout first, then in alphabetical order, not in the order given: a
// second _pragma for one of the four below need not win). It is a file: URI
// of path made absolute, every character SQLite's URI syntax reserves
// escaped, whose _pragma parameters set, on every connection:
//
//   - busy_timeout(Options.BusyTimeout in ms, default 5000, at least 1,
//     at most SQLite's largest, 2^31-1 ms or about 24.8 days): a statement
//     waits for the file's write lock held by another connection or process
//     (retrying as SQLite's busy handler does) instead of failing at once
//     with SQLITE_BUSY;
//   - journal_mode(WAL): readers never wait for the writer nor the writer
//     for readers, and a commit is one append to the -wal file (persistent:
//     the file stays in WAL mode);
//   - synchronous(NORMAL): in WAL mode, a commit does not wait for fsync; a
//     crash of the application loses nothing, a power cut may lose the last
//     commits (never corrupts). Append "&_synchronous=FULL" (a key the
//     driver applies after every _pragma) to make every commit durable at
//     the cost of an fsync each;
//   - wal_autocheckpoint(0): no commit checkpoints the -wal file into the
//     database file; every Store does it from a goroutine of its own,
//     off the requests' path (see CheckpointEvery). A handle opened with
//     this DSN and used without a Store should checkpoint by itself.
//
// Foreign keys are not needed (the schema has none).
func DSN(path string, opts Options) (string, error) {
	switch {
	case path == "", path == ":memory:", strings.HasPrefix(path, "file:"):
		return "", fmt.Errorf("sessions: sqlite store: path %q: want the path of a file (not \"\", \":memory:\" or a file: URI)", path)
	case strings.ContainsRune(path, 0):
		return "", errors.New("sessions: sqlite store: path holds a NUL byte")
	case opts.BusyTimeout < 0:
		return "", fmt.Errorf("sessions: sqlite store: negative Options.BusyTimeout %v", opts.BusyTimeout)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sessions: sqlite store: path %q: %w", path, err)
	}
	abs = filepath.ToSlash(abs)
	if !strings.HasPrefix(abs, "/") {
		abs = "/" + abs // C:/dir/file on Windows: file:///C:/dir/file
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = DefaultBusyTimeout
	}
	u := url.URL{Scheme: "file", Path: abs, OmitHost: false}
	q := url.Values{"_pragma": {
		// SQLite reads the pragma's argument as a 32-bit int and takes
		// one that does not fit as 0: no wait at all.
		fmt.Sprintf("busy_timeout(%d)", min(max(busy.Milliseconds(), 1), math.MaxInt32)),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"wal_autocheckpoint(0)",
	}}
	return u.String() + "?" + q.Encode(), nil
}

// checkPragmas returns an error unless a connection of db is on an SQLite
// database in WAL mode with a busy_timeout above 0.
func checkPragmas(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sessions: sqlite store: cannot open the database: %w", err)
	}
	defer conn.Close()
	var (
		mode string
		busy int64
	)
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sessions: sqlite store: cannot read the database: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		return fmt.Errorf("sessions: sqlite store: cannot read the database: %w", err)
	}
	switch {
	case !strings.EqualFold(mode, "wal"):
		return fmt.Errorf("sessions: sqlite store: the database is in journal mode %q, want WAL: open it with sqlite.DSN or _pragma=journal_mode(WAL)", mode)
	case busy <= 0:
		return errors.New("sessions: sqlite store: the connection's busy_timeout is 0 (concurrent writers would fail with SQLITE_BUSY instead of waiting): open it with sqlite.DSN or _pragma=busy_timeout(5000)")
	}
	return nil
}
