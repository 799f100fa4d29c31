package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
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
// implement backend.InProcess (the file outlives the process and is
// copied by backups: the core seals what it stores here), nor
// backend.ExpiryNotifier (a row may be removed by another process's
// cleanup, whose Managers this process does not hear).
var (
	_ backend.Store         = (*Store)(nil)
	_ backend.Conditional   = (*Store)(nil)
	_ backend.Replacer      = (*Store)(nil)
	_ backend.GetToucher    = (*Store)(nil)
	_ backend.Indexer       = (*Store)(nil)
	_ backend.OwnerRecorder = (*Store)(nil)
	_ io.Closer             = (*Store)(nil)
)

// Defaults of Options.
const (
	// DefaultBusyTimeout is the default of Options.BusyTimeout.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultResolveWithin is the default of Options.ResolveWithin.
	DefaultResolveWithin = time.Second
	// DefaultCleanupInterval is the default of Options.CleanupInterval.
	DefaultCleanupInterval = time.Minute
	// DefaultCleanupBatch is the default of Options.CleanupBatch.
	DefaultCleanupBatch = 1000
)

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Table names the sessions table. The owner index and the schema
	// version live in tables named after it (Table+"_owners",
	// Table+"_schema"), beside two indexes and two triggers (see
	// SchemaSQL). It holds 1 to MaxTableLen ASCII letters, digits and
	// underscores, does not start with a digit, and is neither "sqlite"
	// nor starts with "sqlite_" (SQLite's own names, in any case); SQLite
	// compares names without regard to case. Default DefaultTable
	// ("sessions"). New, Open, CreateSchema and SchemaSQL refuse any other
	// name: nothing reaches SQL through it. Stores sharing a file need
	// names that are not derived from one another's: beside the default
	// store, a Table of "sessions_owners" makes CreateSchema or New of one
	// of the two fail, and leaves the other's sessions alone.
	Table string

	// BusyTimeout is how long a statement waits for the file's write lock
	// while another connection holds it (another process, another Store on
	// the same file, the application's own writes) before it fails with
	// SQLITE_BUSY. Writers wait in SQLite's busy handler, the Store's own
	// writes as another process's: a first-come-first-served queue in Go
	// was tried and starved contended Updates (each write, queued behind
	// the other side's, found the session changed). Used by Open, OpenDB
	// and DSN, which set the connections' busy_timeout; a *sql.DB given to
	// New brings its own (New refuses one of 0). Default DefaultBusyTimeout
	// (5s); it is kept in whole milliseconds, at least 1 and at most
	// SQLite's largest, 2^31-1 ms (about 24.8 days). A wait also ends with
	// the context of the call.
	BusyTimeout time.Duration

	// ResolveWithin bounds how long the store reads back what a write left
	// when the driver did not say whether it was committed: the context
	// ended while the statement ran (modernc.org/sqlite then reports the
	// context's error, also when the commit had completed). Every write
	// carries a random write id, which the row keeps among the ids of its
	// last four writes, so the read-back tells a write that landed
	// (success), one that did not (the context's error), and, when the rows
	// cannot tell, returns an error matching backend.ErrUnknownOutcome,
	// never a plain failure for a write that may have landed. The read-back
	// is one indexed read, which in WAL mode waits for no writer; it runs
	// after the caller's context ended, so it is bounded by this instead.
	// Default DefaultResolveWithin (1s); a negative value reads nothing
	// back: every such write is ErrUnknownOutcome.
	ResolveWithin time.Duration

	// CleanupInterval is how often a background goroutine deletes the rows
	// of expired sessions and the owner records past their limit, in
	// batches of CleanupBatch rows, each its own short statement (see
	// Store.Cleanup). Expired rows are invisible at once whatever the
	// interval: every statement compares deadlines with the caller's clock.
	// The first run comes at a random moment within the first interval, so
	// that processes started together spread their runs. Default
	// DefaultCleanupInterval (1 minute); a negative value starts no
	// goroutine (call Cleanup yourself).
	CleanupInterval time.Duration

	// CleanupBatch is the most rows one cleanup statement deletes, and so
	// bounds how long it holds the file's write lock (about 4 ms for 1,000
	// rows; see Store.Cleanup). Default DefaultCleanupBatch (1000).
	CleanupBatch int

	// Logger receives the cleanup's failures (at Warn) and its work (at
	// Debug). Default slog.Default().
	Logger *slog.Logger
}

// Store is a backend.Store on an SQLite file. It is safe for concurrent use,
// and several Stores, in one process or in several, may share a file. Close
// stops its cleanup goroutine, and closes the *sql.DB if Open opened it.
type Store struct {
	db      *sql.DB
	ownsDB  bool // Open opened db: Close closes it
	names   names
	stmt    statements
	resolve time.Duration
	batch   int
	log     *slog.Logger
	now     func() time.Time // this process's clock, for Get, Set, the index and the cleanup

	// dirty tells the checkpointer of a write (see CheckpointEvery).
	dirty chan struct{}

	// gate makes the cleanup's batches and the other writes take turns.
	gate writeGate

	closed         atomic.Bool
	closeOnce      sync.Once
	stop           context.CancelFunc // ends the background goroutines' context
	done           chan struct{}      // closed when the cleanup goroutine has returned
	checkpointDone chan struct{}      // closed when the checkpointer has returned
}

// New returns a Store on db, which the application keeps and closes. db
// must be on an SQLite database through a database/sql driver (tested with
// modernc.org/sqlite; any driver of SQLite 3.37 or later should do) in WAL
// mode, with a busy_timeout above 0: open it with DSN, or with OpenDB. New
// checks both (on one of db's connections), checks that the schema exists at
// SchemaVersion, and prepares the store's statements, so that a missing
// schema or a misconfigured handle is reported here rather than on the
// first request; ctx bounds that. Create the schema with CreateSchema first
// (or apply SchemaSQL with your migration tool): New never creates
// anything. New starts the cleanup goroutine unless
// Options.CleanupInterval is negative: call Close to stop it.
func New(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	return newStore(ctx, db, opts, false)
}

func newStore(ctx context.Context, db *sql.DB, opts Options, ownsDB bool) (*Store, error) {
	if db == nil {
		return nil, errors.New("sessions: sqlite store: nil *sql.DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return nil, err
	}
	if opts.CleanupBatch < 0 {
		return nil, fmt.Errorf("sessions: sqlite store: negative Options.CleanupBatch %d", opts.CleanupBatch)
	}
	s := &Store{
		db: db, ownsDB: ownsDB, names: n,
		resolve: opts.ResolveWithin, batch: opts.CleanupBatch, log: opts.Logger,
		now:            time.Now,
		dirty:          make(chan struct{}, 1),
		done:           make(chan struct{}),
		checkpointDone: make(chan struct{}),
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
	if err := checkPragmas(ctx, db); err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, db, n); err != nil {
		return nil, err
	}
	if s.stmt, err = prepare(ctx, db, n); err != nil {
		return nil, err
	}
	interval := opts.CleanupInterval
	if interval == 0 {
		interval = DefaultCleanupInterval
	}
	cctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.checkpointLoop(cctx)
	if interval > 0 {
		go s.cleanupLoop(cctx, interval)
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops the cleanup goroutine and the checkpointer and waits for
// them (a batch under way is cancelled and rolled back), closes the store's prepared statements,
// and closes the *sql.DB when Open opened it; a *sql.DB given to New stays
// open. Later calls of the store's methods return backend.ErrClosed.
// Close is safe to call more than once; only the first returns an error.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		<-s.done
		<-s.checkpointDone
		err = s.stmt.close()
		if s.ownsDB {
			err = errors.Join(err, s.db.Close())
		}
	})
	return err
}

// begin returns the error a call must return before doing anything: the
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
	return fmt.Errorf("sessions: sqlite %s: %w", op, err)
}

// errBadConn, returned from sql.Conn.Raw, makes database/sql discard the
// connection.
var errBadConn = driver.ErrBadConn

// micros is t as the schema keeps times: microseconds since the Unix
// epoch, rounded down.
func micros(t time.Time) int64 { return t.UnixMicro() }

// limitArg is the parameter for an entry's Limit: NULL for none.
func limitArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// nonNil returns v, or an empty slice for nil: the value column is NOT NULL
// and a nil []byte may be sent as NULL.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanEntry reads value, version, expires, limit_at and idle from row.
// Column values of the wrong type (a table altered by hand, say) are an
// error naming the column, never a panic.
func scanEntry(row scanner) (backend.Entry, error) {
	var (
		e       backend.Entry
		version int64
		expires int64
		limit   sql.NullInt64
		idle    int64
	)
	if err := row.Scan(&e.Value, &version, &expires, &limit, &idle); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return backend.Entry{}, backend.ErrNotFound
		}
		return backend.Entry{}, fmt.Errorf("reading a session's row: %w", err)
	}
	e.Version, e.Idle, e.Expires = uint64(version), time.Duration(idle), time.UnixMicro(expires)
	if limit.Valid {
		e.Limit = time.UnixMicro(limit.Int64)
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	return e, nil
}

// Get returns the live entry under key, or backend.ErrNotFound: one SELECT,
// which in WAL mode waits for no writer. Live is judged by this process's
// clock (Get is given no now): a row whose deadline is not after it is not
// returned, whatever SQLite's clock.
func (s *Store) Get(ctx context.Context, key string) (backend.Entry, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return backend.Entry{}, err
	}
	return s.get(ctx, key, micros(s.now()))
}

func (s *Store) get(ctx context.Context, key string, now int64) (backend.Entry, error) {
	e, err := scanEntry(s.stmt.get.QueryRowContext(ctx, key, now))
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return backend.Entry{}, wrap("get", err)
	}
	return e, err
}

// GetTouch returns the live entry under key, live judged at now, and moves
// its deadline to expires (capped at its Limit) when it is before ifBefore;
// a row with an Idle of its own slides by it instead, as backend.Slide
// computes. It reads first, with a SELECT that waits for no writer and
// writes nothing; only when the refresh is due does it write, with an
// UPDATE ... RETURNING that applies the slide only if the row's deadline,
// limit and idle timeout are still those the decision was made on, and
// returns the row as written. So a load whose refresh is not due is one
// statement and takes no lock; one whose refresh is due is two. (One
// UPDATE for both cases would take the file's write lock on every load,
// and loads would queue behind the cleanup and other processes' writes.)
// A row whose deadline is not after now is backend.ErrNotFound and is left
// alone. A zero ifBefore never touches (a plain Get at now).
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return backend.Entry{}, false, err
	}
	nowUS := micros(now)
	for try := 0; ; try++ {
		e, err := s.get(ctx, key, nowUS)
		if err != nil || ifBefore.IsZero() {
			return e, false, err
		}
		ib, ex := backend.Slide(e, now, ifBefore, expires)
		to := micros(ex)
		if !e.Limit.IsZero() {
			to = min(to, micros(e.Limit))
		}
		if !e.Expires.Before(ib) || to <= micros(e.Expires) || to <= nowUS || try == 3 {
			return e, false, nil // not due, at its limit, or the row keeps changing
		}
		moved, ok, err := s.slide(ctx, key, e, nowUS, to)
		if err != nil {
			return backend.Entry{}, false, wrap("get", err)
		}
		if ok {
			return moved, true, nil
		}
		// Another write got in between the read and the slide: read
		// again, and judge again.
	}
}

// slide moves the deadline of the row e was read from to the microsecond
// to, if the row's deadline, limit and idle timeout are still e's. It
// reports false when they are not.
func (s *Store) slide(ctx context.Context, key string, e backend.Entry, now, to int64) (backend.Entry, bool, error) {
	if err := s.gate.enter(ctx); err != nil {
		return backend.Entry{}, false, err
	}
	defer s.gate.leave()
	rows, err := s.stmt.slide.QueryContext(ctx, key, micros(e.Expires), limitArg(e.Limit), int64(e.Idle), now, to)
	if err != nil {
		return backend.Entry{}, false, err
	}
	defer rows.Close()
	var (
		moved backend.Entry
		found bool
	)
	// Read to the end: the statement commits when it is done.
	for rows.Next() {
		if moved, err = scanEntry(rows); err != nil {
			return backend.Entry{}, false, err
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return backend.Entry{}, false, err
	}
	if found {
		s.wrote()
	}
	return moved, found, rows.Close()
}
