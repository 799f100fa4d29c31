package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Tokens are 32 bytes (256 bits) from crypto/rand, written in the URL-safe
// base64 alphabet without padding: 43 characters of A-Z a-z 0-9 - _.
const (
	tokenBytes = 32
	tokenLen   = 43 // base64.RawURLEncoding.EncodedLen(tokenBytes)
)

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// base64URLValue maps a byte to its 6-bit value, or 0xff when the byte is not
// in the URL-safe alphabet.
var base64URLValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base64URLAlphabet); i++ {
		t[base64URLAlphabet[i]] = byte(i)
	}
	return t
}()

// newToken returns a fresh session token. crypto/rand.Read never fails: on a
// broken system source the program crashes rather than hand out weak tokens.
func newToken() string {
	var b [tokenBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether s has the exact shape of a token newToken could
// have made: 43 characters of the URL-safe alphabet whose last character
// carries no bits beyond the 256 (the canonical encoding). Anything else is
// rejected before any store access.
func validToken(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if base64URLValue[s[i]] == 0xff {
			return false
		}
	}
	// 43 characters hold 258 bits; the last 2 must be zero.
	return base64URLValue[s[tokenLen-1]]&3 == 0
}

// storeKey returns the key under which the session of token is stored: the
// SHA-256 of the token in unpadded URL-safe base64. A dump of the store holds
// no token, and a token cannot be computed back from its key.
func storeKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	var key [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(key[:], sum[:])
	return string(key[:])
}
