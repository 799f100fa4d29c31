package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sessionx/sessions"
)

// TestOnEventCountsKindAndKeepsLive tells the hook of one event of each
// kind and checks that exactly that kind's counter moved, that the live
// gauge moved as the kind says, and that the event was passed on.
func TestOnEventCountsKindAndKeepsLive(t *testing.T) {
	cases := []struct {
		kind sessions.EventKind
		live float64
	}{
		{sessions.EventCreated, 1},
		{sessions.EventMigrated, 0},
		{sessions.EventRotated, 0},
		{sessions.EventDestroyed, -1},
		{sessions.EventEnded, -1},
		{sessions.EventConflict, 0},
		{sessions.EventSuspicious, 0},
		{sessions.EventExpired, -1},
		{sessions.EventKind(99), 0}, // a kind this program does not know
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			var passed []sessions.Event
			m, err := newMetrics(prometheus.NewRegistry(), func(_ context.Context, ev sessions.Event) { passed = append(passed, ev) })
			if err != nil {
				t.Fatal(err)
			}
			ev := sessions.Event{Kind: tc.kind, Handle: "h"}
			m.onEvent(context.Background(), ev)
			for _, k := range append(kinds, tc.kind) {
				want := 0.0
				if k == tc.kind {
					want = 1
				}
				if got := testutil.ToFloat64(m.events.WithLabelValues(k.String())); got != want {
					t.Errorf("sessions_events_total{kind=%q} = %v; want %v", k, got, want)
				}
			}
			if got := testutil.ToFloat64(m.live); got != tc.live {
				t.Errorf("sessions_live = %v; want %v", got, tc.live)
			}
			if len(passed) != 1 || passed[0] != ev {
				t.Errorf("passed on %v; want the event once", passed)
			}
		})
	}
}

// newTestApp serves the app with a fresh registry on a loopback test
// server.
func newTestApp(t *testing.T) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := sessions.New[Visit](sessions.Config{
		Cookie:  sessions.CookieConfig{Name: "metrics_session", Insecure: true},
		OnEvent: m.onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	srv := httptest.NewServer(newApp(mgr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	t.Cleanup(srv.Close)
	return srv
}

// visitor is a browser with its own cookie jar.
type visitor struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newVisitor(t *testing.T, srv *httptest.Server) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{t: t, base: srv.URL, client: &http.Client{Jar: jar}}
}

// do sends a GET, or a POST of form when form is not nil, and fails the
// test unless the answer is 200.
func (v *visitor) do(path string, form url.Values) string {
	v.t.Helper()
	var (
		resp *http.Response
		err  error
	)
	if form == nil {
		resp, err = v.client.Get(v.base + path)
	} else {
		resp, err = v.client.PostForm(v.base+path, form)
	}
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		v.t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

// expect scrapes /metrics and compares the session metrics with those of
// the given event counts and live gauge.
func expect(t *testing.T, srv *httptest.Server, counts map[string]int, live int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# HELP sessions_events_total Session lifecycle events, by kind.\n# TYPE sessions_events_total counter\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "sessions_events_total{kind=%q} %d\n", k.String(), counts[k.String()])
	}
	fmt.Fprintf(&b, "# HELP sessions_live Sessions this process saw created and not yet destroyed, ended or expired.\n# TYPE sessions_live gauge\nsessions_live %d\n", live)
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(b.String()), "sessions_events_total", "sessions_live"); err != nil {
		t.Fatal(err)
	}
}

// TestScrapeAfterCreateMigrateDestroy drives two visitors through the app
// and scrapes /metrics after each step: visits create sessions, login
// migrates one, logout destroys it; a scrape itself creates none.
func TestScrapeAfterCreateMigrateDestroy(t *testing.T) {
	srv := newTestApp(t)
	ann, bob := newVisitor(t, srv), newVisitor(t, srv)

	expect(t, srv, nil, 0)
	ann.do("/", nil)
	ann.do("/", nil) // the same session
	expect(t, srv, map[string]int{"created": 1}, 1)
	bob.do("/", nil)
	expect(t, srv, map[string]int{"created": 2}, 2)

	ann.do("/login", url.Values{"user": {"ann"}})
	if got := ann.do("/", nil); got != "3 visits, user \"ann\"\n" {
		t.Fatalf("after login: %q", got)
	}
	expect(t, srv, map[string]int{"created": 2, "migrated": 1}, 2)

	ann.do("/logout", url.Values{})
	expect(t, srv, map[string]int{"created": 2, "migrated": 1, "destroyed": 1}, 1)

	// Logging in on a new session creates it (and is not a migration).
	carl := newVisitor(t, srv)
	carl.do("/login", url.Values{"user": {"carl"}})
	expect(t, srv, map[string]int{"created": 3, "migrated": 1, "destroyed": 1}, 2)
}

// TestRunServesAppAndMetrics runs the program itself on a free loopback
// port: a visit is counted on /metrics, and it stops when its context ends.
func TestRunServesAppAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v (run: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // drain the rest
	base, _, ok := strings.Cut(strings.TrimPrefix(line, "metrics: listening on "), " ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("unexpected first line %q", line)
	}
	v := &visitor{t: t, base: base, client: &http.Client{Timeout: 10 * time.Second}}
	v.client.Jar, _ = cookiejar.New(nil)
	v.do("/", nil)
	if body := v.do("/metrics", nil); !strings.Contains(body, `sessions_events_total{kind="created"} 1`) ||
		!strings.Contains(body, "sessions_live 1") {
		t.Fatalf("/metrics after one visit:\n%s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop when its context ended")
	}
}
