// Command hotload sends many concurrent clients at one session of the demo,
// on one or more demo processes, for a bounded time, and checks that every
// change answered 200 was stored and that none was refused with 409.
//
//	redis-server --port 6379 &
//	go run ./examples/demo -addr 127.0.0.1:8080 -redis 127.0.0.1:6379 &
//	go run ./examples/demo -addr 127.0.0.1:8081 -redis 127.0.0.1:6379 &
//	go run ./examples/demo/hotload -targets http://127.0.0.1:8080,http://127.0.0.1:8081
//
// All clients share one session (one cookie). Client i sends its requests
// to target i modulo the number of targets. Each client, in turn, counts a
// visit (GET /api/visit, which the demo applies with Update) and sets its
// own cart entry "client-NN" to its next quantity (1, 2, ... 99, 1, ...)
// with a plain write (POST /api/cart, merged with the other requests'
// changes at commit).
// With -visits-only it only counts visits (the demo before the cart had no
// other write). At the end it reads the session back and compares: the
// stored visit count with the visits answered 200, and every client's cart
// entry with the last quantity answered 200.
//
// It talks only to loopback addresses, and stops after -duration. It prints
// one line of figures and exits with status 1 when a request was refused or
// failed, or a change answered 200 is not stored.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	fs := flag.NewFlagSet("hotload", flag.ContinueOnError)
	targets := fs.String("targets", "http://127.0.0.1:8080", "comma-separated base `URLs` of the demo processes (loopback only)")
	clients := fs.Int("clients", 40, "concurrent clients, all on one session")
	d := fs.Duration("duration", 5*time.Second, "how long the clients run")
	visitsOnly := fs.Bool("visits-only", false, "only count visits (no cart writes)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	opts := Options{Targets: strings.Split(*targets, ","), Clients: *clients, Duration: *d, VisitsOnly: *visitsOnly}
	res, err := Run(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotload:", err)
		os.Exit(2)
	}
	fmt.Println("hotload:", res)
	if problems := res.Problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "hotload:", p)
		}
		os.Exit(1)
	}
}

// Options say what Run does.
type Options struct {
	Targets    []string      // base URLs of the demo processes
	Clients    int           // concurrent clients on the one session
	Duration   time.Duration // how long they run
	VisitsOnly bool          // no cart writes
}

// Result is what Run saw.
type Result struct {
	Opts     Options
	Elapsed  time.Duration
	Visits   map[int]int // answers to GET /api/visit by status (0: no answer)
	Sets     map[int]int // answers to POST /api/cart by status (0: no answer)
	P50, P99 time.Duration

	VisitsStored  int // visits the load added to the stored count
	CartAnswered  int // clients whose last answered quantity is stored
	CartMismatch  []string
	CookieChanged int // answers that gave the session cookie another value (a new token, or none)
}

// Requests returns how many requests the clients sent.
func (r *Result) Requests() int {
	n := 0
	for _, m := range []map[int]int{r.Visits, r.Sets} {
		for _, c := range m {
			n += c
		}
	}
	return n
}

func (r *Result) String() string {
	s := fmt.Sprintf("%d processes, %d clients on one session, %v: %d requests, %.0f/s, p50 %v, p99 %v; visits by status %v",
		len(r.Opts.Targets), r.Opts.Clients, r.Elapsed.Round(time.Millisecond), r.Requests(),
		float64(r.Requests())/r.Elapsed.Seconds(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Visits)
	if !r.Opts.VisitsOnly {
		s += fmt.Sprintf(", cart writes by status %v", r.Sets)
	}
	s += fmt.Sprintf("; 409s: %d; stored: %d visits of %d answered 200", r.Visits[409]+r.Sets[409], r.VisitsStored, r.Visits[200])
	if !r.Opts.VisitsOnly {
		s += fmt.Sprintf(", %d of %d cart entries as last answered", r.CartAnswered, r.Opts.Clients)
	}
	return s
}

// Problems lists what went wrong: requests refused or failed, and
// Mismatches.
func (r *Result) Problems() []string {
	var p []string
	for what, m := range map[string]map[int]int{"visits": r.Visits, "cart writes": r.Sets} {
		for code, n := range m {
			if code != http.StatusOK {
				p = append(p, fmt.Sprintf("%d %s answered %d", n, what, code))
			}
		}
	}
	p = append(p, r.Mismatches()...)
	slices.Sort(p)
	return p
}

// Mismatches lists the differences between what the clients were answered
// and what is stored: a change answered 200 but not stored, or one
// answered otherwise but stored; and answers that changed the session's
// token.
func (r *Result) Mismatches() []string {
	var p []string
	if r.VisitsStored != r.Visits[200] {
		p = append(p, fmt.Sprintf("stored visit count grew by %d, but %d visits were answered 200", r.VisitsStored, r.Visits[200]))
	}
	p = append(p, r.CartMismatch...)
	if r.CookieChanged > 0 {
		p = append(p, fmt.Sprintf("%d answers changed or cleared the session cookie", r.CookieChanged))
	}
	return p
}

// session is the one session the clients share.
type session struct {
	cookie *http.Cookie
	csrf   string
}

// state is the part of GET /api/state and GET /api/visit that Run reads.
type state struct {
	Visits int            `json:"visits"`
	Cart   map[string]int `json:"cart"`
	CSRF   string         `json:"csrf"`
}

// Run drives the targets as Options say and returns what it saw.
func Run(ctx context.Context, o Options) (*Result, error) {
	if len(o.Targets) == 0 || o.Clients <= 0 || o.Duration <= 0 {
		return nil, errors.New("need targets, clients and a duration")
	}
	for i, t := range o.Targets {
		o.Targets[i] = strings.TrimRight(strings.TrimSpace(t), "/")
		if err := loopback(o.Targets[i]); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients, DisableCompression: true},
		// The clients share a cookie set by hand: no jar.
	}
	defer hc.CloseIdleConnections()

	// The session: made by a first visit, which counts one.
	var sess session
	first, resp, err := get(ctx, hc, o.Targets[0]+"/api/visit", nil)
	if err != nil {
		return nil, fmt.Errorf("first visit: %w", err)
	}
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			sess.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	if sess.cookie == nil {
		return nil, errors.New("first visit: no session cookie")
	}
	if !o.VisitsOnly {
		st, _, err := get(ctx, hc, o.Targets[0]+"/api/state", &sess)
		if err != nil || st.CSRF == "" {
			return nil, fmt.Errorf("GET /api/state: no CSRF token (%v)", err)
		}
		sess.csrf = st.CSRF
	}

	res := &Result{Opts: o, Visits: map[int]int{}, Sets: map[int]int{}}
	lastQty := make([]int, o.Clients) // the last quantity answered 200, per client
	var mu sync.Mutex
	var lat []time.Duration
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.Clients {
		wg.Go(func() {
			base := o.Targets[i%len(o.Targets)]
			item := fmt.Sprintf("client-%02d", i)
			visits, sets := map[int]int{}, map[int]int{}
			var mine []time.Duration
			changed := 0
			for n := 0; runCtx.Err() == nil; n++ {
				qty := n%99 + 1 // 1 to 99, the demo's bounds
				t0 := time.Now()
				// A request in flight when the time is up is answered:
				// its outcome counts.
				code, cookie := send(ctx, hc, "GET", base+"/api/visit", nil, &sess)
				mine = append(mine, time.Since(t0))
				visits[code]++
				changed += cookie
				if o.VisitsOnly || runCtx.Err() != nil {
					continue
				}
				t0 = time.Now()
				form := url.Values{"item": {item}, "qty": {strconv.Itoa(qty)}}
				code, cookie = send(ctx, hc, "POST", base+"/api/cart", form, &sess)
				mine = append(mine, time.Since(t0))
				sets[code]++
				changed += cookie
				if code == http.StatusOK {
					lastQty[i] = qty
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for c, n := range visits {
				res.Visits[c] += n
			}
			for c, n := range sets {
				res.Sets[c] += n
			}
			lat = append(lat, mine...)
			res.CookieChanged += changed
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50, res.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}

	// Read the session back: a last visit counts one more.
	last, _, err := get(ctx, hc, o.Targets[len(o.Targets)-1]+"/api/visit", &sess)
	if err != nil {
		return nil, fmt.Errorf("last visit: %w", err)
	}
	res.VisitsStored = last.Visits - first.Visits - 1
	if !o.VisitsOnly {
		st, _, err := get(ctx, hc, o.Targets[0]+"/api/state", &sess)
		if err != nil {
			return nil, fmt.Errorf("GET /api/state: %w", err)
		}
		for i, want := range lastQty {
			item := fmt.Sprintf("client-%02d", i)
			if got := st.Cart[item]; got == want {
				res.CartAnswered++
			} else {
				res.CartMismatch = append(res.CartMismatch, fmt.Sprintf("cart[%s] = %d, last answered 200: %d", item, got, want))
			}
		}
	}
	return res, nil
}

// send sends one request of the session and returns its status (0 when no
// answer came) and 1 when the answer gave the session cookie another value.
func send(ctx context.Context, hc *http.Client, method, u string, form url.Values, s *session) (code, cookie int) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, 0
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if s.csrf != "" {
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	req.AddCookie(s.cookie)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == s.cookie.Name && c.Value != s.cookie.Value {
			cookie = 1
		}
	}
	return resp.StatusCode, cookie
}

// get sends a GET of the session (none yet when s is nil) and decodes the
// answer, which must be 200.
func get(ctx context.Context, hc *http.Client, u string, s *session) (state, *http.Response, error) {
	var st state
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return st, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if s != nil {
		req.AddCookie(s.cookie)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return st, resp, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return st, resp, json.NewDecoder(resp.Body).Decode(&st)
}

// loopback refuses a target that is not on this machine's loopback.
func loopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("target %q: only http on loopback addresses", target)
}
