package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/storeapp"
	"github.com/sessionx/sessions/sessionstest"
)

func TestMain(m *testing.M) { mariadbtest.Main(m) }

// newStore creates the schema of a table of t's own on db and returns a
// store on it, closed at cleanup.
func newStore(t testing.TB, db *sql.DB, opts mysql.Options) *mysql.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = mariadbtest.Table(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mysql.CreateSchema(ctx, db, opts); err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	st, err := mysql.New(ctx, db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// recommended sets the DSN settings the package documentation recommends.
func recommended(c *drv.Config) { c.InterpolateParams = true }

// sharedDB returns a *sql.DB to the shared server with the recommended DSN
// settings, closed at cleanup.
func sharedDB(t testing.TB) *sql.DB {
	t.Helper()
	return mariadbtest.Shared(t).DB(t, recommended)
}

// otherwiseDB returns a *sql.DB to the shared server with every DSN setting
// the store must not depend on turned the other way: server-side prepared
// statements (no interpolateParams), clientFoundRows (matched rather than
// changed rows), READ COMMITTED instead of the default REPEATABLE READ, and
// ANSI_QUOTES and PIPES_AS_CONCAT in sql_mode.
func otherwiseDB(t testing.TB) *sql.DB {
	t.Helper()
	srv := mariadbtest.Shared(t)
	isolation := "tx_isolation" // MariaDB's name; MySQL 8 knows only transaction_isolation
	var version string
	if err := srv.DB(t, nil).QueryRowContext(t.Context(), "SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version, "MariaDB") {
		isolation = "transaction_isolation"
	}
	return srv.DB(t, func(c *drv.Config) {
		c.InterpolateParams = false
		c.ClientFoundRows = true
		c.Params = map[string]string{
			isolation:  "'READ-COMMITTED'",
			"sql_mode": "CONCAT(@@sql_mode, ',ANSI_QUOTES,PIPES_AS_CONCAT')",
		}
	})
}

func TestConformance(t *testing.T) {
	db := sharedDB(t)
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

// TestConformanceWhateverTheDSN: the store gives the same answers with
// prepared statements, clientFoundRows, READ COMMITTED and an unusual
// sql_mode as with the recommended settings.
func TestConformanceWhateverTheDSN(t *testing.T) {
	db := otherwiseDB(t)
	var level, mode string
	if err := db.QueryRowContext(t.Context(), "SELECT @@tx_isolation, @@sql_mode").Scan(&level, &mode); err == nil {
		if level != "READ-COMMITTED" || !strings.Contains(mode, "ANSI_QUOTES") {
			t.Fatalf("the connection is at %s with sql_mode %s: the test tests nothing", level, mode)
		}
	}
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestConcurrency(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) }, sessionstest.Options{})
}

func TestSecurity(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestWrites(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestLifetime(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunLifetime(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestEvents(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunEvents(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestHeaderTokens(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunHeaderTokens(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestMerge(t *testing.T) {
	db := sharedDB(t)
	sessionstest.RunMerge(t, func(t *testing.T) backend.Store { return newStore(t, db, mysql.Options{}) })
}

func TestDump(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	sessionstest.RunDump(t, func(t *testing.T) backend.Store {
		return newStore(t, db, mysql.Options{Table: table})
	}, dumpTables(db, table))
}

// dumpTables returns every column of every row of the store's three tables,
// each value as the bytes the server sends for it (the text protocol's
// form of every type), as a copy of the database (mysqldump, a replica)
// would hold them.
func dumpTables(db *sql.DB, table string) sessionstest.Dump {
	return func(t *testing.T, _ backend.Store) [][]byte {
		t.Helper()
		var out [][]byte
		for _, name := range []string{table, table + "_owners", table + "_schema"} {
			rows, err := db.QueryContext(t.Context(), fmt.Sprintf("SELECT * FROM `%s`", name))
			if err != nil {
				t.Fatalf("dumping %s: %v", name, err)
			}
			cols, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				vals := make([]sql.RawBytes, len(cols))
				dest := make([]any, len(cols))
				for i := range vals {
					dest[i] = &vals[i]
				}
				if err := rows.Scan(dest...); err != nil {
					t.Fatalf("dumping %s: %v", name, err)
				}
				for _, v := range vals {
					out = append(out, append([]byte(nil), v...))
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("dumping %s: %v", name, err)
			}
			rows.Close()
		}
		return out
	}
}

func TestSessionsSharedBetweenManagers(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	one := storeapp.New(t, newStore(t, db, mysql.Options{Table: table}), sessions.Config{})
	two := storeapp.New(t, newStore(t, db, mysql.Options{Table: table}), sessions.Config{})
	_, _, cookie := one.Do(t, "/inc", "")
	if _, body, _ := two.Do(t, "/inc", cookie); body != "2" {
		t.Fatalf("second manager read %q, want the first one's session (2)", body)
	}
	if _, body, _ := one.Do(t, "/read", cookie); body != "2" {
		t.Fatalf("first manager read %q after the second saved, want 2", body)
	}
}

// TestAppClockAhead: the application's clock runs two hours ahead of the
// database's. Sessions work as usual by the application's clock (created,
// read, slid, changed, migrated), and a session whose deadline has passed
// by the application's clock is gone, though the database's clock says it
// is not: no statement asks the database what time it is.
func TestAppClockAhead(t *testing.T) {
	db := sharedDB(t)
	table := mariadbtest.Table(t)
	ahead := &clock{t: time.Now().Add(2 * time.Hour)}
	a := storeapp.New(t, newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1}),
		sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute, Now: ahead.Now})
	_, _, cookie := a.Do(t, "/inc", "")
	steps := []struct {
		advance time.Duration
		path    string
		want    string
	}{
		{time.Minute, "/inc", "2"},
		{5 * time.Minute, "/read", "2"}, // a refresh due: slid by the app's clock
		{25 * time.Minute, "/inc", "3"}, // alive only because the read slid it
		{time.Minute, "/login", "3"},
		{time.Minute, "/inc", "4"},
	}
	for i, step := range steps {
		ahead.Advance(step.advance)
		code, body, next := a.Do(t, step.path, cookie)
		if code != 200 || body != step.want {
			t.Fatalf("step %d (%s): %d %q, want 200 %q", i, step.path, code, body, step.want)
		}
		cookie = next
	}
	// Past the idle deadline by the app's clock, still hours before it by
	// the database's: gone.
	ahead.Advance(31 * time.Minute)
	if _, body, _ := a.Do(t, "/read", cookie); body != "0" {
		t.Fatalf("a session past its idle deadline by the app's clock read %q, want a new session (0)", body)
	}
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

// TestValuesSurviveEveryEscaping: keys holding quotes, backslashes and SQL
// wildcards, and values holding every byte, round trip whether the driver
// interpolates the arguments (with the server's backslash escapes on or off:
// sql_mode NO_BACKSLASH_ESCAPES) or sends them in prepared statements.
func TestValuesSurviveEveryEscaping(t *testing.T) {
	srv := mariadbtest.Shared(t)
	value := []byte(`'"\` + "\x00\x1a\n\r;--")
	for i := range 256 {
		value = append(value, byte(i))
	}
	for _, mode := range []struct {
		name      string
		configure func(*drv.Config)
	}{
		{"interpolated", recommended},
		{"interpolated, NO_BACKSLASH_ESCAPES", func(c *drv.Config) {
			recommended(c)
			c.Params = map[string]string{"sql_mode": "CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"}
		}},
		{"prepared", nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			db := srv.DB(t, mode.configure)
			db.SetMaxOpenConns(1)
			var sqlMode string
			if err := db.QueryRowContext(t.Context(), "SELECT @@sql_mode").Scan(&sqlMode); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(mode.name, "NO_BACKSLASH_ESCAPES") != strings.Contains(sqlMode, "NO_BACKSLASH_ESCAPES") {
				t.Fatalf("sql_mode is %s: the test tests nothing", sqlMode)
			}
			st := newStore(t, db, mysql.Options{CleanupInterval: -1})
			ctx, now := t.Context(), time.Now()
			key, moved, owner := `k'"\%_;-- x`, `m\'%`, `o'\"`
			e := backend.Entry{Value: value, Expires: now.Add(time.Hour), Version: 1}
			if err := st.SetIf(ctx, key, 0, now, e); err != nil {
				t.Fatal(err)
			}
			for _, other := range []string{`k'"\%_;-- y`, `k`, `k%`} {
				if _, err := st.Get(ctx, other); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("Get(%q) after writing %q: %v, want ErrNotFound", other, key, err)
				}
			}
			e.Version = 2
			if err := st.Replace(ctx, key, 1, moved, now, e); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, moved)
			if err != nil || !bytes.Equal(got.Value, value) || got.Version != 2 {
				t.Fatalf("Get(%q) = %q, %d, %v; want every byte back", moved, got.Value, got.Version, err)
			}
			if err := st.AddOwned(ctx, owner, moved, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if keys, err := st.Owned(ctx, owner); err != nil || len(keys) != 1 || keys[0] != moved {
				t.Fatalf("Owned(%q) = %q, %v", owner, keys, err)
			}
			if err := st.RemoveOwned(ctx, owner, moved); err != nil {
				t.Fatal(err)
			}
		})
	}
}
