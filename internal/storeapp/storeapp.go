// Package storeapp is the small application through which the tests of the
// store modules (backend/postgres, backend/mysql, backend/sqlite) run the
// sessions core on their store: a Manager and a handler with a few routes,
// and a client step that carries the session cookie from one request to
// the next.
package storeapp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// CookieName is the session cookie's name with the default Config.
const CookieName = "__Host-session"

// Visit is the session data of an App.
type Visit struct {
	N    int
	User string
}

// App is a Manager on a store and a handler: /inc increments N, /read only
// reads, /login migrates (/login-owner also sets the session's owner to
// ann, /login-other to bob), /logout destroys. Every answer's body is N.
type App struct {
	Mgr     *sessions.Manager[Visit]
	Handler http.Handler
	Ran     atomic.Int64 // how many times the inner handler ran
}

// New returns an App on store with cfg (its Store set to store); the
// Manager is closed when t ends.
func New(t testing.TB, store backend.Store, cfg sessions.Config) *App {
	t.Helper()
	a := &App{}
	cfg.Store = store
	mgr, err := sessions.New[Visit](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	a.Mgr = mgr
	a.Handler = mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Ran.Add(1)
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/inc":
			s.Data.N++
		case "/login", "/login-owner", "/login-other":
			s.Data.User = "ann"
			switch r.URL.Path {
			case "/login-owner":
				s.SetOwner("ann")
			case "/login-other":
				s.SetOwner("bob")
			}
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "/logout":
			if err := mgr.Destroy(w, r, s); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprint(w, s.Data.N)
	}))
	return a
}

// Do runs one request of path with the Cookie header cookie ("" for none)
// and returns the status, the body and the cookie header to send next
// ("" if the session cookie was cleared, the old one if none was set).
func (a *App) Do(t testing.TB, path, cookie string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			cookie = c.Name + "=" + c.Value
			if c.Value == "" {
				cookie = ""
			}
		}
	}
	return rec.Code, rec.Body.String(), cookie
}
