package sessions

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/codec"
)

type address struct {
	Street string
	Zip    int
}

// rich is a data type with every kind of field the round trip must keep.
type rich struct {
	Name    string
	Count   int
	Big     int64
	Ratio   float64
	OK      bool
	Tags    []string
	Scores  map[string]int
	Home    address
	Work    *address
	Seen    time.Time
	Items   []address
	ByID    map[int64]string
	Missing *address
}

var codecs = []struct {
	name  string
	codec codec.Codec
}{
	{"msgpack", codec.Msgpack{}},
	{"gob", codec.Gob{}},
	{"json", codec.JSON{}},
}

func TestRoundTripEveryCodec(t *testing.T) {
	want := rich{
		Name:   "Zoë",
		Count:  -42,
		Big:    1 << 60,
		Ratio:  0.25,
		OK:     true,
		Tags:   []string{"a", "b", ""},
		Scores: map[string]int{"x": 1, "y": 2},
		Home:   address{"Main St 1", 12345},
		Work:   &address{"Office 2", 54321},
		Seen:   time.Date(2026, 11, 24, 10, 30, 15, 123456789, time.UTC),
		Items:  []address{{"a", 1}, {"b", 2}},
		ByID:   map[int64]string{7: "seven", -1: "minus one"},
	}
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[rich](t, Config{Codec: tc.codec})
			var got rich
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := env.mgr.Get(r)
				if r.URL.Path == "/set" {
					s.Data = want
					return
				}
				got = s.Data
			}))
			rec := serve(t, h, "GET", "/set", "")
			c, ok := sessionCookie(t, rec, cookieName)
			if !ok {
				t.Fatal("no session cookie after setting data")
			}
			serve(t, h, "GET", "/get", cookieHeader(c))
			if !got.Seen.Equal(want.Seen) {
				t.Errorf("Seen = %v, want %v", got.Seen, want.Seen)
			}
			want := want
			got.Seen, want.Seen = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip through %s:\n got %+v\nwant %+v", tc.name, got, want)
			}
		})
	}
}

type visitV1 struct {
	User  string
	Count int
	Old   string
}

type visitV2 struct {
	User  string
	Count int
	New   []string
}

func TestOldSessionsDecodeAfterFieldAddedOrRemoved(t *testing.T) {
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			v1 := newTestEnv[visitV1](t, Config{Codec: tc.codec})
			v2 := newTestEnv[visitV2](t, Config{Codec: tc.codec, Store: v1.store, Now: v1.clock.Now})

			write := v1.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v1.mgr.Get(r).Data = visitV1{User: "ann", Count: 3, Old: "dropped"}
			}))
			c, ok := sessionCookie(t, serve(t, write, "GET", "/", ""), cookieName)
			if !ok {
				t.Fatal("no cookie")
			}
			var got visitV2
			var isNew bool
			read := v2.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := v2.mgr.Get(r)
				got, isNew = s.Data, s.IsNew()
			}))
			serve(t, read, "GET", "/", cookieHeader(c))
			if isNew {
				t.Fatal("the session written with the old type was not found with the new one")
			}
			if got.User != "ann" || got.Count != 3 || got.New != nil {
				t.Errorf("decoded with the new type: %+v, want User ann, Count 3, New nil", got)
			}
		})
	}
}

func TestLazyAnonymousRequestGetsNoCookieAndNoStoreWrite(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		_ = s.Data.User // reads only
		_ = s.Handle()  // asking for the handle stores nothing either
		fmt.Fprint(w, "hello")
	}))
	for i := 0; i < 3; i++ {
		rec := serve(t, h, "GET", "/", "")
		if line := rec.Header().Get("Set-Cookie"); line != "" {
			t.Fatalf("anonymous request got Set-Cookie %q", line)
		}
	}
	if n := env.store.writes.Load(); n != 0 {
		t.Errorf("store writes = %d, want 0", n)
	}
	if n := env.store.reads(); n != 0 {
		t.Errorf("store reads = %d, want 0 for requests without a cookie", n)
	}
}

func TestUnchangedSessionIsNotRewritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain bool // hide the store's optional capabilities
	}{{"GetToucher", false}, {"plain Store", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			counting := newCountingStore(t, clock.Now)
			cfg := Config{IdleTimeout: 30 * time.Minute, TouchInterval: 5 * time.Minute, Now: clock.Now, Store: counting}
			if tc.plain {
				cfg.Store = plainStore{counting}
			}
			env := newTestEnv[visitV1](t, cfg)
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := env.mgr.Get(r)
				if r.URL.Path == "/set" {
					s.Data.User = "ann"
				}
				if r.URL.Path == "/same" {
					s.Data.User = "ann" // assigned, but equal: nothing to write
				}
			}))
			c, _ := sessionCookie(t, serve(t, h, "GET", "/set", ""), cookieName)
			created := counting.writes.Load()
			if created != 1 {
				t.Fatalf("creating the session cost %d writes, want 1", created)
			}

			steps := []struct {
				advance    time.Duration
				path       string
				wantWrites int64 // writes this request
				wantCookie bool
			}{
				{time.Minute, "/read", 0, false},
				{time.Minute, "/same", 0, false},
				{2*time.Minute + 59*time.Second, "/read", 0, false}, // 4m59s since the write
				{2 * time.Second, "/read", 1, true},                 // 5m01s: touch due
				{time.Minute, "/read", 0, false},
				{4*time.Minute + 30*time.Second, "/read", 1, true},
				{time.Second, "/set", 0, false}, // equal data: no write
			}
			for i, st := range steps {
				clock.Advance(st.advance)
				before := counting.writes.Load()
				rec := serve(t, h, "GET", st.path, cookieHeader(c))
				if got := counting.writes.Load() - before; got != st.wantWrites {
					t.Errorf("step %d (%s after %v): %d store writes, want %d", i, st.path, st.advance, got, st.wantWrites)
				}
				line := setCookieLine(rec, cookieName)
				if (line != "") != st.wantCookie {
					t.Errorf("step %d: Set-Cookie %q, want cookie: %v", i, line, st.wantCookie)
				}
				if st.wantCookie && !strings.Contains(line, "Max-Age=1800") {
					t.Errorf("step %d: refreshed cookie %q does not carry the new idle deadline (Max-Age=1800)", i, line)
				}
			}
			if tc.plain && counting.touches.Load() != 2 {
				t.Errorf("plain store: %d Touch calls, want 2", counting.touches.Load())
			}
			if !tc.plain && (counting.touches.Load() != 0 || counting.gets.Load() != 0) {
				t.Errorf("GetToucher store: %d Touch and %d Get calls, want every load to be one GetTouch",
					counting.touches.Load(), counting.gets.Load())
			}
		})
	}
}

func TestOneStoreReadPerRequest(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mgr.Get(r).Data.Count++
	}))
	c, _ := sessionCookie(t, serve(t, h, "GET", "/", ""), cookieName)
	for i := 0; i < 5; i++ {
		before := env.store.reads()
		serve(t, h, "GET", "/", cookieHeader(c))
		if n := env.store.reads() - before; n != 1 {
			t.Fatalf("request %d: %d store reads, want 1", i, n)
		}
	}
}

func TestIdleTimeoutSlidesWithActivity(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute})
	var seen []visitV1
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		if r.URL.Path == "/login" {
			s.Data.User = "ann"
		}
		seen = append(seen, s.Data)
	}))
	c, _ := sessionCookie(t, serve(t, h, "GET", "/login", ""), cookieName)
	// Active every 20 minutes for five hours: never idle for 30 minutes.
	for i := 0; i < 15; i++ {
		env.clock.Advance(20 * time.Minute)
		serve(t, h, "GET", "/", cookieHeader(c))
		if got := seen[len(seen)-1].User; got != "ann" {
			t.Fatalf("after %d active periods of 20 minutes the session is gone", i+1)
		}
	}
	env.clock.Advance(30*time.Minute + time.Second)
	serve(t, h, "GET", "/", cookieHeader(c))
	if got := seen[len(seen)-1]; got.User != "" {
		t.Fatalf("after 30 idle minutes the old data is still served: %+v", got)
	}
}

func TestAbsoluteTimeoutEndsActiveSession(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 2 * time.Hour, TouchInterval: time.Minute})
	var last *Session[visitV1]
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.mgr.Get(r)
		if r.URL.Path == "/login" {
			s.Data.User = "ann"
		}
		s.Data.Count++ // a write on every request
		last = s
	}))
	c, _ := sessionCookie(t, serve(t, h, "GET", "/login", ""), cookieName)
	deadline := last.AbsoluteDeadline()
	if want := env.clock.Now().Add(2 * time.Hour); !deadline.Equal(want) {
		t.Fatalf("AbsoluteDeadline = %v, want %v", deadline, want)
	}
	for env.clock.Now().Add(5 * time.Minute).Before(deadline) {
		env.clock.Advance(5 * time.Minute)
		serve(t, h, "GET", "/", cookieHeader(c))
		if last.IsNew() || last.Data.User != "ann" {
			t.Fatalf("session ended at %v, before its absolute deadline %v", env.clock.Now(), deadline)
		}
		if last.IdleDeadline().After(deadline) {
			t.Fatalf("idle deadline %v is past the absolute deadline %v", last.IdleDeadline(), deadline)
		}
	}
	env.clock.Advance(5 * time.Minute)
	rec := serve(t, h, "GET", "/", cookieHeader(c))
	if !last.IsNew() && last.Data.User == "ann" {
		t.Fatal("an active session outlived its absolute deadline")
	}
	if last.Data.Count != 1 {
		t.Errorf("the expired session's data leaked into the new one: %+v", last.Data)
	}
	if nc, ok := sessionCookie(t, rec, cookieName); !ok || nc.Value == c.Value {
		t.Error("the new session after expiry did not get a new token")
	}
}

func TestExpiredTokenGetsFreshSessionNotOldData(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var got *Session[visitV1]
	h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = env.mgr.Get(r)
		if r.URL.Path == "/login" {
			got.Data.User = "ann"
		}
	}))
	c, _ := sessionCookie(t, serve(t, h, "GET", "/login", ""), cookieName)
	env.clock.Advance(31 * time.Minute)
	rec := serve(t, h, "GET", "/", cookieHeader(c))
	if !got.IsNew() || got.Data.User != "" {
		t.Fatalf("expired token served %+v (new=%v)", got.Data, got.IsNew())
	}
	if line := rec.Header().Get("Set-Cookie"); line != "" {
		t.Errorf("a read-only request with an expired token got Set-Cookie %q", line)
	}
}

func TestNewRejectsNonsensicalConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative idle", Config{IdleTimeout: -time.Second}},
		{"negative absolute", Config{AbsoluteTimeout: -time.Second}},
		{"idle longer than absolute", Config{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: time.Hour}},
		{"idle longer than default absolute", Config{IdleTimeout: 13 * time.Hour}},
		{"negative touch interval", Config{TouchInterval: -time.Second}},
		{"touch interval not below idle", Config{IdleTimeout: time.Minute, TouchInterval: time.Minute}},
		{"negative max size", Config{MaxSize: -1}},
		{"blank cookie name", Config{Cookie: CookieConfig{Name: " "}}},
		{"cookie name with =", Config{Cookie: CookieConfig{Name: "a=b"}}},
		{"cookie name with ;", Config{Cookie: CookieConfig{Name: "a;b"}}},
		{"relative cookie path", Config{Cookie: CookieConfig{Path: "app"}}},
		{"cookie path with ;", Config{Cookie: CookieConfig{Path: "/a;b"}}},
		{"cookie domain with space", Config{Cookie: CookieConfig{Domain: "a b.com"}}},
		{"unknown SameSite", Config{Cookie: CookieConfig{SameSite: 9}}},
		{"SameSite=None without Secure", Config{Cookie: CookieConfig{SameSite: http.SameSiteNoneMode, Insecure: true}}},
		{"__Host- without Secure", Config{Cookie: CookieConfig{Name: "__Host-s", Insecure: true}}},
		{"__Host- with a path", Config{Cookie: CookieConfig{Name: "__Host-s", Path: "/app"}}},
		{"__Host- with a domain", Config{Cookie: CookieConfig{Name: "__Host-s", Domain: "example.com"}}},
		{"__Secure- without Secure", Config{Cookie: CookieConfig{Name: "__Secure-s", Insecure: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New[visitV1](tc.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewZeroConfigDefaults(t *testing.T) {
	m, err := New[visitV1](Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.cfg.IdleTimeout != 30*time.Minute || m.cfg.AbsoluteTimeout != 12*time.Hour || m.cfg.TouchInterval != 3*time.Minute {
		t.Errorf("timeouts %v/%v/%v, want 30m/12h/3m", m.cfg.IdleTimeout, m.cfg.AbsoluteTimeout, m.cfg.TouchInterval)
	}
	if _, ok := m.cfg.Codec.(codec.Msgpack); !ok {
		t.Errorf("default codec %T, want codec.Msgpack", m.cfg.Codec)
	}
	if m.ownStore == nil || m.st.cas == nil || m.st.replacer == nil || m.st.getToucher == nil || m.st.indexer == nil {
		t.Error("default store is not an owned memory store with every capability")
	}
	c := m.cfg.Cookie
	if c.Name != cookieName || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.Insecure || c.NoHTTPOnly || c.SessionOnly {
		t.Errorf("default cookie %+v", c)
	}
	if _, err := New[visitV1](Config{Cookie: CookieConfig{Name: "__Host-sid"}}); err != nil {
		t.Errorf("a __Host- cookie with the defaults was refused: %v", err)
	}
}

func TestNewRejectsTypeTheCodecCannotEncode(t *testing.T) {
	_, err := New[struct{ C chan int }](Config{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with an unencodable T: err = %v, want ErrInvalidConfig", err)
	}
}

func TestSaveRefusesDataOverMaxSize(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{MaxSize: 100})
	r := httptestRequest("")
	w := newHeaderWriter()
	s, err := env.mgr.Load(w, r)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.User = strings.Repeat("x", 200)
	if err := env.mgr.Save(w, r, s); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Save of 200 bytes with MaxSize 100: err = %v, want ErrTooLarge", err)
	}
	if env.store.writes.Load() != 0 {
		t.Error("oversized data reached the store")
	}
}

func TestCorruptStoredBytesGiveFreshSession(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.Data.User = "ann"
	if err := env.mgr.Save(w, httptestRequest(""), s); err != nil {
		t.Fatal(err)
	}
	cookie := w.Header().Get("Set-Cookie")
	token, _, _ := strings.Cut(strings.TrimPrefix(cookie, cookieName+"="), ";")
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not an envelope at all, just text")},
		{"truncated envelope", appendEnvelope(nil, &envelope{created: time.Now(), absolute: time.Now(), issued: time.Now()}, nil, "")[:20]},
		{"data the codec rejects", appendEnvelope(nil, &envelope{created: time.Now(), absolute: time.Now().Add(time.Hour), issued: time.Now(), data: []byte{0xc1}}, nil, "")},
		{"sealed under another token", appendEnvelope(nil, &envelope{created: time.Now(), absolute: time.Now().Add(time.Hour), issued: time.Now(), data: []byte{0x80}}, newSealer(newToken()), storeKey(token))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := env.store.inner.Get(t.Context(), storeKey(token))
			if err != nil {
				t.Fatal(err)
			}
			e.Value = tc.value
			if err := env.store.inner.Set(t.Context(), storeKey(token), e); err != nil {
				t.Fatal(err)
			}
			s, err := env.mgr.Load(newHeaderWriter(), httptestRequest(cookieName+"="+token))
			if err != nil {
				t.Fatalf("Load of corrupt bytes: %v, want a fresh session", err)
			}
			if !s.IsNew() || s.Data.User != "" {
				t.Fatalf("corrupt bytes gave %+v (new=%v)", s.Data, s.IsNew())
			}
			if !strings.Contains(env.logs.String(), "level=WARN") {
				t.Error("corrupt session not logged")
			}
		})
	}
}

type otherData struct{ Theme string }

func TestManyManagersInOneProcess(t *testing.T) {
	a := newTestEnv[visitV1](t, Config{Cookie: CookieConfig{Name: "a"}})
	b := newTestEnv[visitV1](t, Config{Cookie: CookieConfig{Name: "b"}})
	c := newTestEnv[otherData](t, Config{Cookie: CookieConfig{Name: "c"}, IdleTimeout: time.Minute})
	h := a.mgr.Handler(b.mgr.Handler(c.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mgr.Get(r).Data.User = "in a"
		b.mgr.Get(r).Data.Count++
		c.mgr.Get(r).Data.Theme = "dark"
	}))))
	rec := serve(t, h, "GET", "/", "")
	for name, env := range map[string]*countingStore{"a": a.store, "b": b.store, "c": c.store} {
		if _, ok := sessionCookie(t, rec, name); !ok {
			t.Errorf("no cookie %q", name)
		}
		if env.writes.Load() != 1 {
			t.Errorf("manager %s: %d writes, want 1", name, env.writes.Load())
		}
	}
	if line := setCookieLine(rec, "c"); !strings.Contains(line, "Max-Age=60") {
		t.Errorf("manager c's own idle timeout not applied: %q", line)
	}
}

type withMaps struct {
	Scores map[string]int
	ByID   map[int64][]string
	Any    any
}

func TestUnchangedSessionWithMapsIsNotRewritten(t *testing.T) {
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv[withMaps](t, Config{Codec: tc.codec})
			h := env.mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := env.mgr.Get(r)
				switch r.URL.Path {
				case "/set":
					s.Data.Scores = map[string]int{}
					s.Data.ByID = map[int64][]string{}
					for i := 0; i < 40; i++ {
						s.Data.Scores[fmt.Sprint("k", i)] = i
						s.Data.ByID[int64(i)] = []string{fmt.Sprint(i)}
					}
				case "/change":
					s.Data.Scores["k1"]++
				}
			}))
			c, _ := sessionCookie(t, serve(t, h, "GET", "/set", ""), cookieName)
			for i := 0; i < 10; i++ {
				serve(t, h, "GET", "/read", cookieHeader(c))
			}
			if n := env.store.writes.Load(); n != 1 {
				t.Fatalf("%d store writes after 10 read-only requests, want 1 (the creation)", n)
			}
			serve(t, h, "GET", "/change", cookieHeader(c))
			if n := env.store.writes.Load(); n != 2 {
				t.Fatalf("a changed map value was not written (%d writes, want 2)", n)
			}
		})
	}
}
