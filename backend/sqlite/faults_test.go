package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
	"github.com/sessionx/sessions/internal/storeapp"
)

// holdWriteLock takes the write lock of the file at path on a connection
// of its own (BEGIN IMMEDIATE), as another process's transaction would,
// and returns the function that releases it.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// TestWriteLockHeldElsewhere: while another connection (another process)
// holds the file's write lock, reads go on (WAL mode), a write waits and
// gives up at its context's deadline, reporting the deadline (not an
// unknown outcome: it did not land); with no deadline it waits and lands
// once the lock is released; and past Options.BusyTimeout it fails with
// SQLITE_BUSY, a plain error (nothing was written), never a hang.
func TestWriteLockHeldElsewhere(t *testing.T) {
	path := dbPath(t)
	st := openStore(t, path, sqlite.Options{CleanupInterval: -1})
	now := time.Now()
	if err := st.SetIf(t.Context(), "k", 0, now, entry("v1", 1)); err != nil {
		t.Fatal(err)
	}

	t.Run("reads go on, a write gives up at its deadline", func(t *testing.T) {
		release := holdWriteLock(t, path)
		defer release()
		start := time.Now()
		if _, touched, err := st.GetTouch(t.Context(), "k", time.Now(), now, now.Add(time.Hour)); err != nil || touched {
			t.Fatalf("a load with no refresh due, lock held elsewhere: touched %v, %v", touched, err)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("a load waited %v for a writer", took)
		}
		for _, tc := range []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"SetIf", func(ctx context.Context) error { return st.SetIf(ctx, "k", 1, time.Now(), entry("v2", 2)) }},
			{"GetTouch with a refresh due", func(ctx context.Context) error {
				_, _, err := st.GetTouch(ctx, "k", time.Now(), time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
				return err
			}},
		} {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			start := time.Now()
			err := tc.call(ctx)
			cancel()
			waited := time.Since(start)
			t.Logf("%s: %v after %v", tc.name, err, waited)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, backend.ErrUnknownOutcome) {
				t.Errorf("%s with the lock held elsewhere: %v, want context.DeadlineExceeded (not ErrUnknownOutcome)", tc.name, err)
			}
			if waited > time.Second {
				t.Errorf("%s returned after %v, past its 200ms deadline", tc.name, waited)
			}
		}
		if e, err := st.Get(t.Context(), "k"); err != nil || e.Version != 1 {
			t.Fatalf("after the writes that gave up: %+v, %v; want version 1", e, err)
		}
	})

	t.Run("a write waits for the lock", func(t *testing.T) {
		release := holdWriteLock(t, path)
		time.AfterFunc(300*time.Millisecond, release)
		start := time.Now()
		if err := st.SetIf(t.Context(), "k", 1, time.Now(), entry("v2", 2)); err != nil {
			t.Fatalf("a write waiting for the lock: %v", err)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Errorf("the write returned after %v, before the lock was released", waited)
		}
	})

	t.Run("SQLITE_BUSY past BusyTimeout", func(t *testing.T) {
		short := openStore(t, path, sqlite.Options{CleanupInterval: -1, BusyTimeout: 100 * time.Millisecond})
		release := holdWriteLock(t, path)
		defer release()
		start := time.Now()
		err := short.SetIf(t.Context(), "k", 2, time.Now(), entry("v3", 3))
		t.Logf("%v after %v", err, time.Since(start))
		if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") && !strings.Contains(err.Error(), "locked") ||
			errors.Is(err, backend.ErrUnknownOutcome) || errors.Is(err, backend.ErrConflict) {
			t.Fatalf("a write past BusyTimeout: %v, want SQLITE_BUSY", err)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Fatalf("waited %v with a BusyTimeout of 100ms", waited)
		}
	})
}

// TestOpenHonoursTheContext: Open returns when its context ends, also
// while its first connection waits for a lock another connection holds
// (here an exclusive lock on a file not yet in WAL mode, which the
// connection needs to turn it to WAL), which the driver, whose connect
// takes no context, would wait for until Options.BusyTimeout; once the
// lock is released, Open succeeds.
func TestOpenHonoursTheContext(t *testing.T) {
	path := dbPath(t)
	db, err := sql.Open(sqlite.DriverName, "file:"+path) // rollback journal, no busy_timeout
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"CREATE TABLE app (a)", "BEGIN EXCLUSIVE", "INSERT INTO app VALUES (1)"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: 3 * time.Second})
	took := time.Since(start)
	t.Logf("Open while the file is locked: %v after %v", err, took)
	if err == nil {
		st.Close()
		t.Fatal("Open succeeded while another connection held an exclusive lock")
	}
	if !errors.Is(err, context.DeadlineExceeded) || took > 1500*time.Millisecond {
		t.Fatalf("Open with a 200 ms context: %v after %v; want context.DeadlineExceeded at about 200 ms", err, took)
	}
	if _, err := conn.ExecContext(t.Context(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, path, sqlite.Options{CleanupInterval: -1})
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), entry("v", 1)); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRows: rows whose columns hold values of the wrong type (a
// table altered by hand, without STRICT) are an error naming the row, from
// every read, never a panic and never a missing session (ErrNotFound would
// log the user out silently). A value whose bytes are garbage is handed to
// the core, which starts a new session and warns.
func TestCorruptRows(t *testing.T) {
	path := dbPath(t)
	db, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema, err := sqlite.SchemaSQL("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(strings.ReplaceAll(schema, ") STRICT;", ");")); err != nil {
		t.Fatal(err)
	}
	st := storeOn(t, db, sqlite.Options{CleanupInterval: -1})
	future := time.Now().Add(time.Hour).UnixMicro()
	for _, tc := range []struct{ name, row string }{
		{"expires is text", `'a', x'00', 1, 'tomorrow', NULL, 0`},
		{"version is text", `'b', x'00', 'one', ` + fmt.Sprint(future) + `, NULL, 0`},
		{"idle is a blob", `'c', x'00', 1, ` + fmt.Sprint(future) + `, NULL, x'ffff'`},
		{"limit is a real", `'d', x'00', 1, ` + fmt.Sprint(future) + `, 1.5e300, 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Exec(`INSERT INTO sessions (key, value, version, expires, limit_at, idle) VALUES (` + tc.row + `)`); err != nil {
				t.Fatal(err)
			}
			key := tc.row[1:2]
			_, err := st.Get(t.Context(), key)
			_, _, gerr := st.GetTouch(t.Context(), key, time.Now(), time.Now().Add(2*time.Hour), time.Now().Add(3*time.Hour))
			for _, err := range []error{err, gerr} {
				// A text deadline compares as greater than every number in
				// SQLite: the row is read, and its deadline does not scan.
				if err == nil && tc.name == "expires is text" {
					t.Fatalf("a row with a text deadline read without error")
				}
				if err != nil && (errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "sessions: sqlite")) {
					t.Fatalf("%v, want an error of the store's, not ErrNotFound", err)
				}
				t.Logf("%v", err)
			}
		})
	}

	t.Run("garbage value", func(t *testing.T) {
		var logs bytes.Buffer
		a := storeapp.New(t, st, sessions.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		_, _, cookie := a.Do(t, "/inc", "")
		if _, err := db.Exec(`UPDATE sessions SET value = randomblob(200) WHERE length(value) > 20`); err != nil {
			t.Fatal(err)
		}
		code, body, _ := a.Do(t, "/inc", cookie)
		if code != 200 || body != "1" || !strings.Contains(logs.String(), "corrupt") {
			t.Fatalf("a session whose stored bytes are garbage: %d %q, log %q; want a new session (1) and a warning", code, body, logs.String())
		}
	})
}

// TestCorruptFile: a file whose pages are overwritten with garbage, or that
// is not a database at all, is an error from Open or from the read, never a
// panic and never a missing session.
func TestCorruptFile(t *testing.T) {
	t.Run("pages overwritten", func(t *testing.T) {
		path := dbPath(t)
		st := openStore(t, path, sqlite.Options{CleanupInterval: -1})
		for i := range 200 {
			if err := st.SetIf(t.Context(), fmt.Sprint("k", i), 0, time.Now(), entry(strings.Repeat("v", 500), 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil { // checkpoints the -wal file into the database
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 16<<10 {
			t.Fatalf("database of %d bytes: the rows are not in it", len(b))
		}
		for i := 4096; i < len(b); i++ { // every page but the first (the schema)
			b[i] = byte(i * 7)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		reopened, err := sqlite.Open(t.Context(), path, sqlite.Options{CleanupInterval: -1})
		if err == nil {
			defer reopened.Close()
			_, err = reopened.Get(t.Context(), "k7")
		}
		t.Logf("%v", err)
		if err == nil || errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("a session in a corrupt file: %v, want an error saying the file is malformed", err)
		}
	})
	t.Run("not a database", func(t *testing.T) {
		path := dbPath(t)
		if err := os.WriteFile(path, bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		t.Logf("%v", err)
		if err == nil || !strings.Contains(err.Error(), "not a database") {
			t.Fatalf("Open of a file that is not a database: %v", err)
		}
	})
}

// TestDiskFull: when the file cannot grow (here its max_page_count, as a
// full disk does), a write fails with SQLITE_FULL, a plain error (nothing
// was written), the sessions stored before are intact, and through the
// middleware the request that could not be saved is answered 500, its
// change not stored. Space freed, writes go on.
func TestDiskFull(t *testing.T) {
	path := dbPath(t)
	dsn, err := sqlite.DSN(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn+"&_pragma=max_page_count(48)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := storeOn(t, db, sqlite.Options{CleanupInterval: -1})
	value := strings.Repeat("x", 20<<10)
	stored := 0
	var full error
	for i := range 100 {
		if err := st.SetIf(t.Context(), fmt.Sprint("k", i), 0, time.Now(), entry(value, 1)); err != nil {
			full = err
			break
		}
		stored++
	}
	t.Logf("%d sessions of 20 KiB stored, then: %v", stored, full)
	if full == nil || !strings.Contains(full.Error(), "full") || errors.Is(full, backend.ErrUnknownOutcome) {
		t.Fatalf("writing past the file's room: %v, want SQLITE_FULL", full)
	}
	for i := range stored {
		if e, err := st.Get(t.Context(), fmt.Sprint("k", i)); err != nil || string(e.Value) != value {
			t.Fatalf("session %d after the disk filled: %d bytes, %v", i, len(e.Value), err)
		}
	}
	if _, err := st.Get(t.Context(), fmt.Sprint("k", stored)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the session whose write failed: %v, want ErrNotFound", err)
	}

	// Through the middleware: a visitor whose change cannot be stored is
	// told so.
	mgr, err := sessions.New[storeapp.Visit](sessions.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	h := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.User = value
		io.WriteString(w, "saved?")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("a request whose session cannot be stored: %d, cookies %v; want 500 and no cookie", rec.Code, rec.Result().Cookies())
	}

	for i := range stored {
		if err := st.Delete(t.Context(), fmt.Sprint("k", i)); err != nil {
			t.Fatalf("Delete on a full file: %v", err)
		}
	}
	if err := st.SetIf(t.Context(), "after", 0, time.Now(), entry(value, 1)); err != nil {
		t.Fatalf("a write after room was freed: %v", err)
	}
}

// TestReadOnlyFile: on a handle that cannot write the file (opened
// read-only, as a file on a read-only mount is), sessions stored before are
// served, and every write fails with an error (SQLITE_READONLY): through
// the middleware, 500, never a silent loss.
func TestReadOnlyFile(t *testing.T) {
	path := dbPath(t)
	rw := openStore(t, path, sqlite.Options{CleanupInterval: -1})
	a := storeapp.New(t, rw, sessions.Config{})
	_, _, cookie := a.Do(t, "/inc", "")
	dsn, err := sqlite.DSN(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", strings.Replace(dsn, "?", "?mode=ro&", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ro, err := sqlite.New(t.Context(), db, sqlite.Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r := storeapp.New(t, ro, sessions.Config{Logger: slog.New(slog.DiscardHandler)})
	if code, body, _ := r.Do(t, "/read", cookie); code != 200 || body != "1" {
		t.Fatalf("reading on a read-only handle: %d %q", code, body)
	}
	code, body, _ := r.Do(t, "/inc", cookie)
	t.Logf("a change on a read-only handle: %d %q", code, strings.TrimSpace(body))
	if code != http.StatusInternalServerError {
		t.Fatalf("a change on a read-only handle: %d %q, want 500", code, body)
	}
	if _, body, _ := a.Do(t, "/read", cookie); body != "1" {
		t.Fatalf("after the refused change: %q, want 1", body)
	}
	err = ro.SetIf(t.Context(), "x", 0, time.Now(), entry("v", 1))
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("SetIf on a read-only handle: %v, want SQLITE_READONLY", err)
	}
}
