// Command demo is a small web app on the sessions library: a login form
// with "remember me", a visit counter, a cart, the list of a user's
// sessions with "end this one" and "log out everywhere else", and a flash
// message after logout, in a page to try them in a browser and as a JSON
// API for scripts and apps.
//
//	go run ./examples/demo              # serves http://127.0.0.1:8080
//	go run ./examples/demo -addr :9000
//
// By default the sessions live in the process's memory. Several demo
// processes share their sessions when pointed at one Redis, or at one
// PostgreSQL, MySQL/MariaDB or SQLite database:
//
//	go run ./examples/demo -addr 127.0.0.1:8080 -redis 127.0.0.1:6379
//	go run ./examples/demo -addr 127.0.0.1:8081 -redis 127.0.0.1:6379
//
//	go run ./examples/demo -postgres 'postgres://app@127.0.0.1:5432/app'
//	go run ./examples/demo -mysql 'app:secret@tcp(127.0.0.1:3306)/app'
//	go run ./examples/demo -sqlite sessions.db    # sessions survive a restart of the demo
//
// Flags:
//
//	-addr ADDR                 address to listen on (default 127.0.0.1:8080)
//	-redis ADDR                keep sessions in one Redis (or a primary without Sentinel)
//	-redis-cluster ADDR,ADDR   keep sessions in a Redis Cluster, given its seed nodes
//	-redis-sentinel MASTER@ADDR,ADDR
//	                           keep sessions in the Redis primary MASTER found through these sentinels
//	-redis-wait N              every Redis write waits for N replicas (redis.Options.WaitReplicas;
//	                           set it to the number of replicas; with none, every write answers 504)
//	-redis-prefix PREFIX       key prefix in Redis (default "demo:session:")
//	-postgres DSN              keep sessions in PostgreSQL (a pgx connection string or URL)
//	-postgres-table NAME       table in PostgreSQL (default "demo_sessions"), created if missing
//	-mysql DSN                 keep sessions in MySQL or MariaDB (a go-sql-driver/mysql DSN;
//	                           table demo_sessions, created if missing)
//	-sqlite FILE               keep sessions in this SQLite file (created if missing)
//	-secure-cookie             mark the cookie Secure (when served over HTTPS)
//	-take-turns                requests of one session wait for each other in this process
//	                           (Config.TakeTurns), instead of merging their plain writes at commit
//
// -redis, -redis-cluster, -redis-sentinel, -postgres, -mysql and -sqlite exclude each other.
// The demo checks at startup, within 5 s, that its store answers (and, on
// the SQL stores, creates the table with CreateSchema), and exits with an
// error if it does not.
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
// example because Redis stopped answering, is answered 500 when its change
// was not stored, 504 when the store could not tell (never a timeout
// handler's 503 sent while the change may still be stored). A request body
// may hold at most 8 KiB (413 otherwise).
//
// The cookie: the demo serves plain HTTP, so its cookie, demo_session, is
// not Secure (Config.Cookie.Insecure) and works on any host name; pass
// -secure-cookie when it runs behind TLS (Chromium also keeps a Secure
// cookie from http://localhost and http://127.0.0.1). It is HttpOnly,
// SameSite=Lax, Path=/, and ends with the browser session unless "remember
// me" was ticked at login (then it lasts 14 days after the last request).
//
// JSON API. A page sends the cookie and, on every POST, the CSRF token of
// GET /api/state (header X-CSRF-Token or form field csrf_token). A script or
// app may instead send "Authorization: Bearer new" to get its token in the
// Session-Token response header, then "Authorization: Bearer TOKEN": such
// requests need no CSRF token. POST bodies are forms
// (application/x-www-form-urlencoded). Errors are RFC 9457 problems
// (application/problem+json: {"status": 409, "detail": "..."}).
//
//	GET  /api/state         {"user", "visits", "cart", "remember", "csrf", "flash": [...]}; takes the flash messages
//	GET  /api/visit         counts the visit (Update): {"visits": N, "user": "..."}
//	GET  /api/me            {"user": "..."}, or 401 when nobody is logged in
//	POST /api/login         user (1 to 64 characters), remember=on: logs in, migrates the session: {"user", "remember", "csrf"}
//	POST /api/logout        destroys the session, leaves a flash message for the next page: {"user": ""}
//	POST /api/cart/add      item: one more of it (Update): {"cart": {...}}
//	POST /api/cart          item, qty (0 to 99; 0 removes it): sets its quantity (a plain write, merged at commit): {"cart": {...}}
//	GET  /api/sessions      the user's sessions: {"sessions": [{"handle", "created", "last_seen", "current"}]}
//	POST /api/sessions/end  handle: ends one of the user's sessions (DestroySession): {"ended": 1}
//	POST /api/sessions/end-others  ends the user's other sessions (DestroyAll): {"ended": N}
//	GET  /                  the page, over the same API
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	takeTurns := fs.Bool("take-turns", false, "make the requests of one session wait for each other in this process (Config.TakeTurns) instead of merging their plain writes")
	redisAddr := fs.String("redis", "", "keep sessions in the Redis at this `address` (one node, or a primary without Sentinel)")
	clusterAddrs := fs.String("redis-cluster", "", "keep sessions in the Redis Cluster with these comma-separated seed `addresses`")
	sentinel := fs.String("redis-sentinel", "", "keep sessions in the Redis primary `MASTER@ADDR,ADDR` found through these comma-separated sentinels")
	wait := fs.Int("redis-wait", 0, "every Redis write waits for this many `replicas` (redis.Options.WaitReplicas: set it to the number of replicas)")
	prefix := fs.String("redis-prefix", "demo:session:", "key `prefix` of the sessions in Redis")
	dsn := fs.String("postgres", "", "keep sessions in the PostgreSQL database at this `DSN` (pgx connection string or URL)")
	table := fs.String("postgres-table", "demo_sessions", "`table` of the sessions in PostgreSQL, created if missing")
	sqliteFile := fs.String("sqlite", "", "keep sessions in this SQLite `file` (created if missing; table demo_sessions): they survive a restart of the demo")
	mysqlDSN := fs.String("mysql", "", "keep sessions in the MySQL or MariaDB database at this `DSN` (go-sql-driver/mysql, e.g. user:pass@tcp(127.0.0.1:3306)/app; interpolateParams is turned on; table demo_sessions, created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg := config(!*secure, *takeTurns)
	storeName := "memory"
	var client goredis.UniversalClient
	given := 0
	sqliteGiven := false
	fs.Visit(func(f *flag.Flag) { sqliteGiven = sqliteGiven || f.Name == "sqlite" })
	if sqliteGiven && *sqliteFile == "" {
		return errNoPath
	}
	for _, f := range []string{*redisAddr, *clusterAddrs, *sentinel, *dsn, *sqliteFile, *mysqlDSN} {
		if f != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return errors.New("-redis, -redis-cluster, -redis-sentinel, -postgres, -sqlite and -mysql exclude each other: give one")
	case *sqliteFile != "":
		store, err := newSQLiteStore(ctx, *sqliteFile)
		if err != nil {
			return fmt.Errorf("sqlite file %s: %w", *sqliteFile, err)
		}
		defer store.Close() // after mgr.Close; closes the file
		cfg.Store = store
		storeName = "sqlite " + *sqliteFile
	case *mysqlDSN != "":
		db, store, name, err := newMySQLStore(ctx, *mysqlDSN)
		if err != nil {
			return fmt.Errorf("mysql is unreachable: %w", err)
		}
		defer db.Close()
		defer store.Close()
		cfg.Store = store
		storeName = name
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
	case *sentinel != "":
		master, list, _ := strings.Cut(*sentinel, "@")
		var addrs []string
		for a := range strings.SplitSeq(list, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if master == "" || len(addrs) == 0 {
			return fmt.Errorf("-redis-sentinel %q: want MASTER@ADDR,ADDR", *sentinel)
		}
		client = goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: master, SentinelAddrs: addrs,
			ContextTimeoutEnabled: true, DialTimeout: time.Second})
		storeName = "redis-sentinel " + *sentinel
	}
	if client != nil {
		// Deferred first, so it runs after mgr.Close: the client outlives
		// the manager that uses it.
		defer client.Close()
		store, err := newRedisStore(ctx, client, redis.Options{Prefix: *prefix, WaitReplicas: *wait})
		if err != nil {
			return fmt.Errorf("%s is unreachable: %w", storeName, err)
		}
		cfg.Store = store
	}

	mgr, err := sessions.New[Data](cfg)
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
func newRedisStore(ctx context.Context, client goredis.UniversalClient, opts redis.Options) (*redis.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return redis.New(ctx, client, opts)
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
