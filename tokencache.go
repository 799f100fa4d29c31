package sessions

import (
	"hash/maphash"
	"sync/atomic"
)

// tokenCacheSize is how many tokens a tokenCache keeps a value for.
const tokenCacheSize = 1024

// tokenCache keeps a value derived from each recently seen token (its store
// key, its sealing keys), so that a request of an active session skips the
// derivation (SHA-256 for the key; HKDF and the AES key schedule for the
// sealing keys, a few microseconds and several allocations). It is a fixed
// array of slots indexed by a keyed hash of the token, each replaced by the
// last token that fell on it: bounded memory, no lock. A slot's token is
// compared in constant time, so that a request's timing tells nothing of a
// cached token. What it holds is as secret as the tokens of the requests in
// flight, which the process holds anyway.
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
	slot := &c.slots[tokenSlot(token)]
	if e := slot.Load(); e != nil && sameSecret(e.token, token) {
		return e.v
	}
	v := derive(token)
	slot.Store(&tokenCached[V]{token: token, v: v})
	return v
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
