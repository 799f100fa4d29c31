package mysql_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/internal/storeapp"
)

// seq returns a derived table of the integers 0 to n-1 (column i), made of
// cross joins of the ten digits: no recursive CTE (MySQL stops those at
// 1,000 rows by default) and no MariaDB sequence engine.
func seq(n int) string {
	const digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4" +
		" UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	var from, sum []string
	for p, k := 1, 0; k == 0 || p < n; p, k = p*10, k+1 {
		from = append(from, fmt.Sprintf("%s AS d%d", digits, k))
		sum = append(sum, fmt.Sprintf("%d * d%d.d", p, k))
	}
	return fmt.Sprintf("(SELECT %s AS i FROM %s) AS s WHERE s.i < %d", strings.Join(sum, " + "), strings.Join(from, " CROSS JOIN "), n)
}

// fill inserts n sessions expiring at expires straight into table, named
// prefix0, prefix1, ..., and owners of them owner records with that limit,
// in statements of at most 100,000 rows.
func fill(t testing.TB, db *sql.DB, table, prefix string, n, owners int, expires time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, f := range []struct {
		n   int
		sql string
	}{
		{n, "INSERT INTO `%s` (`key`, `value`, version, expires) SELECT CONCAT(?, s.i + ?), X'00', 1, ? FROM %s"},
		{owners, "INSERT INTO `%s_owners` (owner, `key`, limit_at) SELECT X'01', CONCAT(?, s.i + ?), ? FROM %s"},
	} {
		for done := 0; done < f.n; {
			chunk := min(f.n-done, 100000)
			if _, err := db.ExecContext(ctx, fmt.Sprintf(f.sql, table, seq(chunk)), prefix, done, expires.UnixMicro()); err != nil {
				t.Fatal(err)
			}
			done += chunk
		}
	}
}

// count returns the rows of table whose key starts with prefix.
func count(t testing.TB, db *sql.DB, table, prefix string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), fmt.Sprintf("SELECT COUNT(*) FROM `%s` WHERE `key` LIKE CONCAT(?, '%%')", table), prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCleanupDeletesExpiredInBatches: Cleanup deletes every expired session
// row and owner record, in rounds of a SELECT of at most a round's rows and
// DELETEs of at most CleanupBatch rows, and no live one.
func TestCleanupDeletesExpiredInBatches(t *testing.T) {
	srv := mariadbtest.Shared(t)
	var w mariadbtest.Wire
	db := tracedDB(t, srv, &w, true)
	admin := srv.DB(t, nil)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1, CleanupBatch: 1000})
	mysql.SetCleanupChunk(st, 2000)
	fill(t, admin, table, "dead", 2500, 2500, time.Now().Add(-time.Minute))
	fill(t, admin, table, "live", 10, 10, time.Now().Add(time.Hour))
	w.Take()
	n, err := st.Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 {
		t.Errorf("Cleanup deleted %d rows, want 5000 (2500 sessions, 2500 owner records)", n)
	}
	for _, tb := range []string{table, table + "_owners"} {
		if dead, live := count(t, admin, tb, "dead"), count(t, admin, tb, "live"); dead != 0 || live != 10 {
			t.Errorf("%s after Cleanup: %d expired rows, %d live ones; want 0 and 10", tb, dead, live)
		}
	}
	// Per table: a round of 2000 rows (a SELECT, two DELETEs of 1000),
	// then one of the 500 left (a SELECT, a DELETE).
	sent := mariadbtest.RoundTrips(w.Take())
	var got []string
	for _, c := range sent {
		got = append(got, strings.Fields(c.SQL)[0])
	}
	want := strings.Fields("SELECT DELETE DELETE SELECT DELETE SELECT DELETE DELETE SELECT DELETE")
	if !slices.Equal(got, want) {
		t.Errorf("Cleanup sent %q, want %v (no transaction)", names(sent), want)
	}
	// Nothing left: one SELECT per table finds nothing.
	if n, err := st.Cleanup(t.Context()); n != 0 || err != nil {
		t.Errorf("a second Cleanup: %d, %v; want 0, nil", n, err)
	}
	if sent := mariadbtest.RoundTrips(w.Take()); len(sent) != 2 {
		t.Errorf("a Cleanup with nothing to do sent %q, want 2 SELECTs", names(sent))
	}
}

// TestCleanupDeletesInPrimaryKeyOrder: a round takes the dead rows with the
// earliest deadlines, and deletes them in primary-key order (so that its
// batches sweep the table's pages once, however the deadlines are spread
// over the keys), sessions and owner records alike.
func TestCleanupDeletesInPrimaryKeyOrder(t *testing.T) {
	srv := mariadbtest.Shared(t)
	var w mariadbtest.Wire
	db := tracedDB(t, srv, &w, true)
	admin := srv.DB(t, nil)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1, CleanupBatch: 10})
	mysql.SetCleanupChunk(st, 20)
	// 25 dead rows whose deadlines are a permutation of their keys' order:
	// key dead<i> (two digits) died (i*7)%25 seconds before the others.
	base := time.Now().Add(-time.Hour)
	deadline := map[string]int64{}
	for i := range 25 {
		key := fmt.Sprintf("dead%02d", i)
		deadline[key] = base.Add(-time.Duration(i*7%25) * time.Second).UnixMicro()
		if _, err := admin.ExecContext(t.Context(), fmt.Sprintf("INSERT INTO `%s` (`key`, `value`, version, expires) VALUES (?, X'00', 1, ?)", table), key, deadline[key]); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.ExecContext(t.Context(), fmt.Sprintf("INSERT INTO `%s_owners` (owner, `key`, limit_at) VALUES (X'01', ?, ?)", table), key, deadline[key]); err != nil {
			t.Fatal(err)
		}
	}
	byDeadline := slices.Collect(maps.Keys(deadline))
	slices.SortFunc(byDeadline, func(a, b string) int { return cmp.Compare(deadline[a], deadline[b]) })
	w.Take()
	if n, err := st.Cleanup(t.Context()); n != 50 || err != nil {
		t.Fatalf("Cleanup: %d, %v; want 50, nil", n, err)
	}
	quoted := regexp.MustCompile(`'(dead\d\d)'`)
	var rounds [][]string // per round, the keys its DELETEs named, in order
	for _, c := range mariadbtest.RoundTrips(w.Take()) {
		switch strings.Fields(c.SQL)[0] {
		case "SELECT":
			rounds = append(rounds, nil)
		case "DELETE":
			if len(rounds) == 0 {
				t.Fatalf("a DELETE before any SELECT: %s", c.SQL)
			}
			for _, m := range quoted.FindAllStringSubmatch(c.SQL, -1) {
				rounds[len(rounds)-1] = append(rounds[len(rounds)-1], m[1])
			}
		}
	}
	// Sessions: rounds of 20 and 5; owner records the same.
	if len(rounds) != 4 {
		t.Fatalf("Cleanup ran %d rounds %q, want 4", len(rounds), rounds)
	}
	for i, r := range rounds {
		first := byDeadline[:20]
		if i%2 == 1 {
			first = byDeadline[20:]
		}
		want := slices.Sorted(slices.Values(first))
		if !slices.Equal(r, want) {
			t.Errorf("round %d deleted %q, want the rows with the earliest deadlines in key order: %q", i+1, r, want)
		}
	}
}

// TestCleanupKeepsRowsWrittenSinceItsRound: a round deletes its rows well
// after it found them dead (batch after batch, with pauses); a row written
// again meanwhile (live once more) is not deleted, the others are.
func TestCleanupKeepsRowsWrittenSinceItsRound(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1, CleanupBatch: 10})
	mysql.SetCleanupChunk(st, 20)
	fill(t, db, table, "dead", 25, 25, time.Now().Add(-time.Minute))
	// Rounds: sessions 20 rows, then 5; owner records the same. Right after
	// the first round of each table found its rows, two of them (dead15 in
	// the first batch, dead19 in the second) become live again.
	rounds := 0
	mysql.SetAfterFind(st, func() {
		rounds++
		q := map[int]string{
			1: "UPDATE `%s` SET expires = ? WHERE `key` IN ('dead15', 'dead19')",
			3: "UPDATE `%s_owners` SET limit_at = ? WHERE `key` IN ('dead15', 'dead19')",
		}[rounds]
		if q == "" {
			return
		}
		if _, err := db.ExecContext(t.Context(), fmt.Sprintf(q, table), time.Now().Add(time.Hour).UnixMicro()); err != nil {
			t.Error(err)
		}
	})
	n, err := st.Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rounds != 4 {
		t.Errorf("Cleanup ran %d rounds, want 4", rounds)
	}
	if n != 46 {
		t.Errorf("Cleanup deleted %d rows, want 46 (all but two sessions and two owner records written again)", n)
	}
	for _, tb := range []string{table, table + "_owners"} {
		if left := count(t, db, tb, "dead"); left != 2 {
			t.Errorf("%s: %d rows left, want 2 (dead15, dead19)", tb, left)
		}
	}
}

// TestCleanupRunsInBackgroundUntilClose: with a short CleanupInterval,
// expired rows vanish without a call; after Close, they stay, and Cleanup
// and every other method return backend.ErrClosed.
func TestCleanupRunsInBackgroundUntilClose(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: 50 * time.Millisecond})
	fill(t, db, table, "dead", 300, 300, time.Now().Add(-time.Minute))
	fill(t, db, table, "live", 3, 3, time.Now().Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for count(t, db, table, "dead") != 0 || count(t, db, table+"_owners", "dead") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired rows still there 5 s after they were written, with a 50 ms CleanupInterval")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if live := count(t, db, table, "live"); live != 3 {
		t.Fatalf("the cleanup deleted live rows: %d of 3 left", live)
	}
	st.Close()
	fill(t, db, table, "later", 5, 0, time.Now().Add(-time.Minute))
	time.Sleep(300 * time.Millisecond)
	if n := count(t, db, table, "later"); n != 5 {
		t.Fatalf("after Close the cleanup still ran: %d of 5 expired rows left", n)
	}
	if _, err := st.Cleanup(t.Context()); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Cleanup after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Get(t.Context(), "live0"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// explain returns the plan MariaDB gives query with args, one map of
// column to value per row.
func explain(t *testing.T, db *sql.DB, query string, args ...any) []map[string]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			row[c] = vals[i].String
		}
		plan = append(plan, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestCleanupStatementsUseTheIndexes: a batch finds its rows through the
// index on expires (limit_at for owner records), and deletes them by
// primary key, never reading the whole table, also when few or none of the
// rows it names are still there (another instance's cleanup deleted them):
// MariaDB then prefers a range on the index on expires, whose next-key
// locks would reach the live row with the nearest deadline.
func TestCleanupStatementsUseTheIndexes(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1})
	fill(t, db, table, "live", 20000, 2000, time.Now().Add(time.Hour))
	fill(t, db, table, "dead", 50, 50, time.Now().Add(-time.Minute))
	analyze := func() {
		for _, tb := range []string{table, table + "_owners"} {
			if _, err := db.ExecContext(t.Context(), fmt.Sprintf("ANALYZE TABLE `%s`", tb)); err != nil {
				t.Fatal(err)
			}
		}
	}
	analyze()
	for _, dead := range []string{"50 dead rows", "no dead row left"} {
		if dead == "no dead row left" {
			for _, tb := range []string{table, table + "_owners"} {
				if _, err := db.ExecContext(t.Context(), fmt.Sprintf("DELETE FROM `%s` WHERE `key` LIKE 'dead%%'", tb)); err != nil {
					t.Fatal(err)
				}
			}
			analyze()
		}
		now := time.Now().UnixMicro()
		find, del := mysql.CleanupStatements(st, false, 2)
		findOwners, delOwners := mysql.CleanupStatements(st, true, 2)
		for _, tc := range []struct {
			sql  string
			args []any
			key  string
		}{
			{find, []any{int64(-1 << 63), now, 1000}, "expires_idx"},
			{del, []any{"dead1", "dead2", now}, "PRIMARY"},
			{findOwners, []any{int64(-1 << 63), now, 1000}, "limit_idx"},
			{delOwners, []any{[]byte{1}, "dead1", []byte{1}, "dead2", now}, "PRIMARY"},
		} {
			plan := explain(t, db, tc.sql, tc.args...)
			if len(plan) != 1 || plan[0]["key"] != tc.key || plan[0]["type"] == "ALL" {
				t.Errorf("%s: %s\nplan %v, want one range on %s", dead, tc.sql, plan, tc.key)
			}
		}
	}
}

// TestCleanupDeleteLocksNoLiveRow: while a cleanup DELETE's transaction is
// open (here held open by hand; in the store it is one autocommit
// statement), a request may still move the deadline of the live session
// with the nearest one, whose index entry is the next key after the dead
// range, without waiting for a lock.
func TestCleanupDeleteLocksNoLiveRow(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1})
	fill(t, db, table, "live", 1000, 100, time.Now().Add(time.Hour))
	fill(t, db, table, "dead", 2, 2, time.Now().Add(-time.Minute))
	for _, tb := range []string{table, table + "_owners"} {
		if _, err := db.ExecContext(t.Context(), fmt.Sprintf("ANALYZE TABLE `%s`", tb)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMicro()
	_, del := mysql.CleanupStatements(st, false, 2)
	_, delOwners := mysql.CleanupStatements(st, true, 2)
	for _, tc := range []struct {
		name, del string
		args      []any
		request   string
	}{
		{"sessions", del, []any{"dead0", "dead1", now},
			fmt.Sprintf("UPDATE `%s` SET expires = expires + 1 WHERE `key` = 'live0'", table)},
		{"owners", delOwners, []any{[]byte{1}, "dead0", []byte{1}, "dead1", now},
			fmt.Sprintf("UPDATE `%s_owners` SET limit_at = limit_at + 1 WHERE owner = X'01' AND `key` = 'live0'", table)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := db.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(t.Context(), tc.del, tc.args...); err != nil {
				t.Fatal(err)
			}
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				_, _ = conn.ExecContext(context.Background(), "SET SESSION innodb_lock_wait_timeout = DEFAULT")
				_ = conn.Close()
			}()
			if _, err := conn.ExecContext(t.Context(), "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(t.Context(), tc.request); err != nil {
				t.Errorf("the live row with the nearest deadline, while a cleanup DELETE is open: %v", err)
			}
		})
	}
}

// cleanupUnderLoad fills a table of srv with rows expired sessions (and
// rows/10 owner records), then runs clean while 8 browsers keep using live
// sessions through a Manager on the same table (each creating a session,
// then loading, changing and migrating it). It returns how long the
// cleanup took, every request's latency meanwhile, the requests that
// failed and the expired rows left.
func cleanupUnderLoad(t testing.TB, srv *mariadbtest.Server, rows int, clean func(st *mysql.Store, db *sql.DB, table string) error) (took time.Duration, waits []time.Duration, failed, left int) {
	t.Helper()
	db := srv.DB(t, recommended)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1})
	start := time.Now()
	fill(t, db, table, "dead", rows, rows/10, time.Now().Add(-time.Minute))
	t.Logf("%d expired sessions and %d owner records written in %v", rows, rows/10, time.Since(start).Round(time.Millisecond))
	a := storeapp.New(t, st, sessions.Config{Logger: quietLogger()})
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			var mine []time.Duration
			bad, cookie := 0, ""
			for i := 0; ctx.Err() == nil; i++ {
				path := []string{"/inc", "/read", "/inc", "/read", "/login"}[i%5]
				begin := time.Now()
				code, _, next := a.Do(t, path, cookie)
				mine = append(mine, time.Since(begin))
				if code != 200 {
					bad++
					continue
				}
				cookie = next
				if i%50 == 49 {
					cookie = "" // a new visitor: an INSERT
				}
			}
			mu.Lock()
			waits = append(waits, mine...)
			failed += bad
			mu.Unlock()
		})
	}
	time.Sleep(100 * time.Millisecond) // the browsers get going
	start = time.Now()
	err := clean(st, db, table)
	took = time.Since(start)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	return took, waits, failed, count(t, db, table, "dead") + count(t, db, table+"_owners", "dead")
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// TestCleanupOfManyExpiredRows deletes 100,000 expired sessions and 10,000
// owner records while browsers use the same table: every expired row goes,
// no request fails, and the longest request stays far from a lock wait.
func TestCleanupOfManyExpiredRows(t *testing.T) {
	const rows = 100000
	srv := mariadbtest.Shared(t)
	var deleted int64
	took, waits, failed, left := cleanupUnderLoad(t, srv, rows, func(st *mysql.Store, _ *sql.DB, _ string) error {
		var err error
		deleted, err = st.Cleanup(context.Background())
		return err
	})
	t.Logf("Cleanup deleted %d rows in %v (%.0f rows/s); %d requests meanwhile: median %v, p99 %v, longest %v; %d failed",
		deleted, took.Round(time.Millisecond), float64(deleted)/took.Seconds(), len(waits),
		percentile(waits, 0.5).Round(time.Microsecond), percentile(waits, 0.99).Round(time.Microsecond), percentile(waits, 1).Round(time.Microsecond), failed)
	if deleted != rows+rows/10 || left != 0 {
		t.Errorf("Cleanup deleted %d rows, %d expired left; want %d and 0", deleted, left, rows+rows/10)
	}
	if failed != 0 {
		t.Errorf("%d requests failed during the cleanup", failed)
	}
	if len(waits) < 100 {
		t.Errorf("only %d requests ran during the cleanup: the test measured nothing", len(waits))
	}
	// A lock wait of a batch would show as seconds; the machine's load as
	// tens of milliseconds.
	if longest := percentile(waits, 1); longest > 2*time.Second {
		t.Errorf("a request waited %v during the cleanup", longest)
	}
}

var cleanupRows = flag.Int("cleanup-rows", 100000, "expired sessions BenchmarkCleanup deletes (e.g. 1000000)")

// BenchmarkCleanup deletes -cleanup-rows expired sessions (and a tenth as
// many owner records) from a server of its own while 8 browsers use live
// sessions of the same table, with Store.Cleanup and, for comparison, with
// the one DELETE statement of alexedwards/scs's MySQL store. It reports the
// rows deleted per second and the requests' latencies meanwhile:
//
//	go test -run '^$' -bench Cleanup -benchtime 1x -cleanup-rows 1000000
func BenchmarkCleanup(b *testing.B) {
	srv := mariadbtest.Start(b)
	for _, tc := range []struct {
		name  string
		clean func(st *mysql.Store, db *sql.DB, table string) error
	}{
		{"Store.Cleanup", func(st *mysql.Store, _ *sql.DB, _ string) error {
			_, err := st.Cleanup(context.Background())
			return err
		}},
		{"one DELETE", func(_ *mysql.Store, db *sql.DB, table string) error {
			now := time.Now().UnixMicro()
			if _, err := db.Exec(fmt.Sprintf("DELETE FROM `%s` WHERE expires <= ?", table), now); err != nil {
				return err
			}
			_, err := db.Exec(fmt.Sprintf("DELETE FROM `%s_owners` WHERE limit_at <= ?", table), now)
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var took time.Duration
			var waits []time.Duration
			var failed, left int
			for b.Loop() {
				took, waits, failed, left = cleanupUnderLoad(b, srv, *cleanupRows, tc.clean)
			}
			rows := *cleanupRows + *cleanupRows/10
			b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
			b.ReportMetric(float64(percentile(waits, 0.99).Microseconds())/1000, "p99-request-ms")
			b.ReportMetric(float64(percentile(waits, 1).Microseconds())/1000, "max-request-ms")
			b.ReportMetric(float64(failed), "failed-requests")
			b.ReportMetric(float64(len(waits)), "requests")
			if left != 0 {
				b.Errorf("%d expired rows left", left)
			}
		})
	}
}
