package codec

import (
	"bytes"
	"encoding/gob"
)

// Gob is a Codec over encoding/gob.
//
// Every value is encoded with a fresh gob.Encoder, so each stored session
// carries its own type description: this is what makes gob several times
// slower and larger than Msgpack for small sessions. Gob matches fields by
// name, so fields may be added and removed between deploys. Gob encodes maps
// in random order; the sessions core compares decoded values before it
// rewrites a session that holds maps, so that costs a decode, not a write.
// Interface-typed fields need gob.Register.
//
// The zero value is ready to use.
type Gob struct{}

// Marshal encodes v with encoding/gob.
func (Gob) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes gob data into v.
func (Gob) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}
