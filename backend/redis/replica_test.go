package redis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/internal/redistest"
)

// TestWriteAnsweredByReplicaIsRefused: a store whose client reaches a
// replica (a connection to a primary that was just demoted by a failover,
// before the client hears of the new primary) must not take the replica's
// view for the store's answer. Before it writes, a script answers from what
// it reads: "already applied", "another version", "missing", "late".
// On a replica those answers are about a copy that lags the primary: a
// write retried after a lost reply that lands on the demoted node would be
// answered "late" (a plain failure) though its first copy is on the new
// primary, and a Touch "missing" though the session lives. Every write
// script, and the load (GetTouch), must fail with Redis's READONLY error
// there, before answering anything.
func TestWriteAnsweredByReplicaIsRefused(t *testing.T) {
	needBinaries(t)
	primary := redistest.StartServer(t)
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
	onPrimary := newStore(t, primary.Client())
	onReplica := newStore(t, replica.Client())
	ctx := t.Context()
	later := func() time.Time { return time.Now().Add(time.Hour) }
	if err := onPrimary.Set(ctx, "k", backend.Entry{Value: []byte("v2"), Expires: later(), Version: 2}); err != nil {
		t.Fatal(err)
	}
	if err := onPrimary.AddOwned(ctx, "u", "k", later()); err != nil {
		t.Fatal(err)
	}
	// Wait until the replica has both.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := replica.Client().Exists(ctx, prefix(t)+"k").Result()
		keys, _ := replica.Client().Keys(ctx, prefix(t)+"*").Result()
		if err == nil && n == 1 && len(keys) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync: %v %v", keys, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	limit := later()
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"SetIf over a version the replica holds", func(ctx context.Context) error {
			return onReplica.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Value: []byte("x"), Expires: later(), Version: 3})
		}},
		{"SetIf of a key the replica lacks", func(ctx context.Context) error {
			return onReplica.SetIf(ctx, "missing", 1, time.Now(), backend.Entry{Value: []byte("x"), Expires: later(), Version: 3})
		}},
		{"SetIf creating over a key the replica holds", func(ctx context.Context) error {
			return onReplica.SetIf(ctx, "k", 0, time.Now(), backend.Entry{Value: []byte("x"), Expires: later(), Version: 1})
		}},
		{"SetIf removing a key the replica lacks", func(ctx context.Context) error {
			return onReplica.SetIf(ctx, "missing", 1, time.Now(), backend.Entry{Expires: time.Now().Add(-time.Second), Version: 3})
		}},
		{"Touch of a key the replica lacks", func(ctx context.Context) error {
			return onReplica.Touch(ctx, "missing", time.Now(), later())
		}},
		{"Touch to where the replica has it", func(ctx context.Context) error {
			e, err := onPrimary.Get(ctx, "k")
			if err != nil {
				return err
			}
			return onReplica.Touch(ctx, "k", time.Now(), e.Expires)
		}},
		{"Replace from a key the replica lacks", func(ctx context.Context) error {
			return onReplica.Replace(ctx, "missing", 1, "k3", time.Now(), backend.Entry{Value: []byte("x"), Expires: later(), Version: 3})
		}},
		{"Delete of a key the replica lacks", func(ctx context.Context) error {
			return onReplica.Delete(ctx, "missing")
		}},
		{"AddOwned forgetting a key the replica lacks", func(ctx context.Context) error {
			return onReplica.AddOwned(ctx, "u", "gone", time.Now().Add(-time.Second))
		}},
		{"RemoveOwned of a key the replica lacks", func(ctx context.Context) error {
			return onReplica.RemoveOwned(ctx, "u", "missing")
		}},
		{"GetTouch of a key the replica lacks", func(ctx context.Context) error {
			_, _, err := onReplica.GetTouch(ctx, "missing", time.Now(), time.Now(), limit)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := tc.op(ctx)
			t.Logf("on the replica: %v", err)
			switch {
			case err == nil:
				t.Error("succeeded on a replica")
			case errors.Is(err, backend.ErrNotFound), errors.Is(err, backend.ErrConflict), errors.Is(err, context.DeadlineExceeded):
				t.Errorf("answered %v on a replica, want Redis's READONLY", err)
			case !strings.Contains(err.Error(), "READONLY"):
				t.Errorf("error %v, want Redis's READONLY", err)
			}
		})
	}
}
