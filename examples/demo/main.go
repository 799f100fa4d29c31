// Command demo is a small web app on the sessions library: a visit counter
// with login, logout and a page to try them in a browser.
//
//	go run ./examples/demo              # serves http://127.0.0.1:8080
//	go run ./examples/demo -addr :9000
//
// By default the sessions live in the process's memory. Several demo
// processes share their sessions when pointed at one Redis, or at one
// PostgreSQL database:
//
//	go run ./examples/demo -addr 127.0.0.1:8080 -redis 127.0.0.1:6379
//	go run ./examples/demo -addr 127.0.0.1:8081 -redis 127.0.0.1:6379
//
//	go run ./examples/demo -postgres 'postgres://app@127.0.0.1:5432/app'
//
// Flags:
//
//	-addr ADDR                 address to listen on (default 127.0.0.1:8080)
//	-redis ADDR                keep sessions in one Redis (or a primary without Sentinel)
//	-redis-cluster ADDR,ADDR   keep sessions in a Redis Cluster, given its seed nodes
//	-redis-prefix PREFIX       key prefix in Redis (default "demo:session:")
//	-postgres DSN              keep sessions in PostgreSQL (a pgx connection string or URL)
//	-postgres-table NAME       table in PostgreSQL (default "demo_sessions"), created if missing
//	-secure-cookie             mark the cookie Secure (when served over HTTPS)
//
// -redis, -redis-cluster and -postgres exclude each other. The demo checks at
// startup, within 5 s, that its store answers (and, on PostgreSQL, creates
// the table with postgres.CreateSchema), and exits with an error if it does
// not.
//
// The demo is a Go module of its own (in the repository's go.work), so
// that the library's module requires no SQL driver: go run ./examples/demo
// works from the repository's root.
// It prints the address it listens on and the store it uses, e.g.
//
//	demo: listening on http://127.0.0.1:8080 (store: redis 127.0.0.1:6379)
//
// Every request gets at most 10 s: its context's deadline, which the
// store's calls honour. A request whose store does not answer in time, for
// example because Redis stopped answering, is answered by the session
// middleware: 500 when its change was not stored, 504 when the store could
// not tell (never a timeout handler's 503 sent while the change may still
// be stored).
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

	goredis "github.com/redis/go-redis/v9"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/postgres"
	"github.com/sessionx/sessions/backend/redis"
)

const (
	// storeTimeout bounds the startup check that the store answers.
	storeTimeout = 5 * time.Second
	// requestTimeout bounds every request, store calls included.
	requestTimeout = 10 * time.Second
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
// on, and the store it uses, to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	secure := fs.Bool("secure-cookie", false, "mark the cookie Secure (when served over HTTPS)")
	redisAddr := fs.String("redis", "", "keep sessions in the Redis at this `address` (one node, or a primary without Sentinel)")
	clusterAddrs := fs.String("redis-cluster", "", "keep sessions in the Redis Cluster with these comma-separated seed `addresses`")
	prefix := fs.String("redis-prefix", "demo:session:", "key `prefix` of the sessions in Redis")
	dsn := fs.String("postgres", "", "keep sessions in the PostgreSQL database at this `DSN` (pgx connection string or URL)")
	table := fs.String("postgres-table", "demo_sessions", "`table` of the sessions in PostgreSQL, created if missing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg := sessions.Config{
		Cookie: sessions.CookieConfig{Name: "demo_session", Insecure: !*secure},
	}
	storeName := "memory"
	var client goredis.UniversalClient
	given := 0
	for _, f := range []string{*redisAddr, *clusterAddrs, *dsn} {
		if f != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return errors.New("-redis, -redis-cluster and -postgres exclude each other: give one")
	case *dsn != "":
		if _, err := postgres.SchemaSQL(*table); err != nil {
			return fmt.Errorf("-postgres-table: %w", err)
		}
		pool, store, err := newPostgresStore(ctx, *dsn, *table)
		if err != nil {
			return fmt.Errorf("postgres is unreachable: %w", err)
		}
		// Deferred first, so they run after mgr.Close: the pool outlives
		// the store, the store the manager.
		defer pool.Close()
		defer store.Close()
		cfg.Store = store
		c := pool.Config().ConnConfig // named without its password
		storeName = fmt.Sprintf("postgres %s:%d/%s", c.Host, c.Port, c.Database)
	case *redisAddr != "":
		client = goredis.NewClient(&goredis.Options{Addr: *redisAddr, ContextTimeoutEnabled: true})
		storeName = "redis " + *redisAddr
	case *clusterAddrs != "":
		var seeds []string
		for a := range strings.SplitSeq(*clusterAddrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				seeds = append(seeds, a)
			}
		}
		if len(seeds) == 0 {
			return errors.New("-redis-cluster: no address given")
		}
		client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: seeds, ContextTimeoutEnabled: true,
			// A dead node fails fast; the slot map also catches up with
			// changes that cause no error (the store reloads it on errors).
			DialTimeout: time.Second, ClusterStateReloadInterval: 5 * time.Second})
		storeName = "redis-cluster " + strings.Join(seeds, ",")
	}
	if client != nil {
		// Deferred first, so it runs after mgr.Close: the client outlives
		// the manager that uses it.
		defer client.Close()
		store, err := newRedisStore(ctx, client, *prefix)
		if err != nil {
			return fmt.Errorf("%s is unreachable: %w", storeName, err)
		}
		cfg.Store = store
	}

	mgr, err := sessions.New[Visit](cfg)
	if err != nil {
		return err
	}
	defer mgr.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newApp(mgr), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "demo: listening on http://%s (store: %s)\n", ln.Addr(), storeName)
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

// newRedisStore makes the Redis store, giving Redis storeTimeout to answer.
func newRedisStore(ctx context.Context, client goredis.UniversalClient, prefix string) (*redis.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return redis.New(ctx, client, redis.Options{Prefix: prefix})
}

// newPostgresStore opens a pool to dsn, creates the sessions table if it is
// missing and makes the PostgreSQL store, giving PostgreSQL storeTimeout to
// answer.
func newPostgresStore(ctx context.Context, dsn, table string) (*pgxpool.Pool, *postgres.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > storeTimeout {
		cfg.ConnConfig.ConnectTimeout = storeTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := postgres.Options{Table: table}
	if err := postgres.CreateSchema(ctx, pool, opts); err != nil {
		pool.Close()
		return nil, nil, err
	}
	store, err := postgres.New(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, store, nil
}

// newApp returns the demo's routes behind mgr's middleware, each request
// bounded by requestTimeout.
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
			writeJSON(w, failedStatus(err), map[string]string{"error": "login failed"})
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
			writeJSON(w, failedStatus(err), map[string]string{"error": "logout failed"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"user": ""})
	})
	return withDeadline(mgr.Handler(mux), requestTimeout)
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

// failedStatus is the status of a failed login or logout: 504 when the
// store could not tell whether it happened, else 500.
func failedStatus(err error) int {
	if errors.Is(err, sessions.ErrUnknownOutcome) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
