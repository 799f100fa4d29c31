// Package sessionsecho connects typed sessions (github.com/sessionx/sessions)
// to the echo web framework (github.com/labstack/echo/v4).
//
// Middleware loads the request's session before the handlers after it run
// and commits it just before the response header goes out; Get returns the
// typed session in a handler:
//
//	mgr, err := sessions.New[Visit](sessions.Config{})
//	e := echo.New()
//	e.Use(sessionsecho.Middleware(mgr))
//	e.GET("/", func(c echo.Context) error {
//		s := sessionsecho.Get(c, mgr) // *sessions.Session[Visit]
//		s.Data.Visits++
//		return c.String(http.StatusOK, fmt.Sprintf("%d visits", s.Data.Visits))
//	})
//
// The Manager's other calls take echo's response and request as they are:
// mgr.Migrate(c.Response(), c.Request(), s) at login, mgr.Destroy(c.Response(),
// c.Request(), s) at logout, sessions.AddFlash(mgr, c.Response(),
// c.Request(), s, ...) for a flash message.
//
// The middleware is the library's net/http middleware (Manager.Handler)
// around the rest of echo's handler chain, so it keeps its guarantees: one
// store read per request, no cookie for a visitor whose handlers store
// nothing, the commit before the first byte of the header, and the
// Config.ErrorHandler answering when the store fails.
package sessionsecho

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/sessionx/sessions"
)

// Middleware returns echo middleware that loads the request's session
// before the handlers after it run (Get returns it) and commits it (the
// store write and the Set-Cookie header) just before the response header
// goes out: on the first WriteHeader, Write or Flush of c.Response(), which
// every echo renderer (c.String, c.JSON, c.NoContent, c.Redirect, ...)
// calls, or when the handlers return without writing. Changes made to the
// session after that point are lost: make them before rendering the
// response, or call mgr.Save yourself.
//
// A handler that returns an error has its session committed when it
// returns, before echo's HTTPErrorHandler writes the error response, which
// so carries the session's cookie.
//
// If loading fails (the store is down), the handlers after the middleware
// do not run and Config.ErrorHandler answers. If the commit fails, the
// response the handlers were writing is dropped and Config.ErrorHandler
// answers instead, as with Manager.Handler; the response is then committed
// (echo's default HTTPErrorHandler leaves such a response alone, as a
// custom one should). If a handler panics, nothing is committed;
// middleware.Recover, placed before this middleware, answers as usual.
//
// Handlers after the middleware see a *echo.Response of their own around
// the library's committing writer; middleware before it keep theirs, which
// records the status and size that went out.
func Middleware[T any](mgr *sessions.Manager[T]) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			orig := c.Response()
			// After the chain (and when it panics), c.Response() is the
			// outer one again: what outer middleware writes, for instance
			// middleware.Recover's 500, goes out without committing.
			defer c.SetResponse(orig)
			var err error
			mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.SetRequest(r)
				c.SetResponse(echo.NewResponse(w, c.Echo()))
				err = next(c)
			})).ServeHTTP(orig, c.Request())
			return err
		}
	}
}

// Get returns the session Middleware loaded for c, typed by mgr. Behind the
// Middleware of the same Manager it never returns nil and costs no store
// access (see Manager.Get for a request that did not pass through it).
func Get[T any](c echo.Context, mgr *sessions.Manager[T]) *sessions.Session[T] {
	return mgr.Get(c.Request())
}
