// Command demo is a small web app on the sessions library: a visit counter
// with login, logout and a page to try them in a browser.
//
//	go run ./examples/demo              # serves http://127.0.0.1:8080
//	go run ./examples/demo -addr :9000
//
// JSON API (the contract other tests use):
//
//	GET  /api/visit   counts the visit: {"visits": N, "user": "..."}
//	POST /api/login   form field user: stores it, migrates the session: {"user": "..."}
//	GET  /api/me      {"user": "..."}, or 401 when nobody is logged in
//	POST /api/logout  destroys the session: {"user": ""}
//	GET  /            an HTML page over the same
//
// The demo serves plain HTTP, so its cookie is not Secure (Config.Cookie.Insecure);
// pass -secure-cookie when it runs behind TLS.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessionx/sessions"
)

// Visit is what a visitor's session holds.
type Visit struct {
	Visits int
	User   string
}

//go:embed index.html
var indexHTML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends and prints the address it listens
// on to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	secure := fs.Bool("secure-cookie", false, "mark the cookie Secure (when served over HTTPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mgr, err := sessions.New[Visit](sessions.Config{
		Cookie: sessions.CookieConfig{Name: "demo_session", Insecure: !*secure},
	})
	if err != nil {
		return err
	}
	defer mgr.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newApp(mgr), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "demo: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newApp returns the demo's routes behind mgr's middleware.
func newApp(mgr *sessions.Manager[Visit]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // no icon; spares the browser console a 404
	})
	mux.HandleFunc("GET /api/visit", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.Visits++
		writeJSON(w, http.StatusOK, map[string]any{"visits": s.Data.Visits, "user": s.Data.User})
	})
	mux.HandleFunc("POST /api/login", func(w http.ResponseWriter, r *http.Request) {
		user := strings.TrimSpace(r.FormValue("user"))
		if user == "" || len(user) > 64 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "form field user must hold 1 to 64 characters"})
			return
		}
		s := mgr.Get(r)
		s.Data.User = user
		// A new token after login: a token planted before is worthless now.
		if err := mgr.Migrate(w, r, s); err != nil {
			slog.ErrorContext(r.Context(), "demo: login", "session", s, "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "login failed"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"user": user})
	})
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if s.Data.User == "" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"user": s.Data.User})
	})
	mux.HandleFunc("POST /api/logout", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if err := mgr.Destroy(w, r, s); err != nil {
			slog.ErrorContext(r.Context(), "demo: logout", "session", s, "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "logout failed"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"user": ""})
	})
	return mgr.Handler(mux)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
