package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo on a real PostgreSQL (two processes sharing sessions) is tested
// in backend/postgres (TestDemoSharesSessionsInPostgres), whose helpers
// start private servers; these tests need none.

func TestRunPostgresUnreachable(t *testing.T) {
	t.Parallel()
	silent := silentServer(t)
	for _, tc := range []struct {
		name string
		dsn  string
	}{
		{"refused", "postgres://demo@127.0.0.1:1/demo?sslmode=disable"},
		{"silent", "postgres://demo@" + silent + "/demo?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			start := time.Now()
			err := run(ctx, []string{"-addr", "127.0.0.1:0", "-postgres", tc.dsn}, &out)
			elapsed := time.Since(start)
			t.Logf("-postgres %s: %v after %s", tc.dsn, err, elapsed.Round(time.Millisecond))
			if err == nil {
				t.Fatal("no error")
			}
			if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "postgres") || !strings.Contains(msg, "unreachable") {
				t.Errorf("error %q does not say PostgreSQL is unreachable", err)
			}
			if elapsed > 8*time.Second {
				t.Errorf("took %s to give up, want about the 5 s startup bound", elapsed)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q: it must not listen without its store", out.String())
			}
		})
	}
}

func TestRunPostgresFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-postgres", "postgres://x@127.0.0.1:1/x", "-redis", "127.0.0.1:1"},
		{"-postgres", "postgres://x@127.0.0.1:1/x", "-redis-cluster", "127.0.0.1:1"},
		{"-postgres", "postgres://x@127.0.0.1:1/x", "-postgres-table", "x; DROP TABLE y"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out bytes.Buffer
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out)
		cancel()
		if err == nil {
			t.Errorf("run %q: no error", args)
			continue
		}
		t.Logf("run %q: %v", args, err)
		if out.Len() != 0 {
			t.Errorf("run %q printed %q", args, out.String())
		}
	}
}
