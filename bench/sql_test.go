package bench

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What the SQLite and MySQL benchmarks (sqlite_test.go, mysql_test.go)
// share: a database/sql driver wrapper counting the statements a store
// sends, the whole-request loop of BenchmarkRequest for the setups that
// come with such a counter, and the cleanup benchmark's harness.

// sqlCounter counts the statements sent through the connections of a
// sqlCountingConnector: one per Exec or Query reaching the driver (a prepared
// statement's execution included, its preparation not), one per BEGIN and
// one per COMMIT or ROLLBACK. PRAGMA statements are left out: the SQLite
// store's checkpointer sends one (PRAGMA wal_checkpoint(PASSIVE)) at most
// once a second after writes, from a goroutine of its own, off the
// requests' path. With MySQL's interpolateParams=true, each counted
// statement is one round trip.
type sqlCounter struct {
	stmts atomic.Int64
	log   logMeter // with read set, log-B/op is reported too
}

func (c *sqlCounter) add(query string) {
	if c == nil {
		return
	}
	q := strings.TrimSpace(query)
	if len(q) >= 6 && strings.EqualFold(q[:6], "PRAGMA") {
		return
	}
	c.stmts.Add(1)
}

func (c *sqlCounter) reset(b *testing.B) {
	if c != nil {
		c.stmts.Store(0)
		c.log.reset(b)
	}
}

// report adds stmts/op (and log-B/op) to b's results, for the b.N
// iterations since the last reset.
func (c *sqlCounter) report(b *testing.B) {
	if c != nil {
		b.ReportMetric(float64(c.stmts.Load())/float64(b.N), "stmts/op")
		c.log.report(b)
	}
}

// sqlCountingConnector wraps a driver's Connector (modernc.org/sqlite's
// sqlite.NewConnector, go-sql-driver's mysql.NewConnector) so that its
// connections count what they send in cnt. Pass it to sql.OpenDB.
type sqlCountingConnector struct {
	driver.Connector
	cnt *sqlCounter
}

func (c sqlCountingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &sqlCountingConn{inner: conn, cnt: c.cnt}, nil
}

// sqlCountingConn forwards every optional interface the two drivers'
// connections implement (a wrapper that only embedded driver.Conn would
// hide them: database/sql would fall back to the context-free methods and
// its default argument conversion), and has Unwrap, as modernc.org/sqlite
// asks of wrappers.
type sqlCountingConn struct {
	inner driver.Conn
	cnt   *sqlCounter
}

var (
	_ driver.Conn               = (*sqlCountingConn)(nil)
	_ driver.ConnBeginTx        = (*sqlCountingConn)(nil)
	_ driver.ConnPrepareContext = (*sqlCountingConn)(nil)
	_ driver.ExecerContext      = (*sqlCountingConn)(nil)
	_ driver.QueryerContext     = (*sqlCountingConn)(nil)
	_ driver.Pinger             = (*sqlCountingConn)(nil)
	_ driver.SessionResetter    = (*sqlCountingConn)(nil)
	_ driver.Validator          = (*sqlCountingConn)(nil)
	_ driver.NamedValueChecker  = (*sqlCountingConn)(nil)
)

func (c *sqlCountingConn) Unwrap() driver.Conn { return c.inner }

func (c *sqlCountingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *sqlCountingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if pc, ok := c.inner.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &sqlCountingStmt{inner: st, query: query, cnt: c.cnt}, nil
}

func (c *sqlCountingConn) Close() error { return c.inner.Close() }

func (c *sqlCountingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqlCountingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var (
		tx  driver.Tx
		err error
	)
	if bc, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = bc.BeginTx(ctx, opts)
	} else {
		if opts != (driver.TxOptions{}) {
			return nil, errors.New("sqlCountingConn: the driver takes no transaction options")
		}
		//lint:ignore SA1019 the fallback database/sql itself uses
		tx, err = c.inner.Begin()
	}
	if err != nil {
		return nil, err
	}
	c.cnt.add("BEGIN")
	return sqlCountingTx{inner: tx, cnt: c.cnt}, nil
}

func (c *sqlCountingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := ec.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) { // skipped: database/sql prepares it, and the statement counts
		c.cnt.add(query)
	}
	return r, err
}

func (c *sqlCountingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := qc.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.cnt.add(query)
	}
	return r, err
}

func (c *sqlCountingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *sqlCountingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *sqlCountingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue forwards to the driver's own conversion (go-sql-driver
// has one, for uint64 among others); ErrSkip makes database/sql use its
// default one, as it would on the bare connection.
func (c *sqlCountingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.inner.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// sqlCountingStmt counts the executions of a prepared statement. It has no
// CheckNamedValue of its own (neither driver's statements have one), so
// that database/sql uses the connection's.
type sqlCountingStmt struct {
	inner driver.Stmt
	query string
	cnt   *sqlCounter
}

var (
	_ driver.StmtExecContext  = (*sqlCountingStmt)(nil)
	_ driver.StmtQueryContext = (*sqlCountingStmt)(nil)
)

func (s *sqlCountingStmt) Close() error  { return s.inner.Close() }
func (s *sqlCountingStmt) NumInput() int { return s.inner.NumInput() }

func (s *sqlCountingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.cnt.add(s.query)
	//lint:ignore SA1019 the driver's own fallback
	return s.inner.Exec(args)
}

func (s *sqlCountingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.cnt.add(s.query)
	//lint:ignore SA1019 the driver's own fallback
	return s.inner.Query(args)
}

func (s *sqlCountingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := s.inner.(driver.StmtExecContext); ok {
		s.cnt.add(s.query)
		return ec.ExecContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Exec(vals)
}

func (s *sqlCountingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := s.inner.(driver.StmtQueryContext); ok {
		s.cnt.add(s.query)
		return qc.QueryContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Query(vals)
}

func plainValues(args []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("sqlCountingStmt: the driver takes no named arguments")
		}
		vals[i] = a.Value
	}
	return vals, nil
}

type sqlCountingTx struct {
	inner driver.Tx
	cnt   *sqlCounter
}

func (t sqlCountingTx) Commit() error {
	t.cnt.add("COMMIT")
	return t.inner.Commit()
}

func (t sqlCountingTx) Rollback() error {
	t.cnt.add("ROLLBACK")
	return t.inner.Rollback()
}

// sqlLib is one library on an SQL store, set up for the request
// benchmarks, with the counter of its statements.
type sqlLib struct {
	name  string
	setup func(b *testing.B) (lib, *sqlCounter)
}

// benchSQLRequests is BenchmarkRequest's loop for the SQL setups: the same
// handlers, session and checks, each library's statements per request
// reported as stmts/op. (BenchmarkRequest's list of libraries is not
// extended instead, so that run.sh, which runs it whole, stays as it is.)
func benchSQLRequests(b *testing.B, libs []sqlLib) {
	for _, l := range libs {
		for _, op := range []string{"read", "modify"} {
			b.Run(l.name+"/"+op, func(b *testing.B) {
				lb, cnt := l.setup(b)
				path := "/" + op
				rec := do(lb.h, "/create", "")
				if rec.Code != http.StatusOK {
					b.Fatalf("create: status %d: %s", rec.Code, rec.Body)
				}
				cookie := sessionCookie(b, rec)
				modified := int64(0)
				for range warmups {
					if rec := do(lb.h, path, cookie); rec.Code != http.StatusOK {
						b.Fatalf("warm-up %s: status %d: %s", path, rec.Code, rec.Body)
					}
					if op == "modify" {
						modified++
					}
				}
				cnt.reset(b)
				b.ReportAllocs()
				tmpl := httptest.NewRequest(http.MethodGet, path, nil)
				tmpl.Header.Set("Cookie", cookie)
				for b.Loop() {
					req := new(http.Request)
					*req = *tmpl
					rec := httptest.NewRecorder()
					lb.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
					}
					if op == "modify" {
						modified++
					}
				}
				b.StopTimer()
				cnt.report(b)
				var want int64 // a read-only benchmark never changed the counter
				if op == "modify" {
					want = modified + 1 // every increment kept, plus this request's
				}
				if got := bodyCount(b, do(lb.h, path, cookie)); got != want {
					b.Fatalf("%s: counter %d, want %d after %d increments", l.name, got, want, modified)
				}
			})
		}
	}
}

// cleanupCase is one library in a cleanup benchmark.
type cleanupCase struct {
	h http.Handler // the library's middleware around the handlers
	// fill inserts the expired rows (nil: none, the control), settle
	// brings the database to rest after it (checkpoints, statistics); both
	// run with the timer stopped. cleanup removes the rows (or, for the
	// control, waits) and returns how many it removed.
	fill, settle func() error
	cleanup      func() (int64, error)
}

// expiredSpread is how far back the deadlines of the expired rows the
// cleanup benchmarks insert go: from a day and a minute ago to a minute ago.
const expiredSpread = 24 * time.Hour

// slowRequest is the target: no concurrent request waits longer during a
// cleanup.
const slowRequest = 100 * time.Millisecond

// cleanupTouch returns the TouchInterval of this library's cleanup case
// name: 1 ns for "sessions-touchevery" and its control "none-touchevery",
// the default otherwise.
func cleanupTouch(name string) time.Duration {
	if strings.HasSuffix(name, "-touchevery") {
		return time.Nanosecond
	}
	return 0
}

// controlWait returns how long the controls ("none", "none-touchevery")
// send requests alone: $SESSIONS_BENCH_CONTROL (a time.Duration, such as
// 2m to match a cleanup's length), 10 s by default.
func controlWait(b *testing.B) time.Duration {
	v := os.Getenv("SESSIONS_BENCH_CONTROL")
	if v == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("SESSIONS_BENCH_CONTROL=%q: want a positive duration", v)
	}
	return d
}

// benchCleanup runs, for "sessions", "sessions-touchevery", "scs", "none"
// and "none-touchevery" (the controls: this library's requests alone, no
// cleanup, for controlWait), the case setup returns: it creates a live session, fills the
// expired rows, and times the cleanup while another goroutine keeps
// sending read-only requests of that session through the same library.
// With this library's defaults ("sessions"), such a request writes nothing
// unless the cleanup outlasts the TouchInterval (3 min), when one of them
// slides the deadline; "sessions-touchevery" sets TouchInterval to 1 ns, so
// that every request writes (as every scs request does), to show how long
// a request that writes waits for the cleanup. It reports, besides the cleanup's
// time (ns/op), the longest concurrent request (max-request-ms; the target
// is at most 100 ms) and the 99th percentile (p99-request-ms), how many
// were served meanwhile (requests), how many took longer than 100 ms
// (slow-requests) and how many failed (failed: anything but 200, such as a
// store error after a lock wait; the target is 0). With -benchtime above
// 1x, the durations of all iterations are pooled.
func benchCleanup(b *testing.B, setup func(b *testing.B, name string) cleanupCase) {
	for _, name := range []string{"sessions", "sessions-touchevery", "scs", "none", "none-touchevery"} {
		b.Run(name, func(b *testing.B) {
			c := setup(b, name)
			rec := do(c.h, "/create", "")
			if rec.Code != http.StatusOK {
				b.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			cookie := sessionCookie(b, rec)
			var (
				waits          []time.Duration // every concurrent request's
				slowAt         []string        // when the first slow ones started
				served, failed int
				firstFailure   string
			)
			b.StopTimer()
			for range b.N {
				if c.fill != nil {
					start := time.Now()
					if err := c.fill(); err != nil {
						b.Fatalf("filling %d expired rows: %v", expiredRows, err)
					}
					b.Logf("%s: %d expired rows inserted in %v", name, expiredRows, time.Since(start).Round(time.Millisecond))
				}
				if c.settle != nil {
					if err := c.settle(); err != nil {
						b.Fatal(err)
					}
				}
				for range warmups {
					if rec := do(c.h, "/read", cookie); rec.Code != http.StatusOK {
						b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
					}
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
						rec := do(c.h, "/read", cookie)
						took := time.Since(start)
						waits = append(waits, took)
						if took > slowRequest && len(slowAt) < 20 {
							slowAt = append(slowAt, fmt.Sprintf("%s (took %v)", start.UTC().Format("15:04:05.000"), took.Round(time.Millisecond)))
						}
						served++
						if rec.Code != http.StatusOK {
							failed++
							if firstFailure == "" {
								firstFailure = rec.Result().Status + ": " + strings.TrimSpace(rec.Body.String())
							}
						}
					}
				})
				time.Sleep(20 * time.Millisecond) // the requests are under way
				b.StartTimer()
				n, err := c.cleanup()
				b.StopTimer()
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				if c.fill != nil && n < expiredRows {
					b.Fatalf("the cleanup removed %d rows, want %d", n, expiredRows)
				}
			}
			if failed > 0 {
				b.Logf("%s: %d of %d concurrent requests failed; the first: %s", name, failed, served, firstFailure)
			}
			if len(slowAt) > 0 {
				b.Logf("%s: requests over %v started at (UTC): %s", name, slowRequest, strings.Join(slowAt, ", "))
			}
			slices.Sort(waits)
			slow := len(waits) - sort.Search(len(waits), func(i int) bool { return waits[i] > slowRequest })
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			if len(waits) > 0 {
				b.ReportMetric(ms(waits[len(waits)-1]), "max-request-ms")
				b.ReportMetric(ms(waits[len(waits)*99/100]), "p99-request-ms")
			}
			b.ReportMetric(float64(served)/float64(b.N), "requests")
			b.ReportMetric(float64(slow)/float64(b.N), "slow-requests")
			b.ReportMetric(float64(failed)/float64(b.N), "failed")
		})
	}
}
