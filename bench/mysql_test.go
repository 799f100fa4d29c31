package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/mysqlstore"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend/mysql"
)

// mysqlEnv names the environment variable holding the go-sql-driver DSN of
// the MySQL or MariaDB database the MySQL benchmarks use, for example
// "root@tcp(127.0.0.1:3306)/bench?interpolateParams=true&parseTime=true&timeout=5s"
// (interpolateParams=true, as backend/mysql recommends: one round trip per
// statement, for both libraries; parseTime=true, as sqlstore's README
// shows). They are skipped when it is unset. They create and empty the
// tables bench_sessions (this library, with bench_sessions_owners and
// bench_sessions_schema) and sessions (scs's mysqlstore, whose table name
// is fixed) there. run-sql.sh starts a private MariaDB and sets it.
const mysqlEnv = "SESSIONS_BENCH_MYSQL"

// scsMySQLSchema is the table and index mysqlstore's README documents, one
// statement each (no multiStatements).
var scsMySQLSchema = []string{
	`CREATE TABLE IF NOT EXISTS sessions (
	token CHAR(43) PRIMARY KEY,
	data BLOB NOT NULL,
	expiry TIMESTAMP(6) NOT NULL
)`,
	`CREATE INDEX sessions_expiry_idx ON sessions (expiry)`,
}

// mysqlDB returns a handle on $SESSIONS_BENCH_MYSQL whose statements cnt
// counts (if not nil), keeping up to 16 connections idle (backend/mysql's
// advice: about the number of requests served at once), or skips b when
// the variable is unset. It is closed at b's cleanup.
func mysqlDB(b *testing.B, cnt *sqlCounter) *sql.DB {
	b.Helper()
	dsn := os.Getenv(mysqlEnv)
	if dsn == "" {
		b.Skip(mysqlEnv + " is not set: skipping the MySQL benchmark")
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		b.Fatalf("%s: %v", mysqlEnv, err)
	}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(sqlCountingConnector{Connector: conn, cnt: cnt})
	db.SetMaxIdleConns(16)
	b.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		b.Fatalf("mysql at %s: %v", cfg.Addr, err)
	}
	return db
}

// innodbRedo returns a logMeter of the redo log that the InnoDB of
// $SESSIONS_BENCH_MYSQL writes (its log sequence number), read through a
// handle of its own (its statements are not counted).
func innodbRedo(b *testing.B) logMeter {
	db := mysqlDB(b, nil)
	return logMeter{read: func() (int64, error) {
		var name string
		var lsn int64
		err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'").Scan(&name, &lsn)
		return lsn, err
	}}
}

// ourMySQLStore creates this library's tables (emptied) on db and returns
// a store on them, with the background cleanup off.
func ourMySQLStore(b *testing.B, db *sql.DB) *mysql.Store {
	b.Helper()
	ctx := context.Background()
	opts := mysql.Options{Table: ourTable, CleanupInterval: -1}
	if err := mysql.CreateSchema(ctx, db, opts); err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{ourTable, ourTable + "_owners"} {
		if _, err := db.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
			b.Fatal(err)
		}
	}
	st, err := mysql.New(ctx, db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// scsMySQLStore creates scs's table (emptied) on db and returns its
// mysqlstore, with its cleanup goroutine off.
func scsMySQLStore(b *testing.B, db *sql.DB) *mysqlstore.MySQLStore {
	b.Helper()
	ctx := context.Background()
	for _, stmt := range scsMySQLSchema {
		var me *gomysql.MySQLError
		if _, err := db.ExecContext(ctx, stmt); err != nil && !(errors.As(err, &me) && me.Number == 1061) { // 1061: the index exists
			b.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "TRUNCATE TABLE sessions"); err != nil {
		b.Fatal(err)
	}
	return mysqlstore.NewWithCleanupInterval(db, 0)
}

// setupSessionsMySQL returns the setup of this library on MySQL with the
// given TouchInterval (0: the default; a nanosecond slides the deadline on
// every request).
func setupSessionsMySQL(touch time.Duration) func(b *testing.B) (lib, *sqlCounter) {
	return func(b *testing.B) (lib, *sqlCounter) {
		cnt := &sqlCounter{log: innodbRedo(b)}
		st := ourMySQLStore(b, mysqlDB(b, cnt))
		return lib{h: sessionsHandler(newManager(b, st, touch)), serverSide: true}, cnt
	}
}

func setupSCSMySQL(b *testing.B) (lib, *sqlCounter) {
	cnt := &sqlCounter{log: innodbRedo(b)}
	return lib{h: scsHandler(scsMySQLStore(b, mysqlDB(b, cnt))), serverSide: true}, cnt
}

// BenchmarkMySQLRequest measures whole requests, read-only and modifying,
// with an existing session, through this library's MySQL store (with its
// defaults, and with TouchInterval 1 ns: every request slides the
// deadline) and through scs v2 on mysqlstore (IdleTimeout 30 min: every
// request commits), on the same database and handle settings. stmts/op
// counts the statements: with interpolateParams=true in the DSN, each is
// one round trip.
func BenchmarkMySQLRequest(b *testing.B) {
	benchSQLRequests(b, []sqlLib{
		{"sessions-mysql", setupSessionsMySQL(0)},
		{"sessions-mysql-touchevery", setupSessionsMySQL(time.Nanosecond)},
		{"scs-mysqlstore", setupSCSMySQL},
	})
}

// mysqlSeries returns a derived table of the integers 0 to 10^digits-1,
// column n: a cross join of digit tables, which MySQL 8 and MariaDB both
// read (a recursive CTE would stop at MySQL's cte_max_recursion_depth, and
// MariaDB's seq_1_to_N tables are its own).
func mysqlSeries(digits int) string {
	const digit = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
		"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	var sum, from []string
	for i := range digits {
		sum = append(sum, fmt.Sprintf("d%d.d * %d", i, pow10(i)))
		from = append(from, fmt.Sprintf("%s AS d%d", digit, i))
	}
	return "(SELECT " + strings.Join(sum, " + ") + " AS n FROM " + strings.Join(from, " CROSS JOIN ") + ") AS series"
}

func pow10(i int) int {
	p := 1
	for range i {
		p *= 10
	}
	return p
}

// seriesDigits is how many digits mysqlSeries needs for expiredRows.
func seriesDigits() int {
	return len(strconv.Itoa(expiredRows - 1))
}

// settleMySQL brings InnoDB to rest after a fill: the table's statistics
// brought up to date, the purge of earlier runs' deletes finished and the
// buffer pool's dirty pages written out (the analogue of PostgreSQL's
// VACUUM ANALYZE and CHECKPOINT), so that the cleanup pays neither for the
// fill's writes nor for an earlier cleanup's purge. It waits at most two
// minutes for the purge and one for the page cleaner.
func settleMySQL(b *testing.B, db *sql.DB, table string) error {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "ANALYZE TABLE "+table)
	if err != nil {
		return err
	}
	rows.Close()
	var pct string
	if err := conn.QueryRowContext(ctx, "SELECT @@GLOBAL.innodb_max_dirty_pages_pct").Scan(&pct); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		b.Logf("cannot flush the buffer pool (%v): the cleanup may pay for the fill's writes", err)
		return nil
	}
	defer conn.ExecContext(ctx, "SET GLOBAL innodb_max_dirty_pages_pct = "+pct)
	// The history list: undo of earlier deletes (the previous run's
	// cleanup) that InnoDB's purge has yet to go through.
	start := time.Now()
	for {
		var history int64
		if err := conn.QueryRowContext(ctx, "SELECT `COUNT` FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'").Scan(&history); err != nil {
			b.Logf("cannot read InnoDB's history list length (%v): not waiting for its purge", err)
			break
		}
		if history < 1000 {
			break
		}
		if time.Since(start) > 2*time.Minute {
			b.Logf("InnoDB's history list still holds %d transactions after 2 minutes: the cleanup runs beside their purge", history)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	start = time.Now()
	for {
		var name string
		var dirty int64
		if err := conn.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			return err
		}
		if dirty < 100 {
			return nil
		}
		if time.Since(start) > time.Minute {
			b.Logf("%d pages still dirty after a minute: the cleanup pays for the rest", dirty)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkMySQLCleanup removes 1,000,000 expired sessions from MySQL or
// MariaDB while another goroutine keeps sending read-only requests of a
// live session through the same library's middleware, and reports what
// BenchmarkSQLiteCleanup does: ns/op the cleanup (this library:
// Store.Cleanup, batches of DefaultCleanupBatch rows, each a SELECT of
// their keys and a DELETE; scs: mysqlstore's single DELETE; none: this
// library's requests alone for 10 s, as a control), max-request-ms the
// longest concurrent request (target: at most 100 ms), p99-request-ms and
// slow-requests their 99th percentile and how many took over 100 ms,
// requests and failed the requests served meanwhile and those that failed
// (target: none).
//
// The rows hold the bytes each library stores for newVisit(), with
// 43-character keys (the base64 of a SHA-256), their deadlines spread over
// the day before, in no relation to the keys (so the cleanup, which goes
// by deadline, visits the table, clustered by key, in random order); one
// INSERT ... SELECT inserts them, sorted by key (in random order, inserting
// them took InnoDB 100 s with its default buffer pool; sorted, about 10 s),
// then ANALYZE TABLE and a flush of the buffer pool, with the timer
// stopped. Run it with -benchtime=1x.
func BenchmarkMySQLCleanup(b *testing.B) {
	benchCleanup(b, func(b *testing.B, name string) cleanupCase {
		db := mysqlDB(b, nil)
		var c cleanupCase
		series := mysqlSeries(seriesDigits())
		table := ourTable
		switch name {
		case "sessions", "sessions-touchevery":
			st := ourMySQLStore(b, db)
			c.h = sessionsHandler(newManager(b, st, cleanupTouch(name)))
			value := sampleEntry(b).Value
			c.fill = func() error {
				now := time.Now()
				_, err := db.Exec("INSERT INTO "+ourTable+" (`key`, `value`, version, expires, limit_at)"+
					" SELECT LEFT(TO_BASE64(UNHEX(SHA2(n, 256))), 43), ?, 1, ? + n * ?, ? FROM "+series+" WHERE n < ? ORDER BY 1",
					value, now.Add(-time.Minute-expiredSpread).UnixMicro(), expiredSpread.Microseconds()/expiredRows,
					now.Add(11*time.Hour).UnixMicro(), expiredRows)
				return err
			}
			c.cleanup = func() (int64, error) { return st.Cleanup(context.Background()) }
		case "none", "none-touchevery":
			st := ourMySQLStore(b, db)
			c.h = sessionsHandler(newManager(b, st, cleanupTouch(name)))
			c.cleanup = func() (int64, error) { time.Sleep(controlWait(b)); return 0, nil }
		case "scs":
			table = "sessions"
			c.h = scsHandler(scsMySQLStore(b, db))
			value := make([]byte, 120) // about what scs stores for the same four values
			c.fill = func() error {
				_, err := db.Exec("INSERT INTO sessions (token, data, expiry)"+
					" SELECT LEFT(TO_BASE64(UNHEX(SHA2(n, 256))), 43), ?, UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE - INTERVAL ((? - n) * ?) MICROSECOND"+
					" FROM "+series+" WHERE n < ? ORDER BY 1",
					value, expiredRows, expiredSpread.Microseconds()/expiredRows, expiredRows)
				return err
			}
			c.cleanup = func() (int64, error) {
				// mysqlstore's deleteExpired (MySQL 5.6.4 and later).
				res, err := db.Exec("DELETE FROM sessions WHERE expiry < UTC_TIMESTAMP(6)")
				if err != nil {
					return 0, err
				}
				return res.RowsAffected()
			}
		}
		c.settle = func() error { return settleMySQL(b, db, table) }
		return c
	})
}
