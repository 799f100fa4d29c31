package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessionx/sessions/backend"
)

// Compile-time checks of the capabilities Store implements. It does not
// implement backend.InProcess: the core seals what it stores here.
var (
	_ backend.Store         = (*Store)(nil)
	_ backend.Conditional   = (*Store)(nil)
	_ backend.Replacer      = (*Store)(nil)
	_ backend.GetToucher    = (*Store)(nil)
	_ backend.Indexer       = (*Store)(nil)
	_ backend.OwnerRecorder = (*Store)(nil)
	_ io.Closer             = (*Store)(nil)
)

// DB is what the store needs of the application's connection pool.
// *pgxpool.Pool satisfies it (as do *pgx.Conn and pgx.Tx, though a single
// connection serialises every request). The store never opens connections
// of its own and never closes db.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Defaults of Options.
const (
	// DefaultResolveWithin is the default of Options.ResolveWithin.
	DefaultResolveWithin = 5 * time.Second
	// DefaultCleanupInterval is the default of Options.CleanupInterval.
	DefaultCleanupInterval = time.Minute
	// DefaultCleanupBatch is the default of Options.CleanupBatch.
	DefaultCleanupBatch = 1000
)

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Table names the sessions table, optionally qualified by a schema
	// ("app.sessions"). The owner index and the schema version live in
	// tables named after it (Table+"_owners", Table+"_schema"). Each part
	// holds only ASCII letters, digits and underscores and does not start
	// with a digit; the table part is at most 46 characters. Names are
	// always quoted, so they are case-sensitive. Default DefaultTable
	// ("sessions"). New refuses any other name: nothing reaches SQL through
	// it.
	Table string

	// ResolveWithin bounds how long a write whose outcome is unknown is
	// retried. An outcome is unknown when the connection broke after the
	// statement was sent (the server stopped, the network failed): the
	// write may or may not have been committed. Every write carries a
	// random write id, recorded in its row, and is safe to send again: a
	// write sent again after it landed changes nothing and reports success.
	// So the store sends it again until PostgreSQL answers, for at most this
	// long and never past the context's deadline, and reports what really
	// happened. When it cannot find out, it returns an error matching
	// backend.ErrUnknownOutcome (sessions.ErrUnknownOutcome), never a plain
	// failure. Default
	// DefaultResolveWithin (5s); a negative value turns retries off.
	ResolveWithin time.Duration

	// CleanupInterval is how often a background goroutine deletes the rows
	// of expired sessions and the owner records past their limit, in
	// batches of CleanupBatch rows, each batch its own short statement (see
	// Store.Cleanup). Expired rows are invisible at once whatever the
	// interval: every statement compares deadlines with the caller's clock.
	// The first run comes at a random moment within the first interval, so
	// that application instances started together spread their runs.
	// Default DefaultCleanupInterval (1 minute); a negative value starts no
	// goroutine (call Cleanup yourself, from a cron job say).
	CleanupInterval time.Duration

	// CleanupBatch is the most rows one cleanup statement deletes. Default
	// DefaultCleanupBatch (1000).
	CleanupBatch int

	// Logger receives the cleanup's failures (at Warn) and its work (at
	// Debug). Default slog.Default().
	Logger *slog.Logger
}

// Store is a backend.Store on PostgreSQL through pgx v5. It is safe for
// concurrent use. Close stops its cleanup goroutine; the pool stays the
// application's.
type Store struct {
	db      DB
	names   names
	sql     statements
	resolve time.Duration
	batch   int
	log     *slog.Logger
	now     func() time.Time // this process's clock, for Get, Set and the index

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
func New(ctx context.Context, db DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sessions: postgres store: nil DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return nil, err
	}
	if opts.CleanupBatch < 0 {
		return nil, fmt.Errorf("sessions: postgres store: negative Options.CleanupBatch %d", opts.CleanupBatch)
	}
	s := &Store{
		db: db, names: n, sql: newStatements(n),
		resolve: opts.ResolveWithin, batch: opts.CleanupBatch, log: opts.Logger,
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
// It does not close the pool. Close is safe to call more than once.
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
	return fmt.Errorf("sessions: postgres %s: %w", op, err)
}

// writeID returns a fresh random write id.
func writeID() int64 {
	return rand.Int64()
}

// limitArg is the parameter for an entry's Limit: NULL for none.
func limitArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// scanEntry reads value, version, expires, limit_at, idle (and touched,
// when touched is not nil) from row.
func scanEntry(row pgx.Row, touched *bool) (backend.Entry, error) {
	var (
		e       backend.Entry
		version int64
		limit   *time.Time
		idle    int64
	)
	dest := []any{&e.Value, &version, &e.Expires, &limit, &idle}
	if touched != nil {
		dest = append(dest, touched)
	}
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return backend.Entry{}, backend.ErrNotFound
		}
		return backend.Entry{}, err
	}
	e.Version, e.Idle = uint64(version), time.Duration(idle)
	if limit != nil {
		e.Limit = *limit
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
	e, err := scanEntry(s.db.QueryRow(ctx, s.sql.get, key, s.now()), nil)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return backend.Entry{}, wrap("get", err)
	}
	return e, err
}

// GetTouch returns the live entry under key, live judged at now, and, in
// the same statement, moves its deadline to expires (capped at its Limit)
// when it is before ifBefore: one statement, which writes the row only when
// the refresh is due and the deadline really moves. A row with an Idle of
// its own slides by it instead, as backend.Slide computes. A row whose
// deadline is not after now is backend.ErrNotFound and is left alone. A
// zero ifBefore never touches (a plain Get at now).
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return backend.Entry{}, false, err
	}
	var (
		e       backend.Entry
		touched bool
		err     error
	)
	if ifBefore.IsZero() {
		e, err = scanEntry(s.db.QueryRow(ctx, s.sql.get, key, now), nil)
	} else {
		e, err = scanEntry(s.db.QueryRow(ctx, s.sql.getTouch, key, now, ifBefore, expires), &touched)
	}
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return backend.Entry{}, false, err
		}
		return backend.Entry{}, false, wrap("get", err)
	}
	return e, touched, nil
}

// Set stores e under key, replacing whatever is there: one upsert. An
// Expires not after this process's clock (the zero time included) deletes
// the row instead.
func (s *Store) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	if !e.Expires.After(s.now()) {
		return s.Delete(ctx, key)
	}
	id := writeID()
	return s.write(ctx, "set", func(ctx context.Context, _ bool) error {
		_, err := s.db.Exec(ctx, s.sql.set, key, nonNil(e.Value), int64(e.Version), e.Expires, limitArg(e.Limit), id, int64(e.Idle))
		return err
	})
}

// nonNil returns v, or an empty slice for nil: the value column is NOT NULL
// and a nil []byte is sent as NULL.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// Touch moves the deadline of the live entry under key to expires, capped
// at its Limit, or deletes it when that is not after now: one statement. A
// row whose deadline is not after now is backend.ErrNotFound and is left
// alone.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := s.begin(ctx, "touch"); err != nil {
		return err
	}
	return s.write(ctx, "touch", func(ctx context.Context, _ bool) error {
		var found bool
		if err := s.db.QueryRow(ctx, s.sql.touch, key, now, expires).Scan(&found); err != nil {
			return err
		}
		if !found {
			return backend.ErrNotFound
		}
		return nil
	})
}

// Delete removes the row under key: one DELETE. Deleting a missing key is
// not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete"); err != nil {
		return err
	}
	return s.write(ctx, "delete", func(ctx context.Context, _ bool) error {
		_, err := s.db.Exec(ctx, s.sql.del, key)
		return err
	})
}

// RecordsOwners reports true: SetIf creating a session and Replace record
// backend.Entry.Owner in the owner table in the same statement as the row
// (backend.OwnerRecorder), so that a login costs no separate AddOwned.
func (s *Store) RecordsOwners() bool { return true }

// ownerHash is the owner column's value: the SHA-256 of owner, so that any
// string (NUL bytes included) fits and no owner is stored as given.
func ownerHash(owner string) []byte {
	sum := sha256.Sum256([]byte(owner))
	return sum[:]
}

// AddOwned records key for owner until limit, and drops the owner's records
// whose limit has passed, in one statement. A limit not after this
// process's clock forgets key instead.
func (s *Store) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	if err := s.begin(ctx, "add owned"); err != nil {
		return err
	}
	now, h := s.now(), ownerHash(owner)
	return s.write(ctx, "add owned", func(ctx context.Context, _ bool) error {
		var err error
		if limit.After(now) {
			_, err = s.db.Exec(ctx, s.sql.addOwned, h, key, limit, now)
		} else {
			_, err = s.db.Exec(ctx, s.sql.forgetOwned, h, key)
		}
		return err
	})
}

// RemoveOwned forgets keys from owner's records: one DELETE.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := s.begin(ctx, "remove owned"); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	h := ownerHash(owner)
	return s.write(ctx, "remove owned", func(ctx context.Context, _ bool) error {
		_, err := s.db.Exec(ctx, s.sql.removeOwned, h, keys)
		return err
	})
}

// Owned returns the keys recorded for owner whose limit is after this
// process's clock: one SELECT.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := s.begin(ctx, "owned"); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, s.sql.owned, ownerHash(owner), s.now())
	if err != nil {
		return nil, wrap("owned", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("owned", err)
	}
	return keys, nil
}
