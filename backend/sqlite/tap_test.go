package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sqlite "modernc.org/sqlite"

	store "github.com/sessionx/sessions/backend/sqlite"
)

// tap sits between database/sql and modernc.org/sqlite's connections: it
// records the SQL of every statement run (each Exec and Query, on a
// connection or a prepared statement, and BEGIN, COMMIT and ROLLBACK of a
// database/sql transaction), in the manner of pgx's QueryTracer, and can
// inject faults.
type tap struct {
	mu  sync.Mutex
	sql []string

	// fault, when set, is asked about each Exec and Query twice: before it
	// runs (ran false) and after it ran without error (ran true). A non-nil
	// error is returned instead: before, the statement never runs; after,
	// it ran (and, outside a transaction, committed) but the caller hears
	// the error, as when modernc.org/sqlite sees the context end just as a
	// statement completes.
	fault func(query string, ran bool) error

	// timed, when set, hears how long each Exec took.
	timed func(query string, took time.Duration)
}

func (t *tap) record(query string) {
	t.mu.Lock()
	t.sql = append(t.sql, query)
	t.mu.Unlock()
}

// take returns the statements recorded since the last take.
func (t *tap) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sql
	t.sql = nil
	return s
}

func (t *tap) inject(query string, ran bool) error {
	t.mu.Lock()
	f := t.fault
	t.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(query, ran)
}

// setFault sets (nil: clears) the fault function.
func (t *tap) setFault(f func(query string, ran bool) error) {
	t.mu.Lock()
	t.fault = f
	t.mu.Unlock()
}

// tapDB returns a *sql.DB on the SQLite file at path, opened with the
// store's DSN, whose connections tp taps. It is closed at cleanup.
func tapDB(t testing.TB, path string, tp *tap, opts store.Options) *sql.DB {
	t.Helper()
	dsn, err := store.DSN(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(tapConnector{base, tp})
	t.Cleanup(func() { db.Close() })
	return db
}

type tapConnector struct {
	driver.Connector
	t *tap
}

func (c tapConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &tapConn{conn, c.t}, nil
}

// inner is every interface modernc.org/sqlite's connections implement.
type inner interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type tapConn struct {
	driver.Conn
	t *tap
}

var _ inner = (*tapConn)(nil)

func (c *tapConn) in() inner           { return c.Conn.(inner) }
func (c *tapConn) Unwrap() driver.Conn { return c.Conn }

func (c *tapConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.in().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &tapStmt{s, query, c.t}, nil
}

func (c *tapConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.t.record(query)
	if err := c.t.inject(query, false); err != nil {
		return nil, err
	}
	r, err := c.in().ExecContext(ctx, query, args)
	if err == nil {
		if ferr := c.t.inject(query, true); ferr != nil {
			return nil, ferr
		}
	}
	return r, err
}

func (c *tapConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.t.record(query)
	if err := c.t.inject(query, false); err != nil {
		return nil, err
	}
	return c.in().QueryContext(ctx, query, args)
}

func (c *tapConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.t.record("BEGIN")
	tx, err := c.in().BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return tapTx{tx, c.t}, nil
}

func (c *tapConn) Ping(ctx context.Context) error         { return c.in().Ping(ctx) }
func (c *tapConn) ResetSession(ctx context.Context) error { return c.in().ResetSession(ctx) }
func (c *tapConn) IsValid() bool                          { return c.in().IsValid() }

type tapTx struct {
	driver.Tx
	t *tap
}

func (tx tapTx) Commit() error   { tx.t.record("COMMIT"); return tx.Tx.Commit() }
func (tx tapTx) Rollback() error { tx.t.record("ROLLBACK"); return tx.Tx.Rollback() }

type tapStmt struct {
	driver.Stmt
	query string
	t     *tap
}

func (s *tapStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.t.record(s.query)
	if err := s.t.inject(s.query, false); err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if s.t.timed != nil {
		s.t.timed(s.query, time.Since(start))
	}
	if err == nil {
		if ferr := s.t.inject(s.query, true); ferr != nil {
			return nil, ferr
		}
	}
	return r, err
}

func (s *tapStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.t.record(s.query)
	if err := s.t.inject(s.query, false); err != nil {
		return nil, err
	}
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// short names statements by their first words, for messages.
func short(sql []string) []string {
	out := make([]string, len(sql))
	for i, s := range sql {
		f := strings.Fields(s)
		out[i] = strings.Join(f[:min(len(f), 4)], " ")
	}
	return out
}

// withoutCheckpoints returns sent without the checkpoints the store runs
// in the background (see sqlite.CheckpointEvery), which may fall between
// the statements of a request or a cleanup but are none of their own.
func withoutCheckpoints(sent []string) []string {
	return slices.DeleteFunc(sent, func(q string) bool { return strings.HasPrefix(q, "PRAGMA wal_checkpoint") })
}
