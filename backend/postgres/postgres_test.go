package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/storeapp"
	"github.com/sessionx/sessions/sessionstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore creates the schema of a table of t's own on db and returns a
// store on it, closed at cleanup.
func newStore(t testing.TB, db postgres.DB, opts postgres.Options) *postgres.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = pgtest.Table(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.CreateSchema(ctx, db, opts); err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	st, err := postgres.New(ctx, db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sharedPool returns a pool to the shared server, closed at cleanup.
func sharedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return pgtest.Shared(t).Pool(t, nil)
}

func TestConformance(t *testing.T) {
	pool := sharedPool(t)
	storetest.Run(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestConcurrency(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) }, sessionstest.Options{})
}

func TestSecurity(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestWrites(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestLifetime(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunLifetime(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestEvents(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunEvents(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestHeaderTokens(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunHeaderTokens(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestMerge(t *testing.T) {
	pool := sharedPool(t)
	sessionstest.RunMerge(t, func(t *testing.T) backend.Store { return newStore(t, pool, postgres.Options{}) })
}

func TestDump(t *testing.T) {
	pool := sharedPool(t)
	table := pgtest.Table(t)
	sessionstest.RunDump(t, func(t *testing.T) backend.Store {
		return newStore(t, pool, postgres.Options{Table: table})
	}, dumpTables(pool, table))
}

// dumpTables returns every column of every row of the store's three tables,
// each value as the bytes PostgreSQL sends for it (bytea as it is, other
// types as their text form), as a copy of the database would hold them.
func dumpTables(pool *pgxpool.Pool, table string) sessionstest.Dump {
	return func(t *testing.T, _ backend.Store) [][]byte {
		t.Helper()
		var out [][]byte
		for _, name := range []string{table, table + "_owners", table + "_schema"} {
			rows, err := pool.Query(t.Context(), fmt.Sprintf("SELECT * FROM %q", name))
			if err != nil {
				t.Fatalf("dumping %s: %v", name, err)
			}
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
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
		}
		return out
	}
}

func TestSessionsSharedBetweenManagers(t *testing.T) {
	pool := sharedPool(t)
	table := pgtest.Table(t)
	one := storeapp.New(t, newStore(t, pool, postgres.Options{Table: table}), sessions.Config{})
	two := storeapp.New(t, newStore(t, pool, postgres.Options{Table: table}), sessions.Config{})
	_, _, cookie := one.Do(t, "/inc", "")
	if _, body, _ := two.Do(t, "/inc", cookie); body != "2" {
		t.Fatalf("second manager read %q, want the first one's session (2)", body)
	}
	if _, body, _ := one.Do(t, "/read", cookie); body != "2" {
		t.Fatalf("first manager read %q after the second saved, want 2", body)
	}
}
