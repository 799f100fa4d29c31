package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/storeapp"
	"github.com/sessionx/sessions/sessionstest"
)

// dbPath returns the path of a new database file in t's temporary
// directory.
func dbPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "sessions.db")
}

// openStore opens a store on the file at path, closed at cleanup.
func openStore(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newStore opens a store on a file of t's own.
func newStore(t testing.TB, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	return openStore(t, dbPath(t), opts)
}

// storeOn creates the schema on db and returns a store on it (New), closed
// at cleanup.
func storeOn(t testing.TB, db *sql.DB, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sqlite.CreateSchema(ctx, db, opts); err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	st, err := sqlite.New(ctx, db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fresh makes a store on a file of the case's own, for the suites.
func fresh(t *testing.T) backend.Store { return newStore(t, sqlite.Options{}) }

func TestConformance(t *testing.T) { storetest.Run(t, fresh) }

// TestConcurrency runs sessionstest.RunConcurrency with its defaults: 32
// goroutines on two Managers of one store, 200 Updates each, must end at
// exactly 6,400 (UpdateLosesNoIncrement), with every Update waiting its
// turn for the file's write lock rather than failing with SQLITE_BUSY.
func TestConcurrency(t *testing.T) {
	sessionstest.RunConcurrency(t, fresh, sessionstest.Options{Goroutines: 32, Increments: 200})
}

func TestSecurity(t *testing.T)     { sessionstest.RunSecurity(t, fresh) }
func TestWrites(t *testing.T)       { sessionstest.RunWrites(t, fresh) }
func TestLifetime(t *testing.T)     { sessionstest.RunLifetime(t, fresh) }
func TestEvents(t *testing.T)       { sessionstest.RunEvents(t, fresh) }
func TestHeaderTokens(t *testing.T) { sessionstest.RunHeaderTokens(t, fresh) }
func TestMerge(t *testing.T)        { sessionstest.RunMerge(t, fresh) }

func TestDump(t *testing.T) {
	path := dbPath(t)
	sessionstest.RunDump(t, func(t *testing.T) backend.Store {
		return openStore(t, path, sqlite.Options{})
	}, dumpFile(path))
}

// dumpFile returns every column of every row of every table in the file
// (the store's three and SQLite's own sqlite_schema), each value as its
// bytes (BLOBs as they are, other types as their text form), as a copy of
// the file would hold them.
func dumpFile(path string) sessionstest.Dump {
	return func(t *testing.T, _ backend.Store) [][]byte {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables []string
		rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, n)
		}
		rows.Close()
		var out [][]byte
		for _, name := range append(tables, "sqlite_schema") {
			rows, err := db.Query(fmt.Sprintf(`SELECT * FROM %q`, name))
			if err != nil {
				t.Fatalf("dumping %s: %v", name, err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("dumping %s: %v", name, err)
				}
				for _, v := range vals {
					if b, ok := v.([]byte); ok {
						out = append(out, b)
					} else {
						out = append(out, fmt.Append(nil, v))
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("dumping %s: %v", name, err)
			}
			rows.Close()
		}
		if len(tables) < 3 {
			t.Fatalf("dumped tables %q: the store's three are missing", tables)
		}
		return out
	}
}

// TestSessionsSharedBetweenStores: two Stores (two handles) on one file,
// each under a Manager, see each other's sessions at once.
func TestSessionsSharedBetweenStores(t *testing.T) {
	path := dbPath(t)
	one := storeapp.New(t, openStore(t, path, sqlite.Options{}), sessions.Config{})
	two := storeapp.New(t, openStore(t, path, sqlite.Options{}), sessions.Config{})
	_, _, cookie := one.Do(t, "/inc", "")
	if _, body, _ := two.Do(t, "/inc", cookie); body != "2" {
		t.Fatalf("second store read %q, want the first one's session (2)", body)
	}
	if _, body, _ := one.Do(t, "/read", cookie); body != "2" {
		t.Fatalf("first store read %q after the second saved, want 2", body)
	}
}
