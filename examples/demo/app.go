package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// Data is what a visitor's session holds.
type Data struct {
	User   string
	Visits int
	// Cart maps an item to its quantity. Each entry is a unit of the merge
	// at commit: requests that set different items with plain writes at
	// the same time all land.
	Cart map[string]int
	// Notice holds messages for the next page, each shown once ("You have
	// been logged out.").
	Notice sessions.Flash[string]
}

// notice picks the flash messages out of a session's data.
func notice(d *Data) *sessions.Flash[string] { return &d.Notice }

// Bounds on what a request may bring.
const (
	maxBody  = 8 << 10 // bytes of a request body
	maxName  = 64      // characters of a user name or an item
	maxItems = 100     // items in a cart
	maxQty   = 99      // of one item
)

// remember is the lifetime of a session whose user ticked "remember me":
// a persistent cookie, 14 days after the last request, 30 days at most.
// Other sessions end after 30 minutes without a request, 12 hours at
// most, or when the browser closes.
var remember = sessions.Lifetime{Idle: 14 * 24 * time.Hour, Absolute: 30 * 24 * time.Hour, Cookie: sessions.CookiePersistent}

// config is the demo's session configuration; insecure drops the cookie's
// Secure attribute, for plain HTTP; takeTurns makes the requests of one
// session wait for each other in this process (Config.TakeTurns).
func config(insecure, takeTurns bool) sessions.Config {
	return sessions.Config{
		Cookie:    sessions.CookieConfig{Name: "demo_session", Insecure: insecure, SessionOnly: true},
		TakeTurns: takeTurns,
		// Scripts and apps may send the token as a bearer token instead.
		Header: sessions.HeaderConfig{Bearer: true},
		CSRF: sessions.CSRFConfig{ErrorHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			slog.WarnContext(r.Context(), "demo: CSRF token missing or wrong", "method", r.Method, "path", r.URL.Path)
			problem(w, http.StatusForbidden, "The CSRF token is missing or wrong: reload the page.")
		})},
	}
}

//go:embed index.html
var indexHTML []byte

// app serves the demo's routes.
type app struct {
	mgr *sessions.Manager[Data]
}

// newApp returns the demo's routes behind mgr's middleware and CSRF check,
// each request's body bounded by maxBody and its time by requestTimeout.
func newApp(mgr *sessions.Manager[Data]) http.Handler {
	a := &app{mgr: mgr}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // no icon; spares the browser console a 404
	})
	mux.HandleFunc("GET /api/state", a.state)
	mux.HandleFunc("GET /api/visit", a.visit)
	mux.HandleFunc("GET /api/me", a.me)
	mux.HandleFunc("POST /api/login", a.login)
	mux.HandleFunc("POST /api/logout", a.logout)
	mux.HandleFunc("POST /api/cart/add", a.cartAdd)
	mux.HandleFunc("POST /api/cart", a.cartSet)
	mux.HandleFunc("GET /api/sessions", a.sessions)
	mux.HandleFunc("POST /api/sessions/end", a.endOne)
	mux.HandleFunc("POST /api/sessions/end-others", a.endOthers)
	return withDeadline(limitBody(mgr.Handler(mgr.CSRF(mux)), maxBody), requestTimeout)
}

// state answers what the page shows, and takes the flash messages.
func (a *app) state(w http.ResponseWriter, r *http.Request) {
	s := a.mgr.Get(r)
	flash, err := sessions.TakeFlashes(a.mgr, w, r, s, notice)
	if err != nil {
		a.fail(w, r, "taking the flash messages", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": s.Data.User, "visits": s.Data.Visits, "cart": cartOf(s.Data.Cart),
		"remember": s.Lifetime().Cookie == sessions.CookiePersistent,
		"csrf":     s.CSRFToken(), // a new session is stored for it (at commit)
		"flash":    append([]string{}, flash...),
	})
}

// visit counts the visit. A count is computed from the stored data, so it
// is changed with Update: parallel requests never lose an increment and
// never get a conflict.
func (a *app) visit(w http.ResponseWriter, r *http.Request) {
	s := a.mgr.Get(r)
	if err := a.mgr.Update(w, r, s, func(d *Data) error { d.Visits++; return nil }); err != nil {
		a.fail(w, r, "counting the visit", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"visits": s.Data.Visits, "user": s.Data.User})
}

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	s := a.mgr.Get(r)
	if s.Data.User == "" {
		problem(w, http.StatusUnauthorized, "Nobody is logged in.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": s.Data.User})
}

// login logs the user in: there are no passwords in this demo, any name
// will do. The session gets the user as its owner (for the list of their
// sessions), its lifetime, and a new token.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user, ok := cleanName(r.PostFormValue("user"))
	if !ok {
		problem(w, http.StatusBadRequest, "The user name must hold 1 to 64 characters, none of them a control character.")
		return
	}
	s := a.mgr.Get(r)
	if s.Data.User != "" && s.Data.User != user {
		s.Data = Data{} // another user: nothing of the previous one's
	}
	s.Data.User = user
	s.SetOwner(user)
	life := sessions.Lifetime{} // the Config's: 30 minutes idle, a browser-session cookie
	if r.PostFormValue("remember") == "on" {
		life = remember
	}
	s.SetLifetime(life)
	// A new token after login: a token planted before is worthless now.
	// On failure nothing of the login is stored.
	if err := a.mgr.Migrate(w, r, s); err != nil {
		a.fail(w, r, "login", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": user, "remember": life.Cookie == sessions.CookiePersistent,
		"csrf": s.CSRFToken(), // Migrate renewed the CSRF secret: the page needs a new token
	})
}

// logout destroys the session. A browser gets a new one holding a flash
// message for its next page; a client that sent its token in the
// Authorization header gets an empty Session-Token: its session ended.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.mgr.Get(r)
	was := s.Data.User
	if err := a.mgr.Destroy(w, r, s); err != nil {
		a.fail(w, r, "logout", err)
		return
	}
	if was != "" && !bearer(r) {
		if err := sessions.AddFlash(a.mgr, w, r, s, notice, "You have been logged out."); err != nil {
			// The logout itself is done: say so.
			slog.WarnContext(r.Context(), "demo: the flash message after logout was not stored", "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": ""})
}

var errCart = errors.New("demo: the cart holds at most 100 items, at most 99 of each")

// cartAdd adds one of an item: a change computed from the stored quantity,
// so it uses Update.
func (a *app) cartAdd(w http.ResponseWriter, r *http.Request) {
	item, ok := cleanName(r.PostFormValue("item"))
	if !ok {
		problem(w, http.StatusBadRequest, "An item's name must hold 1 to 64 characters, none of them a control character.")
		return
	}
	s := a.mgr.Get(r)
	err := a.mgr.Update(w, r, s, func(d *Data) error {
		if n, ok := d.Cart[item]; n >= maxQty || !ok && len(d.Cart) >= maxItems {
			return errCart
		}
		d.Cart[item]++ // Update made the nil map
		return nil
	})
	if errors.Is(err, errCart) {
		problem(w, http.StatusBadRequest, "The cart holds at most 100 items, at most 99 of each.")
		return
	}
	if err != nil {
		a.fail(w, r, "adding to the cart", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cart": cartOf(s.Data.Cart)})
}

// cartSet sets an item's quantity: a plain write of one map entry, which
// the commit merges with other requests' changes of the session (their
// visits, other items). It saves before answering, so that the answer
// shows the merged cart.
func (a *app) cartSet(w http.ResponseWriter, r *http.Request) {
	item, ok := cleanName(r.PostFormValue("item"))
	qty, err := strconv.Atoi(r.PostFormValue("qty"))
	if !ok || err != nil || qty < 0 || qty > maxQty {
		problem(w, http.StatusBadRequest, "Give an item (1 to 64 characters) and a quantity from 0 to 99.")
		return
	}
	s := a.mgr.Get(r)
	if _, had := s.Data.Cart[item]; !had && qty > 0 && len(s.Data.Cart) >= maxItems {
		problem(w, http.StatusBadRequest, "The cart holds at most 100 items, at most 99 of each.")
		return
	}
	if qty == 0 {
		delete(s.Data.Cart, item)
	} else {
		if s.Data.Cart == nil {
			s.Data.Cart = map[string]int{}
		}
		s.Data.Cart[item] = qty
	}
	if err := a.mgr.Save(w, r, s); err != nil {
		a.fail(w, r, "saving the cart", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cart": cartOf(s.Data.Cart)})
}

// sessionJSON is one of the user's sessions, as listed.
type sessionJSON struct {
	Handle   string    `json:"handle"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Current  bool      `json:"current"` // the session of this request
}

// owner returns the logged-in user of the request's session, or answers
// 401 and returns "". It is never taken from what the client sends.
func (a *app) owner(w http.ResponseWriter, r *http.Request) (*sessions.Session[Data], string) {
	s := a.mgr.Get(r)
	if s.Owner() == "" {
		problem(w, http.StatusUnauthorized, "Log in to see and end your sessions.")
	}
	return s, s.Owner()
}

func (a *app) sessions(w http.ResponseWriter, r *http.Request) {
	s, owner := a.owner(w, r)
	if owner == "" {
		return
	}
	list, err := a.mgr.Sessions(r.Context(), owner)
	if err != nil {
		a.fail(w, r, "listing the sessions", err)
		return
	}
	out := []sessionJSON{}
	for _, in := range list {
		out = append(out, sessionJSON{Handle: in.Handle, Created: in.CreatedAt, LastSeen: in.LastSeen, Current: in.Handle == s.Handle()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// endOne ends one of the user's sessions, named by its handle. Another
// user's handle finds nothing: DestroySession looks only among the
// sessions of the owner it is given.
func (a *app) endOne(w http.ResponseWriter, r *http.Request) {
	s, owner := a.owner(w, r)
	if owner == "" {
		return
	}
	var err error
	if handle := r.PostFormValue("handle"); handle == s.Handle() {
		err = a.mgr.Destroy(w, r, s) // this very session: clear its cookie too
	} else {
		err = a.mgr.DestroySession(r.Context(), owner, handle)
	}
	if err != nil {
		a.fail(w, r, "ending a session", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": 1})
}

// endOthers ends every session of the user but this one.
func (a *app) endOthers(w http.ResponseWriter, r *http.Request) {
	s, owner := a.owner(w, r)
	if owner == "" {
		return
	}
	n, err := a.mgr.DestroyAll(r.Context(), owner, s.Handle())
	if err != nil {
		a.fail(w, r, "ending the other sessions", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// fail answers a failed session step with its status and a problem the
// page shows, and logs it.
func (a *app) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	code, detail := http.StatusInternalServerError, "The session could not be loaded or saved. Try again later."
	switch {
	case errors.Is(err, sessions.ErrConflict):
		code, detail = http.StatusConflict, "Another request changed the same data at the same time; this change was not saved. Try again."
	case errors.Is(err, sessions.ErrGone):
		code, detail = http.StatusUnauthorized, "Your session ended (logged out, expired, or ended from another device). Reload the page."
	case errors.Is(err, sessions.ErrTooManySessions):
		code, detail = http.StatusForbidden, "Too many sessions for this user. End one of them first."
	case errors.Is(err, sessions.ErrTooLarge):
		code, detail = http.StatusRequestEntityTooLarge, "The session would grow too large."
	case errors.Is(err, sessions.ErrUnknownOutcome):
		code, detail = http.StatusGatewayTimeout, "The session store did not answer in time: the change may or may not be saved. Reload before you retry."
	case errors.Is(err, sessions.ErrNoSuchSession):
		code, detail = http.StatusNotFound, "You have no such session: it ended already, or it is not yours."
	case errors.Is(err, backend.ErrUnsupported):
		code, detail = http.StatusNotImplemented, "This store keeps no list of a user's sessions."
	}
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	slog.Log(r.Context(), level, "demo: "+what+" failed", "status", code, "err", err)
	problem(w, code, detail)
}

// cleanName returns s without surrounding spaces, and whether it is a
// valid name: 1 to maxName characters (not bytes: "é" is one), valid
// UTF-8, no control characters.
func cleanName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n == 0 || n > maxName || !utf8.ValidString(s) {
		return s, false
	}
	return s, strings.IndexFunc(s, unicode.IsControl) < 0
}

// bearer reports whether r brings its session token in the Authorization
// header.
func bearer(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	return len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ")
}

// cartOf returns c, or an empty cart for nil (JSON {} rather than null).
func cartOf(c map[string]int) map[string]int {
	if c == nil {
		return map[string]int{}
	}
	return c
}

// limitBody bounds every request's body to n bytes and parses POST forms
// before the session is loaded: a larger body is answered 413, and never
// costs a store read.
func limitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					problem(w, http.StatusRequestEntityTooLarge, "The request body is larger than 8 KiB.")
					return
				}
				problem(w, http.StatusBadRequest, "The request body is not a valid form.")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// withDeadline gives every request's context a deadline d away. Unlike
// http.TimeoutHandler it never answers in the handler's place: only the
// handler knows whether its change was stored.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// problem answers code with an RFC 9457 problem document, as the library's
// default error answers do for clients that accept JSON.
func problem(w http.ResponseWriter, code int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(code), "status": code, "detail": detail})
}
