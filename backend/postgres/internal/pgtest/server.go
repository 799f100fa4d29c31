package pgtest

import (
	"bytes"
	"context"
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

	"github.com/jackc/pgx/v5/pgxpool"
)

// bindAttempts is how many free ports start tries (another process may take
// a port between picking it and the server binding it).
const bindAttempts = 5

// Server is a private PostgreSQL server listening on 127.0.0.1. Its methods
// may be called from any goroutine.
type Server struct {
	bin  string
	who  *runAs
	dir  string // holds data/
	port int
	out  *syncBuffer

	mu   sync.Mutex // held for all of Start and Stop
	proc *process   // nil when stopped
}

// process is one run of postgres.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
	err  error         // Wait's result, readable after done is closed
}

// start makes a server from the template cluster on a free port and starts
// it.
func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	who, err := serverUser()
	if err != nil {
		return nil, err
	}
	tmpl, err := initTemplate(bin, who)
	if err != nil {
		return nil, err
	}
	dir, err := newDir(who, "pgtest-")
	if err != nil {
		return nil, err
	}
	// cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
	if out, err := exec.Command("cp", "-a", filepath.Join(tmpl, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("copying the template cluster: %v\n%s", err, out)
	}
	s := &Server{bin: bin, who: who, dir: dir, out: &syncBuffer{}}
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
	return nil, fmt.Errorf("postgres did not start: %v\n%s", lastErr, s.out.String())
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DSN returns a connection string to the server's postgres database as the
// postgres superuser, without TLS.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=5", s.Addr())
}

// Output returns what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// Pool returns a pgxpool.Pool to the server, with configure (if not nil)
// applied to its config first. It is closed at t's cleanup.
func (s *Server) Pool(t testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	return s.PoolTo(t, s.DSN(), configure)
}

// PoolTo is Pool to another address (a proxy in front of the server, say),
// given as a DSN.
func (s *Server) PoolTo(t testing.TB, dsn string, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if configure != nil {
		configure(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: ping %s: %v", s.Addr(), err)
	}
	return pool
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !exited(s.proc)
}

// Start starts the server, on its port and data directory (so with the data
// it had), and waits until it accepts connections. Starting a running
// server does nothing. Tests call Stop and Start to simulate an outage.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !exited(s.proc) {
		return nil
	}
	s.proc = nil
	fmt.Fprintf(s.out, "### postgres on port %d\n", s.port)
	cmd := command(s.who, filepath.Join(s.bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	)
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

// Stop stops the server with a fast shutdown (SIGINT: open transactions are
// rolled back, connections cut, data kept), then SIGKILL if it has not
// exited after 10 s, and waits for it. Stopping a stopped server does
// nothing.
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
	s.Stop()
	os.RemoveAll(s.dir)
}

// waitReady polls the server with pg_isready until it accepts connections,
// p exits, or startTimeout passes.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cmd := command(s.who, filepath.Join(s.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", "postgres", "-t", "1")
		_, err := runBounded(ctx, cmd)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited before accepting connections: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections on %s after %v", s.Addr(), startTimeout)
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

// stopProcess sends SIGINT (a fast shutdown) to p, SIGKILL after
// stopTimeout, and waits for it to exit.
func stopProcess(p *process) {
	if exited(p) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
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
