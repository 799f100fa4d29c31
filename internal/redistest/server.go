package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// bindAttempts is how many free ports StartServer tries before giving up
// (another process may grab a port between picking it and redis binding it;
// redis-server then exits with "Address already in use").
const bindAttempts = 5

// Server is a private redis-server child process listening on 127.0.0.1.
// It is created by StartServer (or StartCluster) and stopped at cleanup.
// Its methods may be called from any goroutine, but Start and Client report
// failures through the testing.TB, so call them from the test goroutine.
type Server struct {
	t    testing.TB
	port int
	args []string
	out  *syncBuffer

	mu   sync.Mutex // held for all of Start and Stop
	proc *process   // nil when stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // Wait's result, readable after done is closed
}

// StartServer starts a private redis-server as a child process:
//
//	redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
//	  --dir <t.TempDir()> --daemonize no --protected-mode no [extraArgs...]
//
// on a free loopback port (retrying with another port if it fails to bind),
// waits until it answers PING (failing the test after 10 s), and registers
// Stop on t.Cleanup. Its output is logged only if the test fails. It fails
// the test if redis-server is not on PATH: callers that can do without it
// decide before calling (see HaveBinaries, Required and Single).
func StartServer(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	return startServer(t, func(int, string) []string { return extraArgs })
}

// startServer is StartServer with extra arguments computed from the port
// and the data directory.
func startServer(t testing.TB, extra func(port int, dir string) []string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (install Redis, e.g. apt-get install redis-server): %v", err)
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-server output (%s):\n%s", dir, out.String())
		}
	})

	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick a free port: %v", err)
		}
		args := append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
			"--protected-mode", "no",
		}, extra(port, dir)...)
		s := &Server{t: t, port: port, args: args, out: out}
		fmt.Fprintf(out, "### redis-server %q\n", args)
		mark := out.Len()
		p, err := s.launch(bin)
		if err != nil {
			t.Fatalf("redistest: start redis-server: %v", err)
		}
		err = waitReady(s.Addr(), p, startTimeout)
		if err == nil {
			s.proc = p
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
		stopProcess(p)
		if !strings.Contains(out.Since(mark), "already in use") {
			break // not a port clash: another port will not help
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *Server) Port() int {
	return s.port
}

// Running reports whether the server process is running (it may still be
// starting up when called concurrently with Start).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !exited(s.proc)
}

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited after
// 5 s, and waits for it to exit. Stopping a stopped server does nothing.
// The server is stopped at cleanup anyway; tests call Stop to simulate an
// outage and Start to end it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	stopProcess(s.proc)
	s.proc = nil
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for
// it to exit: unlike Stop, it gives Redis no chance to shut down cleanly
// (no final save, no goodbye to replicas or cluster peers). Killing a
// stopped server does nothing. Start brings it back.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	select {
	case <-s.proc.done:
	case <-time.After(stopTimeout):
	}
	s.proc = nil
}

// Pause freezes the server (SIGSTOP) until Resume: the kernel still
// accepts connections and buffers the commands clients send, but Redis
// neither runs nor answers them; after Resume it runs what it buffered, in
// order. This is a Redis that hangs (a long fork, a swapped-out process, a
// stalled VM) rather than one that is down. It fails the test where
// processes cannot be paused (not unix) or the server is not running. A
// paused server is resumed by Stop and at cleanup.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || exited(s.proc) {
		s.t.Fatalf("redistest: Pause: the server on %s is not running", s.Addr())
	}
	if err := pause(s.proc); err != nil {
		s.t.Fatalf("redistest: Pause %s: %v", s.Addr(), err)
	}
}

// Resume continues a server frozen by Pause (SIGCONT). Resuming a server
// that is not paused does nothing.
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || exited(s.proc) {
		return
	}
	if err := resume(s.proc); err != nil {
		s.t.Fatalf("redistest: Resume %s: %v", s.Addr(), err)
	}
}

// CanPause reports whether Server.Pause works on this system (unix).
func CanPause() bool { return canPause }

// Start starts the server again, on the same port and with the same
// arguments, after Stop, and waits until it answers PING, failing the test
// after 10 s. Its data is gone: the servers never persist. Starting a running
// server does nothing.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !exited(s.proc) {
		return
	}
	s.proc = nil
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redistest: redis-server not found on PATH: %v", err)
	}
	fmt.Fprintf(s.out, "### restart on port %d\n", s.port)
	p, err := s.launch(bin)
	if err != nil {
		s.t.Fatalf("redistest: restart redis-server: %v", err)
	}
	if err := waitReady(s.Addr(), p, startTimeout); err != nil {
		stopProcess(p)
		s.t.Fatalf("redistest: redis-server did not restart on %s: %v", s.Addr(), err)
	}
	s.proc = p
}

// Client returns a new go-redis client to the server, with 2 s dial, read
// and write timeouts. It is closed at cleanup.
func (s *Server) Client() *redis.Client {
	s.t.Helper()
	return newClient(s.t, s.Addr())
}

// launch starts one redis-server process with s.args.
func (s *Server) launch(bin string) (*process, error) {
	cmd := exec.Command(bin, s.args...)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
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

// stopProcess sends SIGTERM to p (and SIGCONT, should it be paused),
// SIGKILL after stopTimeout, and waits for it to exit (SIGKILL cannot be ignored, so the last wait only guards
// against a wedged kernel).
func stopProcess(p *process) {
	if exited(p) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = resume(p) // a paused server must run to see the SIGTERM
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

// waitReady polls addr with PING until it answers PONG, p exits, or timeout
// passes.
func waitReady(addr string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ping(addr, 500*time.Millisecond)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited before answering PING: %v", p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING on %s after %s: %v", addr, timeout, err)
		}
	}
}

// ping sends one PING over a fresh connection and expects +PONG.
func ping(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("PING answered " + strconv.Quote(line))
	}
	return nil
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
// maxOutput bytes (the first ones: a server's startup errors come first).
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

// StartReplica starts a private redis-server (StartServer with extraArgs)
// as a replica of primary (--replicaof) and waits, at most 10 s, until its
// link to primary is up and the initial sync is done. It fails the test
// otherwise. It is stopped at cleanup. A primary started with
// "--repl-diskless-sync-delay", "0" syncs it at once (Redis's default
// waits 5 s for more replicas to sync together).
func StartReplica(t testing.TB, primary *Server, extraArgs ...string) *Server {
	t.Helper()
	r := StartServer(t, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port())}, extraArgs...)...)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := retry(ctx, func() error { return replicaInSync(ctx, r, primary) }); err != nil {
		t.Fatalf("redistest: replica %s not in sync with %s after %s: %v", r.Addr(), primary.Addr(), startTimeout, err)
	}
	return r
}
