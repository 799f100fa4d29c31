package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
	"github.com/sessionx/sessions/internal/lostreply"
)

// lossyStore returns a store whose pool (one connection, each statement
// sent whole in one message so that the first reply comes after it ran)
// reaches srv through a lostreply.Proxy, and a store on the same table through a
// direct pool.
func lossyStore(t *testing.T, unresolved bool) (*lostreply.Proxy, lostreply.Store, lostreply.Store) {
	t.Helper()
	opts := postgres.Options{}
	if unresolved {
		opts.ResolveWithin = -1
	}
	srv := pgtest.Shared(t)
	proxy := lostreply.NewProxy(t, srv.Addr())
	dsn := "postgres://postgres@" + proxy.Addr() + "/postgres?sslmode=disable&connect_timeout=5"
	pool := srv.PoolTo(t, dsn, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	})
	opts.Table = pgtest.Table(t)
	opts.CleanupInterval = -1
	direct := newStore(t, srv.Pool(t, nil), opts)
	return proxy, newStore(t, pool, opts), direct
}

// TestWriteWithLostReplyIsResolved drops the server's answer to each kind of
// write after it committed (or drops the write itself before it reached the
// server): the store must report what happened (success, the write applied
// exactly once), not a failure.
func TestWriteWithLostReplyIsResolved(t *testing.T) { lostreply.Resolved(t, lossyStore) }

// TestWriteWithLostReplyThenAnotherWriter: the write lands, its answer is
// lost, and before the store sends it again another writer builds on it:
// still success, not a conflict.
func TestWriteWithLostReplyThenAnotherWriter(t *testing.T) {
	lostreply.ThenAnotherWriter(t, lossyStore)
}

// TestLostReplyUnresolvedIsOutcomeUnknown: with retries off, or the
// context ending first, a write whose answer was lost is reported as
// backend.ErrUnknownOutcome, never as a plain failure, though it landed.
func TestLostReplyUnresolvedIsOutcomeUnknown(t *testing.T) {
	lostreply.UnresolvedIsOutcomeUnknown(t, lossyStore)
}
