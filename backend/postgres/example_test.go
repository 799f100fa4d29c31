package postgres_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/postgres"
)

// Sessions in PostgreSQL: create the schema once, construct the store
// around the application's pool and hand it to the Manager. (The example
// needs a server, so it is compiled, not run.)
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://app@127.0.0.1:5432/app?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // after the store: deferred first

	opts := postgres.Options{Table: "web_sessions"}
	if err := postgres.CreateSchema(ctx, pool, opts); err != nil { // idempotent
		log.Fatal(err)
	}
	store, err := postgres.New(ctx, pool, opts) // checks the schema; starts the cleanup
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	type Cart struct{ Items []string }
	mgr, err := sessions.New[Cart](sessions.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/", mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.Items = append(s.Data.Items, "book") // one INSERT for a new visitor, then load + UPDATE
	})))
}

// The schema as SQL, for applications that run their migrations with a tool
// of their own.
func ExampleSchemaSQL() {
	sql, err := postgres.SchemaSQL("app.web_sessions")
	if err != nil {
		log.Fatal(err) // an invalid table name
	}
	_ = sql // e.g. write it to migrations/0001_sessions.sql
}
