package sessions

import (
	"bytes"
	"reflect"
	"time"
	"unsafe"
)

// A plain type holds all of its value in its own memory: no maps, slices,
// pointers, interfaces, channels or functions (strings, whose bytes never
// change, and time.Time, whose *Location is never changed in place, are
// allowed). For such a T, a copy of the data shares nothing that a handler
// could change in place, and two values equal byte for byte are equal, so
// encode the same: a save can tell an unchanged session by comparing s.Data
// with a copy taken when it was loaded or last saved, without encoding it.
// The comparison is strict (another string with the same text, a -0 for a
// 0, differ): when it finds a difference, the save encodes and compares the
// encodings as for any T.

// plainType reports whether t is plain.
func plainType(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Time]() {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return plainType(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !plainType(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// sameBytes reports whether *a and *b are equal byte for byte.
func sameBytes[T any](a, b *T) bool {
	n := unsafe.Sizeof(*a)
	if n == 0 {
		return true
	}
	return string(unsafe.Slice((*byte)(unsafe.Pointer(a)), n)) == string(unsafe.Slice((*byte)(unsafe.Pointer(b)), n))
}

// sameSlice reports whether a and b are the same bytes in memory (not
// merely equal ones).
func sameSlice(a, b []byte) bool {
	return len(a) > 0 && len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// notePlain records, for a plain T, that data (s.base.data, the stored
// encoding) is the encoding of the value v.
func (m *Manager[T]) notePlain(s *Session[T], v *T, data []byte) {
	if m.plain {
		s.plainVal, s.plainOf = *v, data
	}
}

// plainUnchanged reports whether, for a plain T, s.Data is byte for byte
// the value whose encoding s.base.data is: then it needs no write.
func (m *Manager[T]) plainUnchanged(s *Session[T]) bool {
	return m.plain && sameSlice(s.plainOf, s.base.data) && sameBytes(&s.Data, &s.plainVal)
}

// decodedData is a plain T and its encoding, as last loaded or saved.
type decodedData[T any] struct {
	data []byte
	v    T
}

// decode decodes data, the stored encoding of the session at key, into
// *v, a zero T. For a plain T, when data is the encoding last decoded or
// saved at key, it copies the value kept with it instead (a plain value's
// copy shares nothing), and keeps what it decodes: a session loaded again
// and again, or loaded after this process saved it, is not decoded again.
func (m *Manager[T]) decode(key string, data []byte, v *T) error {
	if !m.plain {
		return m.cfg.Codec.Unmarshal(data, v)
	}
	if e, ok := m.decoded.lookup(key); ok && bytes.Equal(e.data, data) {
		*v = e.v
		return nil
	}
	if err := m.cfg.Codec.Unmarshal(data, v); err != nil {
		return err
	}
	m.decoded.put(key, decodedData[T]{data: data, v: *v})
	return nil
}
