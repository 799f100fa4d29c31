// Package mariadbtest runs private MariaDB servers for tests: each on a free
// port of 127.0.0.1, its Unix socket and data in a temporary directory
// removed afterwards, without the grant tables (any user name connects
// without a password, with every privilege), without a binary log, and with
// a small buffer pool. Everything that is started is stopped, every wait is
// bounded, and a server's output is logged when a test that used it fails.
//
// The binaries are mariadbd and mariadb-install-db (Debian's mariadb-server
// package), looked up in $SESSIONS_MARIADB_BIN, then on PATH, then in
// /usr/sbin and /usr/bin. mariadbd refuses to run as root unless told to:
// when the tests run as root, both get --user=root.
//
// mariadb-install-db runs once per test binary, into a template directory
// that is copied for every server. Shared gives the tests of a package one
// server (stopped by Main, which their TestMain must call); Start gives a
// test a server of its own, for tests that stop and restart it.
//
// With $SESSIONS_MYSQL_DSN set (a go-sql-driver DSN naming a database, e.g.
// "root:pw@tcp(127.0.0.1:3306)/sessions"), Shared returns that server
// instead of starting one, so that the tests run against any MySQL or
// MariaDB (a MySQL 8 in a container, say); tests that need a server of
// their own (Start) are skipped then.
package mariadbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// RequireEnv names the environment variable that, when set to "1", makes a
// missing MariaDB a test failure instead of a reason to skip. CI sets it.
const RequireEnv = "SESSIONS_REQUIRE_SQL"

// ExternalEnv names the environment variable holding the DSN of a server to
// test against instead of starting MariaDB.
const ExternalEnv = "SESSIONS_MYSQL_DSN"

// Database is the database the servers started here hold the tests'
// tables in.
const Database = "sessions"

// Bounds on the waits.
const (
	initTimeout  = 60 * time.Second // mariadb-install-db
	startTimeout = 30 * time.Second // until a started server accepts connections
	stopTimeout  = 10 * time.Second // from SIGTERM (normal shutdown) until SIGKILL
)

// Required reports whether the environment demands a real server: the
// variable named by RequireEnv is "1".
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// external returns the DSN of $SESSIONS_MYSQL_DSN, or "".
func external() string { return os.Getenv(ExternalEnv) }

// Need skips t when no MariaDB binaries are found (and no external server
// is named), or fails it when Required reports true.
func Need(t testing.TB) {
	t.Helper()
	if external() != "" {
		return
	}
	if _, err := binaries(); err != nil {
		if Required() {
			t.Fatalf("mariadbtest: %v, and %s=1", err, RequireEnv)
		}
		t.Skipf("mariadbtest: %v: this test needs a MariaDB server", err)
	}
}

// bins are the paths of the two programs a server needs.
type bins struct {
	mariadbd, installDB string
}

// binaries finds mariadbd and mariadb-install-db.
func binaries() (bins, error) {
	find := func(name string) (string, error) {
		if dir := os.Getenv("SESSIONS_MARIADB_BIN"); dir != "" {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
			return "", fmt.Errorf("no %s in SESSIONS_MARIADB_BIN=%s", name, dir)
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found in $SESSIONS_MARIADB_BIN, on PATH or in /usr/sbin (install it, e.g. apt-get install mariadb-server)", name)
	}
	var b bins
	var err error
	if b.mariadbd, err = find("mariadbd"); err != nil {
		return bins{}, err
	}
	if b.installDB, err = find("mariadb-install-db"); err != nil {
		return bins{}, err
	}
	return b, nil
}

// userArgs are the arguments that let mariadbd run as root, when the tests
// do.
func userArgs() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

// command returns cmd, killed if the test binary dies, with a neutral
// environment (no MYSQL_* variable of the caller's).
func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setDeathSignal(cmd.SysProcAttr)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "TZ=UTC"}
	return cmd
}

// template is the data directory made by mariadb-install-db once per test
// binary.
var template struct {
	once sync.Once
	dir  string // holds data/, a fresh data directory
	err  error
}

// initTemplate runs mariadb-install-db once, into a directory removed by
// Main.
func initTemplate(b bins) (string, error) {
	template.once.Do(func() {
		dir, err := os.MkdirTemp("", "mariadbtest-template-")
		if err != nil {
			template.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		defer cancel()
		args := []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"),
			"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
			// Passed on to mariadbd: a small redo log keeps the template
			// (copied for every server) small.
			"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=16M", "--skip-log-bin"}
		out, err := runBounded(ctx, command(b.installDB, append(args, userArgs()...)...))
		if err != nil {
			os.RemoveAll(dir)
			template.err = fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
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

// Shared returns the test binary's shared server, starting it on first use
// (or the server of $SESSIONS_MYSQL_DSN). Tests that share it keep apart by
// using tables of their own (see Table). Its output is logged if t fails.
// The package's TestMain must call Main, which stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	Need(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		if dsn := external(); dsn != "" {
			shared.srv, shared.err = newExternal(dsn)
		} else {
			shared.srv, shared.err = start()
		}
	}
	if shared.err != nil {
		t.Fatalf("mariadbtest: shared server: %v", shared.err)
	}
	srv := shared.srv
	mark := srv.out.Len()
	t.Cleanup(func() {
		if t.Failed() && !srv.External() {
			t.Logf("mariadbd output meanwhile:\n%s", srv.out.Since(mark))
		}
	})
	return srv
}

// Main runs the tests and then stops the shared server and removes the
// template. Call it from TestMain:
//
//	func TestMain(m *testing.M) { mariadbtest.Main(m) }
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

// Start starts a server of t's own, stopped and removed at t's cleanup. It
// skips t when $SESSIONS_MYSQL_DSN names an external server.
func Start(t testing.TB) *Server {
	t.Helper()
	if external() != "" {
		t.Skipf("mariadbtest: this test starts and stops a server of its own; %s names an external one", ExternalEnv)
	}
	Need(t)
	srv, err := start()
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mariadbd output (%s):\n%s", srv.dir, srv.out.String())
		}
		srv.remove()
	})
	return srv
}

// Table returns a table name of t's own, at most 40 characters: tests
// sharing a server never see each other's rows.
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
	if max := 40 - len("t_") - len(suffix); len(name) > max {
		name = name[len(name)-max:]
	}
	return "t_" + name + suffix
}

var tableSeq struct {
	sync.Mutex
	n int
}

// newExternal returns a Server for the DSN of $SESSIONS_MYSQL_DSN.
func newExternal(dsn string) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ExternalEnv, err)
	}
	if cfg.DBName == "" {
		return nil, errors.New(ExternalEnv + " names no database")
	}
	return &Server{ext: cfg, out: &syncBuffer{}}, nil
}
