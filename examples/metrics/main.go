// Command metrics shows session lifecycle events (sessions.Config.OnEvent)
// feeding Prometheus metrics, served on /metrics beside a small app.
//
//	go run ./examples/metrics            # http://127.0.0.1:8081
//	curl -s -c jar -b jar http://127.0.0.1:8081/             # a visit: creates a session
//	curl -s -c jar -b jar -d user=ann http://127.0.0.1:8081/login
//	curl -s -c jar -b jar -X POST http://127.0.0.1:8081/logout
//	curl -s http://127.0.0.1:8081/metrics | grep ^sessions_
//
// Two metrics:
//
//	sessions_events_total{kind="created"|"migrated"|"rotated"|"destroyed"|"ended"|"conflict"|"suspicious"|"expired"}
//	sessions_live
//
// sessions_live goes up on each session created and down on each one
// destroyed (logout), ended (DestroyAll, DestroySession, the owner limit)
// or expired. It is this process's account, not a count of the store: it
// starts at 0 when the process starts, each application server counts the
// sessions it saw begin and end (add them up across servers), and a session
// that expires without the store telling (Redis, the SQL stores: see
// sessions.EventExpired) is never taken off it.
//
// The app serves plain HTTP on the loopback address, so its cookie is not
// Secure (Config.Cookie.Insecure); pass -secure-cookie behind TLS.
//
// The library itself does not depend on Prometheus: this example is a
// module of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sessionx/sessions"
)

// Visit is what a visitor's session holds.
type Visit struct {
	User   string
	Visits int
}

// kinds are the event kinds counted from the start, at 0, so that each
// appears in /metrics before it first happens.
var kinds = []sessions.EventKind{
	sessions.EventCreated, sessions.EventMigrated, sessions.EventRotated, sessions.EventDestroyed,
	sessions.EventEnded, sessions.EventConflict, sessions.EventSuspicious, sessions.EventExpired,
}

// metrics turns session lifecycle events into Prometheus metrics.
type metrics struct {
	events *prometheus.CounterVec // sessions_events_total{kind}
	live   prometheus.Gauge       // sessions_live
	byKind map[sessions.EventKind]prometheus.Counter
	next   func(context.Context, sessions.Event) // told after counting, or nil
}

// newMetrics registers the metrics with reg. Each event is passed on to
// next, when not nil (sessions.LogEvents keeps the library's logs).
func newMetrics(reg prometheus.Registerer, next func(context.Context, sessions.Event)) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessions_events_total",
			Help: "Session lifecycle events, by kind.",
		}, []string{"kind"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessions_live",
			Help: "Sessions this process saw created and not yet destroyed, ended or expired.",
		}),
		byKind: make(map[sessions.EventKind]prometheus.Counter, len(kinds)),
		next:   next,
	}
	for _, c := range []prometheus.Collector{m.events, m.live} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range kinds {
		m.byKind[k] = m.events.WithLabelValues(k.String())
	}
	return m, nil
}

// onEvent is the sessions.Config.OnEvent hook: it counts ev by kind and
// keeps sessions_live. It is called from many requests at once, and from
// the store's sweeper; the Prometheus metrics are safe for that.
func (m *metrics) onEvent(ctx context.Context, ev sessions.Event) {
	c, ok := m.byKind[ev.Kind] // read only: no lock needed
	if !ok {
		c = m.events.WithLabelValues(ev.Kind.String()) // a kind newer than this program
	}
	c.Inc()
	switch ev.Kind {
	case sessions.EventCreated:
		m.live.Inc()
	case sessions.EventDestroyed, sessions.EventEnded, sessions.EventExpired:
		m.live.Dec()
	}
	if m.next != nil {
		m.next(ctx, ev)
	}
}

// newApp returns the app: GET / counts the visit, POST /login stores the
// form's user and migrates the session, POST /logout destroys it, all
// behind the session middleware on a standard ServeMux; GET /metrics is
// served beside it, without a session.
func newApp(mgr *sessions.Manager[Visit], metrics http.Handler) http.Handler {
	app := http.NewServeMux()
	app.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.Visits++
		fmt.Fprintf(w, "%d visits, user %q\n", s.Data.Visits, s.Data.User)
	})
	app.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		user := r.PostFormValue("user") // a real app checks a password here
		if user == "" {
			http.Error(w, "form field user is missing", http.StatusBadRequest)
			return
		}
		s.Data.User = user
		if err := mgr.Migrate(w, r, s); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "logged in as %q\n", user)
	})
	app.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := mgr.Destroy(w, r, mgr.Get(r)); err != nil {
			http.Error(w, "logout failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "logged out")
	})

	root := http.NewServeMux()
	root.Handle("GET /metrics", metrics)
	root.Handle("/", mgr.Handler(app))
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// run parses args, prints the address it listens on to out and serves
// until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	secure := fs.Bool("secure-cookie", false, "mark the cookie Secure (when served over HTTPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, sessions.LogEvents(slog.Default()))
	if err != nil {
		return err
	}
	mgr, err := sessions.New[Visit](sessions.Config{
		Cookie:  sessions.CookieConfig{Name: "metrics_session", Insecure: !*secure},
		OnEvent: m.onEvent,
	})
	if err != nil {
		return err
	}
	defer mgr.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newApp(mgr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(out, "metrics: listening on http://%s (metrics on /metrics)\n", ln.Addr())
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
