package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
)

// TestTableNames: Options.Table accepts plain and database-qualified names
// (case kept) and refuses anything else, SQL included, in New,
// CreateSchema and SchemaSQL alike, before sending anything.
func TestTableNames(t *testing.T) {
	db := sharedDB(t)
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE IF NOT EXISTS app"); err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(strings.ReplaceAll(mariadbtest.Table(t), "t_testtablenames", ""))
	for _, tc := range []struct {
		table string
		ok    bool
	}{
		{"plain" + suffix, true},
		{"app.qualified" + suffix, true},
		{"Mixed_Case" + suffix, true},
		{"_under" + suffix, true},
		{strings.Repeat("x", 57), true},
		{strings.Repeat("y", 58), false},
		{strings.Repeat("d", 65) + ".t", false},
		{"1digit", false},
		{"two words", false},
		{"semi;colon", false},
		{"sessions`; DROP TABLE sessions; --", false},
		{"sessions; DROP TABLE sessions", false},
		{"`quoted`", false},
		{`"quoted"`, false},
		{"a.b.c", false},
		{".sessions", false},
		{"app.", false},
		{"séssions", false},
		{"sessions\x00", false},
		{"sessions-x", false},
		{"sessions$x", false},
		{"sessions)", false},
	} {
		t.Run(fmt.Sprintf("%.30q", tc.table), func(t *testing.T) {
			opts := mysql.Options{Table: tc.table, CleanupInterval: -1}
			_, sqlErr := mysql.SchemaSQL(tc.table)
			createErr := mysql.CreateSchema(t.Context(), db, opts)
			st, newErr := mysql.New(t.Context(), db, opts)
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

// FuzzTableNames: SchemaSQL accepts exactly the names of the documented
// form, and what it makes of an accepted one quotes every name it derives.
func FuzzTableNames(f *testing.F) {
	for _, s := range []string{"", "sessions", "app.sessions", "a.b.c", "x`y", "1a", "_", "a.", strings.Repeat("z", 58)} {
		f.Add(s)
	}
	part := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	f.Fuzz(func(t *testing.T, table string) {
		sql, err := mysql.SchemaSQL(table)
		name := table
		if name == "" {
			name = mysql.DefaultTable
		}
		parts := strings.Split(name, ".")
		valid := len(parts) <= 2 && part.MatchString(parts[len(parts)-1]) && len(parts[len(parts)-1]) <= 57 &&
			(len(parts) == 1 || part.MatchString(parts[0]) && len(parts[0]) <= 64)
		if valid != (err == nil) {
			t.Fatalf("SchemaSQL(%q): %v; the name is valid: %v", table, err, valid)
		}
		if err != nil {
			return
		}
		quoted := "`" + strings.Join(parts, "`.`") + "`"
		if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS "+quoted+" (") {
			t.Fatalf("SchemaSQL(%q) does not create %s", table, quoted)
		}
		// Four names, each two more backticks when qualified.
		if strings.Count(sql, "`") != strings.Count(mustSchema(t, "sessions"), "`")+8*(len(parts)-1) {
			t.Fatalf("SchemaSQL(%q) quotes differently than for a plain name", table)
		}
	})
}

func mustSchema(t *testing.T, table string) string {
	t.Helper()
	s, err := mysql.SchemaSQL(table)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSplitStatements: the script splitter cuts at semicolons outside
// quotes and comments, keeps the comments within statements and drops the
// pieces that hold nothing else.
func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   []string
	}{
		{"", nil},
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"-- a comment; with a semicolon\nSELECT 1;", []string{"-- a comment; with a semicolon\nSELECT 1"}},
		{"# hash comment;\nSELECT 1", []string{"# hash comment;\nSELECT 1"}},
		{"SELECT 1 /* a; b */ + 1", []string{"SELECT 1 /* a; b */ + 1"}},
		{"SELECT 1; -- only a comment after the last statement\n", []string{"SELECT 1"}},
		{"SELECT 1; /* only a comment */ ;", []string{"SELECT 1"}},
		{"SELECT 'a;b', \"c;d\", `e;f`", []string{"SELECT 'a;b', \"c;d\", `e;f`"}},
		{`SELECT 'it''s;', 'back\';slash'; SELECT 2`, []string{`SELECT 'it''s;', 'back\';slash'`, "SELECT 2"}},
		{"SELECT 1--2;", []string{"SELECT 1--2"}}, // "--" without a space is minus minus
		{"SELECT 'unterminated; still", []string{"SELECT 'unterminated; still"}},
		{" ; ;\n;", nil},
	} {
		if got := mysql.SplitStatements(tc.script); !slices.Equal(got, tc.want) {
			t.Errorf("split %q = %q, want %q", tc.script, got, tc.want)
		}
	}
	if n := len(mysql.SplitStatements(mustSchema(t, ""))); n != 4 {
		t.Errorf("schema.sql splits into %d statements, want 4", n)
	}
}

// FuzzSplitStatements: the splitter never panics, returns no empty or
// untrimmed statement, invents nothing (the statements are pieces of the
// script, in order), and its statements are whole: each splits into
// itself.
func FuzzSplitStatements(f *testing.F) {
	f.Add(mustSchemaF(f))
	f.Add("SELECT 'a;b'; -- c;\n SELECT `x;` /* ; */;")
	f.Add(`'\`)
	f.Fuzz(func(t *testing.T, script string) {
		rest := script
		for _, s := range mysql.SplitStatements(script) {
			if strings.Trim(s, " \t\n\v\f\r") != s || s == "" {
				t.Fatalf("statement %q is empty or untrimmed", s)
			}
			i := strings.Index(rest, s)
			if i < 0 {
				t.Fatalf("statement %q is not in what is left of the script, %q", s, rest)
			}
			rest = rest[i+len(s):]
			if again := mysql.SplitStatements(s); len(again) != 1 || again[0] != s {
				t.Fatalf("statement %q splits into %q", s, again)
			}
		}
	})
}

func mustSchemaF(f *testing.F) string {
	s, err := mysql.SchemaSQL("")
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// TestNewWithoutSchema: New on a table that was never created says to call
// CreateSchema; on an unreachable server it says the server is unreachable.
func TestNewWithoutSchema(t *testing.T) {
	db := sharedDB(t)
	_, err := mysql.New(t.Context(), db, mysql.Options{Table: mariadbtest.Table(t)})
	if err == nil || !strings.Contains(err.Error(), "CreateSchema") {
		t.Fatalf("New without the schema: %v, want an error naming CreateSchema", err)
	}
	_, err = mysql.New(t.Context(), db, mysql.Options{Table: "nosuchdatabase.sessions"})
	if err == nil || !strings.Contains(err.Error(), "CreateSchema") {
		t.Fatalf("New in a database that does not exist: %v, want an error naming CreateSchema", err)
	}
	if _, err := mysql.New(t.Context(), nil, mysql.Options{}); err == nil {
		t.Error("New with a nil *sql.DB: no error")
	}
	if err := mysql.CreateSchema(t.Context(), nil, mysql.Options{}); err == nil {
		t.Error("CreateSchema with a nil *sql.DB: no error")
	}
	cfg := drv.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Timeout = "tcp", "127.0.0.1:1", "root", 2*time.Second
	conn, err := drv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	down := sql.OpenDB(conn)
	defer down.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := mysql.New(ctx, down, mysql.Options{}); err == nil || !strings.Contains(err.Error(), "cannot reach MySQL") {
		t.Fatalf("New with nothing listening: %v, want an error saying MySQL is unreachable", err)
	}
	for _, batch := range []int{-1, mysql.MaxCleanupBatch + 1} {
		if _, err := mysql.New(ctx, db, mysql.Options{CleanupBatch: batch}); err == nil {
			t.Errorf("New with CleanupBatch %d: no error", batch)
		}
	}
}

// TestSchemaVersion: CreateSchema records SchemaVersion; New refuses a
// table recorded at another version; CreateSchema again changes nothing in
// existing tables.
func TestSchemaVersion(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1})
	e := backend.Entry{Value: []byte("kept"), Expires: time.Now().Add(time.Minute), Version: 1}
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), e); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRowContext(t.Context(), fmt.Sprintf("SELECT MAX(version) FROM `%s_schema`", table)).Scan(&v); err != nil || v != mysql.SchemaVersion {
		t.Fatalf("recorded schema version %d, %v; want %d", v, err, mysql.SchemaVersion)
	}
	if err := mysql.CreateSchema(t.Context(), db, mysql.Options{Table: table}); err != nil {
		t.Fatalf("CreateSchema again: %v", err)
	}
	if got, err := st.Get(t.Context(), "k"); err != nil || string(got.Value) != "kept" {
		t.Fatalf("after CreateSchema again: %+v, %v; want the row kept", got, err)
	}
	if _, err := db.ExecContext(t.Context(), fmt.Sprintf("INSERT INTO `%s_schema` VALUES (2)", table)); err != nil {
		t.Fatal(err)
	}
	if _, err := mysql.New(t.Context(), db, mysql.Options{Table: table}); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("New on a table at schema version 2: %v, want an error naming the version", err)
	}
}

// TestCreateSchemaConcurrently: application instances starting at once may
// all call CreateSchema; they take turns under the named lock.
func TestCreateSchemaConcurrently(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- mysql.CreateSchema(t.Context(), db, mysql.Options{Table: table}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent CreateSchema: %v", err)
		}
	}
	st, err := mysql.New(t.Context(), db, mysql.Options{Table: table, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestCreateSchemaWaitsForTheLock: while another connection holds the
// schema's named lock, CreateSchema waits, and gives up at its context's
// deadline with an error saying so.
func TestCreateSchemaWaitsForTheLock(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	if err := mysql.CreateSchema(t.Context(), db, mysql.Options{Table: table}); err != nil {
		t.Fatal(err)
	}
	// Another instance's CreateSchema, under way: it holds the lock.
	holder, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	name := mysql.SchemaLockName(table)
	var got int
	if err := holder.QueryRowContext(t.Context(), "SELECT GET_LOCK(?, 1)", name).Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK: %d, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = mysql.CreateSchema(ctx, db, mysql.Options{Table: table})
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("CreateSchema while another instance holds the lock: %v, want an error naming the lock", err)
	}
	if waited := time.Since(start); waited < time.Second || waited > 3*time.Second {
		t.Errorf("CreateSchema gave up after %v, want about its context's 1.5 s", waited)
	}
	if _, err := holder.ExecContext(t.Context(), "DO RELEASE_LOCK(?)", name); err != nil {
		t.Fatal(err)
	}
	if err := mysql.CreateSchema(t.Context(), db, mysql.Options{Table: table}); err != nil {
		t.Fatalf("CreateSchema once the lock is free: %v", err)
	}
}

// TestSchemaSQL: the shipped schema, filled in, names only the given
// table's objects, each quoted, and leaves no placeholder.
func TestSchemaSQL(t *testing.T) {
	sql, err := mysql.SchemaSQL("app.web_sessions")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`app`.`web_sessions`", "`app`.`web_sessions_owners`", "`app`.`web_sessions_schema`", "ENGINE=InnoDB"} {
		if !strings.Contains(sql, want) {
			t.Errorf("SchemaSQL lacks %s", want)
		}
	}
	if regexp.MustCompile(`\{[a-z_]+\}`).MatchString(sql) {
		t.Errorf("SchemaSQL left a placeholder:\n%s", sql)
	}
	def, err := mysql.SchemaSQL("")
	if err != nil || !strings.Contains(def, "CREATE TABLE IF NOT EXISTS `sessions` (") {
		t.Errorf("SchemaSQL(\"\") does not create the default table: %v", err)
	}
}

// TestNoStatementReadsTheDatabaseClock: every statement the store sends
// (through every method and the cleanup) compares deadlines with a time it
// is given, never with the database's clock, so that skew between the
// application and the database never revives a session.
func TestNoStatementReadsTheDatabaseClock(t *testing.T) {
	srv := mariadbtest.Shared(t)
	var w mariadbtest.Wire
	db := tracedDB(t, srv, &w, true)
	st := newStore(t, db, mysql.Options{CleanupInterval: -1})
	ctx, now := t.Context(), time.Now()
	e := backend.Entry{Value: []byte("v"), Expires: now.Add(time.Minute), Limit: now.Add(time.Hour), Version: 1}
	w.Take()
	calls := []error{
		st.Set(ctx, "a", e),
		st.Set(ctx, "a", e),
		st.SetIf(ctx, "b", 0, now, e),
		st.SetIf(ctx, "b", 0, now, e),
		st.SetIf(ctx, "b", 1, now, backend.Entry{Value: []byte("w"), Expires: now.Add(time.Minute), Version: 2}),
		st.SetIf(ctx, "b", 9, now, e),
		st.SetIf(ctx, "c", 0, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.SetIf(ctx, "a", 1, now, backend.Entry{Expires: now.Add(-time.Second)}),
		st.Touch(ctx, "b", now, now.Add(2*time.Minute)),
		st.Touch(ctx, "b", now, now.Add(-time.Minute)),
		st.SetIf(ctx, "b", 0, now, e),
		st.Replace(ctx, "b", 1, "d", now, e),
		st.Replace(ctx, "d", 1, "d", now, e),
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
	sent := w.Take()
	if len(sent) < len(calls) {
		t.Fatalf("only %d statements seen for %d calls", len(sent), len(calls))
	}
	clocks := regexp.MustCompile(`(?i)\b(now|current_timestamp|current_date|current_time|curdate|curtime|sysdate|utc_timestamp|utc_date|utc_time|unix_timestamp|localtime|localtimestamp)\b`)
	for _, c := range sent {
		if m := clocks.FindString(c.SQL); m != "" {
			t.Errorf("a statement reads the database's clock (%s):\n%s", m, c.SQL)
		}
	}
}
