// Command loadapp is the application the load tests drive: the demo's
// JSON API for a visit counter and a login, on the Redis store, with every
// way of reaching Redis the store supports. It is built and run by the
// tests in package loadtest, as a child process, so that its speed is not
// that of a test binary built with -race.
//
//	loadapp -addr 127.0.0.1:0 -redis 127.0.0.1:6379
//	loadapp -redis-cluster 127.0.0.1:7000,127.0.0.1:7001
//	loadapp -redis-sentinel mymaster@127.0.0.1:26379,127.0.0.1:26380 -redis-wait 1
//
// Flags:
//
//	-addr ADDR                        address to listen on (default 127.0.0.1:8080)
//	-redis ADDR                       one Redis (or a primary without Sentinel)
//	-redis-cluster ADDR,ADDR          a Redis Cluster, given its seed nodes
//	-redis-sentinel MASTER@ADDR,ADDR  the primary named MASTER, found through these sentinels
//	-redis-prefix PREFIX              key prefix (default "load:session:")
//	-redis-wait N                     every write waits for N replicas (redis.Options.WaitReplicas)
//	-redis-wait-timeout D             at most this long (redis.Options.WaitTimeout)
//
// It prints the address it listens on, e.g.
//
//	loadapp: listening on http://127.0.0.1:40123 (store: redis-sentinel mymaster@...)
//
// API: GET /api/visit counts the visit with Update ({"visits": N, "user":
// "..."}), POST /api/login with form field user stores it and migrates the
// session ({"user": "..."}), GET /api/me ({"user": "..."}, or 401). Every
// request gets a 10 s deadline. A failed step is answered 504 when the
// store could not tell whether the change was stored, 401 when the session
// ended meanwhile, 409 on a conflict, 500 otherwise.
package main

import (
	"context"
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

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/redis"
)

const (
	storeTimeout   = 5 * time.Second  // for the startup check that Redis answers
	requestTimeout = 10 * time.Second // for every request, store calls included
)

// Visit is what a session holds.
type Visit struct {
	Visits int
	User   string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadapp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadapp", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	single := fs.String("redis", "", "one Redis at this `address`")
	cluster := fs.String("redis-cluster", "", "a Redis Cluster with these comma-separated seed `addresses`")
	sentinel := fs.String("redis-sentinel", "", "the primary `MASTER@ADDR,ADDR` found through these sentinels")
	prefix := fs.String("redis-prefix", "load:session:", "key `prefix`")
	wait := fs.Int("redis-wait", 0, "every write waits for this many `replicas`")
	waitTimeout := fs.Duration("redis-wait-timeout", 0, "at most this `long` (default redis.DefaultWaitTimeout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, name, err := newClient(*single, *cluster, *sentinel)
	if err != nil {
		return err
	}
	defer client.Close()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	store, err := redis.New(sctx, client, redis.Options{Prefix: *prefix, WaitReplicas: *wait, WaitTimeout: *waitTimeout})
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mgr, err := sessions.New[Visit](sessions.Config{Store: store, Cookie: sessions.CookieConfig{Name: "load_session", Insecure: true}})
	if err != nil {
		return err
	}
	defer mgr.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newApp(mgr), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "loadapp: listening on http://%s (store: %s)\n", ln.Addr(), name)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// newClient makes the go-redis client one of the flags asks for, with the
// options the README recommends.
func newClient(single, cluster, sentinel string) (goredis.UniversalClient, string, error) {
	given := 0
	for _, f := range []string{single, cluster, sentinel} {
		if f != "" {
			given++
		}
	}
	if given != 1 {
		return nil, "", errors.New("give one of -redis, -redis-cluster, -redis-sentinel")
	}
	switch {
	case single != "":
		return goredis.NewClient(&goredis.Options{Addr: single, ContextTimeoutEnabled: true}), "redis " + single, nil
	case cluster != "":
		seeds := addrs(cluster)
		if len(seeds) == 0 {
			return nil, "", errors.New("-redis-cluster: no address given")
		}
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: seeds, ContextTimeoutEnabled: true,
			DialTimeout: time.Second, ClusterStateReloadInterval: 5 * time.Second}), "redis-cluster " + cluster, nil
	}
	master, list, ok := strings.Cut(sentinel, "@")
	sentinels := addrs(list)
	if !ok || master == "" || len(sentinels) == 0 {
		return nil, "", fmt.Errorf("-redis-sentinel %q: want MASTER@ADDR,ADDR", sentinel)
	}
	return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels,
		ContextTimeoutEnabled: true, DialTimeout: time.Second}), "redis-sentinel " + sentinel, nil
}

// addrs splits a comma-separated list, dropping empty entries.
func addrs(list string) []string {
	var out []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func newApp(mgr *sessions.Manager[Visit]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/visit", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if err := mgr.Update(w, r, s, func(v *Visit) error { v.Visits++; return nil }); err != nil {
			fail(w, r, err)
			return
		}
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
		if err := mgr.Migrate(w, r, s); err != nil {
			fail(w, r, err)
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
	h := mgr.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// fail answers a failed session step, and logs it.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, sessions.ErrUnknownOutcome):
		code = http.StatusGatewayTimeout
	case errors.Is(err, sessions.ErrGone):
		code = http.StatusUnauthorized
	case errors.Is(err, sessions.ErrConflict):
		code = http.StatusConflict
	}
	slog.WarnContext(r.Context(), "loadapp: request failed", "path", r.URL.Path, "status", code, "err", err)
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
