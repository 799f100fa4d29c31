package sessions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 123, time.UTC)
	token := newToken()
	key := storeKey(token)
	tests := []struct {
		name string
		env  envelope
	}{
		{"empty data", envelope{created: now, absolute: now.Add(time.Hour), issued: now}},
		{"data", envelope{created: now, absolute: now.Add(time.Hour), issued: now.Add(time.Minute), handle: [16]byte{1, 2, 3}, data: []byte("payload")}},
		{"owner", envelope{created: now, absolute: now.Add(time.Hour), issued: now, owner: "user-42", data: []byte{0, 0xff}}},
		{"everything", envelope{created: now, absolute: now.Add(time.Hour), issued: now, owner: "o", bind: make([]byte, 32), csrf: bytes.Repeat([]byte{7}, 32), data: []byte("d")}},
	}
	for _, tc := range tests {
		for _, sealed := range []bool{false, true} {
			name := tc.name
			var sl *sealer
			if sealed {
				name, sl = name+"/sealed", newSealer(token)
			}
			t.Run(name, func(t *testing.T) {
				b := appendEnvelope(nil, &tc.env, sl, key)
				if len(b) > envelopeSize(&tc.env) {
					t.Errorf("envelopeSize %d < encoded %d", envelopeSize(&tc.env), len(b))
				}
				got, err := decodeEnvelope(b)
				if err != nil {
					t.Fatal(err)
				}
				if sealed != (got.sealed != nil) {
					t.Fatalf("sealed part %v, want sealed %v", got.sealed != nil, sealed)
				}
				if sealed {
					if err := got.open(sl, key); err != nil {
						t.Fatal(err)
					}
				}
				if !got.created.Equal(tc.env.created) || !got.absolute.Equal(tc.env.absolute) || !got.issued.Equal(tc.env.issued) ||
					got.handle != tc.env.handle || got.owner != tc.env.owner || !bytes.Equal(got.data, tc.env.data) ||
					!bytes.Equal(got.bind, tc.env.bind) || !bytes.Equal(got.csrf, tc.env.csrf) || !bytes.Equal(got.ownerHash, ownerHash(tc.env.owner)) {
					t.Errorf("decoded %+v, want %+v", got, tc.env)
				}
			})
		}
	}
}

// TestSealedEnvelopeOpensOnlyWithItsTokenAndKey: a sealed envelope does not
// open with another token's keys, nor when moved under another store key,
// nor with its readable part changed; and its bytes hold none of the inner
// part's values.
func TestSealedEnvelopeOpensOnlyWithItsTokenAndKey(t *testing.T) {
	now := time.Now()
	token := newToken()
	key := storeKey(token)
	env := envelope{created: now, absolute: now.Add(time.Hour), issued: now, owner: "owner-secret",
		csrf: bytes.Repeat([]byte{0xC5}, 32), data: []byte("data-secret")}
	b := appendEnvelope(nil, &env, newSealer(token), key)
	for _, secret := range [][]byte{[]byte("owner-secret"), env.csrf, []byte("data-secret")} {
		if bytes.Contains(b, secret) {
			t.Fatalf("sealed bytes hold %q", secret)
		}
	}
	tampered := append([]byte(nil), b...)
	tampered[5] ^= 1 // the created time, in the readable part
	for _, tc := range []struct {
		name string
		b    []byte
		sl   *sealer
		key  string
	}{
		{"another token", b, newSealer(newToken()), key},
		{"moved under another key", b, newSealer(token), storeKey(newToken())},
		{"readable part changed", tampered, newSealer(token), key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeEnvelope(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.open(tc.sl, tc.key); !errors.Is(err, errNotOpened) {
				t.Fatalf("open: %v, want errNotOpened", err)
			}
		})
	}
}

// appendEnvelopeV1 writes format 1, as the library did before sealing.
func appendEnvelopeV1(dst []byte, e *envelope) []byte {
	dst = append(dst, envelopeMagic, formatV1)
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

func TestEnvelopeFormat1StillDecodes(t *testing.T) {
	now := time.Now()
	old := envelope{created: now, absolute: now.Add(time.Hour), issued: now, owner: "o", csrf: bytes.Repeat([]byte{1}, 32), data: []byte("d")}
	got, err := decodeEnvelope(appendEnvelopeV1(nil, &old))
	if err != nil {
		t.Fatal(err)
	}
	if got.format != formatV1 || got.sealed != nil || got.owner != "o" || string(got.data) != "d" || !bytes.Equal(got.ownerHash, ownerHash("o")) {
		t.Fatalf("format 1 decoded as %+v", got)
	}
}

func TestEnvelopeSkipsUnknownFields(t *testing.T) {
	now := time.Now()
	b := appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, data: []byte("d")}, nil, "")
	// Insert an unknown readable field (tag 9, 3 bytes) before the end
	// marker, and one in the inner part.
	i := fixedV2
	var withField []byte
	withField = append(withField, b[:i]...)
	withField = append(withField, 9, 3, 'x', 'y', 'z')
	withField = append(withField, b[i]) // the readable part's end
	withField = append(withField, 9, 1, 'q')
	withField = append(withField, b[i+1:]...)
	got, err := decodeEnvelope(withField)
	if err != nil || string(got.data) != "d" {
		t.Fatalf("decode with unknown fields: %q, %v", got.data, err)
	}
}

func TestEnvelopeRejectsCorruptInput(t *testing.T) {
	now := time.Now()
	good := appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, owner: "o", data: []byte("d")}, nil, "")
	sealed := appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, data: []byte("d")}, newSealer(newToken()), "k")
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"short", good[:10]},
		{"header only, no end", good[:fixedV2]},
		{"bad magic", append([]byte{0}, good[1:]...)},
		{"future format", append([]byte{envelopeMagic, 99}, good[2:]...)},
		{"unknown flags", append([]byte{envelopeMagic, envelopeFormat, 0x80}, good[3:]...)},
		{"field length past the end", append(append([]byte{}, good[:fixedV2]...), 1, 200, 'a')},
		{"bad varint", append(append([]byte{}, good[:fixedV2]...), 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		{"zero timestamps", append([]byte{envelopeMagic, envelopeFormat, 0}, make([]byte, fixedV2)...)},
		{"sealed part too short", sealed[:fixedV2+2]},
		{"owner without its hash", appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now}, nil, "")[: fixedV2+1 : fixedV2+1]},
	}
	tests[len(tests)-1].b = append(append([]byte{}, tests[len(tests)-1].b...), fieldOwner, 1, 'x', fieldEnd)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeEnvelope(tc.b); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeEnvelope: err = %v, want errCorrupt", err)
			}
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	now := time.Now()
	f.Add(appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, data: []byte("d")}, nil, ""))
	f.Add(appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, owner: "owner", data: []byte{0x80}}, nil, ""))
	f.Add(appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, owner: "owner", data: []byte{0x80}}, newSealer("t"), "k"))
	f.Add(appendEnvelopeV1(nil, &envelope{created: now, absolute: now, issued: now, owner: "owner", data: []byte{0x80}}))
	f.Add([]byte{})
	f.Add([]byte{envelopeMagic, envelopeFormat, 1, 2, 3})
	sl := newSealer("fuzz")
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
			return
		}
		if env.sealed != nil {
			// Arbitrary bytes never open, and never panic trying.
			if err := env.open(sl, "k"); err == nil {
				t.Fatal("arbitrary sealed bytes opened")
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeEnvelope(appendEnvelope(nil, &env, nil, ""))
		if err != nil || !again.created.Equal(env.created) || again.owner != env.owner || !bytes.Equal(again.data, env.data) {
			t.Fatalf("re-encoding changed the envelope: %v", err)
		}
	})
}
