package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPostWithoutCSRFTokenIsRefusedWithProblem(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	// A new visitor, and one whose session has a token, both need it.
	for _, st := range []string{"no session", "a session"} {
		if st == "a session" {
			c.start()
			c.csrf = ""
		}
		code, got := c.call("POST", "/api/login", url.Values{"user": {"ann"}})
		if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(got["detail"]), "CSRF token") {
			t.Fatalf("login without a CSRF token, %s: %d %v, want 403 and a detail naming the CSRF token", st, code, got)
		}
	}
	c.start()
	if code, got := c.call("POST", "/api/login", url.Values{"user": {"ann"}}); code != 200 {
		t.Fatalf("login with the CSRF token: %d %v", code, got)
	}
	// The form field works as well as the header.
	token := c.csrf
	c.csrf = ""
	if code, got := c.call("POST", "/api/cart/add", url.Values{"item": {"tea"}, "csrf_token": {token}}); code != 200 {
		t.Fatalf("cart add with the token in the form field: %d %v", code, got)
	}
}

func TestLoginRenewsTheCSRFToken(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()
	before := c.csrf
	if code, got := c.call("POST", "/api/login", url.Values{"user": {"ann"}}); code != 200 || got["csrf"] == "" {
		t.Fatalf("login: %d %v, want a new CSRF token", code, got)
	}
	c.csrf = before
	if code, _ := c.call("POST", "/api/cart/add", url.Values{"item": {"tea"}}); code != http.StatusForbidden {
		t.Fatalf("the CSRF token from before the login: %d, want 403", code)
	}
}

func TestNamesCountedInCharacters(t *testing.T) {
	srv := newTestServer(t)
	for _, tc := range []struct {
		name string
		code int
	}{
		{strings.Repeat("é", 64), 200}, // 128 bytes
		{strings.Repeat("é", 65), 400},
		{strings.Repeat("a", 64), 200},
		{strings.Repeat("a", 65), 400},
		{"  ann  ", 200},
		{"", 400},
		{"   ", 400},
		{"a\x00b", 400},
		{"a\nb", 400},
		{"\xff", 400},
	} {
		c := newClient(t, srv.URL)
		c.start()
		code, got := c.call("POST", "/api/login", url.Values{"user": {tc.name}})
		if code != tc.code {
			t.Errorf("login as %q (%d bytes): %d %v, want %d", tc.name, len(tc.name), code, got, tc.code)
		}
		if code == 200 && got["user"] != strings.TrimSpace(tc.name) {
			t.Errorf("login as %q: user %q", tc.name, got["user"])
		}
	}
}

func TestRequestBodyLimit(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()
	for _, size := range []int{maxBody + 1, 10 << 20} {
		body := "user=" + strings.Repeat("a", size)
		req, _ := http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", c.csrf)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(body), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(b), "8 KiB") {
			t.Errorf("%d bytes: %d %q %s, want 413 with a problem naming the limit", len(body), resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	// Just under the limit is a form like any other.
	form := url.Values{"user": {"ann"}, "pad": {strings.Repeat("x", maxBody-100)}}
	if code, got := c.call("POST", "/api/login", form); code != 200 {
		t.Errorf("a %d-byte body: %d %v", len(form.Encode()), code, got)
	}
}

func TestRememberMeGivesAPersistentCookie(t *testing.T) {
	srv := newTestServer(t)
	for _, remember := range []bool{false, true} {
		c := newClient(t, srv.URL)
		c.start()
		form := url.Values{"user": {"ann"}}
		if remember {
			form.Set("remember", "on")
		}
		code, got := c.call("POST", "/api/login", form)
		if code != 200 || got["remember"] != remember {
			t.Fatalf("login, remember %v: %d %v", remember, code, got)
		}
		var line string
		for _, l := range c.header.Values("Set-Cookie") {
			if strings.HasPrefix(l, "demo_session=") {
				line = l
			}
		}
		ck, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("remember %v: Set-Cookie %q: %v", remember, line, err)
		}
		if remember {
			if d := time.Duration(ck.MaxAge) * time.Second; d < 14*24*time.Hour-time.Minute || d > 14*24*time.Hour {
				t.Errorf("remember me: cookie Max-Age %v, want 14 days (%q)", d, line)
			}
		} else if ck.MaxAge != 0 || !ck.Expires.IsZero() {
			t.Errorf("without remember me: %q, want a browser-session cookie (no Max-Age, no Expires)", line)
		}
		if _, st := c.call("GET", "/api/state", nil); st["remember"] != remember {
			t.Errorf("state after login, remember %v: %v", remember, st)
		}
	}
}

func TestParallelVisitsAndCartWritesOfOneSessionAllLand(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()
	const workers, each = 20, 4 // 80 adds of "shared": under maxQty
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			item := fmt.Sprintf("item-%02d", i)
			for n := 1; n <= each; n++ {
				for _, req := range []struct {
					path string
					form url.Values
				}{
					{"/api/visit", nil},
					{"/api/cart", url.Values{"item": {item}, "qty": {fmt.Sprint(n)}}},
					{"/api/cart/add", url.Values{"item": {"shared"}}},
				} {
					method := "GET"
					if req.form != nil {
						method = "POST"
					}
					code := send(t, c, method, req.path, req.form)
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(codes) != 1 || codes[200] != 3*workers*each {
		t.Fatalf("answers by status %v, want only 200", codes)
	}
	_, st := c.call("GET", "/api/state", nil)
	if st["visits"] != float64(workers*each) {
		t.Errorf("visits %v, want %d", st["visits"], workers*each)
	}
	cart := st["cart"].(map[string]any)
	for i := range workers {
		if item := fmt.Sprintf("item-%02d", i); cart[item] != float64(each) {
			t.Errorf("cart[%s] = %v, want %d", item, cart[item], each)
		}
	}
	if cart["shared"] != float64(workers*each) {
		t.Errorf("cart[shared] = %v, want %d", cart["shared"], workers*each)
	}
}

// send sends one request with c's cookie and CSRF token from any
// goroutine, and returns its status.
func send(t *testing.T, c *client, method, path string, form url.Values) int {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestCartAddStopsAtTheBounds(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()
	if code, got := c.call("POST", "/api/cart", url.Values{"item": {"tea"}, "qty": {"99"}}); code != 200 {
		t.Fatalf("set 99: %d %v", code, got)
	}
	if code, got := c.call("POST", "/api/cart/add", url.Values{"item": {"tea"}}); code != 400 {
		t.Errorf("the 100th tea: %d %v, want 400", code, got)
	}
	for _, qty := range []string{"-1", "100", "x", ""} {
		if code, got := c.call("POST", "/api/cart", url.Values{"item": {"tea"}, "qty": {qty}}); code != 400 {
			t.Errorf("qty %q: %d %v, want 400", qty, code, got)
		}
	}
	if code, got := c.call("POST", "/api/cart", url.Values{"item": {"tea"}, "qty": {"0"}}); code != 200 || len(got["cart"].(map[string]any)) != 0 {
		t.Errorf("qty 0: %d %v, want tea removed", code, got)
	}
	for i := range maxItems {
		if code, got := c.call("POST", "/api/cart/add", url.Values{"item": {fmt.Sprint("item ", i)}}); code != 200 {
			t.Fatalf("item %d: %d %v", i, code, got)
		}
	}
	if code, got := c.call("POST", "/api/cart/add", url.Values{"item": {"one more"}}); code != 400 {
		t.Errorf("item %d: %d %v, want 400", maxItems+1, code, got)
	}
	if code, got := c.call("POST", "/api/cart", url.Values{"item": {"one more"}, "qty": {"1"}}); code != 400 {
		t.Errorf("item %d by a plain write: %d %v, want 400", maxItems+1, code, got)
	}
}

func TestLogoutLeavesAFlashShownOnce(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.start()
	c.call("POST", "/api/login", url.Values{"user": {"ann"}})
	if code, got := c.call("POST", "/api/logout", nil); code != 200 || got["user"] != "" {
		t.Fatalf("logout: %d %v", code, got)
	}
	want := []any{"You have been logged out."}
	if _, st := c.call("GET", "/api/state", nil); fmt.Sprint(st["flash"]) != fmt.Sprint(want) || st["user"] != "" {
		t.Errorf("state after logout: %v, want flash %v and nobody logged in", st, want)
	}
	if _, st := c.call("GET", "/api/state", nil); len(st["flash"].([]any)) != 0 {
		t.Errorf("state the second time: flash %v, want none", st["flash"])
	}
	// Logging out while logged out leaves no message.
	c.call("POST", "/api/logout", nil)
	if _, st := c.call("GET", "/api/state", nil); len(st["flash"].([]any)) != 0 {
		t.Errorf("state after a logout of nobody: flash %v, want none", st["flash"])
	}
}

// handles returns the handles of a sessions answer, and the current one.
func handles(t *testing.T, got map[string]any) (all []string, current string) {
	t.Helper()
	list, ok := got["sessions"].([]any)
	if !ok {
		t.Fatalf("no sessions in %v", got)
	}
	for _, e := range list {
		s := e.(map[string]any)
		h := s["handle"].(string)
		all = append(all, h)
		if s["current"] == true {
			current = h
		}
		for _, k := range []string{"created", "last_seen"} {
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(s[k])); err != nil {
				t.Errorf("session %s: %s %v: %v", h, k, s[k], err)
			}
		}
	}
	return all, current
}

func TestUsersSeeAndEndOnlyTheirOwnSessions(t *testing.T) {
	srv := newTestServer(t)
	login := func(user string) *client {
		c := newClient(t, srv.URL)
		c.start()
		if code, got := c.call("POST", "/api/login", url.Values{"user": {user}}); code != 200 {
			t.Fatalf("login %s: %d %v", user, code, got)
		}
		return c
	}
	ann1, ann2, ann3, bob := login("ann"), login("ann"), login("ann"), login("bob")

	_, got := ann1.call("GET", "/api/sessions", nil)
	annAll, ann1Handle := handles(t, got)
	if len(annAll) != 3 || ann1Handle == "" {
		t.Fatalf("ann's sessions: %v, want 3, one current", got)
	}
	_, got = bob.call("GET", "/api/sessions", nil)
	if bobAll, _ := handles(t, got); len(bobAll) != 1 {
		t.Fatalf("bob's sessions: %v, want only his own", got)
	}
	_, got = ann2.call("GET", "/api/sessions", nil)
	_, ann2Handle := handles(t, got)

	// Bob cannot end ann's session, whatever handle he sends.
	if code, got := bob.call("POST", "/api/sessions/end", url.Values{"handle": {ann2Handle}}); code != http.StatusNotFound {
		t.Fatalf("bob ends ann's session: %d %v, want 404", code, got)
	}
	if code, _ := ann2.call("GET", "/api/me", nil); code != 200 {
		t.Fatalf("ann's second session after bob's try: %d, want still logged in", code)
	}
	// Nobody logged in cannot either.
	anon := newClient(t, srv.URL)
	anon.start()
	if code, _ := anon.call("POST", "/api/sessions/end", url.Values{"handle": {ann2Handle}}); code != http.StatusUnauthorized {
		t.Fatalf("an anonymous visitor ends ann's session: %d, want 401", code)
	}

	// Ann ends her second session from the first.
	if code, got := ann1.call("POST", "/api/sessions/end", url.Values{"handle": {ann2Handle}}); code != 200 || got["ended"] != 1.0 {
		t.Fatalf("ann ends her second session: %d %v", code, got)
	}
	if code, _ := ann2.call("GET", "/api/me", nil); code != http.StatusUnauthorized {
		t.Fatalf("ann's ended session: /api/me %d, want 401", code)
	}
	// And then all her others.
	if code, got := ann1.call("POST", "/api/sessions/end-others", nil); code != 200 || got["ended"] != 1.0 {
		t.Fatalf("ann logs out everywhere else: %d %v, want 1 ended", code, got)
	}
	for name, c := range map[string]*client{"ann's first": ann1, "bob's": bob} {
		if code, _ := c.call("GET", "/api/me", nil); code != 200 {
			t.Errorf("%s session after log out everywhere else: %d, want still logged in", name, code)
		}
	}
	if code, _ := ann3.call("GET", "/api/me", nil); code != http.StatusUnauthorized {
		t.Errorf("ann's third session after log out everywhere else: %d, want 401", code)
	}
	_, got = ann1.call("GET", "/api/sessions", nil)
	if all, cur := handles(t, got); len(all) != 1 || cur != ann1Handle {
		t.Errorf("ann's sessions at the end: %v, want only the first", got)
	}
}

// TestHeaderTokenFlow runs the page's flows as a script would, with the
// token in the Authorization header: no cookie, no CSRF token.
func TestHeaderTokenFlow(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	c.bearer = "new"
	code, got := c.call("POST", "/api/login", url.Values{"user": {"ann"}})
	if code != 200 || c.bearer == "new" || c.bearer == "" {
		t.Fatalf("login with Bearer new: %d %v, Session-Token %q", code, got, c.header.Get("Session-Token"))
	}
	if c.header.Get("Cache-Control") != "no-store" || c.cookie() != "" {
		t.Errorf("login: Cache-Control %q, cookie %q: want no-store and no cookie", c.header.Get("Cache-Control"), c.cookie())
	}
	c.csrf = "" // never needed
	token := c.bearer
	steps := []struct {
		method, path string
		form         url.Values
		want         string
	}{
		{"GET", "/api/me", nil, "map[user:ann]"},
		{"GET", "/api/visit", nil, "map[user:ann visits:1]"},
		{"POST", "/api/cart/add", url.Values{"item": {"tea"}}, "map[cart:map[tea:1]]"},
		{"POST", "/api/cart", url.Values{"item": {"tea"}, "qty": {"3"}}, "map[cart:map[tea:3]]"},
	}
	for _, st := range steps {
		c.csrf = ""
		code, got := c.call(st.method, st.path, st.form)
		if code != 200 || fmt.Sprint(got) != st.want {
			t.Fatalf("%s %s with the bearer token: %d %v, want %s", st.method, st.path, code, got, st.want)
		}
	}
	_, got = c.call("GET", "/api/sessions", nil)
	if all, cur := handles(t, got); len(all) != 1 || cur == "" {
		t.Errorf("sessions: %v", got)
	}
	if code, _ := c.call("POST", "/api/logout", nil); code != 200 || c.bearer != "" {
		t.Fatalf("logout: %d, Session-Token %q: want an empty Session-Token (the session ended)", code, c.bearer)
	}
	c.bearer = token
	if code, _ := c.call("GET", "/api/me", nil); code != http.StatusUnauthorized {
		t.Errorf("the token after logout: %d, want 401", code)
	}
}

func TestErrorsArePlainProblems(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.URL)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/me", 401},
		{"GET", "/api/sessions", 401},
		{"POST", "/api/cart/add", 403},
	} {
		code, got := c.call(tc.method, tc.path, url.Values{})
		if code != tc.code || got["status"] != float64(tc.code) || got["detail"] == "" {
			t.Errorf("%s %s: %d %v, want %d with status and detail", tc.method, tc.path, code, got, tc.code)
		}
	}
}
