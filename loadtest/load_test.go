package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// startDemo builds the demo and runs it as a child process on a free port
// with args, returning its base URL. It is stopped at cleanup.
func startDemo(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", bin, "github.com/sessionx/sessions/examples/demo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build demo: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
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
		if t.Failed() {
			t.Logf("demo stderr (last 4 KiB):\n%s", tail(stderr.String(), 8<<10))
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
			t.Fatalf("demo said %q", line)
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start")
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// client is one browser: its own cookie jar and session.
type client struct {
	id        int
	user      string
	http      *http.Client
	base      string
	successes int             // 200 answers to /api/visit
	failures  map[int]int     // non-200 answers by status; 0 = transport error
	latencies []time.Duration // of every request
	wrongUser int             // 200 answers carrying another user's name
	maxLat    time.Duration
}

func newClient(t *testing.T, id int, base string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &client{
		id: id, user: fmt.Sprintf("client-%02d", id), base: base,
		http:     &http.Client{Jar: jar, Timeout: 15 * time.Second},
		failures: map[int]int{},
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

// visit sends one GET /api/visit and records what came back.
func (c *client) visit() {
	start := time.Now()
	resp, err := c.http.Get(c.base + "/api/visit")
	lat := time.Since(start)
	c.latencies = append(c.latencies, lat)
	c.maxLat = max(c.maxLat, lat)
	if err != nil {
		c.failures[0]++
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		c.failures[resp.StatusCode]++
		return
	}
	var v struct {
		Visits int    `json:"visits"`
		User   string `json:"user"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		c.failures[-1]++
		return
	}
	if v.User != c.user {
		c.wrongUser++
	}
	c.successes++
}

// count returns the session's counter: one more visit, minus itself.
func (c *client) count(t *testing.T) int {
	t.Helper()
	var v struct {
		Visits int    `json:"visits"`
		User   string `json:"user"`
	}
	for i := 0; i < 50; i++ {
		resp, err := c.http.Get(c.base + "/api/visit")
		if err == nil && resp.StatusCode == 200 {
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err == nil {
				if v.User != c.user {
					t.Errorf("%s: final read carries user %q", c.user, v.User)
				}
				return v.Visits - 1
			}
		} else if err == nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: could not read the final count", c.user)
	return 0
}

// load runs all clients against base until ctx ends; during runs alongside.
func load(t *testing.T, base string, d time.Duration, during func()) []*client {
	t.Helper()
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = newClient(t, i, base)
		if err := cs[i].login(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c.visit()
			}
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	report(t, cs, time.Since(start))
	return cs
}

// report logs throughput and latency percentiles.
func report(t *testing.T, cs []*client, elapsed time.Duration) {
	t.Helper()
	var all []time.Duration
	ok, failed := 0, map[int]int{}
	for _, c := range cs {
		all = append(all, c.latencies...)
		ok += c.successes
		for code, n := range c.failures {
			failed[code] += n
		}
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	t.Logf("%d clients, %v: %d requests, %.0f req/s, %d ok, failed by status %v; latency p50 %v, p99 %v, max %v",
		len(cs), elapsed.Round(time.Millisecond), len(all), float64(len(all))/elapsed.Seconds(), ok, failed,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
}

// check asserts that every session's counter equals its client's successes
// and that no answer carried another session's data.
func check(t *testing.T, cs []*client) {
	t.Helper()
	for _, c := range cs {
		if c.wrongUser > 0 {
			t.Errorf("%s got %d answers with another session's user", c.user, c.wrongUser)
		}
		if got := c.count(t); got != c.successes {
			t.Errorf("%s: session counter %d, but the client saw %d successful visits", c.user, got, c.successes)
		}
	}
}

func TestLoad(t *testing.T) {
	needRedis(t)
	srv := redistest.StartServer(t)
	base := startDemo(t, "-redis", srv.Addr())
	cs := load(t, base, duration(t), nil)
	for _, c := range cs {
		if len(c.failures) > 0 {
			t.Errorf("%s: failures without any fault: %v", c.user, c.failures)
		}
		if c.successes == 0 {
			t.Errorf("%s: no successful request", c.user)
		}
	}
	check(t, cs)
}

func TestLoadRedisOutage(t *testing.T) {
	needRedis(t)
	// Persistence on, so that the sessions survive the restart.
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	base := startDemo(t, "-redis", srv.Addr())
	d := duration(t)
	outage := 2 * time.Second
	cs := load(t, base, d+outage+time.Second, func() {
		time.Sleep(d / 2)
		srv.Stop()
		time.Sleep(outage)
		srv.Start()
	})
	var failed, total int
	var worst time.Duration
	for _, c := range cs {
		for code, n := range c.failures {
			if code < 500 {
				t.Errorf("%s: %d requests failed with %d, want only 5xx during the outage", c.user, n, code)
			}
			failed += n
		}
		total += len(c.latencies)
		worst = max(worst, c.maxLat)
	}
	t.Logf("outage of %v: %d of %d requests failed (5xx); slowest request %v", outage, failed, total, worst)
	if failed == 0 {
		t.Error("no request failed while Redis was down: the outage did not happen")
	}
	if worst > 12*time.Second {
		t.Errorf("a request took %v, past the demo's 10 s request deadline", worst)
	}
	check(t, cs)
}
