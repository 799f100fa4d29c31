package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/internal/redistest"
)

// Bounds on the waits for the demo child processes.
const (
	childStartTimeout = 30 * time.Second // until a child prints its startup line
	childStopTimeout  = 10 * time.Second // from os.Interrupt until Kill
)

// needRedis skips the test when one of the binaries is not on PATH, or fails
// it if redistest.Required says Redis must be there.
func needRedis(t *testing.T, binaries ...string) {
	t.Helper()
	for _, name := range binaries {
		if _, err := exec.LookPath(name); err != nil {
			if redistest.Required() {
				t.Fatalf("%s not on PATH and %s=1", name, redistest.RequireEnv)
			}
			t.Skipf("%s not on PATH: %v", name, err)
		}
	}
}

// demoProc is a demo running as a child process (see TestMain).
type demoProc struct {
	base  string // "http://127.0.0.1:port"
	store string // the store its startup line names
}

// startDemo runs the demo with args in a child process, waits for its
// startup line and stops it at cleanup: os.Interrupt, then Kill if it has
// not exited within childStopTimeout. A child that does not exit cleanly on
// os.Interrupt fails the test.
func startDemo(t *testing.T, args ...string) *demoProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DEMO_CHILD=1", "DEMO_ARGS="+strings.Join(args, " "))
	// The child stops when its stdin ends: if this process dies without
	// cleaning up, the kernel closes stdinW and no demo outlives it.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // read only after Wait
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, &stderr
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		t.Fatalf("start the demo: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		defer stdoutR.Close()
		r := bufio.NewReader(stdoutR)
		if line, err := r.ReadString('\n'); err == nil {
			lines <- line
		}
		io.Copy(io.Discard, r)
	}()

	var waitErr error
	exited := false
	wait := func() {
		if exited {
			return
		}
		select {
		case waitErr = <-done:
		case <-time.After(childStopTimeout):
			cmd.Process.Kill()
			select {
			case waitErr = <-done:
			case <-time.After(childStopTimeout):
				t.Errorf("demo %q did not exit after Kill", args)
			}
		}
		exited = true
	}
	t.Cleanup(func() {
		defer stdinW.Close()
		select {
		case waitErr = <-done:
			exited = true
			t.Errorf("demo %q exited before the test ended: %v\n%s", args, waitErr, stderr.String())
			return
		default:
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			// No os.Interrupt on this system (Windows): kill it.
			cmd.Process.Kill()
			wait()
			return
		}
		wait()
		if waitErr != nil {
			t.Errorf("demo %q did not stop cleanly on os.Interrupt: %v\n%s", args, waitErr, stderr.String())
		}
	})

	select {
	case line := <-lines:
		base, store := parseStartLine(t, line)
		t.Logf("demo %q: %s", args, strings.TrimSpace(line))
		return &demoProc{base: base, store: store}
	case waitErr = <-done:
		exited = true
		t.Fatalf("demo %q exited before it listened: %v\n%s", args, waitErr, stderr.String())
	case <-time.After(childStartTimeout):
		cmd.Process.Kill()
		wait()
		t.Fatalf("demo %q printed no startup line within %s\n%s", args, childStartTimeout, stderr.String())
	}
	return nil
}

// checkSharedSessions drives demos a and b, on different ports, with one
// browser (one cookie jar) and checks that they see the same session. With
// full set, it also checks that the visit counter continues across them and
// that a logout on one ends the session on the other.
func checkSharedSessions(t *testing.T, a, b *demoProc, full bool) {
	t.Helper()
	if a.base == b.base {
		t.Fatalf("both demos listen on %s", a.base)
	}
	onA := newClient(t, a.base)
	onA.start()
	// One browser: the same cookie jar, whose cookies are per host, not per
	// port, so the session cookie set by a is sent to b too.
	onB := &client{t: t, base: b.base, http: onA.http}

	type step struct {
		on           *client
		method, path string
		form         url.Values
		wantCode     int
		want         map[string]any
	}
	steps := []step{
		{onA, "POST", "/api/login", url.Values{"user": {"ann"}}, 200, map[string]any{"user": "ann"}},
		{onB, "GET", "/api/me", nil, 200, map[string]any{"user": "ann"}},
	}
	if full {
		steps = append(steps,
			step{onB, "GET", "/api/visit", nil, 200, map[string]any{"visits": 1.0, "user": "ann"}},
			step{onA, "GET", "/api/visit", nil, 200, map[string]any{"visits": 2.0, "user": "ann"}},
			step{onB, "GET", "/api/visit", nil, 200, map[string]any{"visits": 3.0, "user": "ann"}},
			step{onB, "POST", "/api/logout", nil, 200, map[string]any{"user": ""}},
			step{onA, "GET", "/api/me", nil, 401, nil},
			step{onA, "GET", "/api/visit", nil, 200, map[string]any{"visits": 1.0, "user": ""}},
		)
	}
	csrf := onA.csrf // one browser, one page: one CSRF token
	for i, st := range steps {
		name := "A"
		if st.on == onB {
			name = "B"
		}
		st.on.csrf = csrf
		code, got := st.on.call(st.method, st.path, st.form)
		csrf = st.on.csrf
		if code != st.wantCode {
			t.Fatalf("step %d %s %s on %s: status %d, want %d (%v)", i, st.method, st.path, name, code, st.wantCode, got)
		}
		for k, v := range st.want {
			if got[k] != v {
				t.Fatalf("step %d %s %s on %s: %s = %v, want %v", i, st.method, st.path, name, k, got[k], v)
			}
		}
	}
}

func TestTwoProcessesShareSessionsInRedis(t *testing.T) {
	needRedis(t, "redis-server")
	t.Parallel()
	srv := redistest.StartServer(t)
	args := []string{"-addr", "127.0.0.1:0", "-redis", srv.Addr()}
	a, b := startDemo(t, args...), startDemo(t, args...)
	for _, d := range []*demoProc{a, b} {
		if want := "redis " + srv.Addr(); d.store != want {
			t.Errorf("demo at %s names store %q, want %q", d.base, d.store, want)
		}
	}
	checkSharedSessions(t, a, b, true)

	// The sessions are in that Redis, under the default -redis-prefix: the
	// last step left one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := srv.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "demo:session:") {
		t.Errorf("keys in Redis: %q, want one under demo:session:", keys)
	}
}

func TestTwoProcessesShareSessionsInRedisCluster(t *testing.T) {
	needRedis(t, "redis-server", "redis-cli")
	t.Parallel()
	cl := redistest.StartCluster(t)
	addrs := strings.Join(cl.Addrs(), ",")
	args := []string{"-addr", "127.0.0.1:0", "-redis-cluster", addrs}
	a, b := startDemo(t, args...), startDemo(t, args...)
	for _, d := range []*demoProc{a, b} {
		if want := "redis-cluster " + addrs; d.store != want {
			t.Errorf("demo at %s names store %q, want %q", d.base, d.store, want)
		}
	}
	checkSharedSessions(t, a, b, true)
}

// silentServer returns the address of a listener that accepts connections
// and never answers on them: a Redis that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestRunRedisUnreachable(t *testing.T) {
	t.Parallel()
	silent := silentServer(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"refused", []string{"-redis", "127.0.0.1:1"}},
		{"cluster-refused", []string{"-redis-cluster", "127.0.0.1:1"}},
		{"silent", []string{"-redis", silent}},
	} {
		args := tc.args
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			start := time.Now()
			err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out)
			elapsed := time.Since(start)
			t.Logf("run %q: %v after %s", args, err, elapsed.Round(time.Millisecond))
			if err == nil {
				t.Fatalf("run %q: no error", args)
			}
			if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "redis") || !strings.Contains(msg, "unreachable") {
				t.Errorf("run %q: error %q does not say Redis is unreachable", args, err)
			}
			if elapsed > 8*time.Second {
				t.Errorf("run %q took %s to give up, want about the 5 s startup bound", args, elapsed)
			}
			if out.Len() != 0 {
				t.Errorf("run %q printed %q: it must not listen without its store", args, out.String())
			}
		})
	}
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-redis", "x", "-redis-cluster", "y"},
		{"-redis-cluster", " , "},
		{"-addr", "127.0.0.1:0", "extra"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out bytes.Buffer
		err := run(ctx, args, &out)
		cancel()
		if err == nil {
			t.Errorf("run %q: no error", args)
			continue
		}
		t.Logf("run %q: %v", args, err)
		if out.Len() != 0 {
			t.Errorf("run %q printed %q", args, out.String())
		}
	}
}
