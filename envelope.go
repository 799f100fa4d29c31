package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The envelope is what the core stores for a session: its metadata around
// the codec's bytes, split into a readable part and an inner part that is
// sealed on stores outside the process (see seal.go). Layout of format 2,
// all integers big-endian:
//
//	magic     1 byte  0xA5
//	format    1 byte  2
//	flags     1 byte  bit 0: the inner part is sealed
//	created   8 bytes Unix nanoseconds: when the session was created
//	absolute  8 bytes Unix nanoseconds: the absolute deadline
//	issued    8 bytes Unix nanoseconds: when the current token was issued
//	handle   16 bytes the session's UUID
//	fields    zero or more of: tag (1 byte, 1-255), length (uvarint), bytes
//	end       1 byte  0
//	inner     the rest: sealed (nonce, ciphertext, tag), or as is
//
// Readable fields: 4 owner hash (SHA-256, see ownerHash), 5 the session's
// own lifetime (uvarint idle and absolute timeouts in nanoseconds, a cookie
// byte; see Lifetime), absent for the Config's. The inner part
// is fields 1 owner (the string given to SetOwner), 2 binding (see
// sealer.bind), 3 CSRF secret (32 bytes), then an end byte 0, then the
// codec's encoding of T. Decoders skip field tags they do not know, so a
// later version can add fields that an older deploy still reads. The sealed
// inner part is authenticated with the store key and the readable part.
//
// Format 1, written before sealing, had no flags byte, the inner fields
// among the readable ones (the binding an unkeyed SHA-256) and the data
// right after the end byte; it is still read, and a session stored in it is
// written in format 2 at its next write.
//
// A rotated session's old key holds, for the grace window, a forward
// record instead: magic 0xA6, format 2, then the new token sealed under the
// old token's key (format 1 held the new key in the clear).
const (
	envelopeMagic  = 0xA5
	envelopeFormat = 2
	formatV1       = 1
	envelopeFixed  = 2 + 3*8 + 16 // format 1's fixed part
	fixedV2        = 3 + 3*8 + 16
	flagSealed     = 1
	fieldEnd       = 0
	fieldOwner     = 1
	fieldBind      = 2
	fieldCSRF      = 3
	fieldOwnerHash = 4
	fieldLifetime  = 5
	maxOwnerLen    = 1024
	forwardMagic   = 0xA6
)

// errCorrupt is wrapped by every envelope decoding error.
var errCorrupt = errors.New("sessions: corrupt stored session")

type envelope struct {
	format    byte
	created   time.Time
	absolute  time.Time
	issued    time.Time
	handle    [16]byte
	ownerHash []byte   // readable: SHA-256 of the owner, or nil
	life      Lifetime // readable: the session's own lifetime, or zero

	// header is the readable part as stored, and sealed the inner part
	// while it is not opened (format 2); see open.
	header []byte
	sealed []byte

	// The inner part, once opened (at once when it is not sealed).
	owner string
	bind  []byte // the stored binding, or nil
	csrf  []byte // the CSRF secret, or nil
	data  []byte // aliases the decoded (or opened) input
}

// appendEnvelope appends the encoding of e in format 2 to dst, the inner
// part sealed by sl for key (not sealed when sl is nil).
func appendEnvelope(dst []byte, e *envelope, sl *sealer, key string) []byte {
	start := len(dst)
	var flags byte
	if sl != nil {
		flags = flagSealed
	}
	dst = append(dst, envelopeMagic, envelopeFormat, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.created)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.absolute)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.issued)))
	dst = append(dst, e.handle[:]...)
	dst = appendField(dst, fieldOwnerHash, ownerHash(e.owner))
	if e.life != (Lifetime{}) {
		var l []byte
		l = binary.AppendUvarint(l, uint64(max(e.life.Idle, 0)))
		l = binary.AppendUvarint(l, uint64(max(e.life.Absolute, 0)))
		l = append(l, byte(e.life.Cookie))
		dst = appendField(dst, fieldLifetime, l)
	}
	dst = append(dst, fieldEnd)
	if sl == nil {
		return appendInner(dst, e)
	}
	header := dst[start:]
	ad := make([]byte, 0, len(key)+len(header))
	ad = append(append(ad, key...), header...)
	return sl.seal(dst, appendInner(make([]byte, 0, innerSize(e)), e), ad)
}

// appendInner appends the inner part of e.
func appendInner(dst []byte, e *envelope) []byte {
	dst = appendField(dst, fieldOwner, []byte(e.owner))
	dst = appendField(dst, fieldBind, e.bind)
	dst = appendField(dst, fieldCSRF, e.csrf)
	dst = append(dst, fieldEnd)
	return append(dst, e.data...)
}

// appendField appends a field unless v is empty.
func appendField(dst []byte, tag byte, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// innerSize returns how many bytes appendInner adds for e, at most.
func innerSize(e *envelope) int {
	n := 1 + len(e.data)
	for _, l := range []int{len(e.owner), len(e.bind), len(e.csrf)} {
		if l > 0 {
			n += 1 + binary.MaxVarintLen64 + l
		}
	}
	return n
}

// envelopeSize returns how many bytes appendEnvelope adds for e, at most.
func envelopeSize(e *envelope) int {
	return fixedV2 + 1 + 2*(1+binary.MaxVarintLen64) + sha256.Size + 2*binary.MaxVarintLen64 + 1 + innerSize(e) + sealOverhead
}

// appendForward appends a forward record to the session of newToken,
// stored under oldKey: newToken sealed by the old token's sealer, so that
// only a request with the old token can follow it.
func appendForward(dst []byte, old *sealer, oldKey, newToken string) []byte {
	dst = append(dst, forwardMagic, envelopeFormat)
	return old.seal(dst, []byte(newToken), []byte(oldKey))
}

// isForward reports whether b is a forward record.
func isForward(b []byte) bool {
	return len(b) >= 2 && b[0] == forwardMagic
}

// openForward returns where the forward record b, stored under key, leads:
// the new token (format 2, opened with the old token's sealer) or, for a
// format 1 record, only the new key.
func openForward(b []byte, old *sealer, key string) (newToken, newKey string, err error) {
	if !isForward(b) {
		return "", "", fmt.Errorf("%w: not a forward record", errCorrupt)
	}
	switch b[1] {
	case formatV1:
		if len(b) < 3 {
			return "", "", fmt.Errorf("%w: short forward record", errCorrupt)
		}
		return "", string(b[2:]), nil
	case envelopeFormat:
		tok, err := old.open(b[2:], []byte(key))
		if err != nil {
			return "", "", err
		}
		if !validToken(string(tok)) {
			return "", "", fmt.Errorf("%w: forward record holds no token", errCorrupt)
		}
		return string(tok), storeKey(string(tok)), nil
	}
	return "", "", fmt.Errorf("%w: forward record of unknown format %d", errCorrupt, b[1])
}

// decodeEnvelope parses b: the readable part and, when the inner part is not
// sealed, the inner part too (a sealed one is left for open). The returned
// envelope aliases b. Any input, however malformed, gives an error wrapping
// errCorrupt, never a panic.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < 2 || b[0] != envelopeMagic {
		return e, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	e.format = b[1]
	fixed := fixedV2
	switch e.format {
	case formatV1:
		fixed = envelopeFixed
	case envelopeFormat:
	default:
		return e, fmt.Errorf("%w: unknown format %d", errCorrupt, b[1])
	}
	if len(b) < fixed+1 {
		return e, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(b))
	}
	var flags byte
	if e.format == envelopeFormat {
		flags = b[2]
		if flags&^flagSealed != 0 {
			return e, fmt.Errorf("%w: unknown flags %#x", errCorrupt, flags)
		}
	}
	t := b[fixed-40:]
	e.created = fromUnixNano(int64(binary.BigEndian.Uint64(t)))
	e.absolute = fromUnixNano(int64(binary.BigEndian.Uint64(t[8:])))
	e.issued = fromUnixNano(int64(binary.BigEndian.Uint64(t[16:])))
	copy(e.handle[:], t[24:40])
	if e.created.IsZero() || e.absolute.IsZero() || e.issued.IsZero() {
		return e, fmt.Errorf("%w: missing timestamps", errCorrupt)
	}
	rest, err := e.fields(b[fixed:])
	if err != nil {
		return e, err
	}
	if e.format == formatV1 {
		e.data = rest
		e.ownerHash = ownerHash(e.owner)
		return e, nil
	}
	e.header = b[:len(b)-len(rest)]
	if flags&flagSealed != 0 {
		if len(rest) < sealOverhead {
			return e, fmt.Errorf("%w: sealed part of %d bytes", errCorrupt, len(rest))
		}
		e.sealed = rest
		return e, nil
	}
	return e, e.parseInner(rest)
}

// open opens e's sealed inner part with sl, for the store key key; it does
// nothing for an envelope whose inner part was not sealed.
func (e *envelope) open(sl *sealer, key string) error {
	if e.sealed == nil {
		return nil
	}
	ad := make([]byte, 0, len(key)+len(e.header))
	ad = append(append(ad, key...), e.header...)
	plain, err := sl.open(e.sealed, ad)
	if err != nil {
		return err
	}
	e.sealed = nil
	return e.parseInner(plain)
}

// parseInner reads the inner part's fields and data.
func (e *envelope) parseInner(b []byte) error {
	rest, err := e.fields(b)
	if err != nil {
		return err
	}
	if h := ownerHash(e.owner); e.ownerHash != nil && !bytes.Equal(h, e.ownerHash) || e.ownerHash == nil && h != nil {
		return fmt.Errorf("%w: owner does not match its hash", errCorrupt)
	}
	e.data = rest
	return nil
}

// fields reads tagged fields up to the end byte into e and returns what
// follows it.
func (e *envelope) fields(b []byte) ([]byte, error) {
	for {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: missing end of fields", errCorrupt)
		}
		tag := b[0]
		b = b[1:]
		if tag == fieldEnd {
			return b, nil
		}
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, fmt.Errorf("%w: field %d has a bad length", errCorrupt, tag)
		}
		v := b[w : w+int(n)]
		b = b[w+int(n):]
		switch tag {
		case fieldOwner:
			if len(v) > maxOwnerLen {
				return nil, fmt.Errorf("%w: owner of %d bytes", errCorrupt, len(v))
			}
			e.owner = string(v)
		case fieldBind:
			if len(v) != 32 {
				return nil, fmt.Errorf("%w: binding of %d bytes", errCorrupt, len(v))
			}
			e.bind = v
		case fieldCSRF:
			if len(v) != csrfSecretLen {
				return nil, fmt.Errorf("%w: CSRF secret of %d bytes", errCorrupt, len(v))
			}
			e.csrf = v
		case fieldOwnerHash:
			if len(v) != sha256.Size {
				return nil, fmt.Errorf("%w: owner hash of %d bytes", errCorrupt, len(v))
			}
			e.ownerHash = v
		case fieldLifetime:
			idle, n1 := binary.Uvarint(v)
			var absolute uint64
			n2 := 0
			if n1 > 0 {
				absolute, n2 = binary.Uvarint(v[n1:])
			}
			if n1 <= 0 || n2 <= 0 || len(v) != n1+n2+1 || idle > math.MaxInt64 || absolute > math.MaxInt64 || v[n1+n2] > byte(CookieBrowserSession) {
				return nil, fmt.Errorf("%w: bad lifetime field", errCorrupt)
			}
			e.life = Lifetime{Idle: time.Duration(idle), Absolute: time.Duration(absolute), Cookie: CookieLife(v[n1+n2])}
		}
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
