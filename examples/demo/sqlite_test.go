package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSQLiteSessionsSurviveARestart runs the demo on a SQLite file, logs in
// and counts two visits, stops the demo process, starts a new one on the
// same file, and checks that the browser's session is still there: the
// same user, the counter going on.
func TestSQLiteSessionsSurviveARestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sessions.db")
	args := []string{"-addr", "127.0.0.1:0", "-sqlite", file}
	var browser *client
	t.Run("first process", func(t *testing.T) {
		d := startDemo(t, args...) // stopped when this subtest ends
		if want := "sqlite " + file; d.store != want {
			t.Errorf("store %q, want %q", d.store, want)
		}
		browser = newClient(t, d.base)
		browser.start()
		for i, st := range []struct {
			method, path string
			form         url.Values
			want         map[string]any
		}{
			{"POST", "/api/login", url.Values{"user": {"ann"}}, map[string]any{"user": "ann"}},
			{"GET", "/api/visit", nil, map[string]any{"visits": 1.0, "user": "ann"}},
			{"GET", "/api/visit", nil, map[string]any{"visits": 2.0, "user": "ann"}},
		} {
			code, got := browser.call(st.method, st.path, st.form)
			if code != 200 {
				t.Fatalf("step %d %s %s: status %d (%v)", i, st.method, st.path, code, got)
			}
			for k, v := range st.want {
				if got[k] != v {
					t.Fatalf("step %d %s %s: %s = %v, want %v", i, st.method, st.path, k, got[k], v)
				}
			}
		}
	})
	if t.Failed() {
		return
	}
	t.Run("second process", func(t *testing.T) {
		d := startDemo(t, args...)
		// The same browser (cookie jar and CSRF token) on the new process.
		again := &client{t: t, base: d.base, http: browser.http, csrf: browser.csrf}
		if code, got := again.call("GET", "/api/me", nil); code != 200 || got["user"] != "ann" {
			t.Fatalf("after the restart, /api/me: %d %v, want 200 and user ann", code, got)
		}
		if code, got := again.call("GET", "/api/visit", nil); code != 200 || got["visits"] != 3.0 {
			t.Fatalf("after the restart, /api/visit: %d %v, want 200 and 3 visits", code, got)
		}
	})
}

// TestTwoProcessesShareSessionsInSQLite runs two demo processes on one
// SQLite file at once: one browser's session, written by both, is the same
// on both, the counter exact, a logout on one ends it on the other.
func TestTwoProcessesShareSessionsInSQLite(t *testing.T) {
	t.Parallel()
	args := []string{"-addr", "127.0.0.1:0", "-sqlite", filepath.Join(t.TempDir(), "shared.db")}
	a, b := startDemo(t, args...), startDemo(t, args...)
	checkSharedSessions(t, a, b, true)
}

func TestRunSQLiteFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-sqlite", ""}, "no file"},
		{[]string{"-sqlite", "x.db", "-redis", "127.0.0.1:1"}, "exclude each other"},
		{[]string{"-sqlite", "x.db", "-mysql", "u@tcp(127.0.0.1:1)/x"}, "exclude each other"},
		{[]string{"-sqlite", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}, "sqlite"},
		{[]string{"-mysql", "not a dsn"}, "mysql"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out bytes.Buffer
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, tc.args...), &out)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed %q: it must not listen", tc.args, out.String())
		}
	}
}
