package postgres_test

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
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
	"github.com/sessionx/sessions/internal/lostreply"
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
// succeeds again without the application being restarted (pgxpool dials
// anew), and at the end every counter equals its browser's successes (plus
// at most its 503s), with no answer carrying another browser's user.
func TestServerRestartUnderLoad(t *testing.T) {
	const (
		browsers = 16
		deadline = 3 * time.Second
		outage   = 2 * time.Second
	)
	srv := pgtest.Start(t)
	pool := srv.Pool(t, func(c *pgxpool.Config) {
		c.ConnConfig.ConnectTimeout = time.Second
		c.MaxConns = 8
	})
	st := newStore(t, pool, postgres.Options{})
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
