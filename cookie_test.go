package sessions

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCookieAttributesByDefault(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mgr.Get(r).Data.User = "ann"
	}))
	rec := serve(t, h, "GET", "/", "")
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok {
		t.Fatal("no cookie")
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %q: want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", setCookieLine(rec, cookieName))
	}
	if c.MaxAge != 1800 || !c.Expires.Equal(env.clock.Now().Add(30*time.Minute).Truncate(time.Second)) {
		t.Errorf("persistent cookie MaxAge %d Expires %v, want 1800 and the idle deadline", c.MaxAge, c.Expires)
	}
	if !validToken(c.Value) {
		t.Errorf("cookie value %q is not a token", c.Value)
	}
	if rec.Header().Get("Vary") != "Cookie" || rec.Header().Get("Cache-Control") != `no-cache="Set-Cookie"` {
		t.Errorf("a response setting the session cookie may be cached: Vary %q, Cache-Control %q",
			rec.Header().Get("Vary"), rec.Header().Get("Cache-Control"))
	}
}

func TestCookieOptions(t *testing.T) {
	tests := []struct {
		name   string
		cookie CookieConfig
		want   []string
		absent []string
	}{
		{"session only", CookieConfig{SessionOnly: true}, []string{"; Secure", "; HttpOnly"}, []string{"Expires=", "Max-Age="}},
		{"insecure dev", CookieConfig{Insecure: true}, []string{"; HttpOnly", "Max-Age="}, []string{"Secure"}},
		{"readable by script", CookieConfig{NoHTTPOnly: true}, []string{"; Secure"}, []string{"HttpOnly"}},
		{"strict", CookieConfig{SameSite: http.SameSiteStrictMode}, []string{"; SameSite=Strict"}, []string{"Lax"}},
		{"none", CookieConfig{SameSite: http.SameSiteNoneMode}, []string{"; SameSite=None", "; Secure"}, nil},
		{"browser default SameSite", CookieConfig{SameSite: http.SameSiteDefaultMode}, nil, []string{"SameSite"}},
		{"domain and path", CookieConfig{Domain: "example.com", Path: "/app"}, []string{"; Domain=example.com", "; Path=/app"}, nil},
		{"__Host- prefix", CookieConfig{Name: "__Host-sid"}, []string{"__Host-sid=", "; Path=/", "; Secure"}, []string{"Domain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[visitV1](t, Config{Cookie: tc.cookie})
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				env.mgr.Get(r).Data.User = "ann"
			}))
			line := serve(t, h, "GET", "/", "").Header().Get("Set-Cookie")
			for _, s := range tc.want {
				if !strings.Contains(line, s) {
					t.Errorf("Set-Cookie %q lacks %q", line, s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(line, s) {
					t.Errorf("Set-Cookie %q has %q", line, s)
				}
			}
		})
	}
}

func TestReadTokenSkipsMalformedCookies(t *testing.T) {
	good := newToken()
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"none", nil, ""},
		{"only other cookies", []string{"a=1; b=2"}, ""},
		{"plain", []string{"session=" + good}, good},
		{"among others", []string{"a=1; session=" + good + "; b=2"}, good},
		{"quoted", []string{`session="` + good + `"`}, good},
		{"empty value", []string{"session="}, ""},
		{"truncated", []string{"session=" + good[:20]}, ""},
		{"tampered", []string{"session=" + good[:10] + "!" + good[11:]}, ""},
		{"malformed first, good second", []string{"session=junk; session=" + good}, good},
		{"good in a second header line", []string{"session=junk", "session=" + good}, good},
		{"other name with our prefix", []string{"session2=" + good}, ""},
		{"control byte", []string{"session=" + good[:10] + "\x01" + good[11:]}, ""},
		{"8 KiB value", []string{"session=" + strings.Repeat("A", 8<<10)}, ""},
		{"1 MiB header", []string{"x=" + strings.Repeat("y", 1<<20) + "; session=" + good}, good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Cookie"] = tc.header
			got, ok := readToken(r, "session")
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("readToken = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestMalformedCookieNeverReachesStore(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !env.mgr.Get(r).IsNew() {
			t.Error("a malformed cookie gave a stored session")
		}
	}))
	for _, v := range []string{"", "x", newToken()[:42], newToken() + "A", strings.Repeat("A", 8<<10), "é", "\x7f" + newToken()[1:]} {
		serve(t, h, "GET", "/", cookieName+"="+v)
	}
	if n := env.store.reads(); n != 0 {
		t.Errorf("%d store reads for malformed cookies, want 0", n)
	}
}

func TestUnknownTokenIsNeverAdopted(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	planted := newToken()
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mgr.Get(r).Data.User = "victim"
	}))
	rec := serve(t, h, "GET", "/", cookieName+"="+planted)
	c, ok := sessionCookie(t, rec, cookieName)
	if !ok {
		t.Fatal("no cookie for the new session")
	}
	if c.Value == planted {
		t.Fatal("the unknown token from the client was adopted")
	}
	if _, err := env.store.inner.Get(t.Context(), storeKey(planted)); err == nil {
		t.Fatal("a session was stored under the planted token")
	}
}

func TestWriteCookieReplacesEarlierSessionCookie(t *testing.T) {
	c, _ := CookieConfig{}.withDefaults()
	w := httptest.NewRecorder()
	w.Header().Add("Set-Cookie", "other=1")
	now := time.Now()
	c.writeCookie(w, newToken(), now.Add(time.Hour), now)
	c.writeCookie(w, "", time.Time{}, now)
	lines := w.Header().Values("Set-Cookie")
	if len(lines) != 2 || lines[0] != "other=1" || !strings.HasPrefix(lines[1], cookieName+"=;") || !strings.Contains(lines[1], "Max-Age=0") {
		t.Errorf("Set-Cookie lines %q, want other=1 and one deleting session cookie", lines)
	}
}

func FuzzReadToken(f *testing.F) {
	f.Add("session=" + newToken())
	f.Add("a=b; session=\"" + newToken() + "\"; c")
	f.Add("session=;;;==; session")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{header}
		tok, ok := readToken(r, "session")
		if ok != validToken(tok) || (ok && !strings.Contains(header, tok)) {
			t.Fatalf("readToken(%q) = %q, %v", header, tok, ok)
		}
	})
}
