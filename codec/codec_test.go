package codec_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sessionx/sessions/codec"
)

type item struct {
	SKU   string
	Qty   int
	Price float64
}

type small struct {
	UserID  int64
	Name    string
	Roles   []string
	Created time.Time
}

type large struct {
	UserID int64
	Cart   []item
	Prefs  map[string]string
}

var codecs = []struct {
	name string
	c    codec.Codec
}{
	{"msgpack", codec.Msgpack{}},
	{"gob", codec.Gob{}},
	{"json", codec.JSON{}},
}

func newSmall() small {
	return small{UserID: 42, Name: "Ann", Roles: []string{"admin", "editor"}, Created: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
}

func newLarge() large {
	l := large{UserID: 42, Prefs: map[string]string{"theme": "dark", "lang": "en", "tz": "UTC"}}
	for i := 0; i < 200; i++ {
		l.Cart = append(l.Cart, item{SKU: fmt.Sprintf("SKU-%05d", i), Qty: i%5 + 1, Price: float64(i) + 0.99})
	}
	return l
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			in := newLarge()
			b, err := tc.c.Marshal(&in)
			if err != nil {
				t.Fatal(err)
			}
			var out large
			if err := tc.c.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Errorf("round trip changed the value")
			}
		})
	}
}

func TestDeterministicWithStringMaps(t *testing.T) {
	for _, tc := range codecs {
		if tc.name == "gob" {
			continue // documented: gob encodes maps in random order
		}
		t.Run(tc.name, func(t *testing.T) {
			v := map[string]string{}
			for i := 0; i < 50; i++ {
				v[fmt.Sprint("k", i)] = fmt.Sprint(i)
			}
			first, _ := tc.c.Marshal(&v)
			for i := 0; i < 20; i++ {
				again, _ := tc.c.Marshal(&v)
				if !bytes.Equal(first, again) {
					t.Fatal("equal maps encoded to different bytes")
				}
			}
		})
	}
}

func TestUnmarshalGarbageIsAnError(t *testing.T) {
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			var out small
			for _, b := range [][]byte{nil, {0xc1}, []byte("{not"), {0xff, 0xff, 0xff}} {
				if err := tc.c.Unmarshal(b, &out); err == nil {
					t.Errorf("Unmarshal(%q) gave no error", b)
				}
			}
		})
	}
}

func BenchmarkCodecs(b *testing.B) {
	values := []struct {
		name string
		v    func() any
		zero func() any
	}{
		{"small", func() any { v := newSmall(); return &v }, func() any { return new(small) }},
		{"large", func() any { v := newLarge(); return &v }, func() any { return new(large) }},
	}
	for _, tc := range codecs {
		for _, val := range values {
			b.Run(tc.name+"/"+val.name+"/roundtrip", func(b *testing.B) {
				v := val.v()
				enc, _ := tc.c.Marshal(v)
				b.ReportMetric(float64(len(enc)), "bytes")
				b.ReportAllocs()
				for b.Loop() {
					data, err := tc.c.Marshal(v)
					if err != nil {
						b.Fatal(err)
					}
					if err := tc.c.Unmarshal(data, val.zero()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodedValuesOwnTheirBytes: a decoded value shares no memory with the
// bytes it came from (a codec may pool its readers, the core reuses and
// keeps stored bytes), and decoding one value after another on the same
// pooled state mixes nothing of the first into the second.
func TestDecodedValuesOwnTheirBytes(t *testing.T) {
	type blob struct {
		Name string
		Raw  []byte
		Tags []string
	}
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			first, err := tc.c.Marshal(&blob{Name: "first", Raw: []byte("raw bytes"), Tags: []string{"a", "b"}})
			if err != nil {
				t.Fatal(err)
			}
			second, err := tc.c.Marshal(&blob{Name: "2nd"})
			if err != nil {
				t.Fatal(err)
			}
			var a, b blob
			if err := tc.c.Unmarshal(first, &a); err != nil {
				t.Fatal(err)
			}
			if err := tc.c.Unmarshal(second, &b); err != nil {
				t.Fatal(err)
			}
			for i := range first {
				first[i] = 'x'
			}
			want := blob{Name: "first", Raw: []byte("raw bytes"), Tags: []string{"a", "b"}}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("after its bytes were overwritten, the first value is %+v, want %+v", a, want)
			}
			if b.Name != "2nd" || b.Raw != nil || b.Tags != nil {
				t.Errorf("the second value is %+v, want only Name 2nd", b)
			}
		})
	}
}
