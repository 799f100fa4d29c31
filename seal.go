package sessions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealing at rest: what the core stores for a session is split into a
// readable part (format, timestamps, handle, the owner's hash: what the core
// needs without a token, to list an owner's sessions and to end them) and an
// inner part (the owner, the binding, the CSRF secret and the encoding of
// T). On a store that keeps its bytes outside the process (every store but
// one that says backend.InProcess), the inner part is sealed: encrypted and
// authenticated with AES-256-GCM under a key derived from the session's
// token with HKDF-SHA-256, with the store key and the readable part as
// associated data, so that bytes moved under another key, or a readable
// part changed, fail to open. The store key is the token's SHA-256, which
// gives no way to the sealing key; a dump of the store without the
// visitors' cookies opens nothing, and there is no key to manage.
//
// The binding (Config.Bind) is an HMAC under a second key derived from the
// token, so that even an unsealed store holds nothing to test guesses of the
// bound value against.

// sealInfo is HKDF's info for the keys of one token.
const sealInfo = "sessions: seal v1"

// sealNonce is the size of an AES-GCM nonce; sealOverhead what sealing adds.
const (
	sealNonce    = 12
	sealOverhead = sealNonce + 16
)

// errNotOpened is wrapped by the error of a sealed part that does not open:
// the wrong token, bytes moved to another key, or tampering.
var errNotOpened = errors.New("sessions: sealed session does not open")

// sealer holds the keys derived from one token.
type sealer struct {
	aead    cipher.AEAD
	bindKey []byte
}

// newSealer derives the keys of token.
func newSealer(token string) *sealer {
	k, err := hkdf.Key(sha256.New, []byte(token), nil, sealInfo, 64)
	if err != nil {
		panic("sessions: hkdf: " + err.Error()) // only for a length HKDF cannot give
	}
	block, err := aes.NewCipher(k[:32])
	if err != nil {
		panic("sessions: aes: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("sessions: gcm: " + err.Error())
	}
	return &sealer{aead: aead, bindKey: k[32:]}
}

// seal appends the sealed form of plain to dst: a random nonce, then the
// ciphertext and tag, authenticated with ad.
func (sl *sealer) seal(dst, plain, ad []byte) []byte {
	var nonce [sealNonce]byte
	_, _ = rand.Read(nonce[:])
	dst = append(dst, nonce[:]...)
	return sl.aead.Seal(dst, nonce[:], plain, ad)
}

// open returns the plain bytes sealed in b with ad, or an error wrapping
// errNotOpened. It decrypts in place: b is overwritten.
func (sl *sealer) open(b, ad []byte) ([]byte, error) {
	if len(b) < sealOverhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", errNotOpened, len(b))
	}
	ct := b[sealNonce:]
	plain, err := sl.aead.Open(ct[:0], b[:sealNonce], ct, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotOpened, err)
	}
	return plain, nil
}

// bind returns the stored form of a binding value: its HMAC-SHA-256 under
// the token's binding key.
func (sl *sealer) bind(value string) []byte {
	mac := hmac.New(sha256.New, sl.bindKey)
	mac.Write([]byte("sessions-bind\x00"))
	mac.Write([]byte(value))
	return mac.Sum(nil)
}

// legacyBinding is the stored form of a binding before sealing (envelope
// format 1): an unkeyed SHA-256, compared only to upgrade such sessions.
func legacyBinding(value string) []byte {
	sum := sha256.Sum256([]byte("sessions-bind\x00" + value))
	return sum[:]
}

// ownerHash is what the readable part holds of an owner: enough for the
// owner index to check that a listed session is the owner's, not the owner.
func ownerHash(owner string) []byte {
	if owner == "" {
		return nil
	}
	sum := sha256.Sum256([]byte("sessions-owner\x00" + owner))
	return sum[:]
}
