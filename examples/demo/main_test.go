package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionx/sessions"
)

// TestMain doubles as the demo itself: with DEMO_CHILD=1 the test binary
// runs the demo with the arguments in DEMO_ARGS (split on spaces) until it
// gets SIGINT or SIGTERM, or its standard input ends (the parent test died),
// then exits. Tests start it so to run several demo processes.
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_CHILD") != "1" {
		os.Exit(m.Run())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	err := run(ctx, strings.Fields(os.Getenv("DEMO_ARGS")), os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// parseStartLine returns the URL and the store of the demo's startup line,
// "demo: listening on http://ADDR (store: NAME)".
func parseStartLine(t *testing.T, line string) (base, store string) {
	t.Helper()
	rest, ok := strings.CutPrefix(line, "demo: listening on ")
	if !ok || !strings.HasPrefix(rest, "http://") {
		t.Fatalf("startup line %q does not start with \"demo: listening on http://\"", line)
	}
	base, rest, _ = strings.Cut(strings.TrimSpace(rest), " ")
	store, ok1 := strings.CutPrefix(rest, "(store: ")
	store, ok2 := strings.CutSuffix(store, ")")
	if !ok1 || !ok2 {
		t.Fatalf("startup line %q does not name its store", line)
	}
	return base, store
}

type client struct {
	t      *testing.T
	base   string
	http   *http.Client
	csrf   string // the CSRF token of the client's session, once known
	bearer string // the token this client sends in the Authorization header, if any
	header http.Header
}

func newClient(t *testing.T, base string) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// start gets the client's session and its CSRF token (GET /api/state), as
// the page does first.
func (c *client) start() map[string]any {
	c.t.Helper()
	code, st := c.call("GET", "/api/state", nil)
	if code != 200 || st["csrf"] == "" {
		c.t.Fatalf("GET /api/state: %d %v", code, st)
	}
	return st
}

// call sends a request and decodes the JSON answer. It sends the CSRF token
// it knows, and keeps the one a state or login answer brings; with bearer
// set, it sends that token in the Authorization header and keeps the one
// a Session-Token response header brings.
func (c *client) call(method, path string, form url.Values) (int, map[string]any) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.header = resp.Header
	if tok, ok := resp.Header["Session-Token"]; ok && c.bearer != "" {
		c.bearer = tok[0]
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		c.t.Fatalf("%s %s: %d, body is not JSON: %v", method, path, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && ct != "application/problem+json" {
		c.t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, ct)
	}
	if tok, ok := v["csrf"].(string); ok && resp.StatusCode == 200 {
		c.csrf = tok
	}
	return resp.StatusCode, v
}

func (c *client) cookie() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "demo_session" {
			return ck.Value
		}
	}
	return ""
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	mgr, err := sessions.New[Data](config(true, false))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newApp(mgr))
	t.Cleanup(func() { srv.Close(); mgr.Close() })
	return srv
}

func TestAPIContract(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()

	steps := []struct {
		method, path string
		form         url.Values
		wantCode     int
		want         map[string]any
	}{
		{"GET", "/api/me", nil, 401, nil},
		{"GET", "/api/visit", nil, 200, map[string]any{"visits": 1.0, "user": ""}},
		{"GET", "/api/visit", nil, 200, map[string]any{"visits": 2.0, "user": ""}},
		{"POST", "/api/login", url.Values{"user": {""}}, 400, nil},
		{"POST", "/api/login", url.Values{"user": {"ann"}}, 200, map[string]any{"user": "ann"}},
		{"GET", "/api/me", nil, 200, map[string]any{"user": "ann"}},
		{"GET", "/api/visit", nil, 200, map[string]any{"visits": 3.0, "user": "ann"}},
		{"POST", "/api/logout", nil, 200, map[string]any{"user": ""}},
		{"GET", "/api/me", nil, 401, nil},
		{"GET", "/api/state", nil, 200, map[string]any{"visits": 0.0, "user": ""}},
		{"GET", "/api/visit", nil, 200, map[string]any{"visits": 1.0, "user": ""}},
	}
	for i, st := range steps {
		code, got := c.call(st.method, st.path, st.form)
		if code != st.wantCode {
			t.Fatalf("step %d %s %s: status %d, want %d (%v)", i, st.method, st.path, code, st.wantCode, got)
		}
		for k, v := range st.want {
			if got[k] != v {
				t.Fatalf("step %d %s %s: %s = %v, want %v", i, st.method, st.path, k, got[k], v)
			}
		}
	}
}

func TestLoginMigratesAndOldTokenFindsNothing(t *testing.T) {
	srv := newTestServer(t)
	victim := newClient(t, srv.URL)
	victim.start()
	before := victim.cookie()
	victim.call("POST", "/api/login", url.Values{"user": {"ann"}})
	after := victim.cookie()
	if before == "" || after == "" || before == after {
		t.Fatalf("token before login %q, after %q: want two different tokens", before, after)
	}
	attacker := newClient(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	attacker.http.Jar.SetCookies(u, []*http.Cookie{{Name: "demo_session", Value: before}})
	if code, got := attacker.call("GET", "/api/me", nil); code != 401 {
		t.Fatalf("the pre-login token still works: %d %v", code, got)
	}
}

func TestIndexPage(t *testing.T) {
	srv := newTestServer(t)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "/api/visit") || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("GET / = %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	base, store := parseStartLine(t, line)
	if store != "memory" {
		t.Errorf("store %q in %q, want memory", store, line)
	}
	c := newClient(t, base)
	if code, got := c.call("GET", "/api/visit", nil); code != 200 || got["visits"] != 1.0 {
		t.Fatalf("GET /api/visit on the running demo: %d %v", code, got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
}
