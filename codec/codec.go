// Package codec turns a session's typed data into bytes and back.
//
// The sessions core calls a Codec with a pointer to the application's data
// type T. Three codecs come with the library: Msgpack (the default), Gob and
// JSON. `go test -bench . ./codec` compares them.
//
// All three tolerate a change of T between deploys where their format allows:
// a field added to T decodes as its zero value from an older session, and a
// field removed from T is ignored when an older session still holds it.
// Changing a field's type is not tolerated: decoding fails and the core hands
// the visitor a fresh session (see sessions.Manager.Load).
package codec

// Codec encodes and decodes session data.
//
// Marshal is called with a pointer to the data (for example *T) and returns
// a slice the caller owns. Unmarshal is called with bytes that Marshal
// produced, possibly with an older version of the data type, and a pointer to
// a zero value to fill; it must not keep the slice.
//
// Marshal should be deterministic where it can: the core decides whether a
// session changed by comparing encodings first. When the data type holds maps
// (whose entries most codecs write in random order) and the encodings
// differ, the core decodes the stored bytes and compares values, so an
// unchanged session is not rewritten.
//
// A Codec must be safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

var (
	_ Codec = Msgpack{}
	_ Codec = Gob{}
	_ Codec = JSON{}
)
