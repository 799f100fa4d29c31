// Package sessionsgin connects typed sessions (github.com/sessionx/sessions)
// to the gin web framework.
//
// Middleware loads the request's session before the handlers after it run
// and commits it just before the response header goes out; Get returns the
// typed session in a handler:
//
//	mgr, err := sessions.New[Visit](sessions.Config{})
//	r := gin.New()
//	r.Use(sessionsgin.Middleware(mgr))
//	r.GET("/", func(c *gin.Context) {
//		s := sessionsgin.Get(c, mgr) // *sessions.Session[Visit]
//		s.Data.Visits++
//		c.String(http.StatusOK, "%d visits", s.Data.Visits)
//	})
//
// The Manager's other calls take gin's writer and request as they are:
// mgr.Migrate(c.Writer, c.Request, s) at login, mgr.Destroy(c.Writer,
// c.Request, s) at logout, sessions.AddFlash(mgr, c.Writer, c.Request, s,
// ...) for a flash message.
//
// The middleware is the library's net/http middleware (Manager.Handler)
// around the rest of gin's handler chain, so it keeps its guarantees: one
// store read per request, no cookie for a visitor whose handlers store
// nothing, the commit before the first byte of the header, and the
// Config.ErrorHandler answering (the chain aborted) when the store fails.
package sessionsgin

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/sessionx/sessions"
)

// Middleware returns gin middleware that loads the request's session
// before the handlers after it run (Get returns it) and commits it (the
// store write and the Set-Cookie header) just before the response header
// goes out: on the first c.Status, c.Writer.WriteHeader, WriteHeaderNow,
// Write, WriteString or Flush, which every gin renderer (c.String, c.JSON,
// c.Redirect, c.AbortWithStatus, ...) calls, or when the handlers return
// without writing. Changes made to the session after that point are lost:
// make them before rendering the response, or call mgr.Save yourself. Note
// that in gin c.Status, unlike http.ResponseWriter's WriteHeader, does not
// send the header by itself, but it commits all the same.
//
// If loading fails (the store is down), the handlers after the middleware
// do not run (the chain is aborted) and Config.ErrorHandler answers. If the
// commit fails, the response the handlers were writing is dropped and
// Config.ErrorHandler answers instead, as with Manager.Handler. If a
// handler panics, nothing is committed; gin.Recovery, placed before this
// middleware, answers as usual.
//
// Use it once per engine or group, before the handlers that call Get.
func Middleware[T any](mgr *sessions.Manager[T]) gin.HandlerFunc {
	return func(c *gin.Context) {
		orig := c.Writer
		g := &gate{ResponseWriter: orig}
		ran := false
		// After the chain (and when it panics), c.Writer is gin's again:
		// what outer middleware writes, for instance gin.Recovery's 500,
		// goes out without committing.
		defer func() { c.Writer = orig }()
		mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			c.Request = r
			c.Writer = &responseWriter{ResponseWriter: orig, commit: w, gate: g}
			c.Next()
		})).ServeHTTP(g, c.Request)
		if !ran {
			c.Abort() // the ErrorHandler answered
		}
	}
}

// Get returns the session Middleware loaded for c, typed by mgr. Behind the
// Middleware of the same Manager it never returns nil and costs no store
// access (see Manager.Get for a request that did not pass through it).
func Get[T any](c *gin.Context, mgr *sessions.Manager[T]) *sessions.Session[T] {
	return mgr.Get(c.Request)
}

// gate is the writer the library's middleware wraps: gin's writer, noting
// when the middleware lets a call through, which it does only once the
// session is committed.
type gate struct {
	gin.ResponseWriter
	open bool
}

// WriteHeader records that the commit let the header through, and passes
// it on. An informational status (1xx but 101) passes without a commit.
func (g *gate) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		g.open = true
	}
	g.ResponseWriter.WriteHeader(code)
}

// Write records that the commit let the body through, and passes it on.
func (g *gate) Write(p []byte) (int, error) {
	g.open = true
	return g.ResponseWriter.Write(p)
}

// responseWriter is the gin.ResponseWriter the handlers after Middleware
// see: everything that may send the header goes through commit, the
// library's committing writer (around a gate around gin's writer); the rest
// (Status, Size, Written, CloseNotify, Pusher) is gin's.
type responseWriter struct {
	gin.ResponseWriter                     // gin's writer, as the middleware found it
	commit             http.ResponseWriter // the library's writer: commits, then writes to gate
	gate               *gate
}

var _ gin.ResponseWriter = (*responseWriter)(nil)

// WriteHeader commits the session, then records code as gin does.
func (w *responseWriter) WriteHeader(code int) { w.commit.WriteHeader(code) }

// WriteHeaderNow commits the session, then sends the header.
func (w *responseWriter) WriteHeaderNow() {
	if w.ResponseWriter.Written() {
		return
	}
	// The committing writer passes the status on (gin records it again,
	// a no-op) only once the commit succeeded; after a failed commit the
	// ErrorHandler answers, so the header must not go out here.
	w.commit.WriteHeader(w.ResponseWriter.Status())
	if w.gate.open {
		w.ResponseWriter.WriteHeaderNow()
	}
}

// Write commits the session, then writes p.
func (w *responseWriter) Write(p []byte) (int, error) { return w.commit.Write(p) }

// WriteString commits the session, then writes s.
func (w *responseWriter) WriteString(s string) (int, error) { return io.WriteString(w.commit, s) }

// ReadFrom commits the session, then copies from r.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.commit.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.commit}, r)
}

// Flush commits the session, then flushes.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError commits the session, then flushes, reporting errors; it is
// what http.ResponseController.Flush calls.
func (w *responseWriter) FlushError() error {
	return http.NewResponseController(w.commit).Flush()
}

// Hijack commits the session, then hands over the connection (see
// Manager.Handler: a Set-Cookie can no longer be sent on it).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.commit).Hijack()
}

// Unwrap returns the library's committing writer, for
// http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.commit }
