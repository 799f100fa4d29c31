package sessions

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewTokenShape(t *testing.T) {
	seen := make(map[string]bool, 100_000)
	for i := 0; i < 100_000; i++ {
		tok := newToken()
		if len(tok) != tokenLen {
			t.Fatalf("token %d has length %d, want %d", i, len(tok), tokenLen)
		}
		if !validToken(tok) {
			t.Fatalf("newToken made a token validToken rejects")
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(raw) != tokenBytes || len(raw)*8 < 128 {
			t.Fatalf("token does not decode to %d bytes: %v", tokenBytes, err)
		}
		if seen[tok] {
			t.Fatalf("duplicate token after %d", i)
		}
		seen[tok] = true
	}
}

func TestValidToken(t *testing.T) {
	good := newToken()
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"fresh", good, true},
		{"all A", strings.Repeat("A", tokenLen), true},
		{"empty", "", false},
		{"truncated", good[:tokenLen-1], false},
		{"one extra character", good + "A", false},
		{"oversized", strings.Repeat("A", 8<<10), false},
		{"padding", good[:tokenLen-1] + "=", false},
		{"standard base64 +", "+" + good[1:], false},
		{"standard base64 /", "/" + good[1:], false},
		{"space", " " + good[1:], false},
		{"quote", `"` + good[1:], false},
		{"non-ASCII", "é" + good[2:], false},
		{"NUL", "\x00" + good[1:], false},
		{"non-canonical last character", good[:tokenLen-1] + "B", false}, // B = 1: carries a bit past 256
		{"canonical last character E", good[:tokenLen-1] + "E", true},    // E = 4
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := validToken(tc.token); got != tc.want {
				t.Errorf("validToken(%q) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
}

func TestStoreKeyIsHashOfToken(t *testing.T) {
	tok := newToken()
	key := storeKey(tok)
	if key == tok || strings.Contains(key, tok) || strings.Contains(tok, key) {
		t.Fatalf("store key %q reveals the token", key)
	}
	if key != storeKey(tok) {
		t.Fatal("storeKey is not deterministic")
	}
	if storeKey(newToken()) == key {
		t.Fatal("two tokens share a key")
	}
	if len(key) != 43 {
		t.Errorf("key length %d, want 43 (SHA-256 in unpadded base64)", len(key))
	}
}

func FuzzValidToken(f *testing.F) {
	f.Add(newToken())
	f.Add("")
	f.Add(strings.Repeat("A", tokenLen))
	f.Add(strings.Repeat("_", tokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		if !validToken(s) {
			return
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(raw) != tokenBytes {
			t.Fatalf("validToken accepted %q, which is not the canonical encoding of %d bytes", s, tokenBytes)
		}
		if base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("validToken accepted non-canonical %q", s)
		}
	})
}

func TestStoreNeverSeesToken(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	var s *Session[visitV1]
	h := loginFlow(t, env, &s)
	var tokens []string
	cookie := ""
	for _, path := range []string{"/cart", "/login", "/cart", "/logout", "/cart"} {
		rec := serve(t, h, "POST", path, cookie)
		if c, ok := sessionCookie(t, rec, cookieName); ok && c.Value != "" {
			tokens = append(tokens, c.Value)
			cookie = cookieHeader(c)
		}
	}
	if len(tokens) < 3 {
		t.Fatalf("only %d tokens issued", len(tokens))
	}
	keys := env.store.seenKeys()
	if len(keys) == 0 {
		t.Fatal("the store saw no keys")
	}
	for _, k := range keys {
		for _, tok := range tokens {
			if strings.Contains(k, tok) {
				t.Fatalf("the store was given key %q holding token %q", k, tok)
			}
		}
	}
}
