package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
)

// TestTableNames: Options.Table accepts plain names and refuses anything
// else, SQL included, in Open, New, CreateSchema and SchemaSQL alike,
// before touching the file.
func TestTableNames(t *testing.T) {
	path := dbPath(t)
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		table string
		ok    bool
	}{
		{"", true}, // DefaultTable
		{"plain", true},
		{"Mixed_Case", true},
		{"_under", true},
		{"t1", true},
		{strings.Repeat("x", sqlite.MaxTableLen), true},
		{strings.Repeat("x", sqlite.MaxTableLen+1), false},
		{"1digit", false},
		{"two words", false},
		{"semi;colon", false},
		{`sessions"; DROP TABLE sessions; --`, false},
		{"sessions; DROP TABLE sessions", false},
		{`"quoted"`, false},
		{"main.sessions", false},
		{".sessions", false},
		{"séssions", false},
		{"sessions\x00", false},
		{"sessions-x", false},
		{"sessions)", false},
		{"sqlite_sessions", false},
		{"SQLite_Sessions", false},
		// Its derived names (sqlite_owners, ...) would be SQLite's own.
		{"sqlite", false},
		{"SQLitE", false},
		{"sqlitex", true},
	} {
		t.Run(fmt.Sprintf("%.30q", tc.table), func(t *testing.T) {
			opts := sqlite.Options{Table: tc.table, CleanupInterval: -1}
			_, sqlErr := sqlite.SchemaSQL(tc.table)
			createErr := sqlite.CreateSchema(t.Context(), db, opts)
			st, newErr := sqlite.New(t.Context(), db, opts)
			opened, openErr := sqlite.Open(t.Context(), path, opts)
			if !tc.ok {
				if sqlErr == nil || createErr == nil || newErr == nil || openErr == nil {
					t.Fatalf("Options.Table %q accepted: SchemaSQL %v, CreateSchema %v, New %v, Open %v", tc.table, sqlErr, createErr, newErr, openErr)
				}
				return
			}
			if sqlErr != nil || createErr != nil || newErr != nil || openErr != nil {
				t.Fatalf("Options.Table %q refused: SchemaSQL %v, CreateSchema %v, New %v, Open %v", tc.table, sqlErr, createErr, newErr, openErr)
			}
			defer st.Close()
			defer opened.Close()
			e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(time.Minute), Version: 1}
			if err := st.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
				t.Fatal(err)
			}
			if got, err := opened.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
				t.Fatalf("Get through the other handle: %+v, %v", got, err)
			}
		})
	}
	// Nothing but the accepted tables (and their derived objects) exists.
	var bad int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name NOT GLOB 'sessions*' AND name NOT GLOB 'plain*'
		AND name NOT GLOB 'Mixed_Case*' AND name NOT GLOB '_under*' AND name NOT GLOB 't1*' AND name NOT GLOB 'xxxx*' AND name NOT GLOB 'sqlitex*'
		AND name NOT GLOB 'sqlite_autoindex_*'`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d objects of refused names in the file (%v)", bad, err)
	}
}

// TestTableNamesDerivedFromAnother: two stores on one file whose names are
// derived from one another's (the default and "sessions_owners", whose
// table is the default's owner index) cannot both be made: in either
// order, CreateSchema or New of the second fails, and the first keeps its
// sessions.
func TestTableNamesDerivedFromAnother(t *testing.T) {
	for _, order := range [][2]string{{"", "sessions_owners"}, {"sessions_owners", ""}} {
		t.Run(fmt.Sprintf("%q then %q", order[0], order[1]), func(t *testing.T) {
			db, err := sqlite.OpenDB(dbPath(t), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			first := storeOn(t, db, sqlite.Options{Table: order[0], CleanupInterval: -1})
			e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(time.Minute), Version: 1, Owner: "ann"}
			if err := first.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
				t.Fatal(err)
			}
			opts := sqlite.Options{Table: order[1], CleanupInterval: -1}
			err = sqlite.CreateSchema(t.Context(), db, opts)
			if err == nil {
				var second *sqlite.Store
				if second, err = sqlite.New(t.Context(), db, opts); err == nil {
					second.Close()
				}
			}
			t.Logf("the second store: %v", err)
			if err == nil {
				t.Fatalf("a store named %q made beside one named %q", order[1], order[0])
			}
			if got, err := first.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
				t.Fatalf("the first store's session: %+v, %v", got, err)
			}
			if keys, err := first.Owned(t.Context(), "ann"); err != nil || len(keys) != 1 {
				t.Fatalf("the first store's owner index: %q, %v", keys, err)
			}
		})
	}
}

// TestOpenRefusesNonFiles: Open, OpenDB and DSN want a file's path.
func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", "a\x00b"} {
		if _, err := sqlite.DSN(path, sqlite.Options{}); err == nil {
			t.Errorf("DSN(%q): no error", path)
		}
		if _, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
			t.Errorf("Open(%q): no error", path)
		}
	}
	if _, err := sqlite.DSN("x.db", sqlite.Options{BusyTimeout: -time.Second}); err == nil {
		t.Error("DSN with a negative BusyTimeout: no error")
	}
	if _, err := sqlite.Open(t.Context(), dbPath(t), sqlite.Options{CleanupBatch: -1}); err == nil {
		t.Error("Open with a negative CleanupBatch: no error")
	}
}

// TestNewChecksTheHandle: New refuses a nil handle, a database without the
// schema (naming CreateSchema), one not in WAL mode and one whose
// connections have no busy_timeout, naming what to do; and a file that is
// not a database.
func TestNewChecksTheHandle(t *testing.T) {
	path := dbPath(t)
	if _, err := sqlite.New(t.Context(), nil, sqlite.Options{}); err == nil {
		t.Error("New with a nil *sql.DB: no error")
	}
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := sqlite.New(t.Context(), db, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "CreateSchema") {
		t.Errorf("New without the schema: %v, want an error naming CreateSchema", err)
	}
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"rollback journal", "file:" + dbPath(t) + "?_pragma=busy_timeout(1000)", "WAL"},
		{"no busy_timeout", "file:" + dbPath(t) + "?_pragma=journal_mode(WAL)", "busy_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sql.Open("sqlite", tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := sqlite.CreateSchema(t.Context(), db, sqlite.Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := sqlite.New(t.Context(), db, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestSchemaVersion: CreateSchema records SchemaVersion; New refuses a
// table recorded at another version; CreateSchema again changes nothing in
// existing tables.
func TestSchemaVersion(t *testing.T) {
	path := dbPath(t)
	st := openStore(t, path, sqlite.Options{CleanupInterval: -1})
	e := backend.Entry{Value: []byte("kept"), Expires: time.Now().Add(time.Minute), Version: 1}
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`SELECT max(version) FROM sessions_schema`).Scan(&v); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("recorded schema version %d, %v; want %d", v, err, sqlite.SchemaVersion)
	}
	if err := sqlite.CreateSchema(t.Context(), db, sqlite.Options{}); err != nil {
		t.Fatalf("CreateSchema again: %v", err)
	}
	if got, err := st.Get(t.Context(), "k"); err != nil || string(got.Value) != "kept" {
		t.Fatalf("after CreateSchema again: %+v, %v; want the row kept", got, err)
	}
	if _, err := db.Exec(`INSERT INTO sessions_schema VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.New(t.Context(), db, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("New on a table at schema version 2: %v, want an error naming the version", err)
	}
	if _, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("Open on a table at schema version 2: %v, want an error naming the version", err)
	}
}

// TestCreateSchemaConcurrently: processes starting at once may all call
// CreateSchema (here eight handles on one new file, as eight processes
// would have): BEGIN IMMEDIATE makes them take turns.
func TestCreateSchemaConcurrently(t *testing.T) {
	path := dbPath(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			db, err := sqlite.OpenDB(path, sqlite.Options{})
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- sqlite.CreateSchema(t.Context(), db, sqlite.Options{})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent CreateSchema: %v", err)
		}
	}
	openStore(t, path, sqlite.Options{CleanupInterval: -1})
}

// TestSchemaSQL: the shipped schema, filled in, names only the given
// table's objects, each quoted, leaves no placeholder, and is what
// CreateSchema creates.
func TestSchemaSQL(t *testing.T) {
	sql, err := sqlite.SchemaSQL("web_sessions")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"web_sessions"`, `"web_sessions_owners"`, `"web_sessions_schema"`,
		`"web_sessions_expires_idx"`, `"web_sessions_owners_limit_idx"`, `"web_sessions_owner_insert"`, `"web_sessions_owner_update"`} {
		if !strings.Contains(sql, want) {
			t.Errorf("SchemaSQL lacks %s", want)
		}
	}
	if regexp.MustCompile(`\{[a-z_]+\}`).MatchString(sql) {
		t.Errorf("SchemaSQL left a placeholder:\n%s", sql)
	}
	def, err := sqlite.SchemaSQL("")
	if err != nil || !strings.Contains(def, `CREATE TABLE IF NOT EXISTS "sessions" (`) {
		t.Errorf("SchemaSQL(\"\") does not create the default table: %v", err)
	}
	// Applied by hand (as a migration tool would), it makes a schema New
	// accepts.
	db, err := sqlite.OpenDB(dbPath(t), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(sql); err != nil {
		t.Fatalf("applying SchemaSQL: %v", err)
	}
	st, err := sqlite.New(t.Context(), db, sqlite.Options{Table: "web_sessions", CleanupInterval: -1})
	if err != nil {
		t.Fatalf("New after applying SchemaSQL: %v", err)
	}
	st.Close()
}

// TestNoStatementReadsTheDatabaseClock: every statement the store sends
// (through every method and the cleanup) compares deadlines with a time it
// is given, never with SQLite's clock, so that skew between the core's
// clock and the machine's never revives a session.
func TestNoStatementReadsTheDatabaseClock(t *testing.T) {
	tp := &tap{}
	st := storeOn(t, tapDB(t, dbPath(t), tp, sqlite.Options{}), sqlite.Options{CleanupInterval: -1})
	ctx, now := t.Context(), time.Now()
	e := backend.Entry{Value: []byte("v"), Expires: now.Add(time.Minute), Limit: now.Add(time.Hour), Version: 1}
	tp.take()
	calls := []error{
		st.Set(ctx, "a", e),
		st.SetIf(ctx, "b", 0, now, e),
		st.SetIf(ctx, "b", 1, now, backend.Entry{Value: []byte("w"), Expires: now.Add(time.Minute), Version: 2}),
		st.SetIf(ctx, "b", 9, now, e),
		st.SetIf(ctx, "c", 0, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.SetIf(ctx, "a", 1, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.SetIf(ctx, "o", 0, now, backend.Entry{Value: []byte("o"), Expires: now.Add(time.Minute), Version: 1, Owner: "x"}),
		st.Touch(ctx, "b", now, now.Add(2*time.Minute)),
		st.Replace(ctx, "b", 2, "d", now, e),
		st.Replace(ctx, "o", 1, "p", now, backend.Entry{Value: []byte("o"), Expires: now.Add(time.Minute), Version: 2, Owner: "x"}),
		st.Replace(ctx, "zz", 1, "d", now, e),
		st.AddOwned(ctx, "o", "d", now.Add(time.Hour)),
		st.AddOwned(ctx, "o", "x", now.Add(-time.Hour)),
		st.RemoveOwned(ctx, "o", "d"),
		st.Delete(ctx, "d"),
	}
	_, err := st.Get(ctx, "a")
	calls = append(calls, err)
	_, _, err = st.GetTouch(ctx, "p", now, now.Add(time.Hour), now.Add(2*time.Hour))
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
	sent := tp.take()
	if len(sent) < len(calls) {
		t.Fatalf("only %d statements traced for %d calls", len(sent), len(calls))
	}
	// SQLite's clock: the date and time functions (whose default and
	// 'now' argument read it) and the CURRENT_* keywords.
	clock := regexp.MustCompile(`(?i)\b(date|time|datetime|julianday|unixepoch|strftime|timediff)\s*\(|current_(time|date|timestamp)|'now'`)
	comment := regexp.MustCompile(`--[^\n]*`)
	for _, q := range append(sent, mustSchema(t)) {
		if m := clock.FindString(comment.ReplaceAllString(q, "")); m != "" {
			t.Errorf("a statement reads SQLite's clock (%s):\n%s", m, q)
		}
	}
}

func mustSchema(t *testing.T) string {
	t.Helper()
	s, err := sqlite.SchemaSQL("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
