package sessions

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Merging plain writes. When a save meets a conflict (another request of
// the session saved since this one loaded it), the core reloads the stored
// state and merges three values of T: base (as this request loaded it),
// ours (as this request is about to save it) and theirs (as stored now).
//
// The unit of a merge is a top-level exported field of T, and each entry of
// a top-level map field. A unit only one side changed takes that side's
// value (a deletion of a map entry included); a unit neither changed keeps
// theirs. A unit both sides changed is a real conflict, even when both wrote
// equal values (two Visits++ from 4 must never merge to 5), and the save
// follows Config.OnConflict as before, unless the field is tagged
// `sessions:"lww"` (last writer wins): then this request's value wins.
// Slices, arrays, pointers, nested structs and other values are units
// whole. Values are compared after a round trip through the codec, so a
// field the codec does not store is never a change; an empty and a nil map
// or slice are the same.
//
// Merging costs two decodes and a walk over T's fields, and only happens on
// a conflict.

var timeType = reflect.TypeFor[time.Time]()

// lwwTag is the struct tag value that makes a field last-writer-wins.
const lwwTag = "lww"

// mergeSpec is what merging needs to know of T, computed once by New.
type mergeSpec struct {
	fields []mergeField
}

type mergeField struct {
	index int
	name  string
	isMap bool
	lww   bool
}

// newMergeSpec returns the merge units of t, or nil when t is not a struct
// (then every conflict is a real one).
func newMergeSpec(t reflect.Type) *mergeSpec {
	if t.Kind() != reflect.Struct {
		return nil
	}
	spec := &mergeSpec{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tags := strings.Split(f.Tag.Get("sessions"), ",")
		spec.fields = append(spec.fields, mergeField{
			index: i,
			name:  f.Name,
			isMap: f.Type.Kind() == reflect.Map,
			lww:   contains(tags, lwwTag),
		})
	}
	return spec
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

// mergeConflict names a unit both sides changed.
type mergeConflict struct{ unit string }

func (c mergeConflict) Error() string {
	return fmt.Sprintf("both requests changed %s", c.unit)
}

// conflictReason names what a conflict was about, for EventConflict.
func conflictReason(err error) string {
	var mc mergeConflict
	if errors.As(err, &mc) {
		return mc.Error()
	}
	return "the session changed since it was loaded"
}

// isMergeConflict reports whether err is a merge that met a unit both
// sides changed: a real conflict, not worth another merge.
func isMergeConflict(err error) bool {
	var mc mergeConflict
	return errors.As(err, &mc)
}

// merge writes into out (which must hold theirs) the units ours changed
// from base. It returns a mergeConflict for the first unit both changed.
func (spec *mergeSpec) merge(base, ours, out reflect.Value) error {
	if spec == nil {
		return mergeConflict{unit: "the session's data"}
	}
	for _, f := range spec.fields {
		b, o, t := base.Field(f.index), ours.Field(f.index), out.Field(f.index)
		if f.isMap && !f.lww {
			if err := mergeMap(f.name, b, o, t); err != nil {
				return err
			}
			continue
		}
		oursChanged := !sameValue(b, o)
		if !oursChanged {
			continue
		}
		if !f.lww && !sameValue(b, t) {
			return mergeConflict{unit: "field " + f.name}
		}
		t.Set(o)
	}
	return nil
}

// mergeMap merges the entries of one map field: out holds theirs.
func mergeMap(name string, base, ours, out reflect.Value) error {
	keys := map[any]reflect.Value{}
	for _, m := range []reflect.Value{base, ours, out} {
		iter := m.MapRange()
		for iter.Next() {
			keys[iter.Key().Interface()] = iter.Key()
		}
	}
	var changes []func()
	for _, k := range keys {
		bv, bok := lookup(base, k)
		ov, ook := lookup(ours, k)
		tv, tok := lookup(out, k)
		if bok == ook && (!bok || sameValue(bv, ov)) {
			continue // ours left the entry alone
		}
		if bok != tok || (bok && !sameValue(bv, tv)) {
			return mergeConflict{unit: fmt.Sprintf("entry %v of %s", k.Interface(), name)}
		}
		if ook {
			changes = append(changes, func() { setMapIndex(out, k, ov) })
		} else {
			changes = append(changes, func() { out.SetMapIndex(k, reflect.Value{}) })
		}
	}
	for _, c := range changes {
		c()
	}
	return nil
}

func lookup(m reflect.Value, k reflect.Value) (reflect.Value, bool) {
	if m.IsNil() {
		return reflect.Value{}, false
	}
	v := m.MapIndex(k)
	return v, v.IsValid()
}

func setMapIndex(m, k, v reflect.Value) {
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	m.SetMapIndex(k, v)
}

// sameValue reports whether a and b hold the same value, counting an empty
// and a nil map or slice as the same.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		iter := a.MapRange()
		for iter.Next() {
			bv := b.MapIndex(iter.Key())
			if !bv.IsValid() || !sameValue(iter.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == timeType && a.CanInterface() && b.CanInterface() {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := 0; i < a.NumField(); i++ {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.Complex64, reflect.Complex128:
		return a.Complex() == b.Complex()
	case reflect.String:
		return a.String() == b.String()
	}
	return a.Kind() == b.Kind() && (a.IsZero() && b.IsZero()) // channels, funcs: no codec stores them
}

// blank reports whether v holds nothing worth storing: the zero value,
// counting empty maps and slices as zero (a T whose maps were made for a
// change function, then left empty, is still nothing).
func blank(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Map, reflect.Slice:
		return v.Len() == 0
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !blank(v.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if !blank(v.Index(i)) {
				return false
			}
		}
		return true
	}
	return v.IsZero()
}

// makeMaps gives every nil map of v (in v and in the structs it holds, not
// behind pointers or in slices) an empty map, so that a change function can
// write `d.Counts[k]++` on a new session without a panic.
func makeMaps(v reflect.Value) {
	switch v.Kind() {
	case reflect.Map:
		if v.IsNil() && v.CanSet() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				makeMaps(f)
			}
		}
	}
}

// mergeTurnWait bounds how long a conflicting save waits for its turn among
// this process's writes of the session before it merges without it.
const mergeTurnWait = 2 * time.Second

// maxMerges bounds how many times a save merges with a newer stored state
// before it gives up with ErrConflict.
const maxMerges = 256

// merged is the result of mergeStored.
type merged[T any] struct {
	value   T      // the merge
	data    []byte // its encoding
	version uint64 // the stored version it was merged with
	owner   string // the stored owner and CSRF secret
	csrf    []byte
}

// mergeStored merges s's changes (s.Data, encoded as data, against the
// state s was loaded with) with the state stored now. It points s at the
// session's current key (it may have been rotated meanwhile) and returns
// the merge with the stored owner and CSRF secret; the caller writes it
// over the version returned. An error wrapping
// ErrConflict means both changed one unit; backend.ErrNotFound that the
// session is gone.
func (m *Manager[T]) mergeStored(ctx context.Context, s *Session[T], data []byte) (merged[T], error) {
	var out merged[T]
	p, e, err := m.current(ctx, s)
	if err != nil {
		return out, err
	}
	env, err := openAt(p, e)
	if err == nil && env.handle != s.handle {
		err = backend.ErrNotFound // another session is stored under the key
	}
	if err != nil {
		return out, err
	}
	var base, ours T
	if err := m.cfg.Codec.Unmarshal(s.base.data, &base); err != nil {
		return out, fmt.Errorf("merge: decode the loaded state: %w", err)
	}
	if err := m.cfg.Codec.Unmarshal(data, &ours); err != nil {
		return out, fmt.Errorf("merge: decode this request's state: %w", err)
	}
	if err := m.cfg.Codec.Unmarshal(env.data, &out.value); err != nil {
		return out, fmt.Errorf("merge: decode the stored state: %w", err)
	}
	if err := m.merge.merge(reflect.ValueOf(&base).Elem(), reflect.ValueOf(&ours).Elem(), reflect.ValueOf(&out.value).Elem()); err != nil {
		return out, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if out.data, err = m.cfg.Codec.Marshal(&out.value); err != nil {
		return out, fmt.Errorf("merge: encode: %w", err)
	}
	if len(out.data) > m.cfg.MaxSize {
		return out, fmt.Errorf("%w: the merge encodes to %d bytes, MaxSize is %d", ErrTooLarge, len(out.data), m.cfg.MaxSize)
	}
	if p.key != s.key {
		s.key, s.keyToken, s.seal, s.forwarded = p.key, p.token, p.seal, true
	}
	s.issued = env.issued
	out.version, out.owner, out.csrf = e.Version, env.owner, env.csrf
	return out, nil
}
