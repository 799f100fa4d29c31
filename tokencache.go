package sessions

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// tokenCacheSize is how many strings a tokenCache keeps a value for.
const tokenCacheSize = 1024

// tokenCache keeps a value for each recently seen token or store key: a
// token's store key and sealing keys, so that a request of an active
// session skips their derivation (SHA-256 for the key; HKDF and the AES key
// schedule for the sealing keys, a few microseconds and several
// allocations), and a store key's last decoded data (see Manager.decode).
// It is a fixed array of slots indexed by a keyed hash of the string, each
// replaced by the last string that fell on it: bounded memory, no lock. A
// slot's string is compared in constant time, so that a request's timing
// tells nothing of a cached token. What it holds is as secret as the
// tokens and data of the requests in flight, which the process holds
// anyway.
type tokenCache[V any] struct {
	slots [tokenCacheSize]atomic.Pointer[tokenCached[V]]
}

type tokenCached[V any] struct {
	token string
	v     V
}

var tokenSeed = maphash.MakeSeed()

// get returns derive(token), derived once while token stays cached.
func (c *tokenCache[V]) get(token string, derive func(string) V) V {
	if v, ok := c.lookup(token); ok {
		return v
	}
	v := derive(token)
	c.put(token, v)
	return v
}

// lookup returns the value cached for token, if there is one.
func (c *tokenCache[V]) lookup(token string) (V, bool) {
	if e := c.slots[tokenSlot(token)].Load(); e != nil && sameSecret(e.token, token) {
		return e.v, true
	}
	var zero V
	return zero, false
}

// put caches v for token, in place of what its slot held. It keeps a copy
// of token: a token is often a slice of the request's Cookie header, which
// must not outlive the request (a client could fill the slots with tokens
// of megabyte headers); when the slot holds token already, its copy is
// kept.
func (c *tokenCache[V]) put(token string, v V) {
	slot := &c.slots[tokenSlot(token)]
	var kept string
	if e := slot.Load(); e != nil && sameSecret(e.token, token) {
		kept = e.token
	} else {
		kept = strings.Clone(token)
	}
	slot.Store(&tokenCached[V]{token: kept, v: v})
}

// tokenSlot is the slot of token in a tokenCache.
func tokenSlot(token string) uint64 {
	return maphash.String(tokenSeed, token) & (tokenCacheSize - 1)
}

// sameSecret reports whether a and b are equal, in a time that depends on
// their lengths only.
func sameSecret(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}
