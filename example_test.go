package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/codec"
)

// Cart is what each visitor's session holds in these examples.
type Cart struct {
	UserID int64
	Items  []string
}

// The middleware loads the session before the handler and saves it just
// before the response goes out; the handler works on typed fields.
func Example() {
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	app := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.Items = append(s.Data.Items, r.URL.Query().Get("add"))
		fmt.Fprintf(w, "%d items: %s", len(s.Data.Items), strings.Join(s.Data.Items, ", "))
	}))

	cookie := ""
	for _, item := range []string{"book", "pen"} {
		req := httptest.NewRequest("GET", "/?add="+item, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if c := rec.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
		}
		fmt.Println(rec.Body.String())
	}
	// Output:
	// 1 items: book
	// 2 items: book, pen
}

// Without the middleware, Load and Save give explicit control.
func ExampleManager_Load() {
	mgr, err := sessions.New[Cart](sessions.Config{
		IdleTimeout: 20 * time.Minute,
		Codec:       codec.JSON{},
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	handler := func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Load(w, r)
		if err != nil { // the store failed: do not go on with a blank session
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		s.Data.Items = append(s.Data.Items, "book")
		if err := mgr.Save(w, r, s); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "new session: %v, items: %v", s.IsNew(), s.Data.Items)
	}

	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest("GET", "/", nil))
	c := rec.Result().Cookies()[0]
	fmt.Println(rec.Body.String())
	fmt.Println("cookie:", c.Name, "HttpOnly:", c.HttpOnly, "Secure:", c.Secure, "MaxAge:", c.MaxAge)
	// Output:
	// new session: false, items: [book]
	// cookie: __Host-session HttpOnly: true Secure: true MaxAge: 1200
}

// Migrate gives the session a new token after login, so that a token an
// attacker planted or saw before is worthless. Data and handle stay.
func ExampleManager_Migrate() {
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	login := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.UserID = 42 // after checking the password
		if err := mgr.Migrate(w, r, s); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	}))
	me := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user %d", mgr.Get(r).Data.UserID)
	}))

	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
	cookie := rec.Result().Cookies()[0] // __Host-session=<new token>

	req := httptest.NewRequest("GET", "/me", nil)
	req.AddCookie(cookie)
	rec = httptest.NewRecorder()
	me.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output: user 42
}

// Destroy ends the session (logout): its token finds nothing afterwards and
// the browser is told to drop the cookie.
func ExampleManager_Destroy() {
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	logout := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := mgr.Destroy(w, r, mgr.Get(r)); err != nil {
			http.Error(w, "logout failed", http.StatusInternalServerError)
		}
	}))
	rec := httptest.NewRecorder()
	logout.ServeHTTP(rec, httptest.NewRequest("POST", "/logout", nil))
	c := rec.Result().Cookies()[0]
	fmt.Println(c.Name, c.MaxAge < 0)
	// Output: __Host-session true
}

// CSRF protection: forms carry the session's token; the middleware checks
// it on unsafe methods.
func ExampleManager_CSRF() {
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	var token string
	app := mgr.Handler(mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			token = mgr.Get(r).CSRFToken() // put it in a hidden field named csrf_token
			return
		}
		fmt.Fprint(w, "order placed")
	})))

	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest("GET", "/checkout", nil))
	cookie := rec.Result().Cookies()[0]

	for _, withToken := range []bool{false, true} {
		req := httptest.NewRequest("POST", "/checkout", nil)
		req.AddCookie(cookie)
		if withToken {
			req.Header.Set("X-CSRF-Token", token)
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		fmt.Println(withToken, rec.Code)
	}
	// Output:
	// false 403
	// true 200
}

// Attribute sessions to their user at login, list them, and end all but the
// current one after a password change.
func ExampleManager_DestroyAll() {
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	login := func() *sessions.Session[Cart] {
		w, r := httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil)
		s, _ := mgr.Load(w, r)
		s.Data.UserID = 42
		s.SetOwner("user-42")
		if err := mgr.Migrate(w, r, s); err != nil {
			panic(err)
		}
		return s
	}
	login()            // on the phone
	login()            // on the laptop
	current := login() // here, changing the password
	list, _ := mgr.Sessions(context.Background(), "user-42")
	fmt.Println(len(list), "sessions")

	n, _ := mgr.DestroyAll(context.Background(), "user-42", current.Handle())
	list, _ = mgr.Sessions(context.Background(), "user-42")
	fmt.Println(n, "ended,", len(list), "left:", list[0].Handle == current.Handle())
	// Output:
	// 3 sessions
	// 2 ended, 1 left: true
}
