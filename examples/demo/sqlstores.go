package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/sqlite"
)

// sqlTable is the demo's table in SQLite and MySQL (-postgres-table names
// PostgreSQL's).
const sqlTable = "demo_sessions"

// newSQLiteStore opens (creating it if need be) the SQLite file path with
// the demo's table, giving it storeTimeout. The store owns the file's
// handle: its Close closes it.
func newSQLiteStore(ctx context.Context, path string) (*sqlite.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return sqlite.Open(ctx, path, sqlite.Options{Table: sqlTable})
}

// newMySQLStore opens a pool to dsn (a go-sql-driver/mysql DSN), creates
// the demo's table if it is missing and makes the MySQL store, giving the
// server storeTimeout to answer. It returns the pool, which outlives the
// store, and a name for it without the password.
func newMySQLStore(ctx context.Context, dsn string) (*sql.DB, *mysql.Store, string, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, "", fmt.Errorf("-mysql: %w", err)
	}
	if cfg.Timeout == 0 || cfg.Timeout > storeTimeout {
		cfg.Timeout = storeTimeout // dialing
	}
	cfg.InterpolateParams = true // one round trip per statement (backend/mysql's doc)
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("-mysql: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(32) // about the concurrent requests: no dial per request
	name := fmt.Sprintf("mysql %s/%s", cfg.Addr, cfg.DBName)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	opts := mysql.Options{Table: sqlTable}
	if err := mysql.CreateSchema(ctx, db, opts); err != nil {
		db.Close()
		return nil, nil, name, err
	}
	store, err := mysql.New(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, nil, name, err
	}
	return db, store, name, nil
}

// errNoPath is -sqlite's error for an empty path.
var errNoPath = errors.New("-sqlite: no file given")
