package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
	"github.com/sessionx/sessions/internal/storeapp"
)

// tracer is a pgx QueryTracer that records the SQL of every statement sent
// (one TraceQueryStart per Exec, Query or QueryRow).
type tracer struct {
	mu  sync.Mutex
	sql []string
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	tr.sql = append(tr.sql, data.SQL)
	tr.mu.Unlock()
	return ctx
}

func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements recorded since the last take.
func (tr *tracer) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.sql
	tr.sql = nil
	return s
}

// short names a statement by its first words, for messages.
func short(sql []string) []string {
	out := make([]string, len(sql))
	for i, s := range sql {
		f := strings.Fields(s)
		out[i] = strings.Join(f[:min(len(f), 4)], " ")
	}
	return out
}

// clock is the core's clock in these tests: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tracedPool returns a pool of one connection to srv whose statements tr
// records.
func tracedPool(t *testing.T, srv *pgtest.Server, tr *tracer) *pgxpool.Pool {
	t.Helper()
	return srv.Pool(t, func(c *pgxpool.Config) {
		c.MaxConns, c.MinConns = 1, 1
		c.ConnConfig.Tracer = tr
	})
}

// rowVersions returns the (ctid, xmin) of every row of table: an UPDATE or
// DELETE of a row changes them, a read does not.
func rowVersions(t *testing.T, admin *pgxpool.Pool, table string) string {
	t.Helper()
	var s string
	err := admin.QueryRow(t.Context(), fmt.Sprintf(`SELECT coalesce(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY key), '') FROM %q`, table)).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoundTrips counts, with a pgx QueryTracer, the statements each kind of
// request sends through the sessions core's middleware, and checks with the
// rows' ctid and xmin whether it wrote the session's row.
func TestRoundTrips(t *testing.T) {
	srv := pgtest.Shared(t)
	tr := &tracer{}
	pool := tracedPool(t, srv, tr)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, pool, postgres.Options{Table: table, CleanupInterval: -1})
	clk := &clock{t: time.Now()}
	a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute, Now: clk.Now})

	steps := []struct {
		name    string
		advance time.Duration
		path    string
		max     int    // statements at most
		exactly bool   // and at least
		writes  bool   // whether the session rows change
		match   string // the last statement's SQL
	}{
		{"anonymous visitor who stores nothing", 0, "/read", 0, true, false, ""},
		{"create", 0, "/inc", 1, true, true, ""},
		{"read-only, refresh not due", time.Minute, "/read", 1, true, false, `^WITH touched AS \(\s*UPDATE`},
		{"read-only, refresh due", 3 * time.Minute, "/read", 1, true, true, `^WITH touched AS \(\s*UPDATE`},
		{"modifying, refresh not due", time.Minute, "/inc", 2, false, true, ""},
		{"read-only again, nothing due", time.Minute, "/read", 1, true, false, ""},
		{"modifying, refresh due", 3 * time.Minute, "/inc", 2, false, true, ""},
		{"Migrate (login): load, Replace", time.Minute, "/login", 1 + 2, false, true, `^WITH o AS`},
		{"read-only after login", time.Minute, "/read", 1, true, false, ""},
		// The store records the owner in the Replace itself
		// (backend.OwnerRecorder): no AddOwned beside it.
		{"Migrate setting an owner: load, Replace recording it", time.Minute, "/login-owner", 2, true, true, `^WITH o AS`},
		{"Migrate keeping the owner: load, Replace moving its record", time.Minute, "/login-owner", 2, true, true, `^WITH o AS`},
		{"Migrate to another owner: load, Replace, the old owner's RemoveOwned", time.Minute, "/login-other", 3, true, true, `^DELETE FROM`},
		{"destroy: load, Delete, RemoveOwned", time.Minute, "/logout", 3, false, true, ""},
	}
	// A first pass prepares every statement on the pool's connection, so
	// that the counted pass sends each as one round trip.
	for pass := range 2 {
		cookie := ""
		for _, step := range steps {
			clk.Advance(step.advance)
			tr.take()
			before := rowVersions(t, admin, table)
			var code int
			if step.path == "/read" && step.name == steps[0].name {
				code, _, _ = a.Do(t, step.path, "")
			} else {
				code, _, cookie = a.Do(t, step.path, cookie)
			}
			sent := tr.take()
			if code != 200 {
				t.Fatalf("%s: status %d", step.name, code)
			}
			if pass == 0 {
				continue
			}
			wrote := rowVersions(t, admin, table) != before
			t.Logf("%s: %d statements %q, row written: %v", step.name, len(sent), short(sent), wrote)
			if len(sent) > step.max || (step.exactly && len(sent) != step.max) {
				t.Errorf("%s: %d statements %q, want %s%d", step.name, len(sent), short(sent), map[bool]string{false: "at most ", true: ""}[step.exactly], step.max)
			}
			if wrote != step.writes {
				t.Errorf("%s: session rows written: %v, want %v", step.name, wrote, step.writes)
			}
			if step.match != "" && (len(sent) == 0 || !regexp.MustCompile(step.match).MatchString(sent[len(sent)-1])) {
				t.Errorf("%s: statements %q, want the last one matching %s", step.name, short(sent), step.match)
			}
		}
	}
}

// tableStats are a table's counters in pg_stat_user_tables.
type tableStats struct{ upd, hot, dead int64 }

func (a tableStats) minus(b tableStats) tableStats {
	return tableStats{a.upd - b.upd, a.hot - b.hot, a.dead - b.dead}
}

// TestReadWritesNothing checks on a server of its own that loads whose
// refresh is not due write nothing at all: after 200 of them through the
// middleware, the server's WAL has not grown by more than one background
// record (the bgwriter may log a snapshot of running transactions), and the
// table's statistics count no updated row and no dead tuple. Modifying
// requests before a refresh is due move both, and each updates the row in
// place (a HOT update: the idle deadline, the only indexed column a save
// could change, is kept: see the core's saveDeadline), writing no index
// entry.
func TestReadWritesNothing(t *testing.T) {
	srv := pgtest.Start(t)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	if err := postgres.CreateSchema(t.Context(), admin, postgres.Options{Table: table}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), fmt.Sprintf(`ALTER TABLE %q SET (autovacuum_enabled = false)`, table)); err != nil {
		t.Fatal(err)
	}
	// stats closes the requests' pool, whose backends report their
	// statistics as they exit, and reads them once they have settled.
	stats := func(pool *pgxpool.Pool) tableStats {
		t.Helper()
		pool.Close()
		var st, last tableStats
		for i := 0; i < 40; i++ {
			err := admin.QueryRow(t.Context(), `SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&st.upd, &st.hot, &st.dead)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 2 && last == st {
				break
			}
			last = st
			time.Sleep(100 * time.Millisecond)
		}
		return st
	}
	wal := func() int64 {
		t.Helper()
		var lsn int64
		if err := admin.QueryRow(t.Context(), `SELECT pg_current_wal_insert_lsn() - '0/0'`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	run := func(path string, n int, cookie string) (string, int64, tableStats) {
		t.Helper()
		pool := srv.Pool(t, nil)
		st := newStore(t, pool, postgres.Options{Table: table, CleanupInterval: -1})
		a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute})
		if cookie == "" {
			_, _, cookie = a.Do(t, "/inc", "")
		}
		a.Do(t, "/read", cookie) // prepares the load's statement
		before := stats(srv.Pool(t, nil))
		lsn := wal()
		for i := range n {
			if code, _, _ := a.Do(t, path, cookie); code != 200 {
				t.Fatalf("%s %d: status %d", path, i, code)
			}
		}
		walBytes := wal() - lsn
		return cookie, walBytes, stats(pool).minus(before)
	}
	cookie, walBytes, d := run("/read", 200, "")
	t.Logf("200 read-only requests: %d bytes of WAL, %+v", walBytes, d)
	if walBytes > 128 || d.upd != 0 || d.dead != 0 {
		t.Errorf("200 read-only requests with no refresh due: %d bytes of WAL, %d rows updated, %d dead tuples; want none", walBytes, d.upd, d.dead)
	}
	_, walBytes, d = run("/inc", 20, cookie)
	t.Logf("20 modifying requests: %d bytes of WAL, %+v", walBytes, d)
	if walBytes <= 128 || d.upd != 20 {
		t.Errorf("20 modifying requests: %d bytes of WAL, %d rows updated; want 20 updates", walBytes, d.upd)
	}
	if d.hot != d.upd {
		t.Errorf("20 modifying requests before a refresh is due: %d of %d updates HOT, want all", d.hot, d.upd)
	}
}
