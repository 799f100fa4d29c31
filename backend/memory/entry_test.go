package memory_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

// TestValueSizes stores values of every length around the sizes in which a
// value shares its entry's allocation, and past them, and reads each back
// intact, unaffected by later changes to the caller's slice.
func TestValueSizes(t *testing.T) {
	s := newStore(t, memory.Options{SweepInterval: -1})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for n := 0; n <= 1100; n++ {
		val := make([]byte, n)
		for i := range val {
			val[i] = byte(i*7 + n)
		}
		want := slices.Clone(val)
		key := fmt.Sprint("k", n)
		if err := s.Set(ctx, key, backend.Entry{Value: val, Expires: exp, Version: uint64(n + 1)}); err != nil {
			t.Fatalf("Set(%d bytes): %v", n, err)
		}
		for i := range val {
			val[i] ^= 0xFF // the store must have copied
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%d bytes): %v", n, err)
		}
		if !slices.Equal(got.Value, want) || len(got.Value) != n {
			t.Fatalf("Get after Set of %d bytes returned %d bytes, not the value stored", n, len(got.Value))
		}
		if got.Version != uint64(n+1) {
			t.Fatalf("Get(%d bytes).Version = %d, want %d", n, got.Version, n+1)
		}
		// The returned slice has no room to grow into the stored one.
		_ = append(got.Value, 0xEE)
		again, err := s.Get(ctx, key)
		if err != nil || !slices.Equal(again.Value, want) {
			t.Fatalf("after appending to the returned %d-byte slice, Get = %v, %v", n, again.Value, err)
		}
	}
}

func TestExtremeTimes(t *testing.T) {
	s := newStore(t, memory.Options{})
	ctx := t.Context()
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	mustSet(t, s, "far", backend.Entry{Value: []byte("v"), Expires: far, Limit: far, Version: 1})
	e, err := s.Get(ctx, "far")
	if err != nil {
		t.Fatalf("Get of an entry expiring in 9999: %v", err)
	}
	if e.Expires.Year() < 2262 {
		t.Errorf("Expires = %v, want a date in or after 2262", e.Expires)
	}
	if err := s.Touch(ctx, "far", time.Now(), far); err != nil {
		t.Errorf("Touch to 9999: %v", err)
	}
	mustSet(t, s, "ancient", entry("v", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)))
	if _, err := s.Get(ctx, "ancient"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get of an entry expired in year 1: %v, want ErrNotFound", err)
	}
}
