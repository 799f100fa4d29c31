// Package pgtest runs private PostgreSQL servers for tests: each on a free
// port of 127.0.0.1 (no Unix socket), in a temporary directory removed
// afterwards, with fsync off. Everything that is started is stopped, every
// wait is bounded, and a server's output is logged when a test that used it
// fails.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and
// the server run as the "postgres" user (as Debian's package creates it),
// which owns the temporary directory. The binaries are looked up in
// $SESSIONS_PG_BIN, then in the newest /usr/lib/postgresql/<version>/bin
// (Debian's layout, not on PATH), then on PATH.
//
// One cluster is made with initdb per test binary and copied for every
// server, which saves a second or two per server. Shared gives the tests of
// a package one server (stopped by Main, which their TestMain must call);
// Start gives a test a server of its own, for tests that stop and restart
// it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that, when set to "1", makes a
// missing PostgreSQL a test failure instead of a reason to skip. CI sets it.
const RequireEnv = "SESSIONS_REQUIRE_SQL"

// Bounds on the waits.
const (
	initTimeout  = 60 * time.Second // initdb
	startTimeout = 30 * time.Second // until a started server accepts connections
	stopTimeout  = 10 * time.Second // from SIGINT (fast shutdown) until SIGKILL
)

// Required reports whether the environment demands a real PostgreSQL: the
// variable named by RequireEnv is "1".
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Need skips t when no PostgreSQL binaries are found, or fails it when
// Required reports true.
func Need(t testing.TB) {
	t.Helper()
	if _, err := binDir(); err != nil {
		if Required() {
			t.Fatalf("pgtest: %v, and %s=1", err, RequireEnv)
		}
		t.Skipf("pgtest: %v: this test needs a PostgreSQL server", err)
	}
}

// binDir returns the directory holding initdb and postgres.
func binDir() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres", "pg_isready"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("SESSIONS_PG_BIN"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("no initdb, postgres and pg_isready in SESSIONS_PG_BIN=%s", dir)
	}
	if entries, err := os.ReadDir("/usr/lib/postgresql"); err == nil {
		var versions []int
		for _, e := range entries {
			if v, err := strconv.Atoi(e.Name()); err == nil {
				versions = append(versions, v)
			}
		}
		slices.Sort(versions)
		for i := len(versions) - 1; i >= 0; i-- {
			dir := filepath.Join("/usr/lib/postgresql", strconv.Itoa(versions[i]), "bin")
			if has(dir) {
				return dir, nil
			}
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("PostgreSQL binaries (initdb, postgres) not found in $SESSIONS_PG_BIN, /usr/lib/postgresql/*/bin or on PATH (install them, e.g. apt-get install postgresql)")
}

// runAs is the user the server runs as: nil for the current one, or the
// postgres user when running as root.
type runAs struct {
	uid, gid uint32
}

func serverUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL will not: no user postgres to run it as (%v)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres has uid %q, gid %q", u.Uid, u.Gid)
	}
	return &runAs{uid: uint32(uid), gid: uint32(gid)}, nil
}

// command returns cmd set to run as who (nil: the current user), killed if
// the test binary dies.
func command(who *runAs, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if who != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: who.uid, Gid: who.gid}
	}
	setDeathSignal(cmd.SysProcAttr)
	// Run with a neutral environment: no PG* variable of the caller's.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	return cmd
}

// newDir makes a temporary directory owned by who.
func newDir(who *runAs, pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if who != nil {
		if err := os.Chown(dir, int(who.uid), int(who.gid)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// template is the cluster made by initdb once per test binary.
var template struct {
	once sync.Once
	dir  string // holds data/, a fresh cluster
	err  error
}

// initTemplate runs initdb once, into a directory removed by Main.
func initTemplate(bin string, who *runAs) (string, error) {
	template.once.Do(func() {
		dir, err := newDir(who, "pgtest-template-")
		if err != nil {
			template.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		defer cancel()
		cmd := command(who, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
			"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
		out, err := runBounded(ctx, cmd)
		if err != nil {
			os.RemoveAll(dir)
			template.err = fmt.Errorf("initdb: %v\n%s", err, out)
			return
		}
		template.dir = dir
	})
	return template.dir, template.err
}

// runBounded runs cmd, killing it when ctx ends, and returns its output.
func runBounded(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(out.String()), err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return []byte(out.String()), ctx.Err()
	}
}

// shared is the server of Shared.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the test binary's shared server, starting it on first use.
// Tests that share it keep apart by using tables of their own (see Table).
// Its output is logged if t fails. The package's TestMain must call Main,
// which stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	Need(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		t.Fatalf("pgtest: shared server: %v", shared.err)
	}
	srv := shared.srv
	mark := srv.out.Len()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres output meanwhile:\n%s", srv.out.Since(mark))
		}
	})
	return srv
}

// Main runs the tests and then stops the shared server and removes the
// cluster template. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.remove()
	}
	shared.mu.Unlock()
	if template.dir != "" {
		os.RemoveAll(template.dir)
	}
	os.Exit(code)
}

// Start starts a server of t's own, stopped and removed at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	Need(t)
	srv, err := start()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres output (%s):\n%s", srv.dir, srv.out.String())
		}
		srv.remove()
	})
	return srv
}

// Table returns a table name of t's own: tests sharing a server never see
// each other's rows.
func Table(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, t.Name())
	tableSeq.Lock()
	tableSeq.n++
	n := tableSeq.n
	tableSeq.Unlock()
	suffix := "_" + strconv.Itoa(n)
	if max := 46 - len("t_") - len(suffix); len(name) > max {
		name = name[len(name)-max:]
	}
	return "t_" + name + suffix
}

var tableSeq struct {
	sync.Mutex
	n int
}
