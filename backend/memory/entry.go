package memory

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/sessionx/sessions/backend"
)

// entry is a stored backend.Entry. Times are Unix nanoseconds. Everything
// but expires is fixed once the entry is stored (a write stores a new
// entry), so readers use it without a lock; expires only moves by
// compare-and-swap. A small value lives in the same allocation as its entry
// (see newEntry).
type entry struct {
	value   []byte
	limit   int64 // noLimit for no limit
	version uint64
	idle    int64 // the session's own idle timeout in nanoseconds, or 0
	expires atomic.Int64
}

// noLimit is the limit of an entry whose Limit is zero.
const noLimit = math.MaxInt64

// importEntry copies e into a new entry, copying its Value.
func importEntry(e backend.Entry) *entry {
	ne := newEntry(e.Value)
	ne.limit = noLimit
	ne.version = e.Version
	ne.idle = int64(e.Idle)
	ne.expires.Store(toNanos(e.Expires))
	if !e.Limit.IsZero() {
		ne.limit = toNanos(e.Limit)
	}
	return ne
}

// newEntry returns a new entry holding a copy of value. A value of up to
// 960 bytes shares one allocation with its entry, in the smallest of a few
// array sizes that fits it, so that a write costs one allocation, not two.
// On 64-bit platforms, where an entry is 56 bytes, entry and array fill one
// of the runtime's size classes exactly for arrays of up to 456 bytes (64 to
// 512 bytes in all); past 512 bytes the runtime adds an 8-byte header to an
// object that holds pointers, so the three larger arrays (576, 704 and 960
// bytes) fill the classes of 640, 768 and 1024 bytes with it. Either way
// the allocation wastes at most about a third of itself. A larger value
// gets its own allocation.
func newEntry(value []byte) *entry {
	var (
		e   *entry
		buf []byte
	)
	switch n := len(value); {
	case n <= 8:
		e, buf = inline(n, func(b *[8]byte) []byte { return b[:] })
	case n <= 24:
		e, buf = inline(n, func(b *[24]byte) []byte { return b[:] })
	case n <= 56:
		e, buf = inline(n, func(b *[56]byte) []byte { return b[:] })
	case n <= 88:
		e, buf = inline(n, func(b *[88]byte) []byte { return b[:] })
	case n <= 120:
		e, buf = inline(n, func(b *[120]byte) []byte { return b[:] })
	case n <= 152:
		e, buf = inline(n, func(b *[152]byte) []byte { return b[:] })
	case n <= 200:
		e, buf = inline(n, func(b *[200]byte) []byte { return b[:] })
	case n <= 264:
		e, buf = inline(n, func(b *[264]byte) []byte { return b[:] })
	case n <= 328:
		e, buf = inline(n, func(b *[328]byte) []byte { return b[:] })
	case n <= 456:
		e, buf = inline(n, func(b *[456]byte) []byte { return b[:] })
	case n <= 576:
		e, buf = inline(n, func(b *[576]byte) []byte { return b[:] })
	case n <= 704:
		e, buf = inline(n, func(b *[704]byte) []byte { return b[:] })
	case n <= 960:
		e, buf = inline(n, func(b *[960]byte) []byte { return b[:] })
	default:
		e, buf = new(entry), make([]byte, n)
	}
	copy(buf, value)
	e.value = buf
	return e
}

// inline allocates an entry together with an array A of bytes, and returns
// the entry and the first n bytes of the array (bytes slices it whole).
func inline[A any](n int, bytes func(*A) []byte) (*entry, []byte) {
	x := new(struct {
		entry
		b A
	})
	return &x.entry, bytes(&x.b)[:n:n]
}

// export returns e, with deadline expires, as a backend.Entry with a fresh
// copy of its value.
func (e *entry) export(expires int64) backend.Entry {
	out := backend.Entry{
		Value:   append(make([]byte, 0, len(e.value)), e.value...),
		Expires: time.Unix(0, expires),
		Version: e.version,
		Idle:    time.Duration(e.idle),
	}
	if e.limit != noLimit {
		out.Limit = time.Unix(0, e.limit)
	}
	return out
}

// Bounds of the times representable as int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// toNanos returns t as Unix nanoseconds, saturating outside the years
// 1678-2262. The zero time is far in the past. A Limit beyond 2262 thus
// reads back as no limit, and an Expires beyond 2262 as a date in 2262.
func toNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}
