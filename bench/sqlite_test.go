package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/alexedwards/scs/sqlite3store"
	modernc "modernc.org/sqlite"

	"github.com/sessionx/sessions/backend/sqlite"
)

// The SQLite benchmarks need nothing but a temporary directory: each opens
// a file of its own there, through modernc.org/sqlite (driver "sqlite"),
// for this library's store and for scs's sqlite3store alike.

// scsSQLiteSchema is the table and index sqlite3store's README documents.
const scsSQLiteSchema = `CREATE TABLE IF NOT EXISTS sessions (
	token TEXT PRIMARY KEY,
	data BLOB NOT NULL,
	expiry REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions(expiry);`

// sqliteConns is the pool size of both libraries' handles: what
// sqlite.OpenDB sets (max(4, GOMAXPROCS) connections open and idle).
func sqliteConns() int { return max(4, runtime.GOMAXPROCS(0)) }

// openSQLite returns a handle on dsn through modernc.org/sqlite, its
// statements counted in cnt (if not nil), with sqliteConns connections,
// closed at b's cleanup.
func openSQLite(b *testing.B, dsn string, cnt *sqlCounter) *sql.DB {
	b.Helper()
	conn, err := modernc.NewConnector(dsn)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(sqlCountingConnector{Connector: conn, cnt: cnt})
	db.SetMaxOpenConns(sqliteConns())
	db.SetMaxIdleConns(sqliteConns())
	b.Cleanup(func() { db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		b.Fatal(err)
	}
	return db
}

// ourSQLiteStore opens a new file in a temporary directory with
// sqlite.DSN, creates this library's schema in it and returns the store
// (its background cleanup off) and the handle.
func ourSQLiteStore(b *testing.B, cnt *sqlCounter) (*sqlite.Store, *sql.DB) {
	b.Helper()
	ctx := context.Background()
	opts := sqlite.Options{Table: ourTable, CleanupInterval: -1}
	dsn, err := sqlite.DSN(filepath.Join(b.TempDir(), "sessions.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	db := openSQLite(b, dsn, cnt)
	if err := sqlite.CreateSchema(ctx, db, opts); err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.New(ctx, db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() }) // registered after db's: runs before it
	return st, db
}

// scsSQLiteDSN is the DSN of scs's file: the pragmas of sqlite.DSN that
// matter to a request (WAL, busy_timeout of sqlite.DefaultBusyTimeout,
// synchronous=NORMAL), but SQLite's automatic checkpoints left on, since
// sqlite3store runs no checkpointer of its own.
func scsSQLiteDSN(path string) string {
	u := url.URL{Scheme: "file", Path: path, OmitHost: false}
	q := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", sqlite.DefaultBusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
	}}
	return u.String() + "?" + q.Encode()
}

// scsSQLiteStore opens a new file in a temporary directory with
// scsSQLiteDSN, creates sqlite3store's table in it and returns the store
// (its cleanup goroutine off) and the handle.
func scsSQLiteStore(b *testing.B, cnt *sqlCounter) (*sqlite3store.SQLite3Store, *sql.DB) {
	b.Helper()
	path, err := filepath.Abs(filepath.Join(b.TempDir(), "scs.db"))
	if err != nil {
		b.Fatal(err)
	}
	db := openSQLite(b, scsSQLiteDSN(path), cnt)
	if _, err := db.Exec(scsSQLiteSchema); err != nil {
		b.Fatal(err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		b.Fatalf("scs's file: journal_mode %q (%v), want wal", mode, err)
	}
	return sqlite3store.NewWithCleanupInterval(db, 0), db
}

// setupSessionsSQLite returns the setup of this library on SQLite with the
// given TouchInterval (0: the default; a nanosecond slides the deadline on
// every request).
func setupSessionsSQLite(touch time.Duration) func(b *testing.B) (lib, *sqlCounter) {
	return func(b *testing.B) (lib, *sqlCounter) {
		cnt := &sqlCounter{}
		st, _ := ourSQLiteStore(b, cnt)
		return lib{h: sessionsHandler(newManager(b, st, touch)), serverSide: true}, cnt
	}
}

func setupSCSSQLite(b *testing.B) (lib, *sqlCounter) {
	cnt := &sqlCounter{}
	st, _ := scsSQLiteStore(b, cnt)
	return lib{h: scsHandler(st), serverSide: true}, cnt
}

// BenchmarkSQLiteRequest measures whole requests, read-only and modifying,
// with an existing session, through this library's SQLite store (with its
// defaults, and with TouchInterval 1 ns: every request slides the
// deadline) and through scs v2 on sqlite3store (IdleTimeout 30 min: every
// request commits), each on a file of its own in a temporary directory,
// with the same driver and pool size. stmts/op counts the statements.
func BenchmarkSQLiteRequest(b *testing.B) {
	benchSQLRequests(b, []sqlLib{
		{"sessions-sqlite", setupSessionsSQLite(0)},
		{"sessions-sqlite-touchevery", setupSessionsSQLite(time.Nanosecond)},
		{"scs-sqlite3store", setupSCSSQLite},
	})
}

// sqliteSeries is a recursive CTE of the integers 1 to ?1, for the fills.
const sqliteSeries = `WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < ?1) `

// BenchmarkSQLiteCleanup removes 1,000,000 expired sessions from an SQLite
// file while another goroutine keeps sending read-only requests of a live
// session through the same library's middleware, and reports
//
//   - ns/op: the whole cleanup (this library: Store.Cleanup, batches of
//     DefaultCleanupBatch rows, each its own statement; scs: the single
//     DELETE of sqlite3store's deleteExpired, which is not exported; none:
//     no cleanup, the requests alone for 10 s, to show how long the machine
//     itself makes a request wait);
//   - max-request-ms: the longest a concurrent request took meanwhile (the
//     target: at most 100 ms);
//   - p99-request-ms, slow-requests: the 99th percentile of those
//     requests, and how many took longer than 100 ms;
//   - requests, failed: how many concurrent requests were served
//     meanwhile, and how many of them failed (the target: none).
//
// The rows hold the bytes each library stores for newVisit(), with random
// 43-character keys, their deadlines spread over the day before (in the
// order of their rowids, as sessions created one after another expire);
// one INSERT ... SELECT inserts them (one transaction, about 20 s), then a
// checkpoint writes them into the file, with the timer stopped. Run it with
// -benchtime=1x.
func BenchmarkSQLiteCleanup(b *testing.B) {
	benchCleanup(b, func(b *testing.B, name string) cleanupCase {
		var (
			c  cleanupCase
			db *sql.DB
		)
		switch name {
		case "sessions", "sessions-touchevery":
			var st *sqlite.Store
			st, db = ourSQLiteStore(b, nil)
			c.h = sessionsHandler(newManager(b, st, cleanupTouch(name)))
			value := sampleEntry(b).Value
			c.fill = func() error {
				now := time.Now()
				_, err := db.Exec(sqliteSeries+`INSERT INTO `+ourTable+` (key, value, version, expires, limit_at)
					SELECT substr(hex(randomblob(22)), 1, 43), ?2, 1, ?3 + i * ?4, ?5 FROM series`,
					expiredRows, value, now.Add(-time.Minute-expiredSpread).UnixMicro(), expiredSpread.Microseconds()/expiredRows,
					now.Add(11*time.Hour).UnixMicro())
				return err
			}
			c.cleanup = func() (int64, error) { return st.Cleanup(context.Background()) }
		case "none", "none-touchevery":
			var st *sqlite.Store
			st, db = ourSQLiteStore(b, nil)
			c.h = sessionsHandler(newManager(b, st, cleanupTouch(name)))
			c.cleanup = func() (int64, error) { time.Sleep(controlWait(b)); return 0, nil }
		case "scs":
			var st *sqlite3store.SQLite3Store
			st, db = scsSQLiteStore(b, nil)
			c.h = scsHandler(st)
			value := make([]byte, 120) // about what scs stores for the same four values
			c.fill = func() error {
				_, err := db.Exec(sqliteSeries+`INSERT INTO sessions (token, data, expiry)
					SELECT substr(hex(randomblob(22)), 1, 43), ?2, julianday('now') - 1.0 / 1440 - (?1 - i) * ?3 FROM series`,
					expiredRows, value, expiredSpread.Hours()/24/expiredRows)
				return err
			}
			c.cleanup = func() (int64, error) {
				// sqlite3store's deleteExpired.
				res, err := db.Exec("DELETE FROM sessions WHERE expiry < julianday('now')")
				if err != nil {
					return 0, err
				}
				return res.RowsAffected()
			}
		}
		c.settle = func() error {
			// The rows in the file, the -wal file emptied: the cleanup does
			// not pay for the fill's checkpoint.
			_, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			return err
		}
		return c
	})
}
