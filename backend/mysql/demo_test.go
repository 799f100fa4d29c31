//go:build linux

package mysql_test

import (
	"bufio"
	"context"
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

	"github.com/sessionx/sessions/backend/mysql/internal/mariadbtest"
)

// demoBinary builds examples/demo (a module of the repository's go.work)
// and returns its path, or skips t outside the workspace or while the demo
// has no -mysql flag.
func demoBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sessionx/sessions/examples/demo").Output()
	if err != nil {
		t.Skip("not in the repository's go.work (the demo is another module)")
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "main.go"))
	if err != nil || !strings.Contains(string(src), `"mysql"`) {
		t.Skip("the demo has no -mysql flag yet")
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

// TestDemoSharesSessionsInMySQL runs two demo processes with -mysql on one
// server (in a database of the test's own, as the demo's table is always
// demo_sessions): a login on one is seen by the other, and their visit
// counter is one.
func TestDemoSharesSessionsInMySQL(t *testing.T) {
	srv := mariadbtest.Shared(t)
	bin := demoBinary(t)
	database := mariadbtest.Table(t)
	admin := srv.DB(t, nil)
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE `"+database+"`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP DATABASE `"+database+"`") })
	cfg := srv.Config()
	cfg.DBName, cfg.InterpolateParams = database, true
	dsn := cfg.FormatDSN()
	a, storeName := startDemo(t, bin, "-mysql", dsn)
	b, _ := startDemo(t, bin, "-mysql", dsn)
	if want := "mysql " + srv.Addr() + "/" + database; storeName != want {
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
	if err := admin.QueryRowContext(t.Context(), fmt.Sprintf("SELECT COUNT(*) FROM `%s`.demo_sessions", database)).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows in %s.demo_sessions: %d, %v; want the one session", database, rows, err)
	}
}
