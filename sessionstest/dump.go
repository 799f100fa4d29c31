package sessionstest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// Dump returns every key and every value a store holds (for Redis: the keys
// under the store's prefix, with the fields and values of each hash and the
// members of each sorted set), as a copy of the store would: a backup, a
// replica, a stolen dump.
type Dump func(t *testing.T, store backend.Store) [][]byte

// RunDump checks that a copy of the store reveals no session's data, owner,
// binding, token or CSRF secret: after sessions with distinctive values in
// every field of their data, an owner, a binding and a CSRF token were
// written (one of them logged in with Migrate, one rotated so that a
// forward record is stored), dump must return bytes holding none of those
// values, no token and no CSRF secret, in the clear or in base64, hex or
// base64url; and every token-shaped piece of the dump is tried as a session
// cookie (it must open no session) and as a CSRF token (it must pass no
// CSRF check).
func RunDump(t *testing.T, newStore func(t *testing.T) backend.Store, dump Dump) {
	t.Run("DumpRevealsNothing", func(t *testing.T) { dumpRevealsNothing(t, newStore(t), dump) })
}

// Secret is the session data of the dump suite: every field distinctive.
type Secret struct {
	Name  string
	Email string
	Card  []string
	Notes map[string]string
	Level int64
}

func dumpRevealsNothing(t *testing.T, store backend.Store, dump Dump) {
	mark := func(what string) string { return fmt.Sprintf("%s-%x", what, randBytes(6)) }
	ua := mark("browser")
	cfg := sessions.Config{
		Store:  store,
		Bind:   func(r *http.Request) string { return r.UserAgent() },
		Logger: quietLogger(),
	}
	mgr, err := sessions.New[Secret](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	// A second Manager rotates one session: its clock runs five minutes
	// ahead, past RotateEvery, so that the rotation happens now and the
	// forward record is in the dump, without rotating anything else.
	cfg.RotateEvery, cfg.RotateGrace = 4*time.Minute, time.Minute
	cfg.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }
	rotating, err := sessions.New[Secret](cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rotating.Close() })
	var csrf string
	h := mgr.Handler(mgr.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		switch r.URL.Path {
		case "/write":
			q := r.URL.Query()
			s.Data = Secret{Name: q.Get("name"), Email: q.Get("email"), Card: []string{q.Get("card")},
				Notes: map[string]string{q.Get("nk"): q.Get("nv")}, Level: 0x5EC2E7}
			s.SetOwner(q.Get("owner"))
			csrf = s.CSRFToken()
		case "/login":
			if err := mgr.Migrate(w, r, s); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			csrf = s.CSRFToken()
		}
		fmt.Fprint(w, s.Data.Name)
	})))
	do := func(method, target, cookie, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("User-Agent", ua)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if token != "" {
			r.Header.Set("X-CSRF-Token", token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var (
		secrets []string // must appear nowhere, in any encoding
		cookies []string // live sessions' cookies
		csrfs   []string // their CSRF tokens
	)
	for i := 0; i < 3; i++ {
		v := map[string]string{"name": mark("name"), "email": mark("email") + "@example.com", "card": mark("card"),
			"nk": mark("notekey"), "nv": mark("notevalue"), "owner": mark("owner")}
		q := make([]string, 0, len(v))
		for k, val := range v {
			q = append(q, k+"="+val)
			secrets = append(secrets, val)
		}
		w := do("GET", "/write?"+strings.Join(q, "&"), "", "")
		cookie := cookieOf(t, w)
		if i == 0 { // one logs in: a new token and a new CSRF secret
			w = do("POST", "/login", cookie, csrf)
			if w.Code != http.StatusOK {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
			secrets = append(secrets, tokenOf(cookie))
			cookie = cookieOf(t, w)
		}
		cookies, csrfs = append(cookies, cookie), append(csrfs, csrf)
	}
	// The client's binding value, and its unkeyed hash (what a dump could
	// test guesses of the bound value against).
	unkeyed := sha256.Sum256([]byte("sessions-bind\x00" + ua))
	secrets = append(secrets, ua, string(unkeyed[:]))
	// One is rotated: its old key holds a forward record for the grace.
	w := httptest.NewRecorder()
	r := request(cookies[1])
	r.Header.Set("User-Agent", ua)
	if _, err := rotating.Load(w, r); err != nil {
		t.Fatal(err)
	}
	rotated := cookieOf(t, w)
	if rotated == cookies[1] {
		t.Fatal("the session was not rotated")
	}
	secrets = append(secrets, tokenOf(cookies[1]))
	cookies[1] = rotated
	for i, c := range cookies {
		secrets = append(secrets, tokenOf(c))
		secret := csrfSecret(t, csrfs[i])
		secrets = append(secrets, string(secret))
	}

	var all [][]byte
	for _, b := range dump(t, store) {
		all = append(all, bytes.Clone(b))
	}
	if len(all) == 0 {
		t.Fatal("the dump is empty: it does not see what the store holds")
	}
	joined := bytes.Join(all, []byte{0})
	for _, secret := range secrets {
		for _, form := range encodings(secret) {
			if bytes.Contains(joined, []byte(form)) {
				t.Fatalf("the dump holds %q (as %q)", secret, form)
			}
		}
	}

	// Every token-shaped piece: no session opens with it, no CSRF check
	// passes with it. Every 32-byte window: not a CSRF secret.
	pieces := tokenShaped.FindAll(joined, -1)
	for _, p := range pieces {
		piece := string(p)
		if r := do("GET", "/", "__Host-session="+piece, ""); r.Body.Len() != 0 {
			t.Fatalf("a piece of the dump opened a session: %q", piece)
		}
		for _, c := range cookies {
			if r := do("POST", "/transfer", c, piece); r.Code != http.StatusForbidden {
				t.Fatalf("a piece of the dump passed as a CSRF token: %q (%d)", piece, r.Code)
			}
		}
	}
	for _, b := range all {
		for i := 0; i+32 <= len(b); i++ {
			for _, token := range csrfs {
				if bytes.Equal(b[i:i+32], csrfSecret(t, token)) {
					t.Fatal("the dump holds a CSRF secret")
				}
			}
		}
	}
	// The sessions themselves are all still there and work.
	for i, c := range cookies {
		if r := do("POST", "/transfer", c, csrfs[i]); r.Code != http.StatusOK || r.Body.Len() == 0 {
			t.Fatalf("session %d does not work after the dump: %d %q", i, r.Code, r.Body)
		}
	}
	t.Logf("dump: %d keys and values, %d bytes, %d token-shaped pieces tried", len(all), len(joined), len(pieces))
}

// tokenShaped matches what could be a token: 43 or more base64url
// characters (a token is 43).
var tokenShaped = regexp.MustCompile(`[A-Za-z0-9_-]{43,}`)

// encodings returns s and the usual encodings of it.
func encodings(s string) []string {
	b := []byte(s)
	return []string{s, base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b), hex.EncodeToString(b)}
}

// csrfSecret returns the secret a CSRF token masks: its two halves XORed.
func csrfSecret(t *testing.T, token string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 64 {
		t.Fatalf("CSRF token %q: %v", token, err)
	}
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = b[i] ^ b[32+i]
	}
	return secret
}

// tokenOf returns the token in a "name=token" cookie.
func tokenOf(cookie string) string {
	_, tok, _ := strings.Cut(cookie, "=")
	return tok
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
