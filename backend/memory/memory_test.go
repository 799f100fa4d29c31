package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
	"github.com/sessionx/sessions/backend/storetest"
	"github.com/sessionx/sessions/internal/testclock"
	"github.com/sessionx/sessions/sessionstest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConformanceSmall runs the suite on a store with tiny shards, so that
// eviction and per-shard bounds are exercised by every case's writes.
func TestConformanceSmall(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{Shards: 2, MaxEntries: 256, SweepInterval: 10 * time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// fakeClock is a clock for Options.Now that moves only when told.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// newStore returns a store closed at the end of the test.
func newStore(t *testing.T, opts memory.Options) *memory.Store {
	t.Helper()
	s := memory.New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSet(t *testing.T, s *memory.Store, key string, e backend.Entry) {
	t.Helper()
	if err := s.Set(t.Context(), key, e); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func entry(value string, expires time.Time) backend.Entry {
	return backend.Entry{Value: []byte(value), Expires: expires, Version: 1}
}

func TestClosed(t *testing.T) {
	s := memory.New(memory.Options{})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	mustSet(t, s, "k", entry("v", exp))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Get missing", func() error { _, err := s.Get(ctx, "missing"); return err }},
		{"Set", func() error { return s.Set(ctx, "k", entry("w", exp)) }},
		{"Set past", func() error { return s.Set(ctx, "k", entry("w", time.Time{})) }},
		{"Touch", func() error { return s.Touch(ctx, "k", time.Now(), exp) }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"SetIf", func() error { return s.SetIf(ctx, "k", 1, time.Now(), entry("w", exp)) }},
		{"Replace", func() error { return s.Replace(ctx, "k", 1, "k2", time.Now(), entry("w", exp)) }},
		{"GetTouch", func() error { _, _, err := s.GetTouch(ctx, "k", time.Now(), exp, exp); return err }},
	} {
		if err := tc.call(); !errors.Is(err, backend.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", tc.name, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len() after Close = %d, want 0", n)
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("Sweep() after Close = %d, want 0", n)
	}
}

func TestContextCheckedFirst(t *testing.T) {
	s := newStore(t, memory.Options{})
	s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A cancelled context wins over a closed store.
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context on a closed store: %v, want context.Canceled", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	// Negative values select defaults; the store works either way.
	for _, opts := range []memory.Options{
		{},
		{Shards: -1, MaxEntries: -1},
		{Shards: 3, MaxEntries: 10},
		{Shards: 1 << 20, MaxEntries: 1},
		{SweepInterval: -1},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			s := newStore(t, opts)
			mustSet(t, s, "k", entry("v", time.Now().Add(time.Hour)))
			if _, err := s.Get(t.Context(), "k"); err != nil {
				t.Fatalf("Get: %v", err)
			}
		})
	}
}

func TestConcurrencyThroughManager(t *testing.T) {
	sessionstest.RunConcurrency(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}, sessionstest.Options{})
}

func TestWritesThroughManager(t *testing.T) {
	sessionstest.RunWrites(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSecurityThroughManager(t *testing.T) {
	sessionstest.RunSecurity(t, func(t *testing.T) backend.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
