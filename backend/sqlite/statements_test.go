package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
	"github.com/sessionx/sessions/internal/storeapp"
)

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

// observer watches the file at path for commits: PRAGMA data_version on a
// connection of its own changes when any other connection committed a
// change to the file, and only then.
type observer struct {
	conn *sql.Conn
}

func newObserver(t testing.TB, path string) *observer {
	t.Helper()
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &observer{conn}
}

func (o *observer) version(t testing.TB) int64 {
	t.Helper()
	var v int64
	if err := o.conn.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestStatementsPerRequest counts, through a tap on the driver's
// connections, the statements each kind of request runs through the
// sessions core's middleware, and checks with PRAGMA data_version whether
// it committed anything to the file.
func TestStatementsPerRequest(t *testing.T) {
	path := dbPath(t)
	tp := &tap{}
	db := tapDB(t, path, tp, sqlite.Options{})
	st := storeOn(t, db, sqlite.Options{CleanupInterval: -1})
	obs := newObserver(t, path)
	clk := &clock{t: time.Now()}
	a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute, Now: clk.Now})

	steps := []struct {
		name    string
		advance time.Duration
		path    string
		want    int    // statements
		writes  bool   // whether the file changes
		match   string // the last statement's SQL
	}{
		{"anonymous visitor who stores nothing", 0, "/read", 0, false, ""},
		{"create: INSERT", 0, "/inc", 1, true, `^INSERT INTO`},
		{"read-only, refresh not due: SELECT", time.Minute, "/read", 1, false, `^SELECT value`},
		{"read-only, refresh due: SELECT, UPDATE ... RETURNING", 3 * time.Minute, "/read", 2, true, `^UPDATE .*RETURNING`},
		{"modifying, refresh not due: SELECT, UPDATE", time.Minute, "/inc", 2, true, `^UPDATE .* SET value`},
		{"read-only again, nothing due", time.Minute, "/read", 1, false, ""},
		{"modifying, refresh due: SELECT, UPDATE (slide), UPDATE", 3 * time.Minute, "/inc", 3, true, `^UPDATE .* SET value`},
		{"Migrate (login): SELECT, UPDATE OR REPLACE", time.Minute, "/login", 2, true, `^UPDATE OR REPLACE`},
		{"read-only after login", time.Minute, "/read", 1, false, ""},
		// The store records the owner in the Replace itself
		// (backend.OwnerRecorder, the schema's triggers): no AddOwned.
		{"Migrate setting an owner: SELECT, UPDATE OR REPLACE recording it", time.Minute, "/login-owner", 2, true, `^UPDATE OR REPLACE`},
		{"Migrate keeping the owner: SELECT, UPDATE OR REPLACE moving its record", time.Minute, "/login-owner", 2, true, `^UPDATE OR REPLACE`},
		{"Migrate to another owner: SELECT, UPDATE OR REPLACE, the old owner's RemoveOwned", time.Minute, "/login-other", 3, true, `^DELETE FROM .*_owners`},
		{"destroy: SELECT, DELETE, RemoveOwned", time.Minute, "/logout", 3, true, `^DELETE FROM .*_owners`},
		{"create again, no owner: INSERT", time.Minute, "/inc", 1, true, `^INSERT INTO`},
		{"destroy without an owner: SELECT, DELETE", time.Minute, "/logout", 2, true, `^DELETE FROM "sessions" WHERE`},
	}
	cookie := ""
	for _, step := range steps {
		clk.Advance(step.advance)
		tp.take()
		before := obs.version(t)
		var code int
		if step.name == steps[0].name {
			code, _, _ = a.Do(t, step.path, "")
		} else {
			code, _, cookie = a.Do(t, step.path, cookie)
		}
		sent := withoutCheckpoints(tp.take())
		if code != 200 {
			t.Fatalf("%s: status %d", step.name, code)
		}
		wrote := obs.version(t) != before
		t.Logf("%s: %d statements %q, file written: %v", step.name, len(sent), short(sent), wrote)
		if len(sent) != step.want {
			t.Errorf("%s: %d statements %q, want %d", step.name, len(sent), short(sent), step.want)
		}
		if wrote != step.writes {
			t.Errorf("%s: file written: %v, want %v", step.name, wrote, step.writes)
		}
		if step.match != "" && (len(sent) == 0 || !regexp.MustCompile(`(?s)`+step.match).MatchString(sent[len(sent)-1])) {
			t.Errorf("%s: statements %q, want the last one matching %s", step.name, short(sent), step.match)
		}
	}
	// Every owner record the walk made was moved with its session or
	// removed: none is left.
	var records int
	if err := obs.conn.QueryRowContext(t.Context(), `SELECT count(*) FROM sessions_owners`).Scan(&records); err != nil || records != 0 {
		t.Errorf("owner records left after the walk: %d, %v; want 0", records, err)
	}
}

// TestReadsWriteNothing: 200 loads whose refresh is not due commit nothing
// to the file (data_version does not move) and leave the -wal file as it
// was; one modifying request moves data_version.
func TestReadsWriteNothing(t *testing.T) {
	path := dbPath(t)
	st := openStore(t, path, sqlite.Options{CleanupInterval: -1})
	obs := newObserver(t, path)
	a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute})
	_, _, cookie := a.Do(t, "/inc", "")
	walSize := func() int64 { return fileSize(t, path+"-wal") }
	v0, w0 := obs.version(t), walSize()
	for i := range 200 {
		if code, _, _ := a.Do(t, "/read", cookie); code != 200 {
			t.Fatalf("read %d: status %d", i, code)
		}
	}
	if v, w := obs.version(t), walSize(); v != v0 || w != w0 {
		t.Errorf("200 reads with no refresh due: data_version %d -> %d, -wal %d -> %d bytes; want no change", v0, v, w0, w)
	}
	if code, _, _ := a.Do(t, "/inc", cookie); code != 200 {
		t.Fatal(code)
	}
	// (The -wal file need not grow: after a checkpoint SQLite writes it
	// again from its start. data_version moves with every commit of
	// another connection.)
	if v := obs.version(t); v == v0 {
		t.Errorf("a modifying request: data_version %d -> %d: the measure sees no write", v0, v)
	}
}

// TestAnswersCostOneRead: a conditional write that changes nothing costs
// one SELECT more, which tells a session that is gone (ErrNotFound) from
// one another request changed (ErrConflict); a create that finds a live
// row in the way needs none (its INSERT changed nothing: ErrConflict).
func TestAnswersCostOneRead(t *testing.T) {
	tp := &tap{}
	st := storeOn(t, tapDB(t, dbPath(t), tp, sqlite.Options{}), sqlite.Options{CleanupInterval: -1})
	ctx, now := t.Context(), time.Now()
	e := func(v uint64) backend.Entry {
		return backend.Entry{Value: []byte("v"), Expires: now.Add(time.Hour), Limit: now.Add(2 * time.Hour), Version: v}
	}
	for _, k := range []string{"k", "taken"} {
		if err := st.SetIf(ctx, k, 0, now, e(1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
		sent []string // the statements' first words
	}{
		{"SetIf of another version", func() error { return st.SetIf(ctx, "k", 9, now, e(10)) }, backend.ErrConflict,
			[]string{`UPDATE "sessions" SET value`, `SELECT version, expires,`}},
		{"SetIf of a missing session", func() error { return st.SetIf(ctx, "gone", 1, now, e(2)) }, backend.ErrNotFound,
			[]string{`UPDATE "sessions" SET value`, `SELECT version, expires,`}},
		{"SetIf creating over a live row", func() error { return st.SetIf(ctx, "k", 0, now, e(1)) }, backend.ErrConflict,
			[]string{`INSERT INTO "sessions"`}},
		{"Replace of a missing session", func() error { return st.Replace(ctx, "gone", 1, "new", now, e(2)) }, backend.ErrNotFound,
			[]string{`UPDATE OR REPLACE "sessions"`, `SELECT (SELECT version`}},
		{"Replace onto a taken key", func() error { return st.Replace(ctx, "k", 1, "taken", now, e(2)) }, backend.ErrConflict,
			[]string{`UPDATE OR REPLACE "sessions"`, `SELECT (SELECT version`}},
	} {
		tp.take()
		err := tc.call()
		sent := withoutCheckpoints(tp.take())
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		ok := len(sent) == len(tc.sent)
		for i := 0; ok && i < len(sent); i++ {
			ok = strings.HasPrefix(sent[i], tc.sent[i])
		}
		if !ok {
			t.Errorf("%s: sent %q, want %q", tc.name, short(sent), tc.sent)
		}
	}
}
