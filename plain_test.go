package sessions

import (
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/codec"
)

func TestPlainType(t *testing.T) {
	type inner struct {
		N  int
		At time.Time
	}
	tests := []struct {
		v    any
		want bool
	}{
		{0, true},
		{"", true},
		{3.5, true},
		{[4]int64{}, true},
		{time.Time{}, true},
		{visitV1{}, true},
		{struct {
			A inner
			B [2]string
		}{}, true},
		{struct{}{}, true},
		{[]int{}, false},
		{map[string]int{}, false},
		{new(int), false},
		{struct{ X any }{}, false},
		{struct{ F func() }{}, false},
		{struct{ C chan int }{}, false},
		{[2][]byte{}, false},
		{struct{ In struct{ S []string } }{}, false},
	}
	for _, tc := range tests {
		if got := plainType(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("plainType(%T) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// countingCodec counts the encodings (and decodings, when unmarshals is
// set) of the codec it wraps.
type countingCodec struct {
	codec.Codec
	marshals, unmarshals *atomic.Int64
}

func (c countingCodec) Marshal(v any) ([]byte, error) {
	c.marshals.Add(1)
	return c.Codec.Marshal(v)
}

func (c countingCodec) Unmarshal(data []byte, v any) error {
	if c.unmarshals != nil {
		c.unmarshals.Add(1)
	}
	return c.Codec.Unmarshal(data, v)
}

// withList is a session type that is not plain (it holds a slice).
type withList struct {
	User  string
	Items []string
}

// storedWithList stores a session of withList (not plain) through a
// Manager whose codec counts into marshals and unmarshals, and returns the
// Manager's test env and the session's cookie.
func storedWithList(t *testing.T, marshals, unmarshals *atomic.Int64) (*testEnv[withList], string) {
	t.Helper()
	env := newTestEnv[withList](t, Config{Codec: countingCodec{codec.Msgpack{}, marshals, unmarshals}})
	w := newHeaderWriter()
	s, _ := env.mgr.Load(w, httptestRequest(""))
	s.Data.Items = []string{"a"}
	if err := env.mgr.Save(w, httptestRequest(""), s); err != nil {
		t.Fatal(err)
	}
	return env, cookieHeader(w.Result().Cookies()[0])
}

// TestUnchangedPlainDataIsNotEncoded: for a plain T, a save of a session
// whose data is byte for byte what it loaded or last saved neither writes
// nor encodes; any change is still seen (a value changed and changed back
// is unchanged; an equal string built anew is compared by its encoding);
// a T that is not plain is encoded as before.
func TestUnchangedPlainDataIsNotEncoded(t *testing.T) {
	var marshals atomic.Int64
	env := newTestEnv[visitV1](t, Config{Codec: countingCodec{codec.Msgpack{}, &marshals, nil}})
	cookie := newStoredSession(t, env) // User "ann"
	step := func(name string, change func(*Session[visitV1]), wantMarshals, wantWrites int64) *Session[visitV1] {
		t.Helper()
		w, r := newHeaderWriter(), httptestRequest(cookie)
		s, err := env.mgr.Load(w, r)
		if err != nil {
			t.Fatal(err)
		}
		m0, w0 := marshals.Load(), env.store.writes.Load()
		change(s)
		if err := env.mgr.Save(w, r, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m, wr := marshals.Load()-m0, env.store.writes.Load()-w0; m != wantMarshals || wr != wantWrites {
			t.Errorf("%s: %d encodings, %d writes; want %d and %d", name, m, wr, wantMarshals, wantWrites)
		}
		return s
	}
	step("read only", func(*Session[visitV1]) {}, 0, 0)
	step("changed and changed back", func(s *Session[visitV1]) { s.Data.Count = 5; s.Data.Count = 0 }, 0, 0)
	step("the same text in a new string", func(s *Session[visitV1]) { s.Data.User = strings.Clone(s.Data.User) }, 1, 0)
	s := step("a change", func(s *Session[visitV1]) { s.Data.Count = 7 }, 1, 1)
	// Saved again with no change since: known unchanged without encoding.
	m0, w0 := marshals.Load(), env.store.writes.Load()
	if err := env.mgr.Save(newHeaderWriter(), httptestRequest(cookie), s); err != nil {
		t.Fatal(err)
	}
	if m, wr := marshals.Load()-m0, env.store.writes.Load()-w0; m != 0 || wr != 0 {
		t.Errorf("a second Save of the saved data: %d encodings, %d writes; want 0 and 0", m, wr)
	}
	if got := step("read back", func(*Session[visitV1]) {}, 0, 0); got.Data.Count != 7 || got.Data.User != "ann" {
		t.Errorf("stored %+v, want Count 7, User ann", got.Data)
	}
	// After Update (the counter path), the middleware's commit encodes
	// nothing more.
	w, r := newHeaderWriter(), httptestRequest(cookie)
	s, _ = env.mgr.Load(w, r)
	if err := env.mgr.Update(w, r, s, func(v *visitV1) error { v.Count++; return nil }); err != nil {
		t.Fatal(err)
	}
	m0 = marshals.Load()
	if err := env.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	if m := marshals.Load() - m0; m != 0 {
		t.Errorf("a Save after Update: %d encodings, want 0", m)
	}

	// Not plain: encoded to be compared, as before; still no write.
	var lm atomic.Int64
	lenv, lcookie := storedWithList(t, &lm, nil)
	lw, lr := newHeaderWriter(), httptestRequest(lcookie)
	ls, _ := lenv.mgr.Load(lw, lr)
	m0, w0 = lm.Load(), lenv.store.writes.Load()
	ls.Data.Items[0] = "b" // changed in place: only an encoding sees it
	if err := lenv.mgr.Save(lw, lr, ls); err != nil {
		t.Fatal(err)
	}
	if m, wr := lm.Load()-m0, lenv.store.writes.Load()-w0; m != 1 || wr != 1 {
		t.Errorf("a slice changed in place: %d encodings, %d writes; want 1 and 1", m, wr)
	}
}

// TestPlainDataIsDecodedOnce: a plain session loaded again, or loaded after
// this Manager saved it, is not decoded again; bytes that changed in the
// store (another process's write) are; a T that is not plain is decoded at
// every load.
func TestPlainDataIsDecodedOnce(t *testing.T) {
	var marshals, unmarshals atomic.Int64
	env := newTestEnv[visitV1](t, Config{Codec: countingCodec{codec.Msgpack{}, &marshals, &unmarshals}})
	cookie := newStoredSession(t, env) // User "ann", saved by this Manager
	// Another Manager on the same store: another process.
	other := newTestEnv[visitV1](t, Config{Store: env.store, Now: env.clock.Now})
	load := func(m *Manager[visitV1]) *Session[visitV1] {
		t.Helper()
		s, err := m.Load(newHeaderWriter(), httptestRequest(cookie))
		if err != nil || s.IsNew() {
			t.Fatalf("Load: %v (new: %v)", err, s.IsNew())
		}
		return s
	}
	for _, step := range []struct {
		name  string
		do    func() *Session[visitV1]
		count int
		want  int64 // decodings
	}{
		{"loaded after its save", func() *Session[visitV1] { return load(env.mgr) }, 0, 0},
		{"loaded again", func() *Session[visitV1] { return load(env.mgr) }, 0, 0},
		{"changed by another process", func() *Session[visitV1] {
			s := load(other.mgr)
			s.Data.Count = 3
			if err := other.mgr.Save(newHeaderWriter(), httptestRequest(cookie), s); err != nil {
				t.Fatal(err)
			}
			return load(env.mgr)
		}, 3, 1},
		{"loaded again after that", func() *Session[visitV1] { return load(env.mgr) }, 3, 0},
	} {
		u0 := unmarshals.Load()
		s := step.do()
		if s.Data.Count != step.count || s.Data.User != "ann" {
			t.Errorf("%s: data %+v, want Count %d, User ann", step.name, s.Data, step.count)
		}
		if u := unmarshals.Load() - u0; u != step.want {
			t.Errorf("%s: %d decodings, want %d", step.name, u, step.want)
		}
	}

	var lu atomic.Int64
	lenv, lcookie := storedWithList(t, new(atomic.Int64), &lu)
	u0 := lu.Load()
	for range 2 {
		if s, _ := lenv.mgr.Load(newHeaderWriter(), httptestRequest(lcookie)); len(s.Data.Items) != 1 {
			t.Fatalf("loaded %+v", s.Data)
		}
	}
	if u := lu.Load() - u0; u != 2 {
		t.Errorf("two loads of a session that is not plain: %d decodings, want 2", u)
	}
}

// TestOlderPlainFormIsRewrittenAtItsNextChange: a session stored by an
// older version of a plain T (here with a field since removed) is not
// rewritten by reads, which find the data unchanged without encoding it;
// its next change stores it in the new form.
func TestOlderPlainFormIsRewrittenAtItsNextChange(t *testing.T) {
	type visitV0 struct {
		User, Gone string
		Count      int
	}
	v0 := newTestEnv[visitV0](t, Config{})
	v1 := newTestEnv[visitV1](t, Config{Store: v0.store, Now: v0.clock.Now})
	w := newHeaderWriter()
	s0, _ := v0.mgr.Load(w, httptestRequest(""))
	s0.Data = visitV0{User: "ann", Gone: "old field", Count: 1}
	if err := v0.mgr.Save(w, httptestRequest(""), s0); err != nil {
		t.Fatal(err)
	}
	cookie := cookieHeader(w.Result().Cookies()[0])
	// oldForm reports whether the stored data still holds the removed
	// field, as the old version of T reads it.
	oldForm := func() bool {
		t.Helper()
		s, _ := v0.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
		return s.Data.Gone == "old field"
	}
	for range 2 { // reads: no write, the old form stays
		w0 := v0.store.writes.Load()
		s, _ := v1.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
		if err := v1.mgr.Save(newHeaderWriter(), httptestRequest(cookie), s); err != nil {
			t.Fatal(err)
		}
		if w := v0.store.writes.Load() - w0; w != 0 || !oldForm() {
			t.Fatalf("a read of the old form: %d writes, stored form still old: %v; want 0 and true", w, oldForm())
		}
	}
	s, _ := v1.mgr.Load(newHeaderWriter(), httptestRequest(cookie))
	s.Data.Count++
	if err := v1.mgr.Save(newHeaderWriter(), httptestRequest(cookie), s); err != nil {
		t.Fatal(err)
	}
	if oldForm() {
		t.Error("after a change the session is still stored in the old form")
	}
	if got, _ := v1.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); got.Data.Count != 2 || got.Data.User != "ann" {
		t.Errorf("stored %+v, want Count 2, User ann", got.Data)
	}
}
