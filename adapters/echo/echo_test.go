package sessionsecho_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/sessionx/sessions"
	sessionsecho "github.com/sessionx/sessions/adapters/echo"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// Shop is what a visitor's session holds in these tests.
type Shop struct {
	User   string
	Cart   []string
	Notice sessions.Flash[string]
}

func notice(s *Shop) *sessions.Flash[string] { return &s.Notice }

// page is what GET / answers.
type page struct {
	User  string   `json:"user"`
	Cart  []string `json:"cart"`
	Flash []string `json:"flash"`
	New   bool     `json:"new"`
}

// newEcho returns an echo instance that prints nothing.
func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	return e
}

// shop is a small echo app: GET / shows the session and takes its flash
// messages; POST /cart adds an item, leaves a flash and redirects; POST
// /login migrates; POST /logout destroys.
func shop(mgr *sessions.Manager[Shop]) *echo.Echo {
	e := newEcho()
	e.Use(sessionsecho.Middleware(mgr))
	e.GET("/", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr)
		msgs, err := sessions.TakeFlashes(mgr, c.Response(), c.Request(), s, notice)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, page{User: s.Data.User, Cart: s.Data.Cart, Flash: msgs, New: s.IsNew()})
	})
	e.POST("/cart", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr)
		item := c.FormValue("item")
		s.Data.Cart = append(s.Data.Cart, item)
		if err := sessions.AddFlash(mgr, c.Response(), c.Request(), s, notice, "Added "+item+"."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/")
	})
	e.POST("/login", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr)
		s.Data.User = c.FormValue("user")
		if err := mgr.Migrate(c.Response(), c.Request(), s); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, page{User: s.Data.User, Cart: s.Data.Cart})
	})
	e.POST("/logout", func(c echo.Context) error {
		if err := mgr.Destroy(c.Response(), c.Request(), sessionsecho.Get(c, mgr)); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/")
	})
	return e
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that each response can be checked.
type browser struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
}

func newBrowser(t *testing.T, srv *httptest.Server, jar http.CookieJar) *browser {
	return &browser{t: t, srv: srv, client: &http.Client{
		Transport:     srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request (a POST form when form is not nil, with cookie when
// it is not nil) and returns the response with its body read.
func (b *browser) do(method, path string, form url.Values, cookie *http.Cookie) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, data
}

// page fetches GET / (with cookie, when not nil) and decodes it.
func (b *browser) page(cookie *http.Cookie) page {
	b.t.Helper()
	resp, body := b.do(http.MethodGet, "/", nil, cookie)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET /: %d %s", resp.StatusCode, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		b.t.Fatalf("GET /: %v in %s", err, body)
	}
	return p
}

// sessionCookie returns the session cookie resp sets, or fails the test.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" {
			return c
		}
	}
	t.Fatalf("%s %s: no session cookie in %q", resp.Request.Method, resp.Request.URL.Path, resp.Header.Values("Set-Cookie"))
	return nil
}

// TestLoginCartFlashLogout runs a visitor through a real echo instance
// served over TLS: a cart in typed data across requests, a flash message
// taken after a redirect, login (Migrate) and logout (Destroy), checking
// the cookies, the data, and that an old token finds nothing after login
// and after logout.
func TestLoginCartFlashLogout(t *testing.T) {
	mgr, err := sessions.New[Shop](sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	srv := httptest.NewTLSServer(shop(mgr))
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv, jar)
	stranger := newBrowser(t, srv, nil) // sends only the cookie it is given

	// A visitor who stores nothing gets no cookie.
	resp, _ := b.do(http.MethodGet, "/", nil, nil)
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Fatalf("GET / of a new visitor set %q; want no cookie", got)
	}

	// Add to the cart: a redirect with the new session's cookie.
	resp, _ = b.do(http.MethodPost, "/cart", url.Values{"item": {"book"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /cart: %d to %q; want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	anon := sessionCookie(t, resp)
	if !anon.Secure || !anon.HttpOnly || anon.SameSite != http.SameSiteLaxMode || anon.Path != "/" || anon.MaxAge <= 0 {
		t.Fatalf("cookie %+v; want Secure, HttpOnly, SameSite=Lax, Path=/, persistent", anon)
	}

	// After the redirect: the flash, once, and the cart on every request.
	if p := b.page(nil); !slices.Equal(p.Flash, []string{"Added book."}) || !slices.Equal(p.Cart, []string{"book"}) {
		t.Fatalf("GET / after the redirect: %+v; want the flash and the cart [book]", p)
	}
	b.do(http.MethodPost, "/cart", url.Values{"item": {"pen"}}, nil)
	if p := b.page(nil); !slices.Equal(p.Flash, []string{"Added pen."}) || !slices.Equal(p.Cart, []string{"book", "pen"}) {
		t.Fatalf("GET / after the second redirect: %+v; want only the new flash and the cart [book pen]", p)
	}
	if p := b.page(nil); len(p.Flash) != 0 {
		t.Fatalf("flash shown twice: %+v", p)
	}

	// Login gives a new token and keeps the data; the old token finds nothing.
	resp, body := b.do(http.MethodPost, "/login", url.Values{"user": {"ann"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /login: %d %s", resp.StatusCode, body)
	}
	user := sessionCookie(t, resp)
	if user.Value == anon.Value {
		t.Fatal("login kept the token: no migration")
	}
	if p := b.page(nil); p.User != "ann" || !slices.Equal(p.Cart, []string{"book", "pen"}) {
		t.Fatalf("GET / after login: %+v; want user ann and the cart", p)
	}
	if p := stranger.page(anon); !p.New || p.User != "" || len(p.Cart) != 0 {
		t.Fatalf("the token from before login found %+v; want a new, empty session", p)
	}

	// Logout ends the session and clears the cookie; its token finds nothing.
	resp, _ = b.do(http.MethodPost, "/logout", url.Values{}, nil)
	if c := sessionCookie(t, resp); resp.StatusCode != http.StatusSeeOther || c.MaxAge >= 0 {
		t.Fatalf("POST /logout: %d, cookie %+v; want 303 and the cookie cleared", resp.StatusCode, c)
	}
	u, _ := url.Parse(srv.URL)
	if got := jar.Cookies(u); len(got) != 0 {
		t.Fatalf("cookie jar after logout: %v; want empty", got)
	}
	if p := stranger.page(user); !p.New || p.User != "" || len(p.Cart) != 0 {
		t.Fatalf("the token from before logout found %+v; want a new, empty session", p)
	}
	if p := b.page(nil); !p.New || p.User != "" {
		t.Fatalf("GET / after logout: %+v; want a new session", p)
	}
}

// TestEveryWayOfAnsweringCommitsFirst changes a new session and then
// answers in each of the ways an echo handler can, errors included; the
// response must carry the session's cookie (so the commit came before the
// header) and the next request must see the change.
func TestEveryWayOfAnsweringCommitsFirst(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c echo.Context) error
		status int
	}{
		{"String", func(c echo.Context) error { return c.String(http.StatusOK, "ok") }, http.StatusOK},
		{"JSON", func(c echo.Context) error { return c.JSON(http.StatusCreated, map[string]bool{"ok": true}) }, http.StatusCreated},
		{"Blob", func(c echo.Context) error { return c.Blob(http.StatusOK, "text/plain", []byte("ok")) }, http.StatusOK},
		{"Stream", func(c echo.Context) error {
			return c.Stream(http.StatusOK, "text/plain", strings.NewReader("ok"))
		}, http.StatusOK},
		{"NoContent", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, http.StatusNoContent},
		{"Redirect", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/elsewhere") }, http.StatusFound},
		{"WriteHeader", func(c echo.Context) error { c.Response().WriteHeader(http.StatusTeapot); return nil }, http.StatusTeapot},
		{"Write", func(c echo.Context) error { _, err := c.Response().Write([]byte("ok")); return err }, http.StatusOK},
		{"Flush", func(c echo.Context) error { c.Response().Flush(); return nil }, http.StatusOK},
		{"ResponseController", func(c echo.Context) error {
			return http.NewResponseController(c.Response()).Flush()
		}, http.StatusOK},
		{"HTTPError", func(c echo.Context) error { return echo.NewHTTPError(http.StatusForbidden, "no") }, http.StatusForbidden},
		{"plain error", func(c echo.Context) error { return errors.New("boom") }, http.StatusInternalServerError},
		{"nothing written", func(c echo.Context) error { return nil }, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mgr, err := sessions.New[Shop](sessions.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer mgr.Close()
			e := newEcho()
			e.Use(sessionsecho.Middleware(mgr))
			e.GET("/", func(c echo.Context) error {
				sessionsecho.Get(c, mgr).Data.User = "ann"
				return tc.answer(c)
			})
			e.GET("/me", func(c echo.Context) error { return c.String(http.StatusOK, sessionsecho.Get(c, mgr).Data.User) })
			srv := httptest.NewTLSServer(e)
			defer srv.Close()
			b := newBrowser(t, srv, nil)

			resp, _ := b.do(http.MethodGet, "/", nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.status)
			}
			cookie := sessionCookie(t, resp)
			if _, body := b.do(http.MethodGet, "/me", nil, cookie); string(body) != "ann" {
				t.Fatalf("next request saw user %q; want ann", body)
			}
		})
	}
}

// faultyStore is a memory store whose reads or writes fail on demand.
type faultyStore struct {
	backend.Store
	failGet, failSet atomic.Bool
}

var errDown = errors.New("store down")

func (f *faultyStore) Get(ctx context.Context, key string) (backend.Entry, error) {
	if f.failGet.Load() {
		return backend.Entry{}, errDown
	}
	return f.Store.Get(ctx, key)
}

func (f *faultyStore) Set(ctx context.Context, key string, e backend.Entry) error {
	if f.failSet.Load() {
		return errDown
	}
	return f.Store.Set(ctx, key, e)
}

func newFaulty(t *testing.T) (*faultyStore, *sessions.Manager[Shop]) {
	t.Helper()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	st := &faultyStore{Store: mem}
	mgr, err := sessions.New[Shop](sessions.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return st, mgr
}

// statusSeen is middleware that records the status of the response it
// hands on, as a logging middleware would read it.
func statusSeen(status *atomic.Int32) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status.Store(int32(c.Response().Status))
			return nil
		}
	}
}

// TestStoreDownSkipsHandlers: when the session cannot be loaded, the
// ErrorHandler answers 500, no handler after the middleware runs, and
// middleware before it sees the 500.
func TestStoreDownSkipsHandlers(t *testing.T) {
	st, mgr := newFaulty(t)
	st.failGet.Store(true)
	var ran, status atomic.Int32
	e := newEcho()
	e.Use(statusSeen(&status), sessionsecho.Middleware(mgr), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { ran.Add(1); return next(c) }
	})
	e.GET("/", func(c echo.Context) error { ran.Add(1); return c.String(http.StatusOK, "handler") })
	srv := httptest.NewTLSServer(e)
	defer srv.Close()

	token := make([]byte, 32)
	_, _ = rand.Read(token)
	resp, body := newBrowser(t, srv, nil).do(http.MethodGet, "/", nil,
		&http.Cookie{Name: "__Host-session", Value: base64.RawURLEncoding.EncodeToString(token)})
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "handler") {
		t.Fatalf("store down: %d %q; want the ErrorHandler's 500", resp.StatusCode, body)
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("%d handlers ran after a failed load; want none", n)
	}
	if got := status.Load(); got != http.StatusInternalServerError {
		t.Fatalf("outer middleware saw status %d; want 500", got)
	}
}

// TestCommitFailureDropsResponse: when the commit fails, nothing of the
// handler's response goes out (status, body, headers, cookie), whichever
// way the handler answers; the ErrorHandler's 500 does, and middleware
// before the adapter sees it.
func TestCommitFailureDropsResponse(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c echo.Context) error
	}{
		{"String", func(c echo.Context) error { return c.String(http.StatusOK, "handler") }},
		{"NoContent", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }},
		{"Redirect", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/handler") }},
		{"Flush", func(c echo.Context) error { c.Response().Flush(); return nil }},
		{"HTTPError", func(c echo.Context) error { return echo.NewHTTPError(http.StatusForbidden, "handler") }},
		{"nothing written", func(c echo.Context) error { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, mgr := newFaulty(t)
			st.failSet.Store(true)
			var status atomic.Int32
			e := newEcho()
			e.Use(statusSeen(&status), sessionsecho.Middleware(mgr))
			e.GET("/", func(c echo.Context) error {
				sessionsecho.Get(c, mgr).Data.User = "ann"
				c.Response().Header().Set("X-Handler", "yes")
				return tc.answer(c)
			})
			srv := httptest.NewTLSServer(e)
			defer srv.Close()

			resp, body := newBrowser(t, srv, nil).do(http.MethodGet, "/", nil, nil)
			if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "handler") {
				t.Fatalf("commit failed: %d %q; want the ErrorHandler's 500", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Handler") != "" || resp.Header.Get("Location") != "" || len(resp.Cookies()) != 0 {
				t.Fatalf("commit failed, yet the handler's headers went out: %v", resp.Header)
			}
			if got := status.Load(); got != http.StatusInternalServerError {
				t.Fatalf("outer middleware saw status %d; want 500", got)
			}
		})
	}
}

// TestPanicCommitsNothing: a handler that panics after changing the
// session saves nothing, and middleware.Recover's 500 goes out.
func TestPanicCommitsNothing(t *testing.T) {
	mgr, err := sessions.New[Shop](sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e := newEcho()
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true}), sessionsecho.Middleware(mgr))
	e.GET("/", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr)
		s.Data.User = c.QueryParam("user")
		if c.QueryParam("panic") != "" {
			panic("boom")
		}
		return c.String(http.StatusOK, s.Data.User)
	})
	e.GET("/me", func(c echo.Context) error { return c.String(http.StatusOK, sessionsecho.Get(c, mgr).Data.User) })
	srv := httptest.NewTLSServer(e)
	defer srv.Close()
	b := newBrowser(t, srv, nil)

	resp, _ := b.do(http.MethodGet, "/?user=ann", nil, nil)
	cookie := sessionCookie(t, resp)
	resp, _ = b.do(http.MethodGet, "/?user=bob&panic=1", nil, cookie)
	if resp.StatusCode != http.StatusInternalServerError || len(resp.Cookies()) != 0 {
		t.Fatalf("panic: %d, cookies %q; want 500 and no cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if _, body := b.do(http.MethodGet, "/me", nil, cookie); string(body) != "ann" {
		t.Fatalf("after the panic the session holds user %q; want ann (nothing saved)", body)
	}
}
