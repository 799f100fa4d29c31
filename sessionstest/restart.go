package sessionstest

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

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// visitor is one browser of RunRestart: its own cookie jar and user.
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

// RunRestart stops st's server (stopServer) for two seconds under the load
// of 16 browsers, each incrementing its own session's counter through the
// middleware, and starts it again (startServer: on the same address and
// data). It then checks that requests during the outage failed with a 5xx
// only (503 when the store could not tell whether the write landed, 500
// when it did not), that none hung past its 3 s deadline, that every
// browser succeeded again without the application being restarted (the
// store's driver must dial anew by itself), and that every counter equals
// its browser's successes (plus at most its 503s), with no answer carrying
// another browser's user. st must be a store on that server with a
// connection pool of its own (it sees the outage); closing it is left to
// the caller. The test takes about 7 s, and fails if no request failed
// (then the outage was not seen, and nothing was tested).
func RunRestart(t *testing.T, st backend.Store, stopServer func(), startServer func() error) {
	const (
		browsers = 16
		deadline = 3 * time.Second
		outage   = 2 * time.Second
	)
	mgr, err := sessions.New[Counter](sessions.Config{
		Store:  st,
		Cookie: sessions.CookieConfig{Insecure: true},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, backend.ErrUnknownOutcome) || errors.Is(err, context.DeadlineExceeded) {
				http.Error(w, "outcome unknown", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "store failed", http.StatusInternalServerError)
		},
		Logger: slog.New(slog.DiscardHandler),
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
	stopServer()
	down := time.Now()
	time.Sleep(outage)
	if err := startServer(); err != nil {
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
