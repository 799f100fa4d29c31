package sqlite_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
	"github.com/sessionx/sessions/internal/storeapp"
)

// fill inserts n sessions expiring at expires (and as many owner records
// with that limit) straight into the file at path, keyed prefix0,
// prefix1, ..., in one statement each.
func fill(t testing.TB, path, prefix string, n int, expires time.Time) {
	t.Helper()
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	series := `WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ?3 - 1) `
	if _, err := db.Exec(series+`INSERT INTO sessions (key, value, version, expires) SELECT ?1 || i, randomblob(32), 1, ?2 FROM c`,
		prefix, expires.UnixMicro(), n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(series+`INSERT INTO sessions_owners (owner, key, limit_at) SELECT x'01', ?1 || i, ?2 FROM c`,
		prefix, expires.UnixMicro(), n); err != nil {
		t.Fatal(err)
	}
}

// count returns the rows of table in the file at path whose key starts
// with prefix.
func count(t testing.TB, path, table, prefix string) int {
	t.Helper()
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %q WHERE key GLOB ?1 || '*'`, table), prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCleanupDeletesExpiredInBatches: Cleanup deletes every expired session
// row and owner record, in statements of at most CleanupBatch rows, and no
// live one.
func TestCleanupDeletesExpiredInBatches(t *testing.T) {
	path := dbPath(t)
	tp := &tap{}
	st := storeOn(t, tapDB(t, path, tp, sqlite.Options{}), sqlite.Options{CleanupInterval: -1, CleanupBatch: 1000})
	fill(t, path, "dead", 2500, time.Now().Add(-time.Minute))
	fill(t, path, "live", 10, time.Now().Add(time.Hour))
	tp.take()
	n, err := st.Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 {
		t.Errorf("Cleanup deleted %d rows, want 5000 (2500 sessions, 2500 owner records)", n)
	}
	for _, tb := range []string{"sessions", "sessions_owners"} {
		if dead, live := count(t, path, tb, "dead"), count(t, path, tb, "live"); dead != 0 || live != 10 {
			t.Errorf("%s after Cleanup: %d expired rows, %d live ones; want 0 and 10", tb, dead, live)
		}
	}
	// 1000 + 1000 + 500 sessions, the same for owner records.
	if sent := withoutCheckpoints(tp.take()); len(sent) != 6 {
		t.Errorf("Cleanup sent %d statements %q, want 6 batches of at most 1000 rows", len(sent), short(sent))
	}
	if n, err := st.Cleanup(t.Context()); n != 0 || err != nil {
		t.Errorf("a second Cleanup: %d, %v; want 0, nil", n, err)
	}
}

// TestCleanupPausesBetweenBatches: after each full batch the cleanup
// pauses as long as the batch took before it sends the next, and never
// longer than 100 ms.
func TestCleanupPausesBetweenBatches(t *testing.T) {
	type batch struct {
		query      string
		start, end time.Time
	}
	path := dbPath(t)
	tp := &tap{}
	var (
		mu      sync.Mutex
		batches []batch
	)
	tp.timed = func(q string, took time.Duration) {
		if strings.Contains(q, "rowid IN") {
			end := time.Now()
			mu.Lock()
			batches = append(batches, batch{q, end.Add(-took), end})
			mu.Unlock()
		}
	}
	st := storeOn(t, tapDB(t, path, tp, sqlite.Options{}), sqlite.Options{CleanupInterval: -1, CleanupBatch: 200})

	t.Run("as long as the batch took", func(t *testing.T) {
		fill(t, path, "dead", 2000, time.Now().Add(-time.Minute))
		mu.Lock()
		batches = nil
		mu.Unlock()
		if n, err := st.Cleanup(t.Context()); err != nil || n != 4000 {
			t.Fatalf("Cleanup: %d, %v; want 4000", n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		pauses := 0
		for i := 1; i < len(batches); i++ {
			prev, next := batches[i-1], batches[i]
			if next.query != prev.query {
				continue // the owner records' first batch: no pause
			}
			// The batch before was full (the cleanup stops after one that
			// is not): a pause as long as it took (at most 100 ms) came
			// between the two.
			pauses++
			if gap, took := next.start.Sub(prev.end), prev.end.Sub(prev.start); gap < min(took, 100*time.Millisecond) {
				t.Errorf("batch %d took %v, and the next started %v after it", i-1, took, gap)
			}
		}
		if pauses != 20 {
			t.Errorf("%d pauses between %d batches, want 20 (10 full batches of each table, each followed by another)", pauses, len(batches))
		}
	})

	t.Run("at most 100 ms", func(t *testing.T) {
		// Each session batch is held up 500 ms before its statement runs:
		// the pause after it is 100 ms, not 500.
		fill(t, path, "slow", 400, time.Now().Add(-time.Minute))
		var held []time.Time // when each held-up batch came, after its pause
		tp.setFault(func(q string, ran bool) error {
			if !ran && strings.Contains(q, "rowid IN") && !strings.Contains(q, "_owners") {
				mu.Lock()
				held = append(held, time.Now())
				mu.Unlock()
				time.Sleep(500 * time.Millisecond)
			}
			return nil
		})
		defer tp.setFault(nil)
		mu.Lock()
		batches = nil
		mu.Unlock()
		if n, err := st.Cleanup(t.Context()); err != nil || n != 800 {
			t.Fatalf("Cleanup: %d, %v; want 800", n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Two full batches of sessions, then one that finds none.
		if len(held) != 3 {
			t.Fatalf("%d session batches, want 3", len(held))
		}
		var sessionBatches []batch
		for _, b := range batches {
			if !strings.Contains(b.query, "_owners") {
				sessionBatches = append(sessionBatches, b)
			}
		}
		for i := range 2 {
			pause := held[i+1].Sub(sessionBatches[i].end)
			t.Logf("batch %d held up 500 ms, then a pause of %v", i, pause)
			if pause < 100*time.Millisecond || pause > 400*time.Millisecond {
				t.Errorf("after batch %d, held up 500 ms, a pause of %v; want 100 ms", i, pause)
			}
		}
	})
}

// TestCleanupRunsInBackgroundUntilClose: with a short CleanupInterval,
// expired rows vanish without a call; after Close, they stay, and Cleanup
// and every other method return backend.ErrClosed.
func TestCleanupRunsInBackgroundUntilClose(t *testing.T) {
	path := dbPath(t)
	st := openStore(t, path, sqlite.Options{CleanupInterval: 50 * time.Millisecond})
	fill(t, path, "dead", 300, time.Now().Add(-time.Minute))
	fill(t, path, "live", 3, time.Now().Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for count(t, path, "sessions", "dead") != 0 || count(t, path, "sessions_owners", "dead") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired rows still there 5 s after they were written, with a 50 ms CleanupInterval")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if live := count(t, path, "sessions", "live"); live != 3 {
		t.Fatalf("the cleanup deleted live rows: %d of 3 left", live)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fill(t, path, "later", 5, time.Now().Add(-time.Minute))
	time.Sleep(300 * time.Millisecond)
	if n := count(t, path, "sessions", "later"); n != 5 {
		t.Fatalf("after Close the cleanup still ran: %d of 5 expired rows left", n)
	}
	if _, err := st.Cleanup(t.Context()); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Cleanup after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Get(t.Context(), "live0"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := st.SetIf(t.Context(), "live0", 1, time.Now(), entry("v", 2)); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("SetIf after Close: %v, want ErrClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestCleanupStatementUsesTheExpiresIndex: a batch finds its rows through
// the index on expires, not by reading the whole table.
func TestCleanupStatementUsesTheExpiresIndex(t *testing.T) {
	path := dbPath(t)
	st := openStore(t, path, sqlite.Options{CleanupInterval: -1})
	fill(t, path, "live", 20000, time.Now().Add(time.Hour))
	fill(t, path, "dead", 50, time.Now().Add(-time.Minute))
	db := lookDB(t, st)
	if _, err := db.Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("EXPLAIN QUERY PLAN "+sqlite.CleanupStatement(st), time.Now().UnixMicro(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "sessions_expires_idx") || strings.Contains(p, "SCAN sessions\n") {
		t.Fatalf("the cleanup's batch does not use the expires index:\n%s", p)
	}
}

// load is the outcome of requests served while a cleanup ran.
type load struct {
	deleted      int64
	took         time.Duration // the cleanup's
	batches      int
	medianBatch  time.Duration // the median cleanup statement
	longestBatch time.Duration // the longest cleanup statement: its hold of the write lock, and its wait for it
	requests     int
	failures     []string
	longest      time.Duration // the longest request
	p99          time.Duration
}

// cleanupUnderLoad fills a file with rows expired sessions (and as many
// owner records), then runs Cleanup while browsers browsers increment and
// read sessions of their own, half through the cleaning Store, half through
// another Store on the file (another process's, in all but the process),
// and reports the cleanup's and the requests' figures.
func cleanupUnderLoad(tb testing.TB, rows, browsers int) load {
	tb.Helper()
	path := dbPath(tb)
	tp := &tap{}
	var (
		mu      sync.Mutex
		res     load
		batches []time.Duration
	)
	tp.timed = func(q string, took time.Duration) {
		if strings.Contains(q, "rowid IN") {
			mu.Lock()
			batches = append(batches, took)
			mu.Unlock()
		}
	}
	st := storeOn(tb, tapDB(tb, path, tp, sqlite.Options{}), sqlite.Options{CleanupInterval: -1})
	other := openStore(tb, path, sqlite.Options{CleanupInterval: -1})
	fill(tb, path, "dead", rows, time.Now().Add(-time.Minute))
	apps := []*storeapp.App{storeapp.New(tb, st, sessions.Config{}), storeapp.New(tb, other, sessions.Config{})}

	ctx, stop := context.WithCancel(context.Background())
	var (
		wg        sync.WaitGroup
		latencies []time.Duration
	)
	for b := range browsers {
		a := apps[b%2]
		wg.Go(func() {
			_, _, cookie := a.Do(tb, "/inc", "")
			for i := 0; ctx.Err() == nil; i++ {
				path := "/read"
				if i%2 == 0 {
					path = "/inc"
				}
				start := time.Now()
				code, body, _ := a.Do(tb, path, cookie)
				took := time.Since(start)
				mu.Lock()
				latencies = append(latencies, took)
				if code != 200 {
					res.failures = append(res.failures, fmt.Sprintf("%s: %d %s", path, code, strings.TrimSpace(body)))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // the browsers are under way
	start := time.Now()
	deleted, err := st.Cleanup(context.Background())
	res.took = time.Since(start)
	stop()
	wg.Wait()
	if err != nil {
		tb.Fatalf("Cleanup: %v", err)
	}
	res.deleted = deleted
	slices.Sort(batches)
	if n := len(batches); n > 0 {
		res.batches, res.medianBatch, res.longestBatch = n, batches[n/2], batches[n-1]
	}
	slices.Sort(latencies)
	res.requests = len(latencies)
	if n := len(latencies); n > 0 {
		res.longest, res.p99 = latencies[n-1], latencies[n*99/100]
	}
	if left := count(tb, path, "sessions", "dead"); left != 0 {
		tb.Fatalf("%d expired rows left after Cleanup", left)
	}
	return res
}

func (l load) String() string {
	return fmt.Sprintf("%d rows deleted in %v (%.0f rows/s), %d batches, median %v, the longest %v; %d requests meanwhile, %d failed, longest %v, p99 %v",
		l.deleted, l.took.Round(time.Millisecond), float64(l.deleted)/l.took.Seconds(), l.batches,
		l.medianBatch.Round(10*time.Microsecond), l.longestBatch.Round(10*time.Microsecond), l.requests, len(l.failures), l.longest.Round(10*time.Microsecond), l.p99.Round(10*time.Microsecond))
}

// TestCleanupOfManyExpiredRowsUnderLoad: the cleanup of 20,000 expired
// sessions (and 20,000 owner records; BenchmarkCleanup does 1,000,000) while eight browsers increment and
// read their sessions, through the cleaning Store and through another on
// the same file: every request succeeds (no SQLITE_BUSY reaches one: each
// batch is a short transaction, and reads wait for none).
func TestCleanupOfManyExpiredRowsUnderLoad(t *testing.T) {
	res := cleanupUnderLoad(t, 20_000, 8)
	t.Log(res)
	if res.deleted != 40_000 {
		t.Errorf("deleted %d rows, want 40000", res.deleted)
	}
	if len(res.failures) > 0 {
		t.Errorf("%d of %d requests failed during the cleanup, the first: %s", len(res.failures), res.requests, res.failures[0])
	}
	if res.requests < 50 {
		t.Errorf("only %d requests were served during the cleanup", res.requests)
	}
	// How long requests wait is BenchmarkCleanup's measure, on a quiet
	// machine; here (under -race, with other packages' tests running) the
	// bound is the busy timeout, past which a write fails: a request makes
	// up to two writes (the deadline's slide and the save), each of which
	// may wait up to the busy timeout without failing (a request of 6.1 s,
	// none failing, was seen on a loaded machine), and anything past that
	// would be a hang.
	if res.longest > 2*sqlite.DefaultBusyTimeout+time.Second {
		t.Errorf("a request waited %v during the cleanup, past two busy timeouts", res.longest)
	}
}

var cleanupRows = flag.Int("cleanup-rows", 1_000_000, "expired sessions BenchmarkCleanup and BenchmarkCleanupQuiet delete (and as many owner records)")

// BenchmarkCleanup times the cleanup of -cleanup-rows (default 1,000,000)
// expired sessions and as many owner records, with eight browsers served
// meanwhile through the cleaning Store and another on the file, and
// reports the rows deleted per second, the longest batch (its wait for the
// write lock, which the requests' writes hold in turn, and its hold of it;
// BenchmarkCleanupQuiet times the hold alone) and the longest request. Any
// failed request fails it.
//
//	go test -run '^$' -bench '^BenchmarkCleanup$' -benchtime 1x
func BenchmarkCleanup(b *testing.B) {
	for range b.N {
		res := cleanupUnderLoad(b, *cleanupRows, 8)
		b.Log(res)
		if len(res.failures) > 0 {
			b.Fatalf("%d of %d requests failed during the cleanup, the first: %s", len(res.failures), res.requests, res.failures[0])
		}
		b.ReportMetric(float64(res.deleted)/res.took.Seconds(), "rows/s")
		b.ReportMetric(float64(res.longestBatch.Microseconds())/1000, "ms-longest-batch")
		b.ReportMetric(float64(res.longest.Microseconds())/1000, "ms-longest-request")
		b.ReportMetric(float64(res.p99.Microseconds())/1000, "ms-p99-request")
	}
}

// BenchmarkCleanupQuiet times the cleanup of -cleanup-rows expired
// sessions and as many owner records with nothing else writing to the
// file, and reports the rows deleted per second and the median and longest
// batch: with no other writer to wait for, a batch's time is its hold of
// the write lock.
//
//	go test -run '^$' -bench BenchmarkCleanupQuiet -benchtime 1x
func BenchmarkCleanupQuiet(b *testing.B) {
	for range b.N {
		res := cleanupUnderLoad(b, *cleanupRows, 0)
		b.Log(res)
		b.ReportMetric(float64(res.deleted)/res.took.Seconds(), "rows/s")
		b.ReportMetric(float64(res.medianBatch.Microseconds())/1000, "ms-median-batch")
		b.ReportMetric(float64(res.longestBatch.Microseconds())/1000, "ms-longest-batch")
	}
}
