package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionx/sessions/codec"
)

// smallT is a typical small session: ids, a name, a short slice, a time.
type smallT struct {
	UserID  int64
	OrgID   int64
	Name    string
	Roles   []string
	LoginAt time.Time
}

// cartItem is one line of largeT's cart.
type cartItem struct {
	SKU   string
	Name  string
	Qty   int
	Cents int64
}

// largeT is a large session: a cart of 200 items.
type largeT struct {
	UserID int64
	Name   string
	Cart   []cartItem
}

func newSmallT() *smallT {
	return &smallT{
		UserID:  42,
		OrgID:   7,
		Name:    "Ann Example",
		Roles:   []string{"admin", "editor", "viewer"},
		LoginAt: time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC),
	}
}

func newLargeT() *largeT {
	l := &largeT{UserID: 42, Name: "Ann Example", Cart: make([]cartItem, 200)}
	for i := range l.Cart {
		l.Cart[i] = cartItem{
			SKU:   fmt.Sprintf("SKU-%06d", i),
			Name:  fmt.Sprintf("Product number %d", i),
			Qty:   i%5 + 1,
			Cents: int64(199 + 100*i),
		}
	}
	return l
}

var benchCodecs = []struct {
	name string
	c    codec.Codec
}{
	{"msgpack", codec.Msgpack{}},
	{"gob", codec.Gob{}},
	{"json", codec.JSON{}},
}

// BenchmarkCodec measures Marshal, Unmarshal and a round trip of both (what
// a modifying request costs in encoding) for each codec on a small and a
// large value; "bytes" is the encoded size.
func BenchmarkCodec(b *testing.B) {
	values := []struct {
		name string
		v    func() any
		zero func() any
	}{
		{"small", func() any { return newSmallT() }, func() any { return new(smallT) }},
		{"large", func() any { return newLargeT() }, func() any { return new(largeT) }},
	}
	for _, c := range benchCodecs {
		for _, val := range values {
			v := val.v()
			enc, err := c.c.Marshal(v)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.c.Unmarshal(enc, val.zero()); err != nil {
				b.Fatal(err)
			}
			size := float64(len(enc))
			b.Run(c.name+"/"+val.name+"/marshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.c.Marshal(v); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(size, "bytes")
			})
			b.Run(c.name+"/"+val.name+"/unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.c.Unmarshal(enc, val.zero()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(size, "bytes")
			})
			b.Run(c.name+"/"+val.name+"/roundtrip", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					data, err := c.c.Marshal(v)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.c.Unmarshal(data, val.zero()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(size, "bytes")
			})
		}
	}
}
