package codec

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack is the default Codec: MessagePack through
// github.com/vmihailenco/msgpack/v5.
//
// Structs are encoded as maps keyed by field name (the `msgpack` struct tag
// renames a field, as `json` does for JSON), so fields may be added to or
// removed from the data type between deploys. The keys of map[string]string,
// map[string]bool and map[string]any are sorted, so that equal values encode
// to equal bytes; other maps are written in Go's random order (the sessions
// core compares decoded values before it rewrites a session that holds maps).
// time.Time keeps nanoseconds and comes back in the local time zone.
//
// The zero value is ready to use.
type Msgpack struct{}

type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.SetSortMapKeys(true)
	return e
}}

// Marshal encodes v as MessagePack.
func (Msgpack) Marshal(v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.buf.Reset()
	err := e.enc.Encode(v)
	var out []byte
	if err == nil {
		out = bytes.Clone(e.buf.Bytes())
	}
	if e.buf.Cap() <= 64<<10 { // keep pooled buffers small
		msgpackEncoders.Put(e)
	}
	return out, err
}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Unmarshal decodes MessagePack data into v. Fields of v missing from data
// keep their values; fields in data unknown to v are skipped.
func (Msgpack) Unmarshal(data []byte, v any) error {
	// msgpack.Unmarshal, with the reader pooled along with the decoder
	// (it allocates one per call). Decoded strings and byte slices are
	// copies: nothing of v refers to data or to the pooled reader.
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	msgpackDecoders.Put(d)
	return err
}
