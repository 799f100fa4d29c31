package sessions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The envelope is what the core stores for a session: its metadata around
// the codec's bytes. Layout, all integers big-endian:
//
//	magic     1 byte  0xA5
//	format    1 byte  1
//	created   8 bytes Unix nanoseconds: when the session was created
//	absolute  8 bytes Unix nanoseconds: the absolute deadline
//	issued    8 bytes Unix nanoseconds: when the current token was issued
//	handle   16 bytes the session's UUID
//	fields    zero or more of: tag (1 byte, 1-255), length (uvarint), bytes
//	end       1 byte  0
//	data      the rest: the codec's encoding of T
//
// Fields: 1 owner (the string given to SetOwner), 2 binding (SHA-256 of
// Config.Bind's value), 3 CSRF secret (32 bytes). Decoders skip field tags
// they do not know, so a later version can add fields that an older deploy
// still reads.
//
// A rotated session's old key holds, for the grace window, a forward record
// instead: magic 0xA6, format 1, then the new key.
const (
	envelopeMagic  = 0xA5
	envelopeFormat = 1
	envelopeFixed  = 2 + 3*8 + 16
	fieldEnd       = 0
	fieldOwner     = 1
	fieldBind      = 2
	fieldCSRF      = 3
	maxOwnerLen    = 1024
	forwardMagic   = 0xA6
)

// errCorrupt is wrapped by every envelope decoding error.
var errCorrupt = errors.New("sessions: corrupt stored session")

type envelope struct {
	created  time.Time
	absolute time.Time
	issued   time.Time
	handle   [16]byte
	owner    string
	bind     []byte // SHA-256 of the binding, or nil
	csrf     []byte // the CSRF secret, or nil
	data     []byte // aliases the decoded input
}

// appendEnvelope appends the encoding of e to dst.
func appendEnvelope(dst []byte, e *envelope) []byte {
	dst = append(dst, envelopeMagic, envelopeFormat)
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.created)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.absolute)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(e.issued)))
	dst = append(dst, e.handle[:]...)
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

// envelopeSize returns how many bytes appendEnvelope adds for e, at most.
func envelopeSize(e *envelope) int {
	n := envelopeFixed + 1 + len(e.data)
	for _, l := range []int{len(e.owner), len(e.bind), len(e.csrf)} {
		if l > 0 {
			n += 1 + binary.MaxVarintLen64 + l
		}
	}
	return n
}

// appendForward appends a forward record pointing to newKey.
func appendForward(dst []byte, newKey string) []byte {
	dst = append(dst, forwardMagic, envelopeFormat)
	return append(dst, newKey...)
}

// decodeForward returns the key a forward record points to, and whether b is
// one.
func decodeForward(b []byte) (string, bool) {
	if len(b) < 3 || b[0] != forwardMagic || b[1] != envelopeFormat {
		return "", false
	}
	return string(b[2:]), true
}

// decodeEnvelope parses b. The returned envelope's data aliases b. Any input,
// however malformed, gives an error wrapping errCorrupt, never a panic.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < envelopeFixed+1 {
		return e, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(b))
	}
	if b[0] != envelopeMagic {
		return e, fmt.Errorf("%w: bad magic byte %#x", errCorrupt, b[0])
	}
	if b[1] != envelopeFormat {
		return e, fmt.Errorf("%w: unknown format %d", errCorrupt, b[1])
	}
	e.created = fromUnixNano(int64(binary.BigEndian.Uint64(b[2:])))
	e.absolute = fromUnixNano(int64(binary.BigEndian.Uint64(b[10:])))
	e.issued = fromUnixNano(int64(binary.BigEndian.Uint64(b[18:])))
	copy(e.handle[:], b[26:42])
	b = b[envelopeFixed:]
	for {
		if len(b) == 0 {
			return e, fmt.Errorf("%w: missing end of fields", errCorrupt)
		}
		tag := b[0]
		b = b[1:]
		if tag == fieldEnd {
			break
		}
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return e, fmt.Errorf("%w: field %d has a bad length", errCorrupt, tag)
		}
		v := b[w : w+int(n)]
		b = b[w+int(n):]
		switch tag {
		case fieldOwner:
			if len(v) > maxOwnerLen {
				return e, fmt.Errorf("%w: owner of %d bytes", errCorrupt, len(v))
			}
			e.owner = string(v)
		case fieldBind:
			if len(v) != 32 {
				return e, fmt.Errorf("%w: binding of %d bytes", errCorrupt, len(v))
			}
			e.bind = v
		case fieldCSRF:
			if len(v) != csrfSecretLen {
				return e, fmt.Errorf("%w: CSRF secret of %d bytes", errCorrupt, len(v))
			}
			e.csrf = v
		}
	}
	if e.created.IsZero() || e.absolute.IsZero() || e.issued.IsZero() {
		return e, fmt.Errorf("%w: missing timestamps", errCorrupt)
	}
	e.data = b
	return e, nil
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
