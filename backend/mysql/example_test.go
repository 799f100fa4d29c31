package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" driver

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/mysql"
)

// Sessions in MySQL or MariaDB: open the application's *sql.DB (with
// interpolateParams=true, one round trip per statement), create the schema
// once, construct the store around the *sql.DB and hand it to the Manager.
// (The example needs a server, so it is compiled, not run.)
func ExampleNew() {
	db, err := sql.Open("mysql", "app:secret@tcp(127.0.0.1:3306)/app?interpolateParams=true&timeout=5s")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()                       // after the store: deferred first
	db.SetMaxIdleConns(32)                 // about the requests served at once: no reconnect per request
	db.SetConnMaxLifetime(5 * time.Minute) // below the server's wait_timeout

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := mysql.Options{Table: "web_sessions"}
	if err := mysql.CreateSchema(ctx, db, opts); err != nil { // idempotent
		log.Fatal(err)
	}
	store, err := mysql.New(ctx, db, opts) // checks the schema; starts the cleanup
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
		s.Data.Items = append(s.Data.Items, "book") // one INSERT for a new visitor, then SELECT + UPDATE
	})))
}

// The schema as SQL, for applications that run their migrations with a tool
// of their own.
func ExampleSchemaSQL() {
	schema, err := mysql.SchemaSQL("app.web_sessions")
	if err != nil {
		log.Fatal(err) // an invalid table name
	}
	// e.g. write it to migrations/0001_sessions.sql; here, the tables it
	// creates:
	for line := range strings.Lines(schema) {
		if strings.HasPrefix(line, "CREATE TABLE") {
			fmt.Print(line)
		}
	}
	// Output:
	// CREATE TABLE IF NOT EXISTS `app`.`web_sessions` (
	// CREATE TABLE IF NOT EXISTS `app`.`web_sessions_owners` (
	// CREATE TABLE IF NOT EXISTS `app`.`web_sessions_schema` (
}
