package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
)

// fill inserts n sessions expiring at expires (and owner records with that
// limit) straight into table, named prefix0, prefix1, ...
func fill(t *testing.T, pool *pgxpool.Pool, table, prefix string, n int, expires time.Time) {
	t.Helper()
	_, err := pool.Exec(t.Context(), fmt.Sprintf(`INSERT INTO %q (key, value, version, expires)
		SELECT $1 || i, '\x00', 1, $2 FROM generate_series(0, $3 - 1) AS i`, table), prefix, expires, n)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(t.Context(), fmt.Sprintf(`INSERT INTO %q (owner, key, limit_at)
		SELECT '\x01', $1 || i, $2 FROM generate_series(0, $3 - 1) AS i`, table+"_owners"), prefix, expires, n)
	if err != nil {
		t.Fatal(err)
	}
}

// count returns the rows of table whose key starts with prefix.
func count(t *testing.T, pool *pgxpool.Pool, table, prefix string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), fmt.Sprintf(`SELECT count(*) FROM %q WHERE starts_with(key, $1)`, table), prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCleanupDeletesExpiredInBatches: Cleanup deletes every expired session
// row and owner record, in statements of at most CleanupBatch rows, and no
// live one.
func TestCleanupDeletesExpiredInBatches(t *testing.T) {
	srv := pgtest.Shared(t)
	tr := &tracer{}
	pool := tracedPool(t, srv, tr)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, pool, postgres.Options{Table: table, CleanupInterval: -1, CleanupBatch: 1000})
	fill(t, admin, table, "dead", 2500, time.Now().Add(-time.Minute))
	fill(t, admin, table, "live", 10, time.Now().Add(time.Hour))
	tr.take()
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
	// 1000 + 1000 + 500 sessions, the same for owner records.
	if sent := tr.take(); len(sent) != 6 {
		t.Errorf("Cleanup sent %d statements %q, want 6 batches of at most 1000 rows", len(sent), short(sent))
	}
	// Nothing left: one statement per table finds nothing.
	if n, err := st.Cleanup(t.Context()); n != 0 || err != nil {
		t.Errorf("a second Cleanup: %d, %v; want 0, nil", n, err)
	}
}

// TestCleanupRunsInBackgroundUntilClose: with a short CleanupInterval,
// expired rows vanish without a call; after Close, they stay, and Cleanup
// and every other method return backend.ErrClosed.
func TestCleanupRunsInBackgroundUntilClose(t *testing.T) {
	srv := pgtest.Shared(t)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, admin, postgres.Options{Table: table, CleanupInterval: 50 * time.Millisecond})
	fill(t, admin, table, "dead", 300, time.Now().Add(-time.Minute))
	fill(t, admin, table, "live", 3, time.Now().Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for count(t, admin, table, "dead") != 0 || count(t, admin, table+"_owners", "dead") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired rows still there 5 s after they were written, with a 50 ms CleanupInterval")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if live := count(t, admin, table, "live"); live != 3 {
		t.Fatalf("the cleanup deleted live rows: %d of 3 left", live)
	}
	st.Close()
	fill(t, admin, table, "later", 5, time.Now().Add(-time.Minute))
	time.Sleep(300 * time.Millisecond)
	if n := count(t, admin, table, "later"); n != 5 {
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

// TestCleanupSkipsLockedRows: an expired row that a transaction holds
// locked (a request writing over it) does not make the cleanup wait: it
// deletes the others and leaves that one.
func TestCleanupSkipsLockedRows(t *testing.T) {
	srv := pgtest.Shared(t)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, admin, postgres.Options{Table: table, CleanupInterval: -1, CleanupBatch: 10})
	fill(t, admin, table, "dead", 25, time.Now().Add(-time.Minute))
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), fmt.Sprintf(`SELECT 1 FROM %q WHERE key = 'dead7' FOR UPDATE`, table)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := st.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup with a locked row: %v (after %v)", err, time.Since(start))
	}
	if n := count(t, admin, table, "dead"); n != 1 {
		t.Fatalf("%d expired rows left, want the locked one only", n)
	}
	var key string
	if err := admin.QueryRow(t.Context(), fmt.Sprintf(`SELECT key FROM %q`, table)).Scan(&key); err != nil || key != "dead7" {
		t.Fatalf("left %q, %v; want dead7", key, err)
	}
}

// TestCleanupStatementUsesTheExpiresIndex: a batch finds its rows through
// the index on expires, not by reading the whole table.
func TestCleanupStatementUsesTheExpiresIndex(t *testing.T) {
	srv := pgtest.Shared(t)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, admin, postgres.Options{Table: table, CleanupInterval: -1})
	fill(t, admin, table, "live", 20000, time.Now().Add(time.Hour))
	fill(t, admin, table, "dead", 50, time.Now().Add(-time.Minute))
	if _, err := admin.Exec(t.Context(), fmt.Sprintf(`ANALYZE %q`, table)); err != nil {
		t.Fatal(err)
	}
	rows, err := admin.Query(t.Context(), "EXPLAIN "+postgres.CleanupStatement(st), time.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if !strings.Contains(strings.Join(plan, "\n"), table+"_expires_idx") {
		t.Fatalf("the cleanup's batch does not use the expires index:\n%s", strings.Join(plan, "\n"))
	}
}
