package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
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

// bindAttempts is how many free ports start tries (another process may take
// a port between picking it and the server binding it).
const bindAttempts = 5

// Server is a private MariaDB server listening on 127.0.0.1 (or, with
// $SESSIONS_MYSQL_DSN, an external server). Its methods may be called from
// any goroutine.
type Server struct {
	bin  bins
	dir  string // holds data/ and the socket
	port int
	out  *syncBuffer
	ext  *mysql.Config // the external server's, or nil

	mu   sync.Mutex // held for all of Start and Stop
	proc *process   // nil when stopped
}

// process is one run of mariadbd.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
	err  error         // Wait's result, readable after done is closed
}

// start makes a server from the template on a free port and starts it.
func start() (*Server, error) {
	b, err := binaries()
	if err != nil {
		return nil, err
	}
	tmpl, err := initTemplate(b)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(tmpl, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("copying the template: %v\n%s", err, out)
	}
	s := &Server{bin: b, dir: dir, out: &syncBuffer{}}
	var lastErr error
	for range bindAttempts {
		if s.port, err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		mark := s.out.Len()
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(s.out.Since(mark), "already in use") {
			break // not a port clash: another port will not help
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("mariadbd did not start: %v\n%s", lastErr, s.out.String())
}

// External reports whether s is the server of $SESSIONS_MYSQL_DSN.
func (s *Server) External() bool { return s.ext != nil }

// Addr returns "127.0.0.1:port" (an external server's address as given).
func (s *Server) Addr() string {
	if s.ext != nil {
		return s.ext.Addr
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the server's port on 127.0.0.1 (0 for an external server).
func (s *Server) Port() int { return s.port }

// Config returns a driver configuration for the server's Database as root,
// over TCP, with a 5 s dial timeout and the driver's logging discarded
// (connections the tests break on purpose would fill the output). Its other
// fields are the driver's defaults: no interpolateParams, no
// clientFoundRows. For an external server, it is the configuration of
// $SESSIONS_MYSQL_DSN, its logging discarded.
func (s *Server) Config() *mysql.Config {
	if s.ext != nil {
		cfg := s.ext.Clone()
		cfg.Logger = quiet{}
		return cfg
	}
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = s.Addr()
	cfg.DBName = Database
	cfg.Timeout = 5 * time.Second
	cfg.Logger = quiet{}
	return cfg
}

// DSN returns Config as a DSN, with params ("interpolateParams=true", say)
// appended to its query.
func (s *Server) DSN(params ...string) string {
	dsn := s.Config().FormatDSN()
	for _, p := range params {
		if strings.Contains(dsn, "?") {
			dsn += "&" + p
		} else {
			dsn += "?" + p
		}
	}
	return dsn
}

// quiet is a mysql.Logger that discards.
type quiet struct{}

func (quiet) Print(...any) {}

// Output returns what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// DB returns a *sql.DB to the server, with configure (if not nil) applied
// to Config first, and at most 64 idle connections kept. It is closed at
// t's cleanup, and pinged before it is returned.
func (s *Server) DB(t testing.TB, configure func(*mysql.Config)) *sql.DB {
	t.Helper()
	cfg := s.Config()
	if configure != nil {
		configure(cfg)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(64)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("mariadbtest: ping %s: %v", cfg.Addr, err)
	}
	return db
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !exited(s.proc)
}

// Start starts the server, on its port and data directory (so with the data
// it had), and waits until it accepts connections; the first time, it
// creates the database Database. Starting a running server does nothing.
// Tests call Stop and Start to simulate an outage.
func (s *Server) Start() error {
	if s.ext != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !exited(s.proc) {
		return nil
	}
	s.proc = nil
	fmt.Fprintf(s.out, "### mariadbd on port %d\n", s.port)
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(s.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"),
		"--tmpdir=" + s.dir,
		"--skip-grant-tables",
		"--skip-name-resolve",
		"--skip-log-bin",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=2", // tests need no durability
		"--innodb-doublewrite=0",
		"--innodb-buffer-pool-load-at-startup=0",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--max-connections=300",
		"--character-set-server=utf8mb4",
	}
	cmd := command(s.bin.mariadbd, append(args, userArgs()...)...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(p); err != nil {
		stopProcess(p)
		return err
	}
	s.proc = p
	return nil
}

// Stop stops the server with a normal shutdown (SIGTERM: client connections
// are cut, open transactions rolled back, data kept), then SIGKILL if it
// has not exited after 10 s, and waits for it. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	stopProcess(s.proc)
	s.proc = nil
}

// remove stops the server and deletes its directory.
func (s *Server) remove() {
	if s.ext != nil {
		return
	}
	s.Stop()
	os.RemoveAll(s.dir)
}

// waitReady connects to the server until it answers (and then creates the
// database Database), p exits, or startTimeout passes.
func (s *Server) waitReady(p *process) error {
	cfg := s.Config()
	cfg.DBName = ""
	cfg.Timeout = time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+Database)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("mariadbd exited before accepting connections: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd not accepting connections on %s after %v: %v", s.Addr(), startTimeout, err)
		}
	}
}

// exited reports whether p has exited.
func exited(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopProcess sends SIGTERM (a normal shutdown) to p, SIGKILL after
// stopTimeout, and waits for it to exit.
func stopProcess(p *process) {
	if exited(p) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
	}
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// syncBuffer is a bytes.Buffer safe for concurrent use, holding at most
// maxOutput bytes (the first ones: startup errors come first).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxOutput = 1 << 20

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Len returns the number of bytes held.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Since returns what was written after the first n bytes.
func (b *syncBuffer) Since(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[min(n, b.buf.Len()):])
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
