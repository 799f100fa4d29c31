package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Compile-time checks of the capabilities Store implements. It does not
// implement backend.InProcess: the core seals what it stores here.
var (
	_ backend.Store       = (*Store)(nil)
	_ backend.Conditional = (*Store)(nil)
	_ backend.Replacer    = (*Store)(nil)
	_ backend.GetToucher  = (*Store)(nil)
	_ backend.Indexer     = (*Store)(nil)
	_ io.Closer           = (*Store)(nil)
)

// Defaults of Options.
const (
	// DefaultResolveWithin is the default of Options.ResolveWithin.
	DefaultResolveWithin = 5 * time.Second
	// DefaultCleanupInterval is the default of Options.CleanupInterval.
	DefaultCleanupInterval = time.Minute
	// DefaultCleanupBatch is the default of Options.CleanupBatch.
	DefaultCleanupBatch = 1000
	// MaxCleanupBatch is the largest Options.CleanupBatch: a batch's DELETE
	// names each row's key (a prepared statement takes at most 65,535
	// parameters).
	MaxCleanupBatch = 30000
)

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Table names the sessions table, optionally qualified by a database
	// ("app.sessions"). The owner index and the schema version live in
	// tables named after it (Table+"_owners", Table+"_schema"). Each part
	// holds only ASCII letters, digits and underscores and does not start
	// with a digit; the table part is at most 57 characters, the database
	// at most 64. Names are always quoted with backticks; whether they are
	// case-sensitive is the server's lower_case_table_names (they are on
	// Linux by default). Default DefaultTable ("sessions"). New refuses any
	// other name: nothing reaches SQL through it.
	Table string

	// ResolveWithin bounds how long a write whose outcome is unknown is
	// retried. An outcome is unknown when the connection broke after the
	// statement was sent (the server stopped, the network failed): the
	// write may or may not have been committed. Every write carries a
	// random write id, recorded in its row, and is safe to send again: a
	// write sent again after it landed changes nothing and reports success.
	// So the store sends it again until the server answers, for at most
	// this long and never past the context's deadline, and reports what
	// really happened. When it cannot find out, it returns an error
	// matching backend.ErrUnknownOutcome (sessions.ErrUnknownOutcome),
	// never a plain failure. Default DefaultResolveWithin (5s); a negative
	// value turns retries off.
	ResolveWithin time.Duration

	// CleanupInterval is how often a background goroutine deletes the rows
	// of expired sessions and the owner records past their limit, in
	// batches of CleanupBatch rows, each batch one short DELETE (see
	// Store.Cleanup). Expired rows are invisible at once whatever the
	// interval: every statement compares deadlines with the caller's clock.
	// The first run comes at a random moment within the first interval, so
	// that application instances started together spread their runs.
	// Default DefaultCleanupInterval (1 minute); a negative value starts no
	// goroutine (call Cleanup yourself, from a cron job say).
	CleanupInterval time.Duration

	// CleanupBatch is the most rows one cleanup DELETE removes, and so the
	// most row locks it holds, for the one statement. Default
	// DefaultCleanupBatch (1000); at most MaxCleanupBatch.
	CleanupBatch int

	// Logger receives the cleanup's failures (at Warn) and its work (at
	// Debug). Default slog.Default().
	Logger *slog.Logger
}

// Store is a backend.Store on MySQL or MariaDB through database/sql and
// github.com/go-sql-driver/mysql. It is safe for concurrent use. Close
// stops its cleanup goroutine; the *sql.DB stays the application's.
type Store struct {
	db      *sql.DB
	names   names
	sql     statements
	resolve time.Duration
	batch   int
	chunk   int // the most dead rows one round of the cleanup reads (cleanupChunk)

	afterFind func() // tests: called after each cleanup round's SELECT
	log       *slog.Logger
	now       func() time.Time // this process's clock, for Get, Set, the index and the cleanup

	closed    atomic.Bool
	closeOnce sync.Once
	stop      context.CancelFunc // ends the cleanup's context
	done      chan struct{}      // closed when the cleanup goroutine has returned
}

// New returns a Store on db, which the application keeps and closes. It
// checks that the store's schema exists at SchemaVersion (one query), so
// that an unreachable server or a missing schema is reported here rather
// than on the first request; ctx bounds that check. Create the schema with
// CreateSchema first (or apply SchemaSQL with your migration tool). New
// starts the cleanup goroutine unless Options.CleanupInterval is negative:
// call Close to stop it.
//
// db must use github.com/go-sql-driver/mysql (the store reads its error
// types to tell an error the server answered from a lost connection). See
// the package documentation for the DSN settings it recommends.
func New(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sessions: mysql store: nil *sql.DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return nil, err
	}
	if opts.CleanupBatch < 0 || opts.CleanupBatch > MaxCleanupBatch {
		return nil, fmt.Errorf("sessions: mysql store: Options.CleanupBatch %d out of range [0, %d]", opts.CleanupBatch, MaxCleanupBatch)
	}
	s := &Store{
		db: db, names: n, sql: newStatements(n),
		resolve: opts.ResolveWithin, batch: opts.CleanupBatch, chunk: cleanupChunk, log: opts.Logger,
		now:  time.Now,
		done: make(chan struct{}),
	}
	if s.resolve == 0 {
		s.resolve = DefaultResolveWithin
	}
	if s.batch == 0 {
		s.batch = DefaultCleanupBatch
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := checkSchema(ctx, db, n); err != nil {
		return nil, err
	}
	interval := opts.CleanupInterval
	if interval == 0 {
		interval = DefaultCleanupInterval
	}
	cctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if interval > 0 {
		go s.cleanupLoop(cctx, interval)
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops the cleanup goroutine and waits for it: a batch under way is
// cancelled. Later calls of the store's methods return backend.ErrClosed.
// It does not close the *sql.DB. Close is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		<-s.done
	})
	return nil
}

// begin returns the error a call must return before sending anything: the
// store is closed or ctx has ended.
func (s *Store) begin(ctx context.Context, op string) error {
	if s.closed.Load() {
		return wrap(op, backend.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	return nil
}

// wrap adds the store's context to err.
func wrap(op string, err error) error {
	return fmt.Errorf("sessions: mysql %s: %w", op, err)
}

// micros is t in the columns' unit: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// limitArg is the parameter for an entry's Limit: NULL for none.
func limitArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// nonNil returns v, or an empty slice for nil: the value column is NOT NULL
// and the driver sends a nil []byte as NULL.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// get reads the live row under key, live judged at now: one SELECT.
func (s *Store) get(ctx context.Context, key string, now time.Time) (backend.Entry, error) {
	var (
		e       backend.Entry
		expires int64
		limit   sql.NullInt64
		idle    int64
	)
	err := s.db.QueryRowContext(ctx, s.sql.get, key, micros(now)).Scan(&e.Value, &e.Version, &expires, &limit, &idle)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return backend.Entry{}, backend.ErrNotFound
	case err != nil:
		return backend.Entry{}, err
	}
	e.Expires, e.Idle = time.UnixMicro(expires), time.Duration(idle)
	if limit.Valid {
		e.Limit = time.UnixMicro(limit.Int64)
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	return e, nil
}

// Get returns the live entry under key, or backend.ErrNotFound: one SELECT.
// Live is judged by this process's clock (Get is given no now): a row whose
// deadline is not after it is not returned, whatever the database's clock.
func (s *Store) Get(ctx context.Context, key string) (backend.Entry, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return backend.Entry{}, err
	}
	e, err := s.get(ctx, key, s.now())
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return backend.Entry{}, wrap("get", err)
	}
	return e, err
}

// GetTouch returns the live entry under key, live judged at now, and moves
// its deadline to expires (capped at its Limit) when it is before ifBefore;
// a row with an Idle of its own slides by it instead, as backend.Slide
// computes. A read whose refresh is not due is one SELECT and writes
// nothing; a due refresh adds one UPDATE, which writes the row only if it
// is still as read (same version, same deadline), so never back over a
// concurrent write: when such a write got there first, GetTouch returns the
// entry as read, touched false (the core slides on a later request). A row
// whose deadline is not after now is backend.ErrNotFound and is left
// alone. A zero ifBefore never touches (a plain Get at now).
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return backend.Entry{}, false, err
	}
	e, err := s.get(ctx, key, now)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return backend.Entry{}, false, err
	case err != nil:
		return backend.Entry{}, false, wrap("get", err)
	case ifBefore.IsZero():
		return e, false, nil
	}
	ifBefore, expires = backend.Slide(e, now, ifBefore, expires)
	if !e.Limit.IsZero() && expires.After(e.Limit) {
		expires = e.Limit
	}
	to, from := micros(expires), micros(e.Expires)
	if !e.Expires.Before(ifBefore) || to <= from {
		return e, false, nil // not due, or at its limit
	}
	res, err := s.db.ExecContext(ctx, s.sql.slide, to, key, e.Version, from)
	if err != nil {
		return backend.Entry{}, false, wrap("get: sliding the deadline", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return e, false, nil // a concurrent write got there first
	}
	e.Expires = time.UnixMicro(to)
	return e, true, nil
}

// Set stores e under key, replacing whatever is there: an INSERT, and an
// UPDATE when the key is taken. An Expires not after this process's clock
// (the zero time included) deletes the row instead.
func (s *Store) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	if !e.Expires.After(s.now()) {
		return s.Delete(ctx, key)
	}
	id := writeID()
	return s.write(ctx, "set", func(ctx context.Context, _ bool) error {
		for range maxAttempts {
			_, err := s.exec(ctx, s.sql.insert, key, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id)
			if !isDuplicate(err) {
				return err
			}
			n, err := s.exec(ctx, s.sql.overwrite, nonNil(e.Value), e.Version, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), id, key, id)
			if err != nil || n == 1 {
				return err
			}
			// The row holds this write already (sent before), or it was
			// deleted or written in between: then try again.
			if _, _, _, ours, err := s.lookup(ctx, key, s.now(), id); err != nil || ours {
				return err
			}
		}
		return errChanging
	})
}

// Touch moves the deadline of the live entry under key to expires, capped
// at its Limit (one UPDATE), or deletes it when expires is not after now
// (one DELETE). A row whose deadline is not after now is
// backend.ErrNotFound and is left alone.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := s.begin(ctx, "touch"); err != nil {
		return err
	}
	id := writeID()
	return s.write(ctx, "touch", func(ctx context.Context, replay bool) error {
		if !expires.After(now) {
			n, err := s.exec(ctx, s.sql.deleteLive, key, micros(now))
			switch {
			case err != nil:
				return err
			case n == 0 && !replay: // sent again, it finds the row it removed gone, as asked
				return backend.ErrNotFound
			}
			return nil
		}
		n, err := s.exec(ctx, s.sql.touch, micros(expires), micros(expires), id, key, micros(now), id)
		switch {
		case err != nil || n == 1:
			return err
		case replay: // perhaps the row holds this touch, sent before
			if _, _, _, ours, err := s.lookup(ctx, key, now, id); err != nil || ours {
				return err
			}
		}
		return backend.ErrNotFound
	})
}

// Delete removes the row under key: one DELETE. Deleting a missing key is
// not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete"); err != nil {
		return err
	}
	return s.write(ctx, "delete", func(ctx context.Context, _ bool) error {
		_, err := s.exec(ctx, s.sql.del, key)
		return err
	})
}
