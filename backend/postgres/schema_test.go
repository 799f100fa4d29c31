package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
)

// TestTableNames: Options.Table accepts plain and schema-qualified names
// (kept case-sensitive) and refuses anything else, SQL included, in New,
// CreateSchema and SchemaSQL alike, before sending anything.
func TestTableNames(t *testing.T) {
	srv := pgtest.Shared(t)
	pool := srv.Pool(t, nil)
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA IF NOT EXISTS app`); err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(strings.ReplaceAll(pgtest.Table(t), "t_testtablenames", ""))
	for _, tc := range []struct {
		table string
		ok    bool
	}{
		{"plain" + suffix, true},
		{"app.qualified" + suffix, true},
		{"Mixed_Case" + suffix, true},
		{"_under" + suffix, true},
		{strings.Repeat("x", 46), true},
		{strings.Repeat("x", 47), false},
		{"1digit", false},
		{"two words", false},
		{"semi;colon", false},
		{`sessions"; DROP TABLE sessions; --`, false},
		{"sessions; DROP TABLE sessions", false},
		{`"quoted"`, false},
		{"a.b.c", false},
		{".sessions", false},
		{"app.", false},
		{"séssions", false},
		{"sessions\x00", false},
		{"sessions-x", false},
		{"sessions)", false},
	} {
		t.Run(fmt.Sprintf("%.30q", tc.table), func(t *testing.T) {
			opts := postgres.Options{Table: tc.table, CleanupInterval: -1}
			_, sqlErr := postgres.SchemaSQL(tc.table)
			createErr := postgres.CreateSchema(t.Context(), pool, opts)
			st, newErr := postgres.New(t.Context(), pool, opts)
			if !tc.ok {
				if sqlErr == nil || createErr == nil || newErr == nil {
					t.Fatalf("Options.Table %q accepted: SchemaSQL %v, CreateSchema %v, New %v", tc.table, sqlErr, createErr, newErr)
				}
				return
			}
			if sqlErr != nil || createErr != nil || newErr != nil {
				t.Fatalf("Options.Table %q refused: SchemaSQL %v, CreateSchema %v, New %v", tc.table, sqlErr, createErr, newErr)
			}
			defer st.Close()
			e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(time.Minute), Version: 1}
			if err := st.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
				t.Fatalf("Get: %+v, %v", got, err)
			}
		})
	}
}

// TestNewWithoutSchema: New on a table that was never created says to call
// CreateSchema; on an unreachable server it says the server is unreachable.
func TestNewWithoutSchema(t *testing.T) {
	pool := sharedPool(t)
	_, err := postgres.New(t.Context(), pool, postgres.Options{Table: pgtest.Table(t)})
	if err == nil || !strings.Contains(err.Error(), "CreateSchema") {
		t.Fatalf("New without the schema: %v, want an error naming CreateSchema", err)
	}
	if _, err := postgres.New(t.Context(), nil, postgres.Options{}); err == nil {
		t.Error("New with a nil DB: no error")
	}
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	down, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := postgres.New(ctx, down, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL") {
		t.Fatalf("New with nothing listening: %v, want an error saying PostgreSQL is unreachable", err)
	}
}

// TestSchemaVersion: CreateSchema records SchemaVersion; New refuses a
// table recorded at another version; CreateSchema again changes nothing in
// existing tables.
func TestSchemaVersion(t *testing.T) {
	pool := sharedPool(t)
	table := pgtest.Table(t)
	st := newStore(t, pool, postgres.Options{Table: table, CleanupInterval: -1})
	e := backend.Entry{Value: []byte("kept"), Expires: time.Now().Add(time.Minute), Version: 1}
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := pool.QueryRow(t.Context(), fmt.Sprintf(`SELECT max(version) FROM %q`, table+"_schema")).Scan(&v); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("recorded schema version %d, %v; want %d", v, err, postgres.SchemaVersion)
	}
	if err := postgres.CreateSchema(t.Context(), pool, postgres.Options{Table: table}); err != nil {
		t.Fatalf("CreateSchema again: %v", err)
	}
	if got, err := st.Get(t.Context(), "k"); err != nil || string(got.Value) != "kept" {
		t.Fatalf("after CreateSchema again: %+v, %v; want the row kept", got, err)
	}
	if _, err := pool.Exec(t.Context(), fmt.Sprintf(`INSERT INTO %q VALUES (2)`, table+"_schema")); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.New(t.Context(), pool, postgres.Options{Table: table}); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("New on a table at schema version 2: %v, want an error naming the version", err)
	}
}

// TestCreateSchemaConcurrently: application instances starting at once may
// all call CreateSchema.
func TestCreateSchemaConcurrently(t *testing.T) {
	pool := sharedPool(t)
	table := pgtest.Table(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- postgres.CreateSchema(t.Context(), pool, postgres.Options{Table: table}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent CreateSchema: %v", err)
		}
	}
	st, err := postgres.New(t.Context(), pool, postgres.Options{Table: table, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestSchemaSQL: the shipped schema, filled in, names only the given
// table's objects, each quoted, and leaves no placeholder.
func TestSchemaSQL(t *testing.T) {
	sql, err := postgres.SchemaSQL("app.web_sessions")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"app"."web_sessions"`, `"app"."web_sessions_owners"`, `"app"."web_sessions_schema"`,
		`"web_sessions_expires_idx"`, `"web_sessions_owners_limit_idx"`} {
		if !strings.Contains(sql, want) {
			t.Errorf("SchemaSQL lacks %s", want)
		}
	}
	if regexp.MustCompile(`\{[a-z_]+\}`).MatchString(sql) {
		t.Errorf("SchemaSQL left a placeholder:\n%s", sql)
	}
	def, err := postgres.SchemaSQL("")
	if err != nil || !strings.Contains(def, `CREATE TABLE IF NOT EXISTS "sessions" (`) {
		t.Errorf("SchemaSQL(\"\") does not create the default table: %v", err)
	}
}

// TestNoStatementReadsTheDatabaseClock: every statement the store sends
// (through every method and the cleanup) compares deadlines with a time it
// is given, never with the database's clock, so that skew between the
// application and the database never revives a session.
func TestNoStatementReadsTheDatabaseClock(t *testing.T) {
	srv := pgtest.Shared(t)
	tr := &tracer{}
	pool := tracedPool(t, srv, tr)
	st := newStore(t, pool, postgres.Options{CleanupInterval: -1})
	ctx, now := t.Context(), time.Now()
	e := backend.Entry{Value: []byte("v"), Expires: now.Add(time.Minute), Limit: now.Add(time.Hour), Version: 1}
	tr.take()
	calls := []error{
		st.Set(ctx, "a", e),
		st.SetIf(ctx, "b", 0, now, e),
		st.SetIf(ctx, "b", 1, now, backend.Entry{Value: []byte("w"), Expires: now.Add(time.Minute), Version: 2}),
		st.SetIf(ctx, "b", 9, now, e),
		st.SetIf(ctx, "c", 0, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.SetIf(ctx, "a", 1, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.Touch(ctx, "b", now, now.Add(2*time.Minute)),
		st.Replace(ctx, "b", 2, "d", now, e),
		st.AddOwned(ctx, "o", "d", now.Add(time.Hour)),
		st.AddOwned(ctx, "o", "x", now.Add(-time.Hour)),
		st.RemoveOwned(ctx, "o", "d"),
		st.Delete(ctx, "d"),
	}
	_, err := st.Get(ctx, "a")
	calls = append(calls, err)
	_, _, err = st.GetTouch(ctx, "a", now, now.Add(time.Hour), now.Add(2*time.Hour))
	calls = append(calls, err)
	_, err = st.Owned(ctx, "o")
	calls = append(calls, err)
	_, err = st.Cleanup(ctx)
	calls = append(calls, err)
	for i, err := range calls {
		if err != nil && !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, backend.ErrConflict) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	sent := tr.take()
	if len(sent) < len(calls) {
		t.Fatalf("only %d statements traced for %d calls", len(sent), len(calls))
	}
	for _, sql := range sent {
		low := strings.ToLower(sql)
		for _, clock := range []string{"now()", "current_timestamp", "clock_timestamp", "statement_timestamp",
			"transaction_timestamp", "localtimestamp", "current_date", "current_time", "timeofday"} {
			if strings.Contains(low, clock) {
				t.Errorf("a statement reads the database's clock (%s):\n%s", clock, sql)
			}
		}
	}
}
