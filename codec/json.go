package codec

import "encoding/json"

// JSON is a Codec over encoding/json.
//
// Only exported fields are kept, time.Time travels as RFC 3339 text, and
// map keys are sorted, so equal values encode to equal bytes. Unknown fields
// are ignored on decode, so fields may be added and removed between deploys.
// Byte slices become base64 text and numbers in interface-typed fields come
// back as float64, as encoding/json always does.
//
// The zero value is ready to use.
type JSON struct{}

// Marshal encodes v with encoding/json.
func (JSON) Marshal(v any) ([]byte, error) {
	return json.Marshal(v)
}

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}
