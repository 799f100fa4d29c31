package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
	"github.com/sessionx/sessions/internal/lostreply"
	"github.com/sessionx/sessions/sessionstest"
)

// TestContextDeadlineIsHonoured: with the table locked by another
// transaction, a load and a save give up at their context's deadline. The
// save had been sent, so its error says its outcome is unknown.
func TestContextDeadlineIsHonoured(t *testing.T) {
	srv := pgtest.Shared(t)
	admin := srv.Pool(t, nil)
	table := pgtest.Table(t)
	st := newStore(t, srv.Pool(t, nil), postgres.Options{Table: table, CleanupInterval: -1})
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), lostreply.Entry("v", 1)); err != nil {
		t.Fatal(err)
	}
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), fmt.Sprintf(`LOCK TABLE %q IN ACCESS EXCLUSIVE MODE`, table)); err != nil {
		t.Fatal(err)
	}
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

// TestServerRestartUnderLoad stops the server for two seconds under the
// load of 16 browsers and starts it again (sessionstest.RunRestart): 5xx
// during the outage, none past its deadline, nothing lost or crossed, and
// recovery without restarting the application.
func TestServerRestartUnderLoad(t *testing.T) {
	srv := pgtest.Start(t)
	pool := srv.Pool(t, func(c *pgxpool.Config) {
		c.ConnConfig.ConnectTimeout = time.Second
		c.MaxConns = 8
	})
	sessionstest.RunRestart(t, newStore(t, pool, postgres.Options{}), srv.Stop, srv.Start)
}
