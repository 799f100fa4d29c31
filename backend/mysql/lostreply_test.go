package mysql_test

import (
	"testing"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/internal/lostreply"
)

// lossyStore returns a store whose *sql.DB (one connection, each statement
// sent whole as one COM_QUERY, so that the first reply comes after it ran)
// reaches the shared server through a lostreply.Proxy, and a store on the same
// table through a direct *sql.DB.
func lossyStore(t *testing.T, unresolved bool) (*lostreply.Proxy, lostreply.Store, lostreply.Store) {
	t.Helper()
	opts := mysql.Options{}
	if unresolved {
		opts.ResolveWithin = -1
	}
	srv := mariadbtest.Shared(t)
	proxy := lostreply.NewProxy(t, srv.Addr())
	db := srv.DB(t, func(c *drv.Config) {
		c.Addr = proxy.Addr()
		c.InterpolateParams = true
	})
	db.SetMaxOpenConns(1)
	opts.Table = mariadbtest.Table(t)
	opts.CleanupInterval = -1
	direct := newStore(t, sharedDB(t), opts)
	return proxy, newStore(t, db, opts), direct
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
