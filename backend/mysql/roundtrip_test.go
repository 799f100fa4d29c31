package mysql_test

import (
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/internal/storeapp"
)

// tracedDB returns a *sql.DB of one connection to srv whose commands w
// records, with interpolateParams as given.
func tracedDB(t *testing.T, srv *mariadbtest.Server, w *mariadbtest.Wire, interpolate bool) *sql.DB {
	t.Helper()
	db := srv.DB(t, func(c *drv.Config) {
		c.DialFunc = w.Dial
		c.InterpolateParams = interpolate
	})
	db.SetMaxOpenConns(1)
	return db
}

// names lists commands for messages.
func names(cmds []mariadbtest.Command) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.String()
	}
	return out
}

// rowState returns every column of every row of table but the value's
// bytes (their hash instead): any write of the store changes it (a new
// version, deadline or write id), a read does not.
func rowState(t *testing.T, admin *sql.DB, table string) string {
	t.Helper()
	var s sql.NullString
	err := admin.QueryRowContext(t.Context(), fmt.Sprintf("SELECT GROUP_CONCAT(CONCAT_WS(':', HEX(`key`), version, expires, COALESCE(limit_at, '-'), idle, HEX(writes), MD5(`value`)) ORDER BY `key`) FROM `%s`", table)).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s.String
}

// TestRoundTrips counts, on the wire, the commands each kind of request
// sends through the sessions core's middleware (each one round trip), with
// the recommended interpolateParams=true (one command per statement) and
// without it (the driver prepares each statement, executes it and closes
// it: two round trips per statement, the close unanswered), and checks
// whether it wrote the session's row.
func TestRoundTrips(t *testing.T) {
	srv := mariadbtest.Shared(t)
	admin := srv.DB(t, nil)
	steps := []struct {
		name    string
		advance time.Duration
		path    string
		want    int    // statements
		writes  bool   // whether the session rows change
		last    string // the last statement's SQL
	}{
		{"anonymous visitor who stores nothing", 0, "/read", 0, false, ""},
		{"create: INSERT", 0, "/inc", 1, true, "^INSERT INTO"},
		{"read-only, refresh not due: SELECT", time.Minute, "/read", 1, false, "^SELECT `value`"},
		{"read-only, refresh due: SELECT, UPDATE", 3 * time.Minute, "/read", 2, true, "^UPDATE \\S+ SET expires = "},
		{"modifying, refresh not due: SELECT, UPDATE", time.Minute, "/inc", 2, true, "^UPDATE \\S+ SET `value` ="},
		{"read-only again, nothing due: SELECT", time.Minute, "/read", 1, false, "^SELECT `value`"},
		{"modifying, refresh due: SELECT, UPDATE (slide), UPDATE", 3 * time.Minute, "/inc", 3, true, "^UPDATE \\S+ SET `value` ="},
		{"Migrate (login): SELECT, UPDATE (Replace)", time.Minute, "/login", 2, true, "^UPDATE \\S+ SET `key` ="},
		{"read-only after login: SELECT", time.Minute, "/read", 1, false, ""},
		{"destroy: SELECT, DELETE", time.Minute, "/logout", 2, true, "^DELETE FROM \\S+ WHERE"},
		{"create again: INSERT", time.Minute, "/inc", 1, true, "^INSERT INTO"},
		// The core records an owned session in the index before and after
		// the write (owner.go): two AddOwned beside the Replace.
		{"Migrate setting an owner: SELECT, AddOwned, Replace, AddOwned", time.Minute, "/login-owner", 4, true, "^INSERT INTO \\S+_owners"},
		{"destroy with an owner: SELECT, DELETE, RemoveOwned", time.Minute, "/logout", 3, true, "^DELETE FROM \\S+_owners"},
	}
	for _, mode := range []struct {
		name        string
		interpolate bool
		perStmt     int // round trips per statement
	}{
		{"interpolateParams=true", true, 1},
		{"prepared statements", false, 2},
	} {
		t.Run(mode.name, func(t *testing.T) {
			var w mariadbtest.Wire
			db := tracedDB(t, srv, &w, mode.interpolate)
			table := mariadbtest.Table(t)
			st := newStore(t, db, mysql.Options{Table: table, CleanupInterval: -1})
			clk := &clock{t: time.Now()}
			a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute, Now: clk.Now})
			cookie := ""
			for i, step := range steps {
				clk.Advance(step.advance)
				w.Take()
				before := rowState(t, admin, table)
				var code int
				if i == 0 {
					code, _, _ = a.Do(t, step.path, "")
				} else {
					code, _, cookie = a.Do(t, step.path, cookie)
				}
				cmds := w.Take()
				trips := mariadbtest.RoundTrips(cmds)
				if code != 200 {
					t.Fatalf("%s: status %d", step.name, code)
				}
				wrote := rowState(t, admin, table) != before
				t.Logf("%s: %d round trips %q, row written: %v", step.name, len(trips), names(cmds), wrote)
				if want := step.want * mode.perStmt; len(trips) != want {
					t.Errorf("%s: %d round trips %q, want %d", step.name, len(trips), names(cmds), want)
				}
				if wrote != step.writes {
					t.Errorf("%s: session rows written: %v, want %v", step.name, wrote, step.writes)
				}
				var sqls []string
				for _, c := range cmds {
					if c.SQL != "" {
						sqls = append(sqls, c.SQL)
					}
				}
				if step.last != "" && (len(sqls) == 0 || !regexp.MustCompile(step.last).MatchString(sqls[len(sqls)-1])) {
					t.Errorf("%s: statements %q, want the last one matching %s", step.name, names(cmds), step.last)
				}
				for _, c := range trips {
					if !mode.interpolate && c.Code == mariadbtest.ComQuery {
						t.Errorf("%s: a plain query %q without interpolateParams, want prepared statements", step.name, c)
					}
				}
			}
		})
	}
}

// globalStatus returns the server's global counters named.
func globalStatus(t *testing.T, admin *sql.DB, names ...string) map[string]int64 {
	t.Helper()
	rows, err := admin.QueryContext(t.Context(), "SHOW GLOBAL STATUS WHERE Variable_name IN ('"+strings.Join(names, "', '")+"')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadWritesNothing checks on a server of its own that loads whose
// refresh is not due write nothing at all: over 200 of them through the
// middleware, the server counts no INSERT, UPDATE or DELETE statement, no
// row written, updated or deleted through its storage engines' handler
// interface, and InnoDB's history list (the undo records of committed
// writes) does not grow; one modifying request moves the counters.
func TestReadWritesNothing(t *testing.T) {
	srv := mariadbtest.Start(t)
	admin := srv.DB(t, nil)
	st := newStore(t, srv.DB(t, recommended), mysql.Options{CleanupInterval: -1})
	a := storeapp.New(t, st, sessions.Config{IdleTimeout: 30 * time.Minute})
	_, _, cookie := a.Do(t, "/inc", "")
	writes := []string{"Com_insert", "Com_update", "Com_delete", "Com_replace", "Handler_write", "Handler_update", "Handler_delete"}
	counters := append(slices.Clone(writes), "Innodb_history_list_length", "Com_select")
	run := func(path string, n int) map[string]int64 {
		t.Helper()
		before := globalStatus(t, admin, counters...)
		for i := range n {
			if code, _, _ := a.Do(t, path, cookie); code != 200 {
				t.Fatalf("%s %d: status %d", path, i, code)
			}
		}
		after := globalStatus(t, admin, counters...)
		delta := map[string]int64{}
		for _, c := range counters {
			delta[c] = after[c] - before[c]
		}
		return delta
	}
	d := run("/read", 200)
	t.Logf("200 read-only requests: %v", d)
	if d["Com_select"] < 200 {
		t.Fatalf("the server counted %d SELECTs for 200 loads: the counters do not see the requests", d["Com_select"])
	}
	for _, c := range writes {
		if d[c] != 0 {
			t.Errorf("200 read-only requests with no refresh due: %s moved by %d, want 0", c, d[c])
		}
	}
	if h := d["Innodb_history_list_length"]; h > 0 {
		t.Errorf("200 read-only requests with no refresh due: InnoDB's history list grew by %d undo records, want none", h)
	}
	d = run("/inc", 1)
	t.Logf("1 modifying request: %v", d)
	if d["Com_update"] != 1 || d["Handler_update"] != 1 {
		t.Errorf("a modifying request: %d UPDATE statements, %d rows updated; want 1 and 1: the measure sees no write", d["Com_update"], d["Handler_update"])
	}
}
