package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/internal/redistest"
)

// TestHotSessionOnTwoProcesses is issue 14's HTTP-level figure: two demo
// processes on one Redis, 40 concurrent clients on one session, each
// counting visits (Update) and setting its own cart entry with a plain
// write, with the demo's default configuration (plain writes merge at
// commit) and with -take-turns. In both, every change answered 200 must
// be stored, none answered otherwise may be, and no visit may be refused;
// with -take-turns no request at all may be refused. With merging, the
// plain writes refused with 409 (a save that met a newer state on each of
// its merges) are counted in the figures. HOTLOAD_DURATION (default 3s)
// sets how long the clients run.
func TestHotSessionOnTwoProcesses(t *testing.T) {
	if !redistest.HaveBinaries() {
		if redistest.Required() {
			t.Fatalf("redis-server not on PATH and %s=1", redistest.RequireEnv)
		}
		t.Skip("redis-server not on PATH")
	}
	d := 3 * time.Second
	if v := os.Getenv("HOTLOAD_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("HOTLOAD_DURATION: %v", err)
		}
	}
	bin := buildDemo(t)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"merging", nil},
		{"take-turns", []string{"-take-turns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t)
			args := append([]string{"-redis", srv.Addr()}, tc.flags...)
			a, b := startDemo(t, bin, args...), startDemo(t, bin, args...)
			res, err := Run(context.Background(), Options{Targets: []string{a, b}, Clients: 40, Duration: d})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("figures: %v", res)
			for _, p := range res.Mismatches() {
				t.Error(p)
			}
			for code, n := range res.Visits {
				if code != 200 {
					t.Errorf("%d visits answered %d, want every visit (Update) answered 200", n, code)
				}
			}
			for code, n := range res.Sets {
				if code != 200 && (code != 409 || tc.name == "take-turns") {
					t.Errorf("%d cart writes answered %d", n, code)
				}
			}
			if res.Visits[200] == 0 || res.Sets[200] == 0 {
				t.Errorf("no visit or no cart write succeeded: %v", res)
			}
		})
	}
}

// buildDemo builds the demo (the directory above) and returns the binary.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the demo: %v\n%s", err, out)
	}
	return bin
}

// startDemo runs bin on a free loopback port with args and returns its base
// URL; it is stopped (os.Interrupt, then Kill) at cleanup.
func startDemo(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
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
			t.Logf("demo %s stderr:\n%s", args, stderr.String())
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
		if u := regexp.MustCompile(`http://\S+`).FindString(line); u != "" {
			return u
		}
		t.Fatalf("demo said %q", line)
	case <-done:
		t.Fatalf("demo exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start within 30 s")
	}
	return ""
}
