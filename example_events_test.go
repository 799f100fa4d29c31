package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sessionx/sessions"
)

// Update applies a change computed from the data itself (a counter, a
// cart) to the latest stored state, so that parallel requests of one
// session never lose each other's changes; nil maps are made first.
func ExampleManager_Update() {
	type Visits struct {
		Pages map[string]int
	}
	mgr, err := sessions.New[Visits](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	app := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		err := mgr.Update(w, r, s, func(v *Visits) error {
			v.Pages[r.URL.Path]++ // no panic on a new session's nil map
			return nil
		})
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s seen %d times", r.URL.Path, s.Data.Pages[r.URL.Path])
	}))

	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest("GET", "/a", nil))
	cookie := rec.Result().Cookies()[0]
	for range 2 {
		req := httptest.NewRequest("GET", "/a", nil)
		req.AddCookie(cookie)
		rec = httptest.NewRecorder()
		app.ServeHTTP(rec, req)
	}
	fmt.Println(rec.Body.String())
	// Output: /a seen 3 times
}

// OnEvent hears of every lifecycle event, by the session's handle, for
// metrics and audit logs.
func ExampleConfig_onEvent() {
	counts := map[sessions.EventKind]int{}
	mgr, err := sessions.New[Cart](sessions.Config{
		OnEvent: func(ctx context.Context, ev sessions.Event) { counts[ev.Kind]++ },
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	app := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/login":
			s.Data.UserID = 42
			_ = mgr.Migrate(w, r, s)
		case "/logout":
			_ = mgr.Destroy(w, r, s)
		}
	}))
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(rec.Result().Cookies()[0])
	app.ServeHTTP(httptest.NewRecorder(), req)
	fmt.Println(counts[sessions.EventCreated], "created,", counts[sessions.EventDestroyed], "destroyed")
	// Output: 1 created, 1 destroyed
}

// A flash message waits for the next request (after a redirect) and is
// shown once.
func ExampleTakeFlashes() {
	type Page struct {
		Notice sessions.Flash[string]
	}
	notice := func(p *Page) *sessions.Flash[string] { return &p.Notice }
	mgr, err := sessions.New[Page](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	app := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if r.Method == http.MethodPost {
			_ = sessions.AddFlash(mgr, w, r, s, notice, "Saved.")
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		msgs, _ := sessions.TakeFlashes(mgr, w, r, s, notice)
		fmt.Fprint(w, msgs)
	}))
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest("POST", "/form", nil))
	cookie := rec.Result().Cookies()[0]
	for range 2 {
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(cookie)
		rec = httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		fmt.Println(rec.Body.String())
	}
	// Output:
	// [Saved.]
	// []
}

// An API client keeps its token in a header instead of a cookie: it asks
// for a new session with "Authorization: Bearer new", gets its token in the
// Session-Token response header, and sends it back as a Bearer token.
func ExampleHeaderConfig() {
	mgr, err := sessions.New[Cart](sessions.Config{Header: sessions.HeaderConfig{Bearer: true}})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	api := mgr.Handler(mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if r.URL.Path == "/login" {
			s.Data.UserID = 42
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, "login failed", http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprintf(w, "user %d", s.Data.UserID)
	})))
	call := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, nil) // no CSRF token needed
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	rec := call("/login", "new")
	token := rec.Header().Get("Session-Token")
	fmt.Println(rec.Body.String(), len(rec.Result().Cookies()), "cookies")
	fmt.Println(call("/me", token).Body.String())
	// Output:
	// user 42 0 cookies
	// user 42
}

// "Remember me" on a login form: the session gets its own, longer idle
// timeout and a persistent cookie; other sessions keep the Config's.
func ExampleSession_SetLifetime() {
	mgr, err := sessions.New[Cart](sessions.Config{Cookie: sessions.CookieConfig{SessionOnly: true}})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	login := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.UserID = 42
		if r.PostFormValue("remember") == "on" {
			s.SetLifetime(sessions.Lifetime{Idle: 14 * 24 * time.Hour, Absolute: 30 * 24 * time.Hour, Cookie: sessions.CookiePersistent})
		}
		if err := mgr.Migrate(w, r, s); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	}))
	for _, form := range []string{"remember=on", ""} {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		login.ServeHTTP(rec, req)
		fmt.Println(rec.Result().Cookies()[0].MaxAge)
	}
	// Output:
	// 1209600
	// 0
}
