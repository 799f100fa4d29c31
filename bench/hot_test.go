package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/backend/redis"
)

// hotClients is how many connections the hot-session benchmark keeps open
// to the server, all sending requests of one session (a page firing XHRs).
const hotClients = 32

// BenchmarkHotSession serves one session from a real HTTP server on
// loopback to 32 connections at once, each sending requests as fast as the
// server answers: read-only requests, and increments of a counter in the
// session (this library with Update, the documented way; scs with Put of
// GetInt+1). It reports requests per second and, for increments, the share
// of the answered increments the stored counter kept (kept%), and for Redis
// the Redis commands per request.
func BenchmarkHotSession(b *testing.B) {
	for _, l := range []struct {
		name  string
		setup func(b *testing.B) (http.Handler, *counter)
	}{
		{"sessions-memory", hotSessionsMemory},
		{"sessions-redis", hotSessionsRedis},
		{"scs-memstore", hotSCSMemory},
		{"scs-redis", hotSCSRedis},
	} {
		for _, op := range []string{"read", "increment"} {
			b.Run(l.name+"/"+op, func(b *testing.B) {
				h, cnt := l.setup(b)
				var err error
				srv := httptest.NewServer(h)
				defer srv.Close()
				client := &http.Client{Transport: &http.Transport{
					MaxIdleConnsPerHost: hotClients,
					DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				}}
				defer client.CloseIdleConnections()
				cookie := hotGet(b, client, srv.URL+"/create", "")
				if cnt != nil {
					cnt.reset()
				}
				var next, ok, failed atomic.Int64
				var wg sync.WaitGroup
				// Lean clients: one kept-alive connection each, the request
				// written as ready bytes and the response read with a
				// minimal parser, so that the server, not the client, is
				// what the machine's two cores mostly run.
				raw := []byte("GET /" + op + " HTTP/1.1\r\nHost: bench\r\nCookie: " + cookie + "\r\n\r\n")
				conns := make([]*hotConn, hotClients)
				for i := range conns {
					if conns[i], err = dialHot(srv.Listener.Addr().String()); err != nil {
						b.Fatal(err)
					}
					defer conns[i].Close()
				}
				b.ResetTimer()
				start := time.Now()
				for _, c := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if c.do(raw) == http.StatusOK {
								ok.Add(1)
							} else {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
				if cnt != nil {
					cnt.report(b)
				}
				if op == "increment" {
					got, err := strconv.ParseInt(hotGet(b, client, srv.URL+"/count", cookie), 10, 64)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(100*float64(got)/float64(max(ok.Load(), 1)), "kept%")
				}
				b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
			})
		}
	}
}

// BenchmarkHotHandler calls the handlers of BenchmarkHotSession directly,
// from one goroutine, with no network and no contention: what each library
// itself costs a read-only request and an increment, on memory, in time and
// allocations (the HTTP server and client, which both pay alike, are left
// out).
func BenchmarkHotHandler(b *testing.B) {
	for _, op := range []string{"read", "increment"} {
		for _, l := range []struct {
			name  string
			setup func(b *testing.B) (http.Handler, *counter)
		}{{"sessions-memory", hotSessionsMemory}, {"scs-memstore", hotSCSMemory}} {
			b.Run(l.name+"/"+op, func(b *testing.B) {
				h, _ := l.setup(b)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/create", nil))
				cookies := rec.Result().Cookies()
				if rec.Code != http.StatusOK || len(cookies) != 1 {
					b.Fatalf("/create: %d, %d cookies", rec.Code, len(cookies))
				}
				req := httptest.NewRequest(http.MethodGet, "/"+op, nil)
				req.AddCookie(cookies[0])
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.code = 0
					h.ServeHTTP(w, req)
				}
				if w.code != http.StatusOK && w.code != 0 {
					b.Fatalf("/%s: %d", op, w.code)
				}
			})
		}
	}
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// hotGet sends one request and returns the session cookie it set (for
// /create) or the body.
func hotGet(b *testing.B, c *http.Client, url, cookie string) string {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	if cookie == "" {
		for _, c := range resp.Cookies() {
			return c.Name + "=" + c.Value
		}
		b.Fatal("no cookie")
	}
	return strings.TrimSpace(string(body))
}

// hotConn is a minimal HTTP/1.1 client on one kept-alive connection.
type hotConn struct {
	net.Conn
	r *bufio.Reader
}

func dialHot(addr string) (*hotConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &hotConn{Conn: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

// do sends req and reads the response, returning its status (0 on a
// broken connection).
func (c *hotConn) do(req []byte) int {
	if _, err := c.Write(req); err != nil {
		return 0
	}
	status, length, chunked := 0, -1, false
	for first := true; ; first = false {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0
		}
		if first {
			if len(line) < 12 {
				return 0
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		k, v, _ := strings.Cut(string(line), ":")
		switch strings.ToLower(k) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		case "transfer-encoding":
			chunked = true
		}
	}
	if chunked || length < 0 {
		return 0 // the handlers answer with short bodies, never chunked
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0
	}
	return status
}

// Hot is the session data of the hot-session benchmark.
type Hot struct {
	Count int64
}

func hotSessions(b *testing.B, st backend.Store) http.Handler {
	mgr, err := sessions.New[Hot](sessions.Config{Store: st, IdleTimeout: idleTimeout, AbsoluteTimeout: absoluteTimeout,
		Cookie: sessions.CookieConfig{Insecure: true}, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mgr.Close() })
	return mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/create":
			s.Data.Count = 0
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "/increment":
			if err := mgr.Update(w, r, s, func(h *Hot) error { h.Count++; return nil }); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprint(w, s.Data.Count)
	}))
}

func hotSessionsMemory(b *testing.B) (http.Handler, *counter) {
	st := memory.New(memory.Options{})
	b.Cleanup(func() { st.Close() })
	return hotSessions(b, st), nil
}

func hotSessionsRedis(b *testing.B) (http.Handler, *counter) {
	client, cnt := redisClient(b)
	st, err := redis.New(context.Background(), client, redis.Options{Prefix: "bench:hot:"})
	if err != nil {
		b.Fatal(err)
	}
	return hotSessions(b, st), cnt
}

func hotSCS(store scs.Store) http.Handler {
	sm := scs.New()
	sm.Store = store
	sm.IdleTimeout = idleTimeout
	sm.Lifetime = absoluteTimeout
	sm.Cookie.Secure = false
	return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch r.URL.Path {
		case "/create":
			sm.Put(ctx, "count", int64(0))
		case "/increment":
			sm.Put(ctx, "count", sm.GetInt64(ctx, "count")+1)
		}
		fmt.Fprint(w, sm.GetInt64(ctx, "count"))
	}))
}

func hotSCSMemory(b *testing.B) (http.Handler, *counter) {
	st := memstore.New()
	b.Cleanup(st.StopCleanup)
	return hotSCS(st), nil
}

func hotSCSRedis(b *testing.B) (http.Handler, *counter) {
	client, cnt := redisClient(b)
	return hotSCS(goredisstore.NewWithPrefix(client, "bench:hot-scs:")), cnt
}
