package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/internal/redistest"
)

const clients = 64

// duration returns how long each load phase runs.
func duration(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("LOADTEST_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LOADTEST_DURATION: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

func needRedis(t *testing.T) {
	t.Helper()
	if redistest.HaveBinaries() {
		return
	}
	if redistest.Required() {
		t.Fatalf("redis-server not on PATH and %s=1", redistest.RequireEnv)
	}
	t.Skip("redis-server not on PATH: the load test needs a real Redis")
}

// appBin is the loadapp binary, built once per test binary (buildApp).
var (
	appOnce sync.Once
	appBin  string
	appErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if appBin != "" {
		os.RemoveAll(filepath.Dir(appBin))
	}
	os.Exit(code)
}

// buildApp builds loadapp (without -race, whatever the tests run with) and
// returns its path.
func buildApp(t *testing.T) string {
	t.Helper()
	appOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loadapp")
		if err != nil {
			appErr = err
			return
		}
		bin := filepath.Join(dir, "loadapp")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/sessionx/sessions/loadtest/loadapp").CombinedOutput()
		if err != nil {
			appErr = fmt.Errorf("go build loadapp: %v\n%s", err, out)
			return
		}
		appBin = bin
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appBin
}

// startApp runs loadapp as a child process on a free port with args,
// returning its base URL. It is stopped at cleanup.
func startApp(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(buildApp(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuilder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		switch {
		case os.Getenv("LOADTEST_DEBUG") != "":
			t.Logf("loadapp stderr:\n%s", stderr.String())
		case t.Failed():
			t.Logf("loadapp's failed requests by kind:\n%s", failureKinds(stderr.String()))
			t.Logf("loadapp stderr (last 4 KiB):\n%s", tail(stderr.String(), 4<<10))
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		u := regexp.MustCompile(`http://\S+`).FindString(line)
		if u == "" {
			t.Fatalf("loadapp said %q; stderr: %s", line, stderr.String())
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("loadapp did not start; stderr: %s", stderr.String())
	}
	return ""
}

// syncBuilder is a strings.Builder safe for concurrent use.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuilder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ids matches session handles and the like in loadapp's log lines.
var ids = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|\b\d+(\.\d+)?(ms|s|µs)\b`)

// failureKinds counts loadapp's "request failed" log lines by status and
// error, with session ids and durations masked: every kind of failure of
// a run, however long its log.
func failureKinds(log string) string {
	counts := map[string]int{}
	for line := range strings.Lines(log) {
		_, rest, ok := strings.Cut(line, "loadapp: request failed ")
		if !ok {
			continue
		}
		counts[ids.ReplaceAllString(strings.TrimSpace(rest), "…")]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "%6d  %s\n", counts[k], k)
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// client is one browser: its own cookie jar and session. It increments its
// session's counter (GET /api/visit) and keeps a redistest.Ledger of the
// answers, so that an increment stored though answered "failed" (a
// phantom) or lost though answered "stored" shows.
type client struct {
	id        int
	user      string
	http      *http.Client
	base      string
	ledger    redistest.Ledger
	visits    map[int]int     // answers to /api/visit by status; 0 = no answer
	reads     map[int]int     // answers to /api/me by status; 0 = no answer
	latencies []time.Duration // of every visit
	events    []event         // every visit, in order
	maxLat    time.Duration
	crossed   int       // answers carrying another client's user
	lostUser  int       // times the session vanished (an answer without the user)
	anonymous bool      // the session vanished: the client goes on without a user
	lastFail  time.Time // when the last visit that did not succeed ended
	gap       []string  // the answers not 200 since the last 200: status and body
	phantoms  []string  // for every phantom, the answers of its gap and the 200 that showed it
}

func newClient(t *testing.T, id int, base string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &client{
		id: id, user: fmt.Sprintf("client-%02d", id), base: base,
		http:   &http.Client{Jar: jar, Timeout: 15 * time.Second},
		visits: map[int]int{}, reads: map[int]int{},
	}
}

// login stores the client's user in a new session, retrying briefly.
func (c *client) login() error {
	var last error
	for i := 0; i < 20; i++ {
		resp, err := c.http.PostForm(c.base+"/api/login", url.Values{"user": {c.user}})
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("login %s: %w", c.user, last)
}

// answer is the body of /api/visit and /api/me.
type answer struct {
	Visits int    `json:"visits"`
	User   string `json:"user"`
}

// owner checks the user of an answer: the client's own, or none once its
// session vanished. It reports false for another client's user.
func (c *client) owner(user string) bool {
	switch {
	case user == c.user && !c.anonymous:
		return true
	case user == "" && !c.anonymous:
		c.lostUser++
		c.anonymous = true
		c.ledger.StartedOver()
		return true
	case user == "" && c.anonymous:
		return true
	}
	c.crossed++
	return false
}

// event is one visit: when it was sent and answered, and its status (0:
// no answer).
type event struct {
	start, end time.Time
	status     int
}

// visit sends one GET /api/visit and records what came back. It reports
// whether the answer was 200.
func (c *client) visit() bool {
	start := time.Now()
	resp, err := c.http.Get(c.base + "/api/visit")
	end := time.Now()
	lat := end.Sub(start)
	c.latencies = append(c.latencies, lat)
	c.maxLat = max(c.maxLat, lat)
	ev := event{start: start, end: end}
	if err == nil {
		ev.status = resp.StatusCode
	}
	c.events = append(c.events, ev)
	if err != nil {
		c.visits[0]++
		c.ledger.AnswerUnknown() // no answer: the client cannot know
		c.gap = append(c.gap, fmt.Sprintf("%s no answer: %v", end.Format("15:04:05.000"), err))
		c.lastFail = time.Now()
		return false
	}
	defer resp.Body.Close()
	c.visits[resp.StatusCode]++
	var v answer
	switch {
	case resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&v) == nil:
		if c.owner(v.User) {
			before := c.ledger.Phantoms
			c.ledger.AnswerStored(v.Visits)
			if c.ledger.Phantoms > before {
				c.phantoms = append(c.phantoms, fmt.Sprintf("%d extra after %q, then 200 with %d at %s",
					c.ledger.Phantoms-before, c.gap, v.Visits, end.Format("15:04:05.000")))
			}
		}
		c.gap = c.gap[:0]
		return true
	case resp.StatusCode == http.StatusGatewayTimeout:
		c.ledger.AnswerUnknown() // documented: may or may not be stored
	default:
		c.ledger.AnswerFailed()
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	c.gap = append(c.gap, fmt.Sprintf("%s %d %s", end.Format("15:04:05.000"), resp.StatusCode, strings.TrimSpace(string(body))))
	c.lastFail = time.Now()
	return false
}

// read sends one GET /api/me, which writes nothing, and records its status.
func (c *client) read() {
	resp, err := c.http.Get(c.base + "/api/me")
	if err != nil {
		c.reads[0]++
		return
	}
	defer resp.Body.Close()
	c.reads[resp.StatusCode]++
	var v answer
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&v) == nil {
		c.owner(v.User)
	}
}

// final makes one more visit, retrying until it is answered 200, so that
// the ledger checks the stored counter.
func (c *client) final(t *testing.T) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if c.visit() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: could not read the final count", c.user)
}

// load logs all clients in and runs them against base for d, or with d 0
// until during returns; during runs alongside. With reads, every visit is
// followed by a GET /api/me.
func load(t *testing.T, base string, d time.Duration, reads bool, during func()) []*client {
	t.Helper()
	return loadAll(t, []string{base}, d, reads, during)[0]
}

// loadAll is load on several apps at once, with clients of its own for
// each: it returns the clients of bases[i] at i.
func loadAll(t *testing.T, bases []string, d time.Duration, reads bool, during func()) [][]*client {
	t.Helper()
	all := make([][]*client, len(bases))
	for b, base := range bases {
		all[b] = make([]*client, clients)
		for i := range all[b] {
			all[b][i] = newClient(t, i, base)
			if err := all[b][i].login(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if d > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), d)
	}
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for _, cs := range all {
		for _, c := range cs {
			wg.Go(func() {
				for ctx.Err() == nil {
					c.visit()
					if reads {
						c.read()
					}
				}
			})
		}
	}
	if during != nil {
		during()
	}
	if d <= 0 {
		cancel()
	}
	wg.Wait()
	for _, cs := range all {
		report(t, cs, time.Since(start))
	}
	return all
}

// totals sums the clients' answers.
type totals struct {
	ledger        redistest.Ledger
	visits, reads map[int]int
	requests      int
	crossed       int
	lostUser      int
	lastFail      time.Time
	maxLat        time.Duration
}

func sum(cs []*client) totals {
	s := totals{visits: map[int]int{}, reads: map[int]int{}}
	for _, c := range cs {
		s.ledger.Add(&c.ledger)
		for code, n := range c.visits {
			s.visits[code] += n
			s.requests += n
		}
		for code, n := range c.reads {
			s.reads[code] += n
		}
		s.crossed += c.crossed
		s.lostUser += c.lostUser
		if c.lastFail.After(s.lastFail) {
			s.lastFail = c.lastFail
		}
		s.maxLat = max(s.maxLat, c.maxLat)
	}
	return s
}

// report logs throughput and latency percentiles.
func report(t *testing.T, cs []*client, elapsed time.Duration) {
	t.Helper()
	var all []time.Duration
	for _, c := range cs {
		all = append(all, c.latencies...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	s := sum(cs)
	t.Logf("%d clients, %v: %d visits, %.0f/s, by status %v, reads by status %v; latency p50 %v, p99 %v, max %v",
		len(cs), elapsed.Round(time.Millisecond), len(all), float64(len(all))/elapsed.Seconds(), s.visits, s.reads,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
}

// check makes every client's final visit, then asserts that no answer
// carried another session's user, that no increment answered "failed"
// was stored (phantoms), and unless lossOK, that no increment answered
// "stored" was lost and no session vanished. It returns the totals.
func check(t *testing.T, cs []*client, lossOK bool) totals {
	t.Helper()
	for _, c := range cs {
		c.final(t)
		if c.crossed > 0 {
			t.Errorf("%s got %d answers with another session's user", c.user, c.crossed)
		}
		if c.ledger.Phantoms > 0 {
			t.Errorf("%s: increments answered failed were stored: %v; %s", c.user, &c.ledger, strings.Join(c.phantoms, "; "))
		}
		if !lossOK && (c.ledger.Lost > 0 || c.lostUser > 0) {
			t.Errorf("%s: increments answered stored were lost: %v; session vanished %d times", c.user, &c.ledger, c.lostUser)
		}
	}
	s := sum(cs)
	t.Logf("ledger: %v; sessions vanished: %d", &s.ledger, s.lostUser)
	return s
}

// statuses fails t for every status of m that is not in allowed.
func statuses(t *testing.T, what string, m map[int]int, allowed ...int) {
	t.Helper()
	for code, n := range m {
		if !slices.Contains(allowed, code) {
			t.Errorf("%d %s answered %d, want only %v", n, what, code, allowed)
		}
	}
}

// figures logs one line of the README's faults table.
func figures(t *testing.T, s totals, extra string) {
	t.Helper()
	n5xx := 0
	for code, n := range s.visits {
		if code >= 500 && code != http.StatusGatewayTimeout {
			n5xx += n
		}
	}
	t.Logf("figures: %s | %d visits | %d x 200 | %d x 5xx (not 504) | %d x 504 | %d x 401 | %d no answer | phantoms %d | unknown that landed %d | lost %d | slowest %v | %s",
		t.Name(), s.requests, s.visits[200], n5xx, s.visits[http.StatusGatewayTimeout], s.visits[401], s.visits[0],
		s.ledger.Phantoms, s.ledger.UnknownLanded, s.ledger.Lost, s.maxLat.Round(time.Millisecond), extra)
}

func TestLoad(t *testing.T) {
	needRedis(t)
	srv := redistest.StartServer(t)
	base := startApp(t, "-redis", srv.Addr())
	cs := load(t, base, duration(t), false, nil)
	for _, c := range cs {
		statuses(t, c.user+" visits without any fault", c.visits, 200)
		if c.ledger.Stored == 0 {
			t.Errorf("%s: no successful request", c.user)
		}
	}
	check(t, cs, false)
}

func TestLoadRedisOutage(t *testing.T) {
	needRedis(t)
	// Persistence on, so that the sessions survive the restart.
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	base := startApp(t, "-redis", srv.Addr())
	d := duration(t)
	outage := 2 * time.Second
	cs := load(t, base, d+outage+time.Second, false, func() {
		time.Sleep(d / 2)
		srv.Stop()
		time.Sleep(outage)
		srv.Start()
	})
	s := check(t, cs, false)
	statuses(t, "visits during the outage", s.visits, 200, 500, 504)
	if s.ledger.Failed+s.ledger.Unknown == 0 {
		t.Error("no request failed while Redis was down: the outage did not happen")
	}
	if s.maxLat > 12*time.Second {
		t.Errorf("a request took %v, past loadapp's 10 s request deadline", s.maxLat)
	}
	figures(t, s, fmt.Sprintf("outage %v", outage))
}

// TestLoadRedisPaused: Redis hangs (SIGSTOP) for longer than loadapp's
// 10 s request deadline, with the writes of the requests in flight in its
// socket buffers, then resumes (SIGCONT) and runs them. No increment
// answered "failed" may be stored; the requests whose write was sent but
// not answered are answered 504 (unknown), counted apart; and since Redis
// resumes past their deadlines, none of the writes sent after it stopped
// may land (one it ran just before stopping, its answer unsent, did land).
// Requests still loading, or waiting for a connection, are answered 500.
func TestLoadRedisPaused(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	if !redistest.CanPause() {
		t.Skip("pausing redis-server needs SIGSTOP (unix)")
	}
	srv := redistest.StartServer(t)
	base := startApp(t, "-redis", srv.Addr())
	d := duration(t)
	pause := 11 * time.Second // past loadapp's 10 s deadline
	var stopped time.Time
	cs := load(t, base, d+pause, false, func() {
		time.Sleep(d / 2)
		stopped = time.Now()
		srv.Pause()
		time.Sleep(pause)
		srv.Resume()
	})
	s := check(t, cs, false)
	statuses(t, "visits during the pause", s.visits, 200, 500, 504)
	if s.ledger.Failed+s.ledger.Unknown == 0 {
		t.Error("no request failed: the pause did not happen")
	}
	// How many writes the pause caught on the wire (504) rather than
	// before they had a connection (500: never sent) depends on timing;
	// TestCommitPastDeadlineAnswers504AndStoresNothing (backend/redis)
	// catches one for sure.
	t.Logf("%d writes caught on the wire by the pause (504)", s.visits[http.StatusGatewayTimeout])
	// An increment Redis ran just before it stopped, whose answer had not
	// left yet, is answered 504 and did land: that is what 504 allows. One
	// sent after Redis stopped can only run after it resumed, past its
	// deadline, and must be refused. So each client's landed unknowns are
	// at most its unknown answers to requests sent before the stop.
	for _, c := range cs {
		before := 0
		for _, ev := range c.events {
			if (ev.status == http.StatusGatewayTimeout || ev.status == 0) && ev.start.Before(stopped) {
				before++
			}
		}
		if c.ledger.UnknownLanded > before {
			t.Errorf("%s: %d increments answered 504 (or not at all) landed, but only %d of them were sent before Redis stopped: a write ran when Redis resumed, past its deadline",
				c.user, c.ledger.UnknownLanded, before)
		}
	}
	t.Logf("%d increments answered 504 landed, all sent before Redis stopped (run by it before the stop, their answers unsent)", s.ledger.UnknownLanded)
	if s.maxLat > 12*time.Second {
		t.Errorf("a request took %v, past loadapp's 10 s request deadline", s.maxLat)
	}
	figures(t, s, fmt.Sprintf("pause %v", pause))
}

// TestLoadMaxmemory: Redis reaches its maxmemory under load, then gets
// room again. Clients visit (a write) and read (GET /api/me, which writes
// nothing) in turn. The app must not crash nor hand anyone another
// session's data, reads must be served, and the answers must be the
// documented ones:
//
//   - noeviction: a change is refused (500) and not stored; reads are
//     served; once there is room, changes are stored again; nothing is
//     lost.
//   - volatile-ttl (an evicting policy): Redis evicts the keys nearest
//     their expiry first, sessions among them; a visitor whose session
//     was evicted gets a new one (200 without the user, or 401 when the
//     session vanished between its load and its save); nothing answered
//     "failed" is stored.
func TestLoadMaxmemory(t *testing.T) {
	redistest.Long(t)
	needRedis(t)
	for _, tc := range []struct {
		policy string
		visits []int // the statuses a visit may get
		reads  []int // the statuses a read may get
		lossOK bool
	}{
		{"noeviction", []int{200, 500}, []int{200}, false},
		{"volatile-ttl", []int{200, 401}, []int{200, 401}, true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			srv := redistest.StartServer(t)
			admin := srv.Client()
			base := startApp(t, "-redis", srv.Addr())
			d := duration(t)
			stop := make(chan struct{})
			filled := make(chan struct{})
			var fillErr error
			cs := load(t, base, d+time.Second, true, func() {
				time.Sleep(d / 3)
				go func() {
					defer close(filled)
					fillErr = fill(admin, tc.policy, stop)
				}()
				time.Sleep(d / 3)
				if tc.policy == "noeviction" {
					close(stop)
					<-filled
					// Room again: changes are stored again.
					if err := admin.ConfigSet(context.Background(), "maxmemory", "0").Err(); err != nil {
						t.Error(err)
					}
				}
			})
			if tc.policy != "noeviction" {
				close(stop)
				<-filled
			}
			if fillErr != nil {
				t.Fatal(fillErr)
			}
			s := check(t, cs, tc.lossOK)
			statuses(t, "visits", s.visits, tc.visits...)
			statuses(t, "reads", s.reads, tc.reads...)
			if tc.policy == "noeviction" && s.visits[500] == 0 {
				t.Error("no visit was refused: Redis never filled up")
			}
			figures(t, s, fmt.Sprintf("reads by status %v; sessions vanished %d", s.reads, s.lostUser))
		})
	}
}

// fill sets maxmemory a little above what Redis uses, with policy, and
// writes 4 KiB keys that expire in an hour (outside the app's prefix)
// until Redis refuses one (noeviction: then it stops) or, under an
// evicting policy, until stop is closed.
func fill(c *goredis.Client, policy string, stop <-chan struct{}) error {
	ctx := context.Background()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return err
	}
	var used int64
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	for _, kv := range [][2]string{{"maxmemory-policy", policy}, {"maxmemory", strconv.FormatInt(used+1<<20, 10)}} {
		if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			return err
		}
	}
	filler := strings.Repeat("x", 4096)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		err := c.Set(ctx, "filler:"+strconv.Itoa(i), filler, time.Hour).Err()
		if err != nil && strings.Contains(err.Error(), "OOM") {
			if policy == "noeviction" {
				<-stop
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		if policy != "noeviction" {
			time.Sleep(time.Millisecond) // a steady pressure, not a flood
		}
	}
}
