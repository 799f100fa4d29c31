package mysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
	"github.com/sessionx/sessions/internal/lostreply"
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

// visitor is one browser of the restart test: its own cookie jar and user.
type visitor struct {
	user      string
	http      *http.Client
	successes int         // 200 answers
	unknown   int         // 503: outcome unknown (the write may have landed)
	failures  map[int]int // other answers by status; 0 = transport error
	wrongUser int         // 200 answers carrying another visitor's user
	slowest   time.Duration
	lastOK    time.Time
}

func (v *visitor) visit(base string) {
	start := time.Now()
	resp, err := v.http.Get(base + "/visit")
	v.slowest = max(v.slowest, time.Since(start))
	if err != nil {
		v.failures[0]++
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusServiceUnavailable:
		io.Copy(io.Discard, resp.Body)
		v.unknown++
		return
	default:
		io.Copy(io.Discard, resp.Body)
		v.failures[resp.StatusCode]++
		return
	}
	var body struct {
		Visits int
		User   string
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		v.failures[-1]++
		return
	}
	if body.User != v.user {
		v.wrongUser++
	}
	v.successes++
	v.lastOK = time.Now()
}

// TestServerRestartUnderLoad stops the server for two seconds under the
// load of 16 browsers, each incrementing its own session's counter, and
// starts it again on the same port and data: requests during the outage
// fail with a 5xx (503 when the store cannot tell whether the write landed,
// 500 when it did not), none hangs past its 3 s deadline, every browser
// succeeds again without the application being restarted (database/sql
// drops the broken connections and dials anew), and at the end every counter equals its browser's successes (plus
// at most its 503s), with no answer carrying another browser's user.
func TestServerRestartUnderLoad(t *testing.T) {
	const (
		browsers = 16
		deadline = 3 * time.Second
		outage   = 2 * time.Second
	)
	srv := mariadbtest.Start(t)
	db := srv.DB(t, func(c *drv.Config) {
		recommended(c)
		c.Timeout = time.Second
	})
	db.SetMaxOpenConns(8)
	st := newStore(t, db, mysql.Options{})
	mgr, err := sessions.New[visit](sessions.Config{
		Store:  st,
		Cookie: sessions.CookieConfig{Insecure: true},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, backend.ErrUnknownOutcome) || errors.Is(err, context.DeadlineExceeded) {
				http.Error(w, "outcome unknown", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "store failed", http.StatusInternalServerError)
		},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.User = r.FormValue("user")
		if err := mgr.Migrate(w, r, s); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /visit", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.N++
		json.NewEncoder(w).Encode(map[string]any{"Visits": s.Data.N, "User": s.Data.User})
	})
	// Every request gets deadline: the store's calls use its context. A
	// request cut by it is answered 503 (its write may have landed).
	web := httptest.NewServer(http.TimeoutHandler(mgr.Handler(mux), deadline, "timed out"))
	defer web.Close()

	vs := make([]*visitor, browsers)
	for i := range vs {
		jar, _ := cookiejar.New(nil)
		vs[i] = &visitor{user: fmt.Sprintf("user-%02d", i), http: &http.Client{Jar: jar, Timeout: 3 * deadline}, failures: map[int]int{}}
		resp, err := vs[i].http.PostForm(web.URL+"/login", url.Values{"user": {vs[i].user}})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("login %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() {
			for ctx.Err() == nil {
				v.visit(web.URL)
			}
		})
	}
	time.Sleep(time.Second)
	srv.Stop()
	down := time.Now()
	time.Sleep(outage)
	if err := srv.Start(); err != nil {
		stop()
		wg.Wait()
		t.Fatalf("restarting the server: %v", err)
	}
	up := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	var ok, unknown, failed int
	for _, v := range vs {
		ok += v.successes
		unknown += v.unknown
		for code, n := range v.failures {
			failed += n
			if code < 500 {
				t.Errorf("%s: %d answers with status %d (0: transport error), want only 5xx failures", v.user, n, code)
			}
		}
		if v.slowest > deadline+time.Second {
			t.Errorf("%s: a request took %v, past its %v deadline", v.user, v.slowest.Round(time.Millisecond), deadline)
		}
		if v.wrongUser > 0 {
			t.Errorf("%s: %d answers carried another browser's user", v.user, v.wrongUser)
		}
		if !v.lastOK.After(up) {
			t.Errorf("%s: no success after the server came back (last at %v, up at %v)", v.user, v.lastOK, up)
		}
	}
	t.Logf("%d browsers, outage %v (from %v): %d successes, %d outcome unknown (503), %d failures (500)",
		browsers, up.Sub(down).Round(time.Millisecond), down.Format("15:04:05.000"), ok, unknown, failed)
	if failed+unknown == 0 {
		t.Error("no request failed during the outage: the test tested nothing")
	}
	// The counters: one more visit each (which must succeed), minus itself.
	for _, v := range vs {
		got := -1
		for try := 0; got < 0; try++ {
			if try == 20 {
				t.Fatalf("%s: cannot read the counter after the outage", v.user)
			}
			resp, err := v.http.Get(web.URL + "/visit")
			if err == nil {
				var body struct{ Visits int }
				if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&body) == nil {
					got = body.Visits - 1
				}
				resp.Body.Close()
			}
			if got < 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if got < v.successes || got > v.successes+v.unknown {
			t.Errorf("%s: counter %d, but the browser saw %d successes and %d unknown outcomes", v.user, got, v.successes, v.unknown)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
