package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/memory"
)

func Example() {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()

	err := s.Set(ctx, "key", backend.Entry{
		Value:   []byte("encoded session"),
		Expires: time.Now().Add(30 * time.Minute),
		Version: 1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := s.Get(ctx, "key")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (version %d)\n", e.Value, e.Version)
	// Output: encoded session (version 1)
}

// A fake clock given as Options.Now decides when entries expire, and Sweep
// removes the expired ones at once.
func ExampleStore_Sweep() {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	s := memory.New(memory.Options{
		Now:           func() time.Time { return now },
		SweepInterval: -1, // no background sweeper: Sweep by hand
	})
	defer s.Close()
	ctx := context.Background()

	s.Set(ctx, "short", backend.Entry{Value: []byte("a"), Expires: now.Add(time.Minute), Version: 1})
	s.Set(ctx, "long", backend.Entry{Value: []byte("b"), Expires: now.Add(time.Hour), Version: 1})

	now = now.Add(2 * time.Minute)
	_, err := s.Get(ctx, "short")
	fmt.Println(err)
	fmt.Println(s.Len(), "stored before Sweep")
	fmt.Println(s.Sweep(), "removed")
	fmt.Println(s.Len(), "stored after Sweep")
	// Output:
	// sessions: not found
	// 2 stored before Sweep
	// 1 removed
	// 1 stored after Sweep
}

// Conditional writes detect a concurrent change of the same session.
func ExampleStore_SetIf() {
	s := memory.New(memory.Options{})
	defer s.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)

	fmt.Println(s.SetIf(ctx, "key", 0, time.Now(), backend.Entry{Value: []byte("v1"), Expires: exp, Version: 1}))
	fmt.Println(s.SetIf(ctx, "key", 1, time.Now(), backend.Entry{Value: []byte("v2"), Expires: exp, Version: 2}))
	// A request that loaded version 1 is too late now.
	fmt.Println(s.SetIf(ctx, "key", 1, time.Now(), backend.Entry{Value: []byte("v2'"), Expires: exp, Version: 2}))
	// Output:
	// <nil>
	// <nil>
	// sessions: conflict: session changed since it was loaded
}
