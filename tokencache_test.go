package sessions

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestTokenCache: a token's value is derived once while it stays cached;
// another token falling on its slot replaces it, and neither is ever given
// the other's value.
func TestTokenCache(t *testing.T) {
	var c tokenCache[string]
	derived := map[string]int{}
	derive := func(tok string) string { derived[tok]++; return "key of " + tok }
	a := newToken()
	for range 3 {
		if got := c.get(a, derive); got != "key of "+a {
			t.Fatalf("get(a) = %q", got)
		}
	}
	if derived[a] != 1 {
		t.Errorf("a derived %d times, want 1", derived[a])
	}
	// b: another token on a's slot.
	var b string
	for i := 0; b == ""; i++ {
		if tok := newToken(); tokenSlot(tok) == tokenSlot(a) {
			b = tok
		}
		if i > 1_000_000 {
			t.Fatal("no token on a's slot")
		}
	}
	if got := c.get(b, derive); got != "key of "+b {
		t.Fatalf("get(b) = %q", got)
	}
	if got := c.get(a, derive); got != "key of "+a || derived[a] != 2 {
		t.Errorf("get(a) after b took its slot = %q, derived %d times; want a's key, derived again", got, derived[a])
	}
	// The store keys of a Manager come from its cache and are storeKey's.
	m, err := New[visitV1](Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 2000 {
		tok := newToken()
		if got := m.keys.get(tok, storeKey); got != storeKey(tok) {
			t.Fatalf("token %d: key %q, want %q", i, got, storeKey(tok))
		}
	}
}

func TestSameSecret(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"xbc", "abc", false},
		{fmt.Sprint(1 << 40), fmt.Sprint(1 << 40), true},
	} {
		if got := sameSecret(tc.a, tc.b); got != tc.want {
			t.Errorf("sameSecret(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestTokenCacheKeepsNoRequestMemory: a cached token is a copy, not a slice
// of the request's Cookie header it came from, which would stay in memory
// with it (up to 1 MB a header, 1,024 slots).
func TestTokenCacheKeepsNoRequestMemory(t *testing.T) {
	var c tokenCache[string]
	tok := newToken()
	header := "sid=" + tok + "; pad=" + strings.Repeat("x", 64<<10)
	in := header[4 : 4+len(tok)]
	c.get(in, storeKey)
	e := c.slots[tokenSlot(tok)].Load()
	if e == nil || e.token != tok {
		t.Fatalf("slot holds %+v", e)
	}
	inHeader := func(s, header string) bool {
		start := uintptr(unsafe.Pointer(unsafe.StringData(header)))
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= start && p < start+uintptr(len(header))
	}
	if inHeader(e.token, header) {
		t.Error("the cached token is a slice of the request's header")
	}
	// Put again, from another request's header: the copy kept before is
	// kept, and is still no slice of either header.
	header2 := "sid=" + tok + "; pad=" + strings.Repeat("y", 64<<10)
	c.put(header2[4:4+len(tok)], "v2")
	e2 := c.slots[tokenSlot(tok)].Load()
	if e2.token != tok || e2.v != "v2" || inHeader(e2.token, header) || inHeader(e2.token, header2) {
		t.Fatalf("slot holds %+v after a second put", e2)
	}
	if unsafe.StringData(e2.token) != unsafe.StringData(e.token) {
		t.Error("a second put of a cached token copied it again")
	}
}
