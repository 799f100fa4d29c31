package sessionstest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// RunHeaderTokens checks the token in a header (sessions.HeaderConfig): a
// client without a cookie jar logs in, migrates (the new token arrives in
// the response header, the old one finds nothing), refreshes and logs out;
// a cross-site form post carrying only the cookie is refused by
// Manager.CSRF while a header-token request passes; a Basic Authorization
// header is ignored; a token in the URL is never read.
func RunHeaderTokens(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Run("HeaderClientLogsInMigratesAndLogsOut", func(t *testing.T) { headerClient(t, newStore(t)) })
	t.Run("CSRFKnowsCookieFromHeader", func(t *testing.T) { csrfCookieVsHeader(t, newStore(t)) })
}

func headerApp(t *testing.T, store backend.Store) (*sessions.Manager[Counter], http.Handler) {
	t.Helper()
	mgr, err := sessions.New[Counter](sessions.Config{Store: store, Header: sessions.HeaderConfig{Bearer: true}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	h := mgr.Handler(mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/login":
			s.Data.User = "api-user"
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		case "/visit":
			if err := mgr.Update(w, r, s, func(c *Counter) error { c.N++; return nil }); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		case "/logout":
			if err := mgr.Destroy(w, r, s); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		case "/form":
			fmt.Fprint(w, s.CSRFToken())
			return
		}
		fmt.Fprintf(w, "%s %d", s.Data.User, s.Data.N)
	})))
	return mgr, h
}

func bearer(method, path, token string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func headerClient(t *testing.T, store backend.Store) {
	_, h := headerApp(t, store)
	do := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if len(w.Result().Cookies()) != 0 {
			t.Fatalf("%s %s: a header-token client was sent a cookie: %v", r.Method, r.URL.Path, w.Result().Cookies())
		}
		return w
	}
	// A new client asks for its token in the header.
	w := do(bearer("POST", "/visit", "new"))
	first := w.Header().Get("Session-Token")
	if w.Code != 200 || first == "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("first visit: %d, token %q, Cache-Control %q", w.Code, first, w.Header().Get("Cache-Control"))
	}
	w = do(bearer("POST", "/login", first))
	token := w.Header().Get("Session-Token")
	if w.Code != 200 || token == "" || token == first || w.Body.String() != "api-user 1" {
		t.Fatalf("login: %d %q, token %q (was %q)", w.Code, w.Body, token, first)
	}
	if w := do(bearer("GET", "/me", first)); w.Body.String() != " 0" {
		t.Fatalf("the token from before the login gives %q, want a new session", w.Body)
	}
	w = do(bearer("POST", "/visit", token))
	if w.Body.String() != "api-user 2" {
		t.Fatalf("visit after login: %q", w.Body)
	}
	w = do(bearer("POST", "/logout", token))
	if v, ok := w.Header()["Session-Token"]; !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("logout did not tell the client to forget its token: %q", w.Header()["Session-Token"])
	}
	if w := do(bearer("GET", "/me", token)); w.Body.String() != " 0" {
		t.Fatalf("the token after logout gives %q", w.Body)
	}
	// Basic credentials are never a session token; nor is a token in the URL.
	basic := httptest.NewRequest("GET", "/me", nil)
	basic.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(token)))
	basic.SetBasicAuth(token, token)
	if w := do(basic); w.Body.String() != " 0" {
		t.Fatalf("a Basic Authorization header reached a session: %q", w.Body)
	}
	w = do(bearer("POST", "/login", "new"))
	live := w.Header().Get("Session-Token")
	if w := do(httptest.NewRequest("GET", "/me?session="+live+"&token="+live, nil)); w.Body.String() != " 0" {
		t.Fatalf("a token in the URL reached a session: %q", w.Body)
	}
}

func csrfCookieVsHeader(t *testing.T, store backend.Store) {
	_, h := headerApp(t, store)
	// A browser session, with its cookie.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/form", nil))
	cookie := cookieOf(t, w)
	token := w.Body.String()
	// A cross-site form post carries only the cookie: refused.
	r := httptest.NewRequest("POST", "/visit", nil)
	r.Header.Set("Cookie", cookie)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("a cookie-only POST without a CSRF token answered %d, want 403", w.Code)
	}
	// With the CSRF token it passes.
	r.Header.Set("X-CSRF-Token", token)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("a cookie POST with its CSRF token answered %d", w.Code)
	}
	// A header-token request needs no CSRF token.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, bearer("POST", "/visit", "new"))
	api := w.Header().Get("Session-Token")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, bearer("POST", "/visit", api))
	if w.Code != http.StatusOK {
		t.Fatalf("a header-token POST answered %d, want 200 without a CSRF token", w.Code)
	}
}
