package bench

import (
	"context"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions/backend/postgres"
)

// postgresEnv names the environment variable holding the connection string
// (DSN) of the PostgreSQL database the PostgreSQL benchmarks use. They are
// skipped when it is unset. They create and empty the tables bench_sessions
// (this library, with bench_sessions_owners and bench_sessions_schema) and
// sessions (scs's pgxstore, whose table name is fixed) there.
const postgresEnv = "SESSIONS_BENCH_POSTGRES"

// ourTable is this library's table in the benchmarks.
const ourTable = "bench_sessions"

// scsSchema is the table pgxstore documents.
const scsSchema = `CREATE TABLE IF NOT EXISTS sessions (
	token TEXT PRIMARY KEY,
	data BYTEA NOT NULL,
	expiry TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry);`

// pgCounter is a pgx QueryTracer counting the statements sent (one per
// Exec, Query or QueryRow): after warm-up, each is one round trip. With
// log set, it also reports the bytes the server wrote to its log.
type pgCounter struct {
	stmts atomic.Int64
	log   logMeter
}

func (c *pgCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.stmts.Add(1)
	return ctx
}

func (c *pgCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *pgCounter) reset(b *testing.B) {
	c.stmts.Store(0)
	c.log.reset(b)
}

// report adds stmts/op (and log-B/op) to b's results, for the b.N
// iterations since the last reset.
func (c *pgCounter) report(b *testing.B) {
	b.ReportMetric(float64(c.stmts.Load())/float64(b.N), "stmts/op")
	c.log.report(b)
}

// pgWAL returns a logMeter of the WAL that the server of
// $SESSIONS_BENCH_POSTGRES writes, read through a pool of its own (its
// statements are not counted).
func pgWAL(b *testing.B) logMeter {
	pool := postgresPool(b, nil)
	return logMeter{read: func() (int64, error) {
		var lsn int64
		err := pool.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn() - '0/0'`).Scan(&lsn)
		return lsn, err
	}}
}

// postgresPool returns a pool to $SESSIONS_BENCH_POSTGRES whose statements
// cnt counts, or skips b when the variable is unset.
func postgresPool(b *testing.B, cnt *pgCounter) *pgxpool.Pool {
	b.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		b.Skip(postgresEnv + " is not set: skipping the PostgreSQL benchmark")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	if cnt != nil {
		cfg.ConnConfig.Tracer = cnt
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		b.Fatalf("postgres at %s: %v", dsn, err)
	}
	return pool
}

// ourPostgresStore creates this library's tables (emptied) on pool and
// returns a store on them, with the background cleanup off.
func ourPostgresStore(b *testing.B, pool *pgxpool.Pool) *postgres.Store {
	b.Helper()
	ctx := context.Background()
	opts := postgres.Options{Table: ourTable, CleanupInterval: -1}
	if err := postgres.CreateSchema(ctx, pool, opts); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+ourTable+", "+ourTable+"_owners"); err != nil {
		b.Fatal(err)
	}
	st, err := postgres.New(ctx, pool, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// scsPostgresStore creates scs's table (emptied) on pool and returns its
// pgxstore, with its cleanup goroutine off.
func scsPostgresStore(b *testing.B, pool *pgxpool.Pool) *pgxstore.PostgresStore {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, scsSchema, pgx.QueryExecModeSimpleProtocol); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE sessions"); err != nil {
		b.Fatal(err)
	}
	return pgxstore.NewWithCleanupInterval(pool, 0)
}

// setupSessionsPostgres returns the setup of this library on PostgreSQL
// with the given TouchInterval (0: the default; a nanosecond slides the
// deadline on every request, in the load's statement).
func setupSessionsPostgres(touch time.Duration) libSetup {
	return func(b *testing.B) lib {
		cnt := &pgCounter{log: pgWAL(b)}
		st := ourPostgresStore(b, postgresPool(b, cnt))
		return lib{h: sessionsHandler(newManager(b, st, touch)), pgcnt: cnt, serverSide: true}
	}
}

// setupSCSPostgres is scs on its PostgreSQL store over pgx (pgxstore).
func setupSCSPostgres(b *testing.B) lib {
	cnt := &pgCounter{log: pgWAL(b)}
	return lib{h: scsHandler(scsPostgresStore(b, postgresPool(b, cnt))), pgcnt: cnt, serverSide: true}
}

// expiredRows is how many expired sessions BenchmarkPostgresCleanup
// removes.
const expiredRows = 1_000_000

// BenchmarkPostgresCleanup removes 1,000,000 expired sessions from
// PostgreSQL while another goroutine keeps sending read-only requests of a
// live session through the same library's middleware, and reports
//
//   - ns/op: the whole cleanup (this library: Store.Cleanup, batches of
//     DefaultCleanupBatch rows, each its own statement; scs: the single
//     DELETE its cleanup goroutine runs; none: no cleanup, the requests
//     alone for 10 s, to show how long the machine itself makes a request
//     wait);
//   - max-request-ms: the longest a concurrent request took meanwhile
//     (the target: at most 100 ms);
//   - requests: how many concurrent requests were served meanwhile.
//
// The rows hold the bytes each library stores for newVisit(), with
// 43-character keys; they are inserted with the timer stopped (about ten
// seconds). Run it with -benchtime=1x.
func BenchmarkPostgresCleanup(b *testing.B) {
	for _, name := range []string{"sessions", "scs", "none"} {
		b.Run(name, func(b *testing.B) {
			pool := postgresPool(b, nil)
			ctx := context.Background()
			var (
				h       http.Handler
				fill    string // inserts $1 expired rows of value $2
				value   []byte
				cleanup func() error
			)
			switch name {
			case "sessions":
				st := ourPostgresStore(b, pool)
				h = sessionsHandler(newManager(b, st, 0))
				value = sampleEntry(b).Value
				fill = `INSERT INTO ` + ourTable + ` (key, value, version, expires, limit_at)
					SELECT encode(sha256(int8send(i)), 'base64'), $2, 1, now() - interval '1 minute', now() + interval '11 hours'
					FROM generate_series(1, $1) AS i`
				cleanup = func() error { _, err := st.Cleanup(ctx); return err }
			case "none":
				// The control: this library's requests alone for 10 s, no
				// cleanup, no expired rows: how long the machine makes a
				// request wait by itself.
				st := ourPostgresStore(b, pool)
				h = sessionsHandler(newManager(b, st, 0))
				cleanup = func() error { time.Sleep(10 * time.Second); return nil }
			case "scs":
				h = scsHandler(scsPostgresStore(b, pool))
				value = make([]byte, 120) // about what scs stores for the same four values
				fill = `INSERT INTO sessions (token, data, expiry)
					SELECT encode(sha256(int8send(i)), 'base64'), $2, now() - interval '1 minute'
					FROM generate_series(1, $1) AS i`
				cleanup = func() error {
					// pgxstore's deleteExpired, which is not exported.
					_, err := pool.Exec(ctx, "DELETE FROM sessions WHERE expiry < current_timestamp")
					return err
				}
			}
			rec := do(h, "/create", "")
			if rec.Code != http.StatusOK {
				b.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			cookie := sessionCookie(b, rec)
			var maxWait time.Duration
			var served int
			b.StopTimer()
			for range b.N {
				if fill != "" {
					if _, err := pool.Exec(ctx, fill, expiredRows, value); err != nil {
						b.Fatal(err)
					}
				}
				// The rows in place, their WAL written out: the cleanup does
				// not pay for the fill's checkpoint.
				for _, sql := range []string{"VACUUM ANALYZE " + map[string]string{"sessions": ourTable, "none": ourTable, "scs": "sessions"}[name], "CHECKPOINT"} {
					if _, err := pool.Exec(ctx, sql); err != nil {
						b.Fatal(err)
					}
				}
				for range warmups {
					do(h, "/read", cookie)
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						start := time.Now()
						if rec := do(h, "/read", cookie); rec.Code != http.StatusOK {
							b.Errorf("a request during the cleanup: %d %s", rec.Code, rec.Body)
							return
						}
						maxWait = max(maxWait, time.Since(start))
						served++
					}
				})
				time.Sleep(20 * time.Millisecond) // the requests are under way
				b.StartTimer()
				err := cleanup()
				b.StopTimer()
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(maxWait.Microseconds())/1000, "max-request-ms")
			b.ReportMetric(float64(served)/float64(b.N), "requests")
		})
	}
}
