package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/sqlite"
)

// Sessions in an SQLite file of the application's own: Open creates the
// file and the schema, and the sessions survive a restart of the store.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "sessions-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sessions.db") // e.g. /var/lib/app/sessions.db

	type Cart struct{ Items []string }
	var cookie *http.Cookie
	// serve runs one request of a visitor through a Manager on store.
	serve := func(store *sqlite.Store) {
		mgr, err := sessions.New[Cart](sessions.Config{Store: store})
		if err != nil {
			log.Fatal(err)
		}
		defer mgr.Close()
		h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := mgr.Get(r)
			s.Data.Items = append(s.Data.Items, "book") // one INSERT for a new visitor, then load + UPDATE
			fmt.Println("cart:", s.Data.Items)
		}))
		req := httptest.NewRequest("GET", "/", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
	}

	ctx := context.Background()
	store, err := sqlite.Open(ctx, path, sqlite.Options{}) // creates the file and the schema
	if err != nil {
		log.Fatal(err)
	}
	serve(store)
	serve(store)
	if err := store.Close(); err != nil { // stops the cleanup, closes the file
		log.Fatal(err)
	}

	// The application restarts: the visitor's session is still there.
	store, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	serve(store)
	// Output:
	// cart: [book]
	// cart: [book book]
	// cart: [book book book]
}

// A file the application shares with the store: open the handle with
// OpenDB (or sql.Open(sqlite.DriverName, sqlite.DSN(...))), create the
// schema once (or apply SchemaSQL with your migrations), and hand the
// handle to New. The application keeps and closes the handle.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sessions-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sqlite.OpenDB(filepath.Join(dir, "app.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // after the store: deferred first
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		log.Fatal(err) // the application's own tables, in the same file
	}

	opts := sqlite.Options{Table: "web_sessions"}
	if err := sqlite.CreateSchema(ctx, db, opts); err != nil { // idempotent
		log.Fatal(err)
	}
	store, err := sqlite.New(ctx, db, opts) // checks the handle and the schema; starts the cleanup
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			log.Fatal(err)
		}
		fmt.Println(name)
	}
	// Output:
	// users
	// web_sessions
	// web_sessions_owners
	// web_sessions_schema
}

// A handle opened with DSN and a setting of the application's own,
// appended to it: here synchronous FULL, so that every commit waits for
// fsync and survives a power cut. (The driver's _synchronous key, which it
// applies after the DSN's _pragma parameters: a second
// _pragma=synchronous(FULL) would lose to the DSN's synchronous(NORMAL),
// which the driver runs after it.)
func ExampleDSN() {
	dir, err := os.MkdirTemp("", "sessions-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	dsn, err := sqlite.DSN(filepath.Join(dir, "sessions.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open(sqlite.DriverName, dsn+"&_synchronous=FULL")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.CreateSchema(ctx, db, sqlite.Options{}); err != nil {
		log.Fatal(err)
	}
	store, err := sqlite.New(ctx, db, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	var mode string
	var synchronous int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		log.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
		log.Fatal(err)
	}
	fmt.Println("journal_mode:", mode)
	fmt.Println("synchronous:", synchronous) // 2: FULL
	// Output:
	// journal_mode: wal
	// synchronous: 2
}

// The schema as SQL, for applications that run their migrations with a tool
// of their own. A table name that is not a plain identifier is refused.
func ExampleSchemaSQL() {
	schema, err := sqlite.SchemaSQL("web_sessions")
	if err != nil {
		log.Fatal(err) // an invalid table name
	}
	// e.g. write it to migrations/0001_sessions.sql
	for line := range strings.Lines(schema) {
		if strings.HasPrefix(line, "CREATE") {
			fmt.Print(line)
		}
	}

	_, err = sqlite.SchemaSQL("sessions; DROP TABLE users")
	fmt.Println(err)
	// Output:
	// CREATE TABLE IF NOT EXISTS "web_sessions" (
	// CREATE INDEX IF NOT EXISTS "web_sessions_expires_idx" ON "web_sessions" (expires);
	// CREATE TABLE IF NOT EXISTS "web_sessions_owners" (
	// CREATE INDEX IF NOT EXISTS "web_sessions_owners_limit_idx" ON "web_sessions_owners" (limit_at);
	// CREATE TRIGGER IF NOT EXISTS "web_sessions_owner_insert" AFTER INSERT ON "web_sessions"
	// CREATE TRIGGER IF NOT EXISTS "web_sessions_owner_update" AFTER UPDATE OF key, owner ON "web_sessions"
	// CREATE TABLE IF NOT EXISTS "web_sessions_schema" (
	// sessions: sqlite store: invalid Options.Table "sessions; DROP TABLE users": holds ';' at byte 8: only ASCII letters, digits and underscores are allowed
}
