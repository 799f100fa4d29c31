package sessions

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 123, time.UTC)
	tests := []struct {
		name string
		env  envelope
	}{
		{"empty data", envelope{created: now, absolute: now.Add(time.Hour), issued: now}},
		{"data", envelope{created: now, absolute: now.Add(time.Hour), issued: now.Add(time.Minute), handle: [16]byte{1, 2, 3}, data: []byte("payload")}},
		{"owner", envelope{created: now, absolute: now.Add(time.Hour), issued: now, owner: "user-42", data: []byte{0, 0xff}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendEnvelope(nil, &tc.env)
			if len(b) > envelopeSize(&tc.env) {
				t.Errorf("envelopeSize %d < encoded %d", envelopeSize(&tc.env), len(b))
			}
			got, err := decodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.created.Equal(tc.env.created) || !got.absolute.Equal(tc.env.absolute) || !got.issued.Equal(tc.env.issued) ||
				got.handle != tc.env.handle || got.owner != tc.env.owner || !bytes.Equal(got.data, tc.env.data) {
				t.Errorf("decoded %+v, want %+v", got, tc.env)
			}
		})
	}
}

func TestEnvelopeSkipsUnknownFields(t *testing.T) {
	now := time.Now()
	b := appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, data: []byte("d")})
	// Insert an unknown field (tag 9, 3 bytes) before the end marker.
	i := envelopeFixed
	withField := append(append(append([]byte{}, b[:i]...), 9, 3, 'x', 'y', 'z'), b[i:]...)
	got, err := decodeEnvelope(withField)
	if err != nil || string(got.data) != "d" {
		t.Fatalf("decode with an unknown field: %q, %v", got.data, err)
	}
}

func TestEnvelopeRejectsCorruptInput(t *testing.T) {
	now := time.Now()
	good := appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, owner: "o", data: []byte("d")})
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"short", good[:10]},
		{"header only, no end", good[:envelopeFixed]},
		{"bad magic", append([]byte{0}, good[1:]...)},
		{"future format", append([]byte{envelopeMagic, 99}, good[2:]...)},
		{"field length past the end", append(append([]byte{}, good[:envelopeFixed]...), 1, 200, 'a')},
		{"bad varint", append(append([]byte{}, good[:envelopeFixed]...), 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		{"zero timestamps", append([]byte{envelopeMagic, envelopeFormat}, make([]byte, envelopeFixed)...)},
	}
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
	f.Add(appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, data: []byte("d")}))
	f.Add(appendEnvelope(nil, &envelope{created: now, absolute: now, issued: now, owner: "owner", data: []byte{0x80}}))
	f.Add([]byte{})
	f.Add([]byte{envelopeMagic, envelopeFormat, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeEnvelope(appendEnvelope(nil, &env))
		if err != nil || !again.created.Equal(env.created) || again.owner != env.owner || !bytes.Equal(again.data, env.data) {
			t.Fatalf("re-encoding changed the envelope: %v", err)
		}
	})
}
