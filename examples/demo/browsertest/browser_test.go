package browsertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// requireEnv makes a missing browser fail the tests instead of skipping
// them.
const requireEnv = "SESSIONS_REQUIRE_BROWSER"

var (
	setupOnce  sync.Once
	demoBin    string          // the demo, built by setup
	browserCtx context.Context // the browser all tests share; nil when there is none
	noBrowser  error           // why there is none
	teardown   []func()
	artifacts  struct {
		once sync.Once
		dir  string
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(teardown) - 1; i >= 0; i-- {
		teardown[i]()
	}
	os.Exit(code)
}

// setup builds the demo and starts the browser, once, when the first test
// needs them (not for go test -list).
func setup() {
	dir, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		noBrowser = err
		return
	}
	teardown = append(teardown, func() { os.RemoveAll(dir) })
	demoBin = filepath.Join(dir, "demo")
	build := exec.Command("go", "build", "-o", demoBin, ".")
	build.Dir = ".." // examples/demo
	if out, err := build.CombinedOutput(); err != nil {
		demoBin, noBrowser = "", fmt.Errorf("go build the demo: %v\n%s", err, out)
		return
	}

	path, err := findBrowser()
	if err != nil {
		noBrowser = err
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // as root (CI) chromium needs it
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.WindowSize(860, 640),
		)...)
	ctx, cancel := chromedp.NewContext(alloc)
	teardown = append(teardown, cancelAlloc, cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		noBrowser = fmt.Errorf("start %s: %w", path, err)
		return
	}
	browserCtx = ctx
}

// findBrowser returns the path of a Chromium or Chrome binary.
func findBrowser() (string, error) {
	if p := os.Getenv("SESSIONS_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH")
}

// needBrowser skips t when there is no browser, or fails it when
// SESSIONS_REQUIRE_BROWSER=1.
func needBrowser(t *testing.T) {
	t.Helper()
	setupOnce.Do(setup)
	if demoBin == "" {
		t.Fatal(noBrowser) // the demo did not build
	}
	if browserCtx != nil {
		return
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("no browser and %s=1: %v", requireEnv, noBrowser)
	}
	t.Skipf("no browser: %v", noBrowser)
}

// startDemo runs the demo with args on a free loopback port and returns its
// base URL. It is stopped at cleanup (os.Interrupt, then Kill).
func startDemo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(demoBin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("demo %q stderr:\n%s", args, stderr.String())
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
		if u := regexp.MustCompile(`http://\S+`).FindString(line); u != "" {
			return u
		}
		t.Fatalf("demo said %q", line)
	case <-done:
		t.Fatalf("demo exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start within 30 s")
	}
	return ""
}

// page is one tab, in a browser context of its own (its own cookies): one
// user's browser.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string

	mu         sync.Mutex
	exceptions []string // uncaught exceptions in the page
}

// open opens base in a new browser context. At cleanup it fails t if the
// page threw an uncaught exception, and on failure writes a screenshot.
func open(t *testing.T, name, base string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx, base: base}
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	go func() {
		for msg, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if msg.Type == chromedp.ConsoleException {
				p.mu.Lock()
				p.exceptions = append(p.exceptions, msg.Text)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { // runs before cancel
		p.mu.Lock()
		for _, e := range p.exceptions {
			t.Errorf("%s: uncaught exception in the page: %s", name, e)
		}
		p.mu.Unlock()
		if t.Failed() {
			p.screenshotOnFailure()
		}
	})
	p.do(chromedp.Navigate(base + "/"))
	p.loaded()
	return p
}

// do runs steps, failing t with the page's state on error.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\n%s", p.name, err, p.state())
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and returns its value.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v\n%s", p.name, js, err, p.state())
	}
	return v
}

// until waits, at most 10 s, until the JavaScript expression cond is true.
func (p *page) until(cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\n%s", p.name, cond, err, p.state())
	}
}

// state describes what the page shows, for failure messages.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return fmt.Sprintf("(page text unavailable: %v)", err)
	}
	return "page text:\n" + s
}

// loaded waits until the page has filled itself in after a load.
func (p *page) loaded() {
	p.t.Helper()
	p.until(`document.body.dataset.ready === "yes"`)
}

// visits returns the visit count the page shows.
func (p *page) visits() int {
	p.t.Helper()
	return eval[int](p, `Number(document.querySelector("#visits").textContent)`)
}

// text returns the visible text of the element matched by the CSS
// selector, "" when it is hidden.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(e => e && !e.closest("[hidden]") ? e.textContent : "")(document.querySelector(%q))`, sel))
}

// shown reports whether the element matched by sel is visible.
func (p *page) shown(sel string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf(`(e => !!e && !e.closest("[hidden]"))(document.querySelector(%q))`, sel))
}

// noError fails t when the page shows an error.
func (p *page) noError() {
	p.t.Helper()
	if msg := p.text("#error"); msg != "" {
		p.t.Errorf("%s shows an error: %q", p.name, msg)
	}
}

// wantError waits until the page shows an error containing want, and
// checks it is not a JSON parse error of a non-JSON body.
func (p *page) wantError(want string) {
	p.t.Helper()
	p.until(fmt.Sprintf(`document.querySelector("#error").textContent.includes(%q) && !document.querySelector("#error").hidden`, want))
	if msg := p.text("#error"); strings.Contains(msg, "Unexpected token") || strings.Contains(msg, "JSON") {
		p.t.Errorf("%s: error %q is a JSON parse error, not the server's message", p.name, msg)
	}
}

// login logs user in through the form, and waits until the page shows it.
func (p *page) login(user string, remember bool) {
	p.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.CSS(`#login input[name=user]`), user)}
	if remember {
		steps = append(steps, chromedp.Click(chromedp.CSS(`#login input[name=remember]`)))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(`#login button`)))
	p.do(steps...)
	p.until(fmt.Sprintf(`document.querySelector("#user").textContent === %q && !document.querySelector("#in").hidden`, user))
	p.until(`document.querySelectorAll("#sessions tr").length > 1`) // the list of sessions came
}

// reload reloads the page and waits for its first state.
func (p *page) reload() {
	p.t.Helper()
	p.do(chromedp.Reload())
	p.loaded()
}

// cookie returns the demo's session cookie as the browser stores it, or
// nil.
func (p *page) cookie() *network.Cookie {
	p.t.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.base + "/"}})
	if err != nil {
		p.t.Fatalf("%s: cookies: %v", p.name, err)
	}
	for _, c := range res.Cookies {
		if c.Name == "demo_session" {
			return c
		}
	}
	return nil
}

// handles returns the handles of the user's sessions, and the current
// one, as GET /api/sessions gives them to this page.
func (p *page) handles() (all []string, current string) {
	p.t.Helper()
	type info struct {
		Handle  string `json:"handle"`
		Current bool   `json:"current"`
	}
	list := eval[[]info](p, `api("GET", "/api/sessions").then(r => r.sessions)`)
	for _, s := range list {
		all = append(all, s.Handle)
		if s.Current {
			current = s.Handle
		}
	}
	return all, current
}

// rows returns the number of sessions the page lists.
func (p *page) rows() int {
	p.t.Helper()
	return eval[int](p, `document.querySelectorAll("#sessions tr").length - 1`)
}

// keep writes a screenshot of the page to $DEMO_SCREENSHOTS/name.png, when
// that is set: the README's pictures.
func (p *page) keep(name string) {
	p.t.Helper()
	dir := os.Getenv("DEMO_SCREENSHOTS")
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// screenshotOnFailure writes a screenshot of the page to the artifacts
// directory and logs where.
func (p *page) screenshotOnFailure() {
	artifacts.once.Do(func() {
		artifacts.dir = os.Getenv("BROWSERTEST_ARTIFACTS")
		if artifacts.dir == "" {
			artifacts.dir, _ = os.MkdirTemp("", "browsertest-artifacts-")
		}
		os.MkdirAll(artifacts.dir, 0o755)
	})
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("%s: no screenshot: %v", p.name, err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(p.t.Name() + "-" + p.name + ".png")
	path := filepath.Join(artifacts.dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Logf("%s: screenshot: %v", p.name, err)
		return
	}
	p.t.Logf("%s: screenshot written to %s", p.name, path)
}

// TestLoginVisitsCartLogoutFlash runs the page's main flow as a user would:
// visits counted, login, a cart changed with Update and with a plain
// write, logout with its flash message shown once.
func TestLoginVisitsCartLogoutFlash(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	p := open(t, "ann's browser", base)

	if v := p.visits(); v != 1 {
		t.Errorf("visits after the first load: %d, want 1", v)
	}
	if !p.shown("#login") || p.shown("#logout") || p.shown("#devices") {
		t.Errorf("logged out: login form shown %v, log out button shown %v, sessions shown %v; want only the form",
			p.shown("#login"), p.shown("#logout"), p.shown("#devices"))
	}
	p.do(chromedp.Click(chromedp.CSS("#visit")))
	p.until(`document.querySelector("#visits").textContent === "2"`)

	before := p.cookie()
	p.login("ann", false)
	after := p.cookie()
	if before == nil || after == nil || before.Value == after.Value {
		t.Errorf("the session cookie before and after login: %v, %v; want a new token", before, after)
	}
	if p.shown("#login") || !p.shown("#logout") || p.rows() != 1 || !strings.Contains(p.text("#sessions"), "this browser") {
		t.Errorf("logged in: want the log out button and one session, this browser; page shows\n%s", p.state())
	}
	if got := p.text("#life"); got != "(until you close the browser)" {
		t.Errorf("lifetime shown %q", got)
	}

	// The cart: "Add one" uses Update, the quantity box a plain write.
	p.do(chromedp.SendKeys(chromedp.CSS(`#add input[name=item]`), "tea"), chromedp.Click(chromedp.CSS(`#add button`)))
	p.until(`document.querySelector("#cart input")?.value === "1"`)
	p.do(chromedp.Click(chromedp.CSS(`#cart button`)))
	p.until(`document.querySelector("#cart input").value === "2"`)
	eval[bool](p, `(n => { n.value = 5; n.dispatchEvent(new Event("change")); return true })(document.querySelector("#cart input"))`)
	p.do(chromedp.SendKeys(chromedp.CSS(`#add input[name=item]`), "scones"), chromedp.Click(chromedp.CSS(`#add button`)))
	p.until(`document.querySelectorAll("#cart tr").length === 2`)
	p.noError()
	p.reload() // what the page shows now comes from the store
	if got := p.text("#cart"); !strings.Contains(got, "scones") || !strings.Contains(got, "tea") {
		t.Errorf("cart after reload: %q, want scones and tea", got)
	}
	if q := eval[string](p, `[...document.querySelectorAll("#cart tr")].find(r => r.textContent.includes("tea")).querySelector("input").value`); q != "5" {
		t.Errorf("tea after reload: %s, want 5", q)
	}
	if v := p.visits(); v != 3 {
		t.Errorf("visits after reload: %d, want 3 (login kept the count)", v)
	}
	p.keep("logged-in")

	p.do(chromedp.Click(chromedp.CSS("#logout")))
	p.until(`document.querySelector("#flash").textContent === "You have been logged out." && !document.querySelector("#flash").hidden`)
	if !p.shown("#login") || p.shown("#logout") || p.shown("#devices") || p.text("#cart") != "" {
		t.Errorf("after logout: want the login form, no log out button, no sessions, an empty cart; page shows\n%s", p.state())
	}
	p.keep("logged-out")
	p.reload()
	if p.shown("#flash") {
		t.Errorf("the flash message is shown again after a reload: %q", p.text("#flash"))
	}
	p.noError()
}

// TestCookieAsTheBrowserStoresIt checks the session cookie's attributes in
// the browser's own cookie store: the demo's (plain HTTP), then with
// -secure-cookie, which Chromium keeps from http://127.0.0.1 and
// http://localhost (potentially trustworthy origins), so the session works
// there too.
func TestCookieAsTheBrowserStoresIt(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	p := open(t, "default", base)
	c := p.cookie()
	if c == nil {
		t.Fatal("no demo_session cookie after the first load")
	}
	check := func(p *page, c *network.Cookie, secure bool) {
		t.Helper()
		host := strings.Split(strings.TrimPrefix(p.base, "http://"), ":")[0]
		if !c.HTTPOnly || c.Secure != secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != host || !c.Session {
			t.Errorf("%s: cookie %s: HttpOnly %v, Secure %v, SameSite %q, Path %q, Domain %q, session %v; want HttpOnly, Secure %v, Lax, /, %s (host-only), a browser-session cookie",
				p.name, c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain, c.Session, secure, host)
		}
		if js := eval[string](p, `document.cookie`); strings.Contains(js, c.Value) {
			t.Errorf("%s: page scripts can read the token: document.cookie = %q", p.name, js)
		}
	}
	check(p, c, false)

	secure := startDemo(t, "-secure-cookie")
	for _, base := range []string{secure, strings.Replace(secure, "127.0.0.1", "localhost", 1)} {
		p := open(t, base, base)
		p.login("ann", false)
		c := p.cookie()
		if c == nil {
			t.Fatalf("%s: no demo_session cookie kept with -secure-cookie", base)
		}
		check(p, c, true)
		p.reload()
		if p.text("#user") != "ann" {
			t.Errorf("%s with -secure-cookie: after a reload the page shows %q logged in, want ann (the browser sent the Secure cookie back)", base, p.text("#user"))
		}
	}
}

// TestRememberMe checks that "remember me" gives a persistent cookie that
// lasts 14 days, and that without it the cookie ends with the browser.
func TestRememberMe(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	for _, remember := range []bool{false, true} {
		p := open(t, fmt.Sprintf("remember %v", remember), base)
		p.login("ann", remember)
		c := p.cookie()
		if c == nil {
			t.Fatal("no cookie")
		}
		left := time.Until(time.Unix(int64(c.Expires), 0))
		switch {
		case remember && (c.Session || math.Abs(left.Hours()-14*24) > 1):
			t.Errorf("remember me: cookie session %v, expires in %v; want a persistent cookie for 14 days", c.Session, left.Round(time.Minute))
		case !remember && !c.Session:
			t.Errorf("without remember me: cookie expires in %v; want a browser-session cookie", left.Round(time.Minute))
		}
		want := map[bool]string{false: "(until you close the browser)", true: "(remembered for 14 days)"}[remember]
		if got := p.text("#life"); got != want {
			t.Errorf("remember %v: the page says %q, want %q", remember, got, want)
		}
	}
}

// TestTwoUsersInSeparateBrowsers: ann on three browsers, bob on one. Each
// sees only their own sessions; bob cannot end ann's session even with its
// handle; ann ends one of hers, then all the others.
func TestTwoUsersInSeparateBrowsers(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	ann1, ann2, bob := open(t, "ann's laptop", base), open(t, "ann's phone", base), open(t, "bob's browser", base)
	ann1.login("ann", false)
	ann2.login("ann", true)
	bob.login("bob", false)

	ann1.reload()
	annAll, ann1Handle := ann1.handles()
	_, ann2Handle := ann2.handles()
	bobAll, _ := bob.handles()
	if len(annAll) != 2 || ann1.rows() != 2 || len(bobAll) != 1 || bob.rows() != 1 {
		t.Fatalf("ann's browser lists %d sessions (%d shown), bob's %d (%d shown); want 2 and 1", len(annAll), ann1.rows(), len(bobAll), bob.rows())
	}
	if listed := bob.text("#sessions"); strings.Contains(listed, ann1Handle[:8]) || strings.Contains(listed, ann2Handle[:8]) {
		t.Errorf("bob's page lists ann's sessions:\n%s", listed)
	}

	// Bob sends the handle of ann's phone, as a script in his page could.
	eval[bool](bob, fmt.Sprintf(`run(() => api("POST", "/api/sessions/end", {handle: %q})).then(() => true)`, ann2Handle))
	bob.wantError("You have no such session")
	ann2.reload()
	if ann2.text("#user") != "ann" {
		t.Fatalf("ann's phone after bob's try: logged in as %q, want ann", ann2.text("#user"))
	}

	// Ann ends her phone's session from her laptop.
	ann1.reload()
	eval[bool](ann1, fmt.Sprintf(`[...document.querySelectorAll("#sessions tr")].find(r => r.textContent.includes(%q)).querySelector("button").click() || true`, ann2Handle[:8]))
	ann1.until(`document.querySelectorAll("#sessions tr").length === 2`)
	ann1.noError()
	ann2.reload()
	if !ann2.shown("#login") || ann2.text("#user") != "" {
		t.Errorf("ann's phone after its session was ended: want the login form; page shows\n%s", ann2.state())
	}

	// Log out everywhere else.
	ann2.login("ann", false)
	ann3 := open(t, "ann's tablet", base)
	ann3.login("ann", false)
	ann1.reload()
	if ann1.rows() != 3 {
		t.Fatalf("ann's laptop lists %d sessions, want 3", ann1.rows())
	}
	ann1.keep("sessions")
	ann1.do(chromedp.Click(chromedp.CSS("#others")))
	ann1.until(`document.querySelector("#flash").textContent === "Ended 2 other sessions."`)
	ann1.until(`document.querySelectorAll("#sessions tr").length === 2`)
	for _, p := range []*page{ann2, ann3} {
		p.reload()
		if !p.shown("#login") {
			t.Errorf("%s after log out everywhere else: want the login form; page shows\n%s", p.name, p.state())
		}
	}
	for _, p := range []*page{ann1, bob} {
		p.reload()
		if p.text("#user") == "" {
			t.Errorf("%s after ann logged out everywhere else: logged out, want still logged in", p.name)
		}
	}
}

// TestParallelFetchesFromOnePage sends many requests of one session at
// once from the page (Chromium runs six at a time per host): visits with
// Update, plain writes of different cart entries, and Update on one
// entry. None may fail, and every change must be stored.
func TestParallelFetchesFromOnePage(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	p := open(t, "one page", base)
	p.login("ann", false)
	start := p.visits()
	p.do(chromedp.Click(chromedp.CSS("#visit10")))
	p.until(fmt.Sprintf(`document.querySelector("#visits").textContent === "%d"`, start+10))
	p.noError()

	eval[bool](p, `Promise.all([
	  ...Array.from({length: 30}, () => run(async () => show(await api("GET", "/api/visit")))),
	  ...Array.from({length: 20}, (_, i) => run(async () => show(await api("POST", "/api/cart", {item: "item " + i, qty: i + 1})))),
	  ...Array.from({length: 20}, () => run(async () => show(await api("POST", "/api/cart/add", {item: "shared"})))),
	]).then(() => true)`)
	p.noError()
	type state struct {
		Visits int
		Cart   map[string]int
	}
	st := eval[state](p, `api("GET", "/api/state")`)
	if st.Visits != start+40 {
		t.Errorf("visits stored: %d, want %d", st.Visits, start+40)
	}
	for i := range 20 {
		if q := st.Cart[fmt.Sprint("item ", i)]; q != i+1 {
			t.Errorf("cart[item %d] = %d, want %d", i, q, i+1)
		}
	}
	if st.Cart["shared"] != 20 {
		t.Errorf("cart[shared] = %d, want 20", st.Cart["shared"])
	}
}

// TestErrorsShownInThePage: every kind of error answer appears in the page
// as the server's message: a name too long (65 characters; 64 of "é",
// 128 bytes, is fine), a wrong CSRF token, a body over the limit, a
// plain-text 404.
func TestErrorsShownInThePage(t *testing.T) {
	needBrowser(t)
	base := startDemo(t)
	p := open(t, "errors", base)

	// maxlength stops typing, not a script: set the value directly.
	setName := fmt.Sprintf(`document.querySelector("#login input[name=user]").value = %q; true`, strings.Repeat("é", 65))
	eval[bool](p, setName)
	p.do(chromedp.Click(chromedp.CSS(`#login button`)))
	p.wantError("The user name must hold 1 to 64 characters")
	p.keep("error")
	eval[bool](p, fmt.Sprintf(`document.querySelector("#login input[name=user]").value = %q; true`, strings.Repeat("é", 64)))
	p.do(chromedp.Click(chromedp.CSS(`#login button`)))
	p.until(fmt.Sprintf(`document.querySelector("#user").textContent === %q`, strings.Repeat("é", 64)))
	p.noError()

	eval[bool](p, `csrf = "forged"; true`)
	p.do(chromedp.SendKeys(chromedp.CSS(`#add input[name=item]`), "tea"), chromedp.Click(chromedp.CSS(`#add button`)))
	p.wantError("The CSRF token is missing or wrong")

	eval[bool](p, `run(() => api("POST", "/api/login", {user: "a".repeat(20000)})).then(() => true)`)
	p.wantError("The request body is larger than 8 KiB")

	eval[bool](p, `run(() => api("GET", "/api/nothing-here")).then(() => true)`)
	p.wantError("404 page not found")
}
