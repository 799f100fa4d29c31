package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/internal/lostreply"
	"github.com/sessionx/sessions/sessionstest"
)

// TestContextDeadlineIsHonoured: with the table locked by another
// connection (LOCK TABLES ... WRITE), a load and a save give up at their
// context's deadline. The save had been sent, so its error says its outcome
// is unknown.
func TestContextDeadlineIsHonoured(t *testing.T) {
	srv := mariadbtest.Shared(t)
	admin := srv.DB(t, nil)
	table := mariadbtest.Table(t)
	st := newStore(t, srv.DB(t, recommended), mysql.Options{Table: table, CleanupInterval: -1})
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), lostreply.Entry("v", 1)); err != nil {
		t.Fatal(err)
	}
	lock, err := admin.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(t.Context(), fmt.Sprintf("LOCK TABLES `%s` WRITE", table)); err != nil {
		t.Fatal(err)
	}
	defer lock.ExecContext(context.Background(), "UNLOCK TABLES")
	for _, tc := range []struct {
		name    string
		call    func(ctx context.Context) error
		unknown bool
	}{
		{"GetTouch", func(ctx context.Context) error {
			_, _, err := st.GetTouch(ctx, "k", time.Now(), time.Now().Add(time.Hour), time.Now().Add(time.Hour))
			return err
		}, false},
		{"SetIf", func(ctx context.Context) error { return st.SetIf(ctx, "k", 1, time.Now(), lostreply.Entry("w", 2)) }, true},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		start := time.Now()
		err := tc.call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with the table locked: %v, want context.DeadlineExceeded", tc.name, err)
		}
		if tc.unknown && !errors.Is(err, backend.ErrUnknownOutcome) {
			t.Errorf("%s cut by its deadline after it was sent: %v, want ErrUnknownOutcome", tc.name, err)
		}
		t.Logf("%s: %v after %v", tc.name, err, time.Since(start))
		if waited := time.Since(start); waited > time.Second {
			t.Errorf("%s returned after %v, past its 200ms deadline", tc.name, waited)
		}
	}
}

// TestLockWaitTimeoutIsReported: a write that waits for a row another
// transaction holds locked past innodb_lock_wait_timeout (1 s here, set in
// the DSN) fails with an error that says so and that nothing was written:
// the server answered, so the outcome is known, not ErrUnknownOutcome.
func TestLockWaitTimeoutIsReported(t *testing.T) {
	srv := mariadbtest.Shared(t)
	admin := srv.DB(t, nil)
	table := mariadbtest.Table(t)
	st := newStore(t, srv.DB(t, func(c *drv.Config) {
		recommended(c)
		c.Params = map[string]string{"innodb_lock_wait_timeout": "1"}
	}), mysql.Options{Table: table, CleanupInterval: -1})
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), lostreply.Entry("v", 1)); err != nil {
		t.Fatal(err)
	}
	tx, err := admin.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), fmt.Sprintf("SELECT 1 FROM `%s` WHERE `key` = 'k' FOR UPDATE", table)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = st.SetIf(t.Context(), "k", 1, time.Now(), lostreply.Entry("w", 2))
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	var myErr *drv.MySQLError
	switch {
	case err == nil:
		t.Fatal("SetIf of a row locked by another transaction succeeded")
	case !errors.As(err, &myErr) || myErr.Number != 1205:
		t.Fatalf("SetIf of a locked row: %v, want the server's error 1205", err)
	case !strings.Contains(err.Error(), "lock wait timeout") || !strings.Contains(err.Error(), "nothing was written"):
		t.Errorf("the error does not say plainly what happened: %v", err)
	case errors.Is(err, backend.ErrUnknownOutcome):
		t.Errorf("a write the server refused is reported as an unknown outcome: %v", err)
	}
	tx.Rollback()
	if got, err := st.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
		t.Fatalf("after the refused write: %q, %v; want v", got.Value, err)
	}
}

// TestDeadlockVictimIsRetried: a Replace that becomes the victim of a
// deadlock (error 1213, its statement rolled back by the server) is sent
// again and succeeds once the other transaction is gone. The other
// transaction has inserted rows, so that InnoDB (which rolls back the
// lighter one) picks the store's statement.
func TestDeadlockVictimIsRetried(t *testing.T) {
	srv := mariadbtest.Shared(t)
	admin := srv.DB(t, nil)
	table := mariadbtest.Table(t)
	st := newStore(t, srv.DB(t, func(c *drv.Config) {
		recommended(c)
		c.Params = map[string]string{"innodb_lock_wait_timeout": "10"} // a failing test ends sooner
	}), mysql.Options{Table: table, CleanupInterval: -1})
	ctx, now := t.Context(), time.Now()
	if err := st.SetIf(ctx, "old", 0, now, lostreply.Entry("v", 1)); err != nil {
		t.Fatal(err)
	}
	// A dead row under the new key: the move must lock it.
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (`key`, `value`, version, expires) VALUES ('new', '', 1, 1)", table)); err != nil {
		t.Fatal(err)
	}
	// MariaDB counts deadlocks in Innodb_deadlocks; MySQL does not have it.
	deadlocks := func() (int64, bool) {
		n, ok := globalStatus(t, admin, "Innodb_deadlocks")["Innodb_deadlocks"]
		return n, ok
	}
	before, _ := deadlocks()
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (`key`, `value`, version, expires) VALUES %s", table,
		strings.TrimSuffix(strings.Repeat("(UUID(), '', 1, 1), ", 50), ", "))); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT 1 FROM `%s` WHERE `key` = 'new' FOR UPDATE", table)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Replace(ctx, "old", 1, "new", time.Now(), lostreply.Entry("moved", 2)) }()
	// Wait until the Replace waits for the new key's lock, holding the old
	// row's; then take the old row's: a deadlock. (InnoDB refreshes
	// INNODB_TRX only when it was last read over 100 ms ago: poll slower.)
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("Replace returned %v before the deadlock was made", err)
		case <-time.After(150 * time.Millisecond):
		}
		if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT 1 FROM `%s` WHERE `key` = 'old' FOR UPDATE", table)); err != nil {
		t.Fatalf("the other transaction was rolled back (%v): InnoDB picked it, not the store's statement; the test tested nothing", err)
	}
	time.Sleep(100 * time.Millisecond) // the store sends the Replace again, which waits
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Replace, a deadlock's victim: %v, want success after a retry", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Replace did not return")
	}
	if after, ok := deadlocks(); ok && after-before != 1 {
		t.Errorf("the server counted %d deadlocks, want the one made", after-before)
	}
	if got, err := st.Get(ctx, "new"); err != nil || string(got.Value) != "moved" {
		t.Fatalf("new key after the Replace: %q, %v", got.Value, err)
	}
	if _, err := st.Get(ctx, "old"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("old key after the Replace: %v, want ErrNotFound", err)
	}
}

// TestServerRestartUnderLoad stops the server for two seconds under the
// load of 16 browsers and starts it again (sessionstest.RunRestart): 5xx
// during the outage, none past its deadline, nothing lost or crossed, and
// recovery without restarting the application.
func TestServerRestartUnderLoad(t *testing.T) {
	srv := mariadbtest.Start(t)
	db := srv.DB(t, func(c *drv.Config) {
		recommended(c)
		c.Timeout = time.Second
	})
	db.SetMaxOpenConns(8)
	sessionstest.RunRestart(t, newStore(t, db, mysql.Options{}), srv.Stop, srv.Start)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
