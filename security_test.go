package sessions

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The security suite: one test per attack of SECURITY.md.

func TestFixationPlantedUnknownTokenFindsNothingAfterLogin(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	planted := cookieName + "=" + newToken() // the attacker sets this cookie in the victim's browser
	rec := serve(t, h, "POST", "/login", planted)
	victim, ok := sessionCookie(t, rec, cookieName)
	if !ok || cookieName+"="+victim.Value == planted {
		t.Fatal("the victim's login adopted the planted token")
	}
	serve(t, h, "GET", "/", planted)
	if !s.IsNew() || s.Data.User != "" {
		t.Fatalf("the attacker's planted token gives %+v after the victim's login", s.Data)
	}
}

func TestFixationPlantedRealTokenFindsNothingAfterLogin(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	// The attacker gets a real anonymous session of their own...
	c, _ := sessionCookie(t, serve(t, h, "GET", "/cart", ""), cookieName)
	planted := cookieHeader(c)
	// ...plants it in the victim's browser, and the victim logs in.
	serve(t, h, "POST", "/login", planted)
	if s.Data.User != "ann" {
		t.Fatal("login failed")
	}
	serve(t, h, "GET", "/", planted)
	if !s.IsNew() || s.Data.User != "" {
		t.Fatalf("the planted token gives the victim's session after login: %+v", s.Data)
	}
}

func TestHijackStoreDumpHoldsNoUsableCookie(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	var tokens []string
	for i := 0; i < 5; i++ {
		c, _ := sessionCookie(t, serve(t, h, "POST", "/login", ""), cookieName)
		tokens = append(tokens, c.Value)
	}
	// The attacker dumps every key and value in the store.
	var dump []string
	for _, k := range env.store.seenKeys() {
		dump = append(dump, k)
		if e, err := env.store.inner.Get(t.Context(), k); err == nil {
			dump = append(dump, string(e.Value))
		}
	}
	for _, d := range dump {
		for _, tok := range tokens {
			if strings.Contains(d, tok) {
				t.Fatal("the store holds a token")
			}
		}
		// Whatever 43-character piece the dump holds, used as a cookie, gives
		// nothing.
		for i := 0; i+tokenLen <= len(d); i += tokenLen {
			serve(t, h, "GET", "/", cookieName+"="+d[i:i+tokenLen])
			if !s.IsNew() {
				t.Fatal("a piece of the store dump works as a cookie")
			}
		}
	}
}

func TestHijackBindingMismatchIsRefusedAndReported(t *testing.T) {
	var events []Event
	env := newTestEnv[visitV1](t, Config{
		Bind: func(r *http.Request) string { return r.UserAgent() },
		OnEvent: func(_ context.Context, ev Event) {
			if ev.Kind == EventSuspicious {
				events = append(events, ev)
			}
		},
	})
	var got *Session[visitV1]
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = env.mgr.Get(r)
		if r.URL.Path == "/login" {
			got.Data.User = "ann"
		}
	}))
	do := func(path, cookie, ua string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("User-Agent", ua)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	c, _ := sessionCookie(t, do("/login", "", "VictimBrowser/1.0"), cookieName)
	handle := got.Handle()
	do("/", cookieHeader(c), "VictimBrowser/1.0")
	if got.Data.User != "ann" {
		t.Fatal("the bound client lost its session")
	}
	do("/", cookieHeader(c), "curl/8.0") // the stolen cookie, from another client
	if !got.IsNew() || got.Data.User != "" {
		t.Fatal("a request whose binding differs got the session")
	}
	if len(events) != 1 || events[0].Handle != handle || !strings.Contains(events[0].Reason, "binding") {
		t.Fatalf("OnSuspicious got %+v, want one binding event for %s", events, handle)
	}
	do("/", cookieHeader(c), "VictimBrowser/1.0")
	if got.Data.User != "ann" {
		t.Fatal("the victim lost the session after the attacker's attempt")
	}
}

func TestBindingDefaultReportIsLoggedWithHandleOnly(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{Bind: func(r *http.Request) string { return r.UserAgent() }})
	w := newHeaderWriter()
	r := httptestRequest("")
	r.Header.Set("User-Agent", "a")
	s, _ := env.mgr.Load(w, r)
	s.Data.User = "ann"
	if err := env.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	token := w.Result().Cookies()[0].Value
	r2 := httptestRequest(cookieName + "=" + token)
	r2.Header.Set("User-Agent", "b")
	if s2, _ := env.mgr.Load(newHeaderWriter(), r2); !s2.IsNew() {
		t.Fatal("mismatched binding got the session")
	}
	logs := env.logs.String()
	if !strings.Contains(logs, "suspicious") || !strings.Contains(logs, s.Handle()) || strings.Contains(logs, token) {
		t.Fatalf("suspicious event log: %q", logs)
	}
}

func TestMITMTokenIsNeverReadFromURL(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.Data.User = "ann"
	_ = env.mgr.Save(w, httptestRequest(""), s)
	token := w.Result().Cookies()[0].Value
	for _, target := range []string{"/?session=" + token, "/" + token, "/?token=" + url.QueryEscape(token)} {
		r := httptest.NewRequest("GET", target, nil)
		got, err := env.mgr.Load(newHeaderWriter(), r)
		if err != nil || !got.IsNew() {
			t.Fatalf("a token in the URL %q was used", target)
		}
	}
}

func TestReplayAfterLogoutAndMigrate(t *testing.T) {
	for _, what := range []string{"/logout", "/login"} {
		t.Run(what, func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{})
			var s *Session[visitV1]
			h := loginFlow(t, env, &s)
			c, _ := sessionCookie(t, serve(t, h, "POST", "/login", ""), cookieName)
			serve(t, h, "POST", what, cookieHeader(c))
			for i := 0; i < 3; i++ {
				serve(t, h, "GET", "/", cookieHeader(c))
				if !s.IsNew() || s.Data.User != "" {
					t.Fatalf("replayed cookie after %s gives %+v", what, s.Data)
				}
			}
		})
	}
}

func TestRotationNewTokenAfterRotateEvery(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{RotateEvery: 15 * time.Minute, RotateGrace: 30 * time.Second, IdleTimeout: time.Hour, TouchInterval: time.Minute})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	c1, _ := sessionCookie(t, serve(t, h, "POST", "/login", ""), cookieName)
	env.clock.Advance(10 * time.Minute)
	if _, ok := sessionCookie(t, serve(t, h, "GET", "/", cookieHeader(c1)), cookieName); ok && s.IsNew() {
		t.Fatal("lost the session before RotateEvery")
	}
	env.clock.Advance(6 * time.Minute)
	c2, ok := sessionCookie(t, serve(t, h, "GET", "/", cookieHeader(c1)), cookieName)
	if !ok || c2.Value == c1.Value {
		t.Fatal("no new token after RotateEvery")
	}
	env.clock.Advance(20 * time.Second)
	serve(t, h, "GET", "/", cookieHeader(c1))
	if s.IsNew() || s.Data.User != "ann" {
		t.Fatal("the old token does not work within the grace window")
	}
	env.clock.Advance(11 * time.Second)
	serve(t, h, "GET", "/", cookieHeader(c1))
	if !s.IsNew() {
		t.Fatal("the old token still works after the grace window")
	}
	serve(t, h, "GET", "/", cookieHeader(c2))
	if s.IsNew() || s.Data.User != "ann" {
		t.Fatal("the new token does not work")
	}
}

func TestRevocationSessionsAndDestroyAll(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	login := func() (string, string) {
		w := newHeaderWriter()
		r := httptestRequest("")
		s, _ := env.mgr.Load(w, r)
		s.Data.User = "ann"
		s.SetOwner("user-42")
		if err := env.mgr.Migrate(w, r, s); err != nil {
			t.Fatal(err)
		}
		return cookieName + "=" + w.Result().Cookies()[0].Value, s.Handle()
	}
	var cookies, handles []string
	for i := 0; i < 3; i++ {
		c, h := login()
		cookies, handles = append(cookies, c), append(handles, h)
		env.clock.Advance(5 * time.Minute)
	}
	list, err := env.mgr.Sessions(t.Context(), "user-42")
	if err != nil || len(list) != 3 {
		t.Fatalf("Sessions: %d, %v; want 3", len(list), err)
	}
	if list[0].Handle != handles[2] || list[2].Handle != handles[0] {
		t.Errorf("Sessions not most recent first: %v", list)
	}
	for _, si := range list {
		if si.CreatedAt.IsZero() || si.LastSeen.Before(si.CreatedAt) || si.IdleDeadline.IsZero() {
			t.Errorf("incomplete SessionInfo %+v", si)
		}
	}
	if other, _ := env.mgr.Sessions(t.Context(), "user-7"); len(other) != 0 {
		t.Errorf("another owner sees %d sessions", len(other))
	}
	// "Log out everywhere else" from the newest session.
	n, err := env.mgr.DestroyAll(t.Context(), "user-42", handles[2])
	if err != nil || n != 2 {
		t.Fatalf("DestroyAll: %d, %v; want 2", n, err)
	}
	for i, c := range cookies {
		s, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(c))
		if alive := !s.IsNew(); alive != (i == 2) {
			t.Errorf("session %d alive=%v after DestroyAll except the newest", i, alive)
		}
	}
	if list, _ := env.mgr.Sessions(t.Context(), "user-42"); len(list) != 1 {
		t.Errorf("Sessions after DestroyAll: %d, want 1", len(list))
	}
}

func TestRevocationExpiredSessionsDoNotPileUp(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	for i := 0; i < 5; i++ {
		w := newHeaderWriter()
		s, _ := env.mgr.Load(w, httptestRequest(""))
		s.SetOwner("user-42")
		if err := env.mgr.Save(w, httptestRequest(""), s); err != nil {
			t.Fatal(err)
		}
	}
	env.clock.Advance(31 * time.Minute)
	if list, err := env.mgr.Sessions(t.Context(), "user-42"); err != nil || len(list) != 0 {
		t.Fatalf("Sessions after every session idled out: %d, %v", len(list), err)
	}
	if keys, _ := env.store.inner.Owned(t.Context(), indexID("user-42")); len(keys) != 0 {
		t.Errorf("%d index records of ended sessions are left", len(keys))
	}
}

func TestRevocationOwnerLimit(t *testing.T) {
	for _, policy := range []OwnerLimitPolicy{EvictLeastRecent, RefuseNew} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{MaxSessionsPerOwner: 2, OwnerLimit: policy})
			var handles []string
			var errs []error
			for i := 0; i < 3; i++ {
				w := newHeaderWriter()
				s, _ := env.mgr.Load(w, httptestRequest(""))
				s.SetOwner("user-42")
				errs = append(errs, env.mgr.Migrate(w, httptestRequest(""), s))
				handles = append(handles, s.Handle())
				env.clock.Advance(time.Minute)
			}
			list, _ := env.mgr.Sessions(t.Context(), "user-42")
			if len(list) != 2 {
				t.Fatalf("%d live sessions, want 2", len(list))
			}
			switch policy {
			case EvictLeastRecent:
				if errs[2] != nil || list[0].Handle != handles[2] || list[1].Handle != handles[1] {
					t.Errorf("the least recent session was not the one evicted: %v %v", errs, list)
				}
			case RefuseNew:
				if !errors.Is(errs[2], ErrTooManySessions) || list[0].Handle != handles[1] {
					t.Errorf("the third login was not refused: %v %v", errs, list)
				}
			}
		})
	}
}

func TestNoLeaksTokensNeverInLogsErrorsOrFormatting(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{
		Bind: func(r *http.Request) string { return r.UserAgent() },
	})
	var s *Session[visitV1]
	h := env.mgr.CSRF(loginFlow(t, env, &s))
	h = env.mgr.Handler(h)
	var tokens []string
	cookie := ""
	for _, path := range []string{"/cart", "/login", "/cart", "/logout", "/login"} {
		rec := serve(t, h, "GET", path, cookie)
		if c, ok := sessionCookie(t, rec, cookieName); ok && c.Value != "" {
			tokens = append(tokens, c.Value)
			cookie = cookieHeader(c)
		}
	}
	serve(t, h, "POST", "/cart", cookie) // CSRF failure, logged
	r := httptestRequest(cookie)
	r.Header.Set("User-Agent", "other")
	env.mgr.Load(newHeaderWriter(), r) // suspicious, logged
	env.store.failWith(errors.New("store down"))
	rec := serve(t, h, "GET", "/", cookie) // error, logged
	if rec.Code != 500 {
		t.Fatalf("with the store down: %d", rec.Code)
	}
	_, loadErr := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	env.store.failWith(nil)

	loaded, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("session", "s", loaded, "v", *loaded)
	texts := []string{
		env.logs.String(), fmt.Sprint(loadErr), logged.String(),
		fmt.Sprintf("%v %+v %#v %s", loaded, loaded, loaded, loaded),
		fmt.Sprintf("%v %+v %#v %s", *loaded, *loaded, *loaded, *loaded),
	}
	if len(tokens) < 3 {
		t.Fatalf("only %d tokens issued", len(tokens))
	}
	for _, text := range texts {
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				t.Fatalf("a token leaked into %q", text)
			}
		}
	}
	for _, event := range []string{"created", "migrated", "destroyed", "suspicious", "CSRF"} {
		if !strings.Contains(env.logs.String(), event) {
			t.Errorf("lifecycle event %q not logged", event)
		}
	}
}

func TestCSRFSynchronizerToken(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var token string
	h := env.mgr.Handler(env.mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			token = env.mgr.Get(r).CSRFToken()
		}
		fmt.Fprint(w, "ran")
	})))
	rec := serve(t, h, "GET", "/form", "")
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok || token == "" {
		t.Fatal("CSRFToken on a new session did not store it")
	}
	first := token
	serve(t, h, "GET", "/form", cookieHeader(c))
	if token == first {
		t.Error("two CSRFToken calls returned the same string: not masked")
	}
	otherEnvToken := func() string {
		w := newHeaderWriter()
		s, _ := env.mgr.Load(w, httptestRequest(""))
		return s.CSRFToken()
	}()
	post := func(header, form string) int {
		var body *strings.Reader
		if form != "" {
			body = strings.NewReader(url.Values{"csrf_token": {form}}.Encode())
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest("POST", "/do", body)
		req.Header.Set("Cookie", cookieHeader(c))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			req.Header.Set("X-CSRF-Token", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	tests := []struct {
		name         string
		header, form string
		want         int
	}{
		{"no token", "", "", 403},
		{"header token", first, "", 200},
		{"second token also valid", token, "", 200},
		{"form token", "", first, 200},
		{"another session's token", otherEnvToken, "", 403},
		{"tampered", first[:10] + "A" + first[11:], "", 403},
		{"truncated", first[:40], "", 403},
		{"garbage", "!!!", "", 403},
	}
	for _, tc := range tests {
		if tc.name == "tampered" && first[10] == 'A' {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.header, tc.form); got != tc.want {
				t.Errorf("POST with %s: %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}

func TestCookieHeaderTorture(t *testing.T) {
	good := newToken()
	tests := []struct {
		name      string
		header    string
		wantReads int64
	}{
		{"empty value", cookieName + "=", 0},
		{"8 KiB value", cookieName + "=" + strings.Repeat("a", 8<<10), 0},
		{"1 MiB header", cookieName + "=" + strings.Repeat("a", 1<<20), 0},
		{"many cookies with the same name", strings.Repeat(cookieName+"=bad; ", 500) + cookieName + "=" + good, 1},
		{"non-ASCII", cookieName + "=" + strings.Repeat("é", 20), 0},
		{"control bytes", "session=\x00\x01\x02" + good[3:], 0},
		{"tampered", cookieName + "=" + good[:20] + "*" + good[21:], 0},
		{"truncated", cookieName + "=" + good[:30], 0},
		{"no equals sign", cookieName, 0},
		{"only separators", ";;;;", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{})
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !env.mgr.Get(r).IsNew() {
					t.Error("a stored session for a bad cookie")
				}
			}))
			rec := serve(t, h, "GET", "/", tc.header)
			if rec.Code != 200 {
				t.Errorf("status %d, want 200 with a fresh session", rec.Code)
			}
			if n := env.store.reads(); n != tc.wantReads {
				t.Errorf("%d store reads, want %d", n, tc.wantReads)
			}
		})
	}
}

func TestMillionTokensUniqueAndWellFormed(t *testing.T) {
	const n = 1_000_000
	seen := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		tok := newToken()
		if len(tok) != tokenLen || !validToken(tok) {
			t.Fatalf("token %q is not %d characters of the URL-safe alphabet", tok, tokenLen)
		}
		if _, dup := seen[tok]; dup {
			t.Fatalf("duplicate token after %d", i)
		}
		seen[tok] = struct{}{}
	}
}

// FuzzLoadCookieHeader sends arbitrary Cookie headers through the
// middleware: never a panic, never a store lookup for a malformed token,
// always a fresh session or the stored one.
func FuzzLoadCookieHeader(f *testing.F) {
	f.Add("session=" + newToken())
	f.Add("session=")
	f.Add(strings.Repeat("session=x; ", 50))
	f.Add("session=\x00\xff" + newToken())
	f.Add("a=b; session=\"" + newToken() + "\"")
	f.Fuzz(func(t *testing.T, header string) {
		env := newTestEnv[visitV1](t, Config{})
		h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !env.mgr.Get(r).IsNew() {
				t.Fatal("an unknown token gave a stored session")
			}
		}))
		req := httptest.NewRequest("GET", "/", nil)
		req.Header["Cookie"] = []string{header}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		if _, ok := readToken(req, "session"); !ok && env.store.reads() != 0 {
			t.Fatal("a malformed cookie reached the store")
		}
	})
}

// FuzzCSRFToken checks that no arbitrary string passes as a session's
// CSRF token, and that the parser never panics.
func FuzzCSRFToken(f *testing.F) {
	s := &Session[visitV1]{}
	good := s.CSRFToken()
	f.Add(good)
	f.Add("")
	f.Add(good[:40])
	f.Add(strings.Repeat("A", len(good)))
	f.Fuzz(func(t *testing.T, token string) {
		if token == good {
			return
		}
		if s.validCSRF(token) {
			// Only another masking of the same secret may pass.
			raw, err := base64.RawURLEncoding.DecodeString(token)
			if err != nil || len(raw) != 2*csrfSecretLen {
				t.Fatalf("validCSRF accepted %q", token)
			}
		}
	})
}

// TestCookieTossingDefaultNameIsHostPrefixed: with the default config the
// cookie is named __Host-session, with the attributes the prefix demands
// (Secure, Path=/, no Domain), so browsers refuse a cookie of that name set
// by a sibling subdomain. Other configs fall back as documented.
func TestCookieTossingDefaultNameIsHostPrefixed(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  CookieConfig
		want string
	}{
		{"defaults", CookieConfig{}, "__Host-session"},
		{"with a Domain", CookieConfig{Domain: "example.com"}, "__Secure-session"},
		{"with another Path", CookieConfig{Path: "/app"}, "__Secure-session"},
		{"Insecure (local development)", CookieConfig{Insecure: true}, "session"},
		{"a name of one's own", CookieConfig{Name: "sid"}, "sid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{Cookie: tc.cfg})
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				env.mgr.Get(r).Data.User = "ann"
			}))
			line := setCookieLine(serve(t, h, "GET", "/", ""), tc.want)
			if line == "" {
				t.Fatalf("no cookie named %q", tc.want)
			}
			if tc.want == "__Host-session" && (!strings.Contains(line, "; Secure") || !strings.Contains(line, "; Path=/;") || strings.Contains(line, "Domain=")) {
				t.Fatalf("__Host- cookie without the attributes the prefix needs: %q", line)
			}
		})
	}
}

// TestCookieTossingPlantedLegacyCookieNotAdopted: a cookie of the old
// default name ("session"), planted from a sibling subdomain after the
// upgrade, neither shadows the victim's __Host- session nor is adopted
// when the victim has none.
func TestCookieTossingPlantedLegacyCookieNotAdopted(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		if r.URL.Path == "/set" {
			s.Data.User = r.URL.Query().Get("u")
		}
		fmt.Fprint(w, s.Data.User)
	}))
	victim, _ := sessionCookie(t, serve(t, h, "GET", "/set?u=victim", ""), cookieName)
	attacker, _ := sessionCookie(t, serve(t, h, "GET", "/set?u=attacker", ""), cookieName)
	planted := "session=" + attacker.Value
	for _, header := range []string{planted + "; " + cookieHeader(victim), cookieHeader(victim) + "; " + planted} {
		if rec := serve(t, h, "GET", "/", header); rec.Body.String() != "victim" {
			t.Fatalf("Cookie %q served %q, want the victim's session", header, rec.Body.String())
		}
	}
	if rec := serve(t, h, "GET", "/", planted); rec.Body.String() != "" {
		t.Fatalf("a planted cookie of the old default name was adopted: %q", rec.Body.String())
	}
}

// TestCookieTossingUnknownTokenNeverShadowsLiveOne: with a name without a
// prefix (which a sibling can plant), an unknown or ended token sent first
// does not log the victim out; two live sessions serve the first and are
// reported to OnEvent.
func TestCookieTossingUnknownTokenNeverShadowsLiveOne(t *testing.T) {
	var reports []Event
	env := newTestEnv[visitV1](t, Config{
		Cookie: CookieConfig{Name: "sid"},
		OnEvent: func(_ context.Context, ev Event) {
			if ev.Kind == EventSuspicious {
				reports = append(reports, ev)
			}
		},
	})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		if r.URL.Path == "/set" {
			s.Data.User = r.URL.Query().Get("u")
		}
		fmt.Fprint(w, s.Data.User)
	}))
	victim, _ := sessionCookie(t, serve(t, h, "GET", "/set?u=victim", ""), "sid")
	attacker, _ := sessionCookie(t, serve(t, h, "GET", "/set?u=attacker", ""), "sid")
	ended, _ := sessionCookie(t, serve(t, h, "GET", "/set?u=ended", ""), "sid")
	w, r := newHeaderWriter(), httptestRequest(cookieHeader(ended))
	s, _ := env.mgr.Load(w, r)
	if err := env.mgr.Destroy(w, r, s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, header, want string
		reported           int
	}{
		{"unknown first", "sid=" + newToken() + "; " + cookieHeader(victim), "victim", 0},
		{"ended first", cookieHeader(ended) + "; " + cookieHeader(victim), "victim", 0},
		{"malformed first", "sid=junk; " + cookieHeader(victim), "victim", 0},
		{"two live: the first is served and reported", cookieHeader(attacker) + "; " + cookieHeader(victim), "attacker", 1},
		{"two live, the victim's first", cookieHeader(victim) + "; " + cookieHeader(attacker), "victim", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reports = nil
			if rec := serve(t, h, "GET", "/", tc.header); rec.Body.String() != tc.want {
				t.Fatalf("served %q, want %q", rec.Body.String(), tc.want)
			}
			if len(reports) != tc.reported {
				t.Fatalf("%d reports (%+v), want %d", len(reports), reports, tc.reported)
			}
		})
	}
}

// TestUpgradeFromOldDefaultCookieNameKeepsSessions: a session stored before
// the upgrade under the old default name "session" is still served, and
// its cookie moves to the new name.
func TestUpgradeFromOldDefaultCookieNameKeepsSessions(t *testing.T) {
	clock := newFakeClock()
	before := newTestEnv[visitV1](t, Config{Cookie: CookieConfig{Name: "session"}, Now: clock.Now})
	old := newStoredSession(t, before) // "session=<token>"
	clock.Advance(time.Minute)         // the new deploy starts
	after := newTestEnv[visitV1](t, Config{Store: before.store, Now: clock.Now})
	var user string
	h := after.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user = after.mgr.Get(r).Data.User
	}))
	rec := serve(t, h, "GET", "/", old)
	if user != "ann" {
		t.Fatalf("the upgrade logged the visitor out: user %q", user)
	}
	moved, ok := sessionCookie(t, rec, cookieName)
	if !ok || "session="+moved.Value != old {
		t.Fatalf("the upgrade did not move the token to %s: %q", cookieName, rec.Header().Values("Set-Cookie"))
	}
	if line := setCookieLine(rec, "session"); !strings.Contains(line, "Max-Age=0") {
		t.Fatalf("the old cookie was not deleted: %q", line)
	}
	user = ""
	serve(t, h, "GET", "/", cookieHeader(moved))
	if user != "ann" {
		t.Fatalf("the moved cookie gives user %q", user)
	}
}
