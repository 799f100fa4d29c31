package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// hVisit is the session data of the middleware tests.
type hVisit struct {
	N    int
	User string
}

// hCart is a second data type, for a second Manager on the same request.
type hCart struct {
	Items []string
}

// errStoreDown is the store failure the error tests inject.
var errStoreDown = errors.New("store down")

// respCookie returns the cookie named name set by resp, failing the test
// when it is set more than once.
func respCookie(t *testing.T, resp *http.Response, name string) (*http.Cookie, bool) {
	t.Helper()
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			if found != nil {
				t.Errorf("two Set-Cookie lines for %q in one response", name)
			}
			found = c
		}
	}
	return found, found != nil
}

// mustRespCookie returns the cookie named name set by resp, or stops the test.
func mustRespCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	c, ok := respCookie(t, resp, name)
	if !ok {
		t.Fatalf("response sets no %q cookie; Set-Cookie: %q", name, resp.Header.Values("Set-Cookie"))
	}
	return c
}

// startServer runs h behind a real HTTP server, closed when the test ends.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// getResp sends a GET for url with the given Cookie header ("" for none).
// The caller closes the body.
func getResp(t *testing.T, client *http.Client, url, cookie string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// readBody reads and closes resp's body.
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return string(b)
}

// serveVia runs one GET through h, either in-process with a recorder or
// over a real server, and returns the response with its body read into
// body.
func serveVia(t *testing.T, h http.Handler, real bool, cookie string) (resp *http.Response, body string) {
	t.Helper()
	if !real {
		rec := serve(t, h, http.MethodGet, "/", cookie)
		resp = rec.Result()
		return resp, readBody(t, resp)
	}
	srv := startServer(t, h)
	resp = getResp(t, srv.Client(), srv.URL, cookie)
	return resp, readBody(t, resp)
}

// loadedData runs a read-only request with cookie through mgr's middleware
// and returns the session the handler saw.
func loadedData[T any](t *testing.T, mgr *Manager[T], cookie string) (data T, isNew bool) {
	t.Helper()
	ran := false
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		s := mgr.Get(r)
		data, isNew = s.Data, s.IsNew()
	}))
	rec := serve(t, h, http.MethodGet, "/", cookie)
	if !ran {
		t.Fatalf("read-back request: the handler did not run (status %d, body %q)", rec.Code, rec.Body.String())
	}
	return data, isNew
}

// createVisit stores a session holding v and returns its cookie.
func createVisit(t *testing.T, env *testEnv[hVisit], v hVisit) *http.Cookie {
	t.Helper()
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mgr.Get(r).Data = v
	}))
	rec := serve(t, h, http.MethodGet, "/", "")
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok {
		t.Fatalf("creating a session: no session cookie (status %d)", rec.Code)
	}
	return c
}

func TestHandlerCommitsBeforeFirstHeaderByte(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{})
	unblock := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	done := make(chan struct{})
	srv := startServer(t, env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		env.mgr.Get(r).Data = hVisit{N: 1, User: "ann"}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-unblock
		io.WriteString(w, "done")
	})))
	t.Cleanup(release) // runs before srv.Close, which waits for the handler

	resp := getResp(t, srv.Client(), srv.URL, "")
	defer resp.Body.Close()
	select {
	case <-done:
		t.Fatal("the handler finished before the test unblocked it")
	default:
	}
	c := mustRespCookie(t, resp, cookieName)
	if got := env.store.setIfs.Load(); got != 1 {
		t.Errorf("store SetIf calls when the header arrived = %d, want 1", got)
	}
	if got := env.store.writes.Load(); got != 1 {
		t.Errorf("store writes when the header arrived = %d, want 1", got)
	}

	release()
	if body := readBody(t, resp); body != "done" {
		t.Errorf("body = %q, want %q", body, "done")
	}
	<-done
	if data, isNew := loadedData(t, env.mgr, cookieHeader(c)); isNew || data != (hVisit{N: 1, User: "ann"}) {
		t.Errorf("next request sees %+v (new %v), want {N:1 User:ann}", data, isNew)
	}
}

func TestHandlerCommitsOnFirstWrite(t *testing.T) {
	// notWriterTo hides strings.Reader's WriteTo so that io.Copy calls the
	// ResponseWriter's ReadFrom.
	type notWriterTo struct{ io.Reader }
	tests := []struct {
		name     string
		respond  func(t *testing.T, w http.ResponseWriter)
		wantBody string
	}{
		{"OnWrite", func(t *testing.T, w http.ResponseWriter) { io.WriteString(w, "hello") }, "hello"},
		{"OnWriteHeader", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }, ""},
		{"WhenHandlerWritesNothing", func(t *testing.T, w http.ResponseWriter) {}, ""},
		{"OnReadFrom", func(t *testing.T, w http.ResponseWriter) {
			if _, ok := w.(io.ReaderFrom); !ok {
				t.Error("the ResponseWriter behind Handler lost io.ReaderFrom")
			}
			if _, err := io.Copy(w, notWriterTo{strings.NewReader("copied")}); err != nil {
				t.Errorf("io.Copy: %v", err)
			}
		}, "copied"},
		{"OnFlush", func(t *testing.T, w http.ResponseWriter) { w.(http.Flusher).Flush() }, ""},
	}
	for _, tt := range tests {
		for _, real := range []bool{false, true} {
			name := tt.name + "/recorder"
			if real {
				name = tt.name + "/server"
			}
			t.Run(name, func(t *testing.T) {
				env := newTestEnv[hVisit](t, Config{})
				want := hVisit{N: 7, User: "bob"}
				h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					env.mgr.Get(r).Data = want
					tt.respond(t, w)
				}))
				resp, body := serveVia(t, h, real, "")
				if resp.StatusCode != http.StatusOK || body != tt.wantBody {
					t.Errorf("response = %d %q, want 200 %q", resp.StatusCode, body, tt.wantBody)
				}
				c := mustRespCookie(t, resp, cookieName)
				if got := env.store.writes.Load(); got != 1 {
					t.Errorf("store writes = %d, want 1", got)
				}
				if data, isNew := loadedData(t, env.mgr, cookieHeader(c)); isNew || data != want {
					t.Errorf("next request sees %+v (new %v), want %+v", data, isNew, want)
				}
			})
		}
	}
}

func TestHandlerChangesAfterHeaderAreLost(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		s.Data = hVisit{N: 1, User: "early"}
		io.WriteString(w, "body")
		s.Data = hVisit{N: 2, User: "late"} // after the header: lost
	}))
	rec := serve(t, h, http.MethodGet, "/", "")
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok {
		t.Fatal("no session cookie")
	}
	if got := env.store.writes.Load(); got != 1 {
		t.Errorf("store writes = %d, want 1 (the late change must not be written)", got)
	}
	if data, _ := loadedData(t, env.mgr, cookieHeader(c)); data != (hVisit{N: 1, User: "early"}) {
		t.Errorf("next request sees %+v, want the data as it was at the first write, {N:1 User:early}", data)
	}
}

func TestHandlerKeepsFlusher(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{})
	var (
		isFlusher     bool
		writesAtFlush int64
	)
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mgr.Get(r).Data = hVisit{N: 3}
		f, ok := w.(http.Flusher)
		isFlusher = ok
		if !ok {
			return
		}
		f.Flush()
		writesAtFlush = env.store.writes.Load()
	}))
	rec := serve(t, h, http.MethodGet, "/", "")
	if !isFlusher {
		t.Fatal("the ResponseWriter behind Handler is not an http.Flusher")
	}
	if !rec.Flushed {
		t.Error("Flush did not reach the underlying ResponseWriter")
	}
	if writesAtFlush != 1 {
		t.Errorf("store writes right after Flush = %d, want 1 (Flush must commit)", writesAtFlush)
	}
	// The recorder snapshots the header at Flush: the cookie is in it only
	// if the commit came first.
	if _, ok := sessionCookie(t, rec, cookieName); !ok {
		t.Error("the flushed header has no session cookie")
	}
}

func TestHandlerWorksWithResponseController(t *testing.T) {
	type result struct {
		flushErr, writeDeadlineErr, readDeadlineErr error
		writesAfterFlush                            int64
	}
	env := newTestEnv[hVisit](t, Config{})
	results := make(chan result, 1)
	srv := startServer(t, env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res result
		rc := http.NewResponseController(w)
		res.writeDeadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		res.readDeadlineErr = rc.SetReadDeadline(time.Now().Add(time.Minute))
		env.mgr.Get(r).Data = hVisit{N: 4}
		res.flushErr = rc.Flush()
		res.writesAfterFlush = env.store.writes.Load()
		results <- res
	})))
	resp := getResp(t, srv.Client(), srv.URL, "")
	readBody(t, resp)
	res := <-results
	if res.writeDeadlineErr != nil {
		t.Errorf("ResponseController.SetWriteDeadline = %v, want nil (through Unwrap)", res.writeDeadlineErr)
	}
	if res.readDeadlineErr != nil {
		t.Errorf("ResponseController.SetReadDeadline = %v, want nil (through Unwrap)", res.readDeadlineErr)
	}
	if res.flushErr != nil {
		t.Errorf("ResponseController.Flush = %v, want nil", res.flushErr)
	}
	if res.writesAfterFlush != 1 {
		t.Errorf("store writes right after ResponseController.Flush = %d, want 1", res.writesAfterFlush)
	}
	c := mustRespCookie(t, resp, cookieName)
	if data, _ := loadedData(t, env.mgr, cookieHeader(c)); data.N != 4 {
		t.Errorf("next request sees %+v, want N=4", data)
	}
}

func TestHandlerHijack(t *testing.T) {
	type result struct {
		isHijacker    bool
		err           error
		writesAtSteal int64
	}
	env := newTestEnv[hVisit](t, Config{})
	results := make(chan result, 1)
	srv := startServer(t, env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res result
		defer func() { results <- res }()
		_, res.isHijacker = w.(http.Hijacker)
		env.mgr.Get(r).Data = hVisit{N: 5, User: "raw"}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		res.writesAtSteal = env.store.writes.Load()
		_, res.err = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})))
	resp := getResp(t, srv.Client(), srv.URL, "")
	body := readBody(t, resp)
	res := <-results
	if !res.isHijacker {
		t.Error("the ResponseWriter behind Handler is not an http.Hijacker")
	}
	if res.err != nil {
		t.Fatalf("hijack: %v", res.err)
	}
	if body != "ok" {
		t.Errorf("client got body %q, want %q", body, "ok")
	}
	if res.writesAtSteal != 1 {
		t.Errorf("store writes when Hijack returned = %d, want 1 (commit before hijack)", res.writesAtSteal)
	}
	if got := env.store.setIfs.Load(); got != 1 {
		t.Errorf("store SetIf calls = %d, want 1", got)
	}
}

func TestHandlerLoadErrorGoesToErrorHandler(t *testing.T) {
	t.Run("DefaultErrorHandler", func(t *testing.T) {
		env := newTestEnv[hVisit](t, Config{})
		c := createVisit(t, env, hVisit{N: 1})
		env.store.failWith(errStoreDown)
		ran := false
		h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			io.WriteString(w, "handler ran")
		}))
		rec := serve(t, h, http.MethodGet, "/", cookieHeader(c))
		if ran {
			t.Error("the handler ran although its session could not be loaded")
		}
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", rec.Code)
		}
		if body := rec.Body.String(); !strings.HasPrefix(body, "Internal Server Error: ") {
			t.Errorf("body = %q, want it to start with %q", body, "Internal Server Error: ")
		}
		if strings.Contains(rec.Body.String(), "store down") {
			t.Error("the error response shows the internal error")
		}
		if _, ok := sessionCookie(t, rec, cookieName); ok {
			t.Error("the error response sets a session cookie")
		}
		logs := env.logs.String()
		if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "store down") {
			t.Errorf("logs lack the error at ERROR level:\n%s", logs)
		}
	})
	t.Run("CustomErrorHandler", func(t *testing.T) {
		var got []error
		env := newTestEnv[hVisit](t, Config{
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				got = append(got, err)
				http.Error(w, "try later", http.StatusServiceUnavailable)
			},
		})
		c := createVisit(t, env, hVisit{N: 1})
		env.store.failWith(errStoreDown)
		ran := false
		h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }))
		rec := serve(t, h, http.MethodGet, "/", cookieHeader(c))
		if ran {
			t.Error("the handler ran although its session could not be loaded")
		}
		if len(got) != 1 {
			t.Fatalf("ErrorHandler called %d times, want 1", len(got))
		}
		if !errors.Is(got[0], errStoreDown) {
			t.Errorf("ErrorHandler got %v, want an error wrapping %v", got[0], errStoreDown)
		}
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want the custom handler's 503", rec.Code)
		}
	})
}

func TestHandlerCommitErrorGoesToErrorHandler(t *testing.T) {
	tests := []struct {
		name     string
		existing bool // the request brings the cookie of a stored session
	}{
		{"NewSession", false},
		{"StoredSession", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv[hVisit](t, Config{})
			cookie := ""
			if tt.existing {
				cookie = cookieHeader(createVisit(t, env, hVisit{N: 1}))
			}
			var writeErr error
			ran := false
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				env.store.failWith(errStoreDown) // the load went through; the save will not
				env.mgr.Get(r).Data = hVisit{N: 2, User: "mallory"}
				w.Header().Set("Location", "/x")
				w.WriteHeader(http.StatusFound)
				_, writeErr = io.WriteString(w, "secret body")
			}))
			rec := serve(t, h, http.MethodGet, "/", cookie)
			if !ran {
				t.Fatal("the handler did not run")
			}
			if writeErr == nil {
				t.Error("the handler's Write succeeded after the commit failed")
			} else if !errors.Is(writeErr, errCommitFailed) {
				t.Errorf("the handler's Write returned %v, want errCommitFailed", writeErr)
			}
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("status = %d, want 500", rec.Code)
			}
			if strings.Contains(rec.Body.String(), "secret body") {
				t.Errorf("the error response leaks the handler's body: %q", rec.Body.String())
			}
			if loc := rec.Result().Header.Get("Location"); loc != "" {
				t.Errorf("the error response keeps the handler's Location %q", loc)
			}
			if line := setCookieLine(rec, cookieName); line != "" {
				t.Errorf("the error response sets a session cookie: %q", line)
			}
			if logs := env.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "store down") {
				t.Errorf("logs lack the commit error at ERROR level:\n%s", logs)
			}
		})
	}
}

func TestGetOutsideHandler(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{})
	r := httptest.NewRequest(http.MethodGet, "/outside", nil)
	s := env.mgr.Get(r)
	if s == nil {
		t.Fatal("Get returned nil outside Handler")
	}
	if !s.IsNew() {
		t.Error("Get outside Handler returned a session that is not new")
	}
	logs := env.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "did not pass through") {
		t.Errorf("Get outside Handler logged no error:\n%s", logs)
	}
	if got := env.store.reads() + env.store.writes.Load(); got != 0 {
		t.Errorf("Get outside Handler used the store %d times, want 0", got)
	}
}

func TestTwoManagersOneRequest(t *testing.T) {
	visits := newTestEnv[hVisit](t, Config{Cookie: CookieConfig{Name: "visit"}})
	carts := newTestEnv[hCart](t, Config{Cookie: CookieConfig{Name: "cart"}})
	h := visits.mgr.Handler(carts.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		visits.mgr.Get(r).Data.N++
		c := carts.mgr.Get(r)
		c.Data.Items = append(c.Data.Items, "book")
		io.WriteString(w, "ok")
	})))

	rec := serve(t, h, http.MethodGet, "/", "")
	vc, ok := sessionCookie(t, rec, "visit")
	if !ok {
		t.Fatal("no visit cookie")
	}
	cc, ok := sessionCookie(t, rec, "cart")
	if !ok {
		t.Fatal("no cart cookie")
	}
	cookie := cookieHeader(vc) + "; " + cookieHeader(cc)

	rec = serve(t, h, http.MethodGet, "/", cookie)
	if rec.Code != http.StatusOK {
		t.Fatalf("second request: status %d", rec.Code)
	}
	if v, isNew := loadedData(t, visits.mgr, cookie); isNew || v.N != 2 {
		t.Errorf("visit session = %+v (new %v), want N=2", v, isNew)
	}
	if c, isNew := loadedData(t, carts.mgr, cookie); isNew || len(c.Items) != 2 {
		t.Errorf("cart session = %+v (new %v), want two items", c, isNew)
	}
	for name, logs := range map[string]string{"visit": visits.logs.String(), "cart": carts.logs.String()} {
		if strings.Contains(logs, "level=ERROR") {
			t.Errorf("%s manager logged an error:\n%s", name, logs)
		}
	}
}

func TestHandlerInformationalStatusDoesNotCommit(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{})
	srv := startServer(t, env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		env.mgr.Get(r).Data = hVisit{N: 103, User: "hints"}
		w.WriteHeader(http.StatusOK)
	})))

	var (
		mu    sync.Mutex
		hints []http.Header
	)
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		if code == http.StatusEarlyHints {
			hints = append(hints, http.Header(h).Clone())
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)

	mu.Lock()
	defer mu.Unlock()
	if len(hints) != 1 {
		t.Fatalf("client got %d 103 responses, want 1", len(hints))
	}
	for _, v := range hints[0].Values("Set-Cookie") {
		if strings.HasPrefix(v, cookieName+"=") {
			t.Errorf("the 103 response carries the session cookie %q: it committed", v)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("final status = %d, want 200", resp.StatusCode)
	}
	c := mustRespCookie(t, resp, cookieName)
	if data, _ := loadedData(t, env.mgr, cookieHeader(c)); data != (hVisit{N: 103, User: "hints"}) {
		t.Errorf("next request sees %+v, want the data set after the 103", data)
	}
}

func TestHandlerTouchSetsCookie(t *testing.T) {
	env := newTestEnv[hVisit](t, Config{}) // IdleTimeout 30m, TouchInterval 3m
	c := createVisit(t, env, hVisit{N: 1})
	readOnly := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = env.mgr.Get(r).Data.N
		io.WriteString(w, "read")
	}))

	writes := env.store.writes.Load()
	env.clock.Advance(time.Minute)
	rec := serve(t, readOnly, http.MethodGet, "/", cookieHeader(c))
	if line := setCookieLine(rec, cookieName); line != "" {
		t.Errorf("1 minute in: read-only request sets %q, want no cookie", line)
	}
	if got := env.store.writes.Load(); got != writes {
		t.Errorf("1 minute in: store writes went from %d to %d, want no write", writes, got)
	}

	env.clock.Advance(3 * time.Minute)
	rec = serve(t, readOnly, http.MethodGet, "/", cookieHeader(c))
	nc, ok := sessionCookie(t, rec, cookieName)
	if !ok {
		t.Fatal("4 minutes in: read-only request sets no session cookie")
	}
	if nc.MaxAge != 1800 || !strings.Contains(setCookieLine(rec, cookieName), "Max-Age=1800") {
		t.Errorf("4 minutes in: cookie %q, want Max-Age=1800", setCookieLine(rec, cookieName))
	}
	if nc.Value != c.Value {
		t.Error("touch changed the session token")
	}
	if got := env.store.writes.Load(); got != writes+1 {
		t.Errorf("4 minutes in: store writes went from %d to %d, want exactly one more", writes, got)
	}
}

// The ResponseWriter behind Handler must keep io.ReaderFrom and Unwrap for
// the stdlib's fast paths and http.ResponseController.
var (
	_ io.ReaderFrom = (*commitWriter)(nil)
	_ http.Flusher  = (*commitWriter)(nil)
	_ http.Hijacker = (*commitWriter)(nil)
)

// TestDefaultErrorAnswersAClientCanRead: the default ErrorHandler answers
// a client that accepts JSON with an RFC 9457 problem document, others with
// plain text, for each status it uses, never cached.
func TestDefaultErrorAnswersAClientCanRead(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	for _, tc := range []struct {
		err  error
		code int
	}{
		{ErrConflict, http.StatusConflict},
		{ErrGone, http.StatusUnauthorized},
		{ErrTooManySessions, http.StatusForbidden},
		{fmt.Errorf("sessions: save: %w", ErrUnknownOutcome), http.StatusGatewayTimeout},
		{errors.New("store down"), http.StatusInternalServerError},
	} {
		for _, accept := range []string{"application/json", "application/problem+json;q=0.9, */*", "text/html", ""} {
			t.Run(fmt.Sprintf("%d/%s", tc.code, accept), func(t *testing.T) {
				r := httptest.NewRequest("POST", "/", nil)
				if accept != "" {
					r.Header.Set("Accept", accept)
				}
				w := httptest.NewRecorder()
				env.mgr.defaultErrorHandler(w, r, tc.err)
				if w.Code != tc.code || w.Header().Get("Cache-Control") != "no-store" {
					t.Fatalf("status %d, Cache-Control %q; want %d, no-store", w.Code, w.Header().Get("Cache-Control"), tc.code)
				}
				if strings.Contains(accept, "json") {
					var p struct {
						Title  string
						Status int
						Detail string
					}
					if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
						t.Fatalf("Content-Type %q", ct)
					}
					if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tc.code || p.Title != http.StatusText(tc.code) || p.Detail == "" {
						t.Fatalf("problem %+v, %v (body %q)", p, err, w.Body)
					}
					return
				}
				if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || !strings.HasPrefix(w.Body.String(), http.StatusText(tc.code)) {
					t.Fatalf("plain answer %q (%s)", w.Body, w.Header().Get("Content-Type"))
				}
			})
		}
	}
}
