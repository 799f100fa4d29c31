package sessionsecho_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/sessionx/sessions"
	sessionsecho "github.com/sessionx/sessions/adapters/echo"
)

// The middleware loads the session before the handlers and saves it just
// before the response goes out; Get gives a handler the typed session.
// Login gives the session a new token with Migrate.
func Example() {
	type Visit struct {
		User   string
		Visits int
	}
	mgr, err := sessions.New[Visit](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	e := echo.New()
	e.Use(sessionsecho.Middleware(mgr))
	e.GET("/", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr) // *sessions.Session[Visit]
		s.Data.Visits++
		return c.String(http.StatusOK, fmt.Sprintf("%q: %d visits", s.Data.User, s.Data.Visits))
	})
	e.POST("/login", func(c echo.Context) error {
		s := sessionsecho.Get(c, mgr)
		s.Data.User = c.FormValue("user") // after checking the password
		if err := mgr.Migrate(c.Response(), c.Request(), s); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/")
	})

	cookie := "" // what a browser keeps
	visit := func(method, path, form string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		return rec
	}
	fmt.Println(visit("GET", "/", "").Body)
	fmt.Println(visit("POST", "/login", "user=ann").Code)
	fmt.Println(visit("GET", "/", "").Body)
	// Output:
	// "": 1 visits
	// 303
	// "ann": 2 visits
}
