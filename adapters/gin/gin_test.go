package sessionsgin_test

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
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/sessionx/sessions"
	sessionsgin "github.com/sessionx/sessions/adapters/gin"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug lines on stdout
	os.Exit(m.Run())
}

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

// shop is a small gin app: GET / shows the session and takes its flash
// messages; POST /cart adds an item, leaves a flash and redirects; POST
// /login migrates; POST /logout destroys.
func shop(t *testing.T, mgr *sessions.Manager[Shop]) *gin.Engine {
	t.Helper()
	r := gin.New()
	r.Use(sessionsgin.Middleware(mgr))
	r.GET("/", func(c *gin.Context) {
		s := sessionsgin.Get(c, mgr)
		msgs, err := sessions.TakeFlashes(mgr, c.Writer, c.Request, s, notice)
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, page{User: s.Data.User, Cart: s.Data.Cart, Flash: msgs, New: s.IsNew()})
	})
	r.POST("/cart", func(c *gin.Context) {
		s := sessionsgin.Get(c, mgr)
		item := c.PostForm("item")
		s.Data.Cart = append(s.Data.Cart, item)
		if err := sessions.AddFlash(mgr, c.Writer, c.Request, s, notice, "Added "+item+"."); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/")
	})
	r.POST("/login", func(c *gin.Context) {
		s := sessionsgin.Get(c, mgr)
		s.Data.User = c.PostForm("user")
		if err := mgr.Migrate(c.Writer, c.Request, s); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, page{User: s.Data.User, Cart: s.Data.Cart})
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := mgr.Destroy(c.Writer, c.Request, sessionsgin.Get(c, mgr)); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/")
	})
	return r
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
// it is not empty) and returns the response with its body read.
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

// TestLoginCartFlashLogout runs a visitor through a real gin engine served
// over TLS: a cart in typed data across requests, a flash message taken
// after a redirect, login (Migrate) and logout (Destroy), checking the
// cookies, the data, and that an old token finds nothing after login and
// after logout.
func TestLoginCartFlashLogout(t *testing.T) {
	mgr, err := sessions.New[Shop](sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	srv := httptest.NewTLSServer(shop(t, mgr))
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

// TestEveryWayOfWritingCommitsFirst changes a new session and then answers
// in each of the ways a gin handler can; the response must carry the
// session's cookie (so the commit came before the header) and the next
// request must see the change.
func TestEveryWayOfWritingCommitsFirst(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c *gin.Context)
		status int
	}{
		{"String", func(c *gin.Context) { c.String(http.StatusOK, "ok") }, http.StatusOK},
		{"JSON", func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"ok": true}) }, http.StatusCreated},
		{"Data", func(c *gin.Context) { c.Data(http.StatusOK, "text/plain", []byte("ok")) }, http.StatusOK},
		{"Redirect", func(c *gin.Context) { c.Redirect(http.StatusFound, "/elsewhere") }, http.StatusFound},
		{"Status only", func(c *gin.Context) { c.Status(http.StatusAccepted) }, http.StatusAccepted},
		{"AbortWithStatus", func(c *gin.Context) { c.AbortWithStatus(http.StatusNoContent) }, http.StatusNoContent},
		{"WriteHeaderNow", func(c *gin.Context) { c.Writer.WriteHeaderNow() }, http.StatusOK},
		{"WriteHeader", func(c *gin.Context) { c.Writer.WriteHeader(http.StatusTeapot) }, http.StatusTeapot},
		{"WriteString", func(c *gin.Context) { _, _ = c.Writer.WriteString("ok") }, http.StatusOK},
		{"ReadFrom", func(c *gin.Context) {
			_, _ = c.Writer.(io.ReaderFrom).ReadFrom(strings.NewReader("ok"))
		}, http.StatusOK},
		{"Flush", func(c *gin.Context) { c.Writer.Flush(); _, _ = c.Writer.WriteString("ok") }, http.StatusOK},
		{"ResponseController", func(c *gin.Context) {
			if err := http.NewResponseController(c.Writer).Flush(); err != nil {
				panic(err)
			}
		}, http.StatusOK},
		{"Stream", func(c *gin.Context) {
			c.Stream(func(w io.Writer) bool { _, _ = io.WriteString(w, "ok"); return false })
		}, http.StatusOK},
		{"nothing written", func(c *gin.Context) {}, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mgr, err := sessions.New[Shop](sessions.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer mgr.Close()
			r := gin.New()
			r.Use(sessionsgin.Middleware(mgr))
			r.GET("/", func(c *gin.Context) {
				sessionsgin.Get(c, mgr).Data.User = "ann"
				tc.answer(c)
			})
			r.GET("/me", func(c *gin.Context) { c.String(http.StatusOK, sessionsgin.Get(c, mgr).Data.User) })
			srv := httptest.NewTLSServer(r)
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

// TestStoreDownAbortsChain: when the session cannot be loaded, the
// ErrorHandler answers 500 and no handler after the middleware runs.
func TestStoreDownAbortsChain(t *testing.T) {
	st, mgr := newFaulty(t)
	st.failGet.Store(true)
	var ran atomic.Int32
	r := gin.New()
	r.Use(sessionsgin.Middleware(mgr), func(c *gin.Context) { ran.Add(1) })
	r.GET("/", func(c *gin.Context) { ran.Add(1); c.String(http.StatusOK, "handler") })
	srv := httptest.NewTLSServer(r)
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
}

// TestCommitFailureDropsResponse: when the commit fails, nothing of the
// handler's response goes out (status, body, headers, cookie), whichever
// way the handler answers; the ErrorHandler's 500 does.
func TestCommitFailureDropsResponse(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c *gin.Context)
	}{
		{"String", func(c *gin.Context) { c.String(http.StatusOK, "handler") }},
		{"AbortWithStatus", func(c *gin.Context) { c.AbortWithStatus(http.StatusNoContent) }},
		{"Status only", func(c *gin.Context) { c.Status(http.StatusAccepted) }},
		{"Redirect", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/handler") }},
		{"Flush", func(c *gin.Context) { c.Writer.Flush() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, mgr := newFaulty(t)
			st.failSet.Store(true)
			r := gin.New()
			r.Use(sessionsgin.Middleware(mgr))
			r.GET("/", func(c *gin.Context) {
				sessionsgin.Get(c, mgr).Data.User = "ann"
				c.Header("X-Handler", "yes")
				tc.answer(c)
			})
			srv := httptest.NewTLSServer(r)
			defer srv.Close()

			resp, body := newBrowser(t, srv, nil).do(http.MethodGet, "/", nil, nil)
			if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "handler") {
				t.Fatalf("commit failed: %d %q; want the ErrorHandler's 500", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Handler") != "" || resp.Header.Get("Location") != "" || len(resp.Cookies()) != 0 {
				t.Fatalf("commit failed, yet the handler's headers went out: %v", resp.Header)
			}
		})
	}
}

// TestPanicCommitsNothing: a handler that panics after changing the
// session saves nothing, and gin.Recovery's 500 goes out.
func TestPanicCommitsNothing(t *testing.T) {
	mgr, err := sessions.New[Shop](sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	r := gin.New()
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) {
		c.AbortWithStatus(http.StatusInternalServerError)
	}), sessionsgin.Middleware(mgr))
	r.GET("/", func(c *gin.Context) {
		s := sessionsgin.Get(c, mgr)
		s.Data.User = c.Query("user")
		if c.Query("panic") != "" {
			panic("boom")
		}
		c.String(http.StatusOK, s.Data.User)
	})
	r.GET("/me", func(c *gin.Context) { c.String(http.StatusOK, sessionsgin.Get(c, mgr).Data.User) })
	srv := httptest.NewTLSServer(r)
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
