//go:build linux

package postgres_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend/postgres/internal/pgtest"
)

// demoBinary builds examples/demo (a module of the repository's go.work)
// and returns its path, or skips t outside the workspace.
func demoBinary(t *testing.T) string {
	t.Helper()
	if err := exec.Command("go", "list", "-m", "github.com/sessionx/sessions/examples/demo").Run(); err != nil {
		t.Skip("not in the repository's go.work (the demo is another module)")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sessionx/sessions/examples/demo").CombinedOutput(); err != nil {
		t.Fatalf("go build demo: %v\n%s", err, out)
	}
	return bin
}

// startDemo runs the demo with args and returns its base URL and the store
// its startup line names. It is stopped (SIGINT) at cleanup.
func startDemo(t *testing.T, bin string, args ...string) (base, store string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^demo: listening on (http://\S+) \(store: (.*)\)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("demo said %q", line)
		}
		return m[1], m[2]
	case <-done:
		t.Fatalf("demo exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start")
	}
	return "", ""
}

// TestDemoSharesSessionsInPostgres runs two demo processes with -postgres
// on one server: a login on one is seen by the other, and their visit
// counter is one.
func TestDemoSharesSessionsInPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	bin := demoBinary(t)
	table := pgtest.Table(t)
	a, storeName := startDemo(t, bin, "-postgres", srv.DSN(), "-postgres-table", table)
	b, _ := startDemo(t, bin, "-postgres", srv.DSN(), "-postgres-table", table)
	if want := "postgres 127.0.0.1:" + fmt.Sprint(srv.Port()) + "/postgres"; storeName != want {
		t.Errorf("the demo names its store %q, want %q", storeName, want)
	}
	jar, _ := cookiejar.New(nil) // cookies do not tell ports apart: both demos get them
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	call := func(req func() (*http.Response, error)) (int, map[string]any) {
		t.Helper()
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	// The CSRF token of the session the page would show, if the demo has
	// one (GET /api/state).
	csrf := ""
	if code, body := call(func() (*http.Response, error) { return client.Get(a + "/api/state") }); code == 200 {
		csrf, _ = body["csrf"].(string)
	}
	if code, body := call(func() (*http.Response, error) {
		req, err := http.NewRequest("POST", a+"/api/login", strings.NewReader(url.Values{"user": {"ann"}}.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", csrf)
		return client.Do(req)
	}); code != 200 || body["user"] != "ann" {
		t.Fatalf("login on the first demo: %d %v", code, body)
	}
	if code, body := call(func() (*http.Response, error) { return client.Get(b + "/api/me") }); code != 200 || body["user"] != "ann" {
		t.Fatalf("/api/me on the second demo: %d %v, want ann", code, body)
	}
	for i, base := range []string{a, b, a} {
		if code, body := call(func() (*http.Response, error) { return client.Get(base + "/api/visit") }); code != 200 || body["visits"] != float64(i+1) {
			t.Fatalf("visit %d: %d %v, want %d visits", i+1, code, body, i+1)
		}
	}
	var rows int
	if err := srv.Pool(t, nil).QueryRow(t.Context(), fmt.Sprintf(`SELECT count(*) FROM %q`, table)).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows in %s: %d, %v; want the one session", table, rows, err)
	}
}
