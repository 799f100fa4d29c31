package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
)

// pragmas reads, on conn, the pragmas DSN sets.
func pragmas(t *testing.T, conn *sql.Conn) (mode string, busy, synchronous, autocheckpoint int64) {
	t.Helper()
	for _, p := range []struct {
		name string
		to   any
	}{
		{"journal_mode", &mode}, {"busy_timeout", &busy}, {"synchronous", &synchronous}, {"wal_autocheckpoint", &autocheckpoint},
	} {
		if err := conn.QueryRowContext(t.Context(), "PRAGMA "+p.name).Scan(p.to); err != nil {
			t.Fatalf("PRAGMA %s: %v", p.name, err)
		}
	}
	return mode, busy, synchronous, autocheckpoint
}

// TestDSNPragmas: every connection of a handle opened with DSN (OpenDB) is
// in WAL mode, with synchronous NORMAL (1), no automatic checkpoints and
// Options.BusyTimeout as busy_timeout in milliseconds: 5000 by default, 1
// for less than a millisecond, and SQLite's largest, 2^31-1 ms (about 24.8
// days), for anything longer (which SQLite would take as 0: Open failed
// with a busy_timeout of 0 before DSN capped it). WAL mode stays with the
// file.
func TestDSNPragmas(t *testing.T) {
	for _, tc := range []struct {
		busy time.Duration
		want int64
	}{
		{0, 5000},
		{1500 * time.Millisecond, 1500},
		{time.Microsecond, 1},
		{24 * time.Hour, 86_400_000},
		{30 * 24 * time.Hour, math.MaxInt32},
		{math.MaxInt64, math.MaxInt32},
	} {
		t.Run(tc.busy.String(), func(t *testing.T) {
			path := dbPath(t)
			db, err := sqlite.OpenDB(path, sqlite.Options{BusyTimeout: tc.busy})
			if err != nil {
				t.Fatalf("OpenDB: %v", err)
			}
			defer db.Close()
			// Three connections at once: three distinct connections of the pool.
			var conns []*sql.Conn
			for range 3 {
				conn, err := db.Conn(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conns = append(conns, conn)
			}
			for i, conn := range conns {
				mode, busy, synchronous, autocheckpoint := pragmas(t, conn)
				if mode != "wal" || busy != tc.want || synchronous != 1 || autocheckpoint != 0 {
					t.Errorf("connection %d: journal_mode %s, busy_timeout %d, synchronous %d, wal_autocheckpoint %d; want wal, %d, 1, 0",
						i, mode, busy, synchronous, autocheckpoint, tc.want)
				}
			}
			// WAL mode is kept in the file: a handle opened without the
			// pragmas finds it.
			plain, err := sql.Open(sqlite.DriverName, path)
			if err != nil {
				t.Fatal(err)
			}
			var mode string
			if err := plain.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("a handle opened without pragmas: journal_mode %q, %v; want wal", mode, err)
			}
			plain.Close()
			// And Open takes it.
			st, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: tc.busy, CleanupInterval: -1})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			st.Close()
		})
	}
}

// TestSQLiteVersion: the SQLite that modernc.org/sqlite bundles is 3.37
// or later, as the store needs (STRICT tables; RETURNING came with 3.35).
func TestSQLiteVersion(t *testing.T) {
	db, err := sql.Open(sqlite.DriverName, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	var major, minor int
	if err := db.QueryRowContext(t.Context(), "SELECT sqlite_version()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || major < 3 || major == 3 && minor < 37 {
		t.Fatalf("SQLite %s (%v), want 3.37 or later", v, err)
	}
	t.Logf("SQLite %s", v)
}

// TestDSNAppended: a setting appended to DSN with the driver's
// _synchronous key takes effect (the driver applies it after the _pragma
// parameters); a second _pragma=synchronous(...) does not override the
// DSN's, as modernc.org/sqlite runs the _pragma parameters in alphabetical
// order, not in the order given (DSN's documentation says so).
func TestDSNAppended(t *testing.T) {
	dsn, err := sqlite.DSN(dbPath(t), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		appended string
		want     int64
	}{
		{"&_synchronous=FULL", 2},
		{"&_synchronous=EXTRA", 3},
		{"&_pragma=synchronous(FULL)", 1}, // "synchronous(full)" runs before "synchronous(normal)"
	} {
		db, err := sql.Open(sqlite.DriverName, dsn+tc.appended)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		mode, busy, synchronous, autocheckpoint := pragmas(t, conn)
		conn.Close()
		db.Close()
		if mode != "wal" || busy != 5000 || synchronous != tc.want || autocheckpoint != 0 {
			t.Errorf("DSN + %q: journal_mode %s, busy_timeout %d, synchronous %d, wal_autocheckpoint %d; want wal, 5000, %d, 0",
				tc.appended, mode, busy, synchronous, autocheckpoint, tc.want)
		}
	}
}

// TestStoreCheckpoints: with DSN's wal_autocheckpoint(0), no commit copies
// the -wal file into the database file: the writes of a handle used
// without a Store stay in the -wal file. A Store checkpoints (PASSIVE)
// from its own goroutine right after a write of its own, which brings
// every commit so far into the database file, and then at most once per
// CheckpointEvery while writes go on.
func TestStoreCheckpoints(t *testing.T) {
	path := dbPath(t)
	tp := &tap{}
	db := tapDB(t, path, tp, sqlite.Options{})
	st := storeOn(t, db, sqlite.Options{CleanupInterval: -1})

	// Writes through a handle of the application's own.
	raw, err := sqlite.OpenDB(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	before := fileSize(t, path)
	for i := range 100 {
		if _, err := raw.Exec(`INSERT INTO sessions (key, value, version, expires) VALUES (?1, randomblob(4000), 1, ?2)`,
			fmt.Sprint("raw", i), time.Now().Add(time.Hour).UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(sqlite.CheckpointEvery + 200*time.Millisecond)
	if size := fileSize(t, path); size != before {
		t.Fatalf("400 KB written without a Store: the database file went from %d to %d bytes; want no checkpoint", before, size)
	}
	if wal := fileSize(t, path+"-wal"); wal < 400_000 {
		t.Fatalf("400 KB written without a Store: -wal file of %d bytes", wal)
	}

	// One write of the Store's: its checkpointer copies everything.
	tp.take()
	now := time.Now()
	if err := st.SetIf(t.Context(), "k", 0, now, backend.Entry{Value: []byte("v"), Expires: now.Add(time.Hour), Version: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fileSize(t, path) < before+400_000 {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a Store's write, the database file is %d bytes (was %d): no checkpoint", fileSize(t, path), before)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Writes for 2.5 s: at most 3 checkpoints (one per CheckpointEvery).
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := uint64(1); ctx.Err() == nil; v++ {
			now := time.Now()
			if err := st.SetIf(context.Background(), "k", v, now, backend.Entry{Value: []byte("v"), Expires: now.Add(time.Hour), Version: v + 1}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	tp.take()
	wg.Wait()
	var checkpoints int
	for _, q := range tp.take() {
		if strings.HasPrefix(q, "PRAGMA wal_checkpoint") {
			if q != "PRAGMA wal_checkpoint(PASSIVE)" {
				t.Errorf("the checkpointer runs %q, want a PASSIVE checkpoint", q)
			}
			checkpoints++
		}
	}
	t.Logf("%d checkpoints in 2.5 s of writes", checkpoints)
	if checkpoints < 1 || checkpoints > 3 {
		t.Errorf("%d checkpoints in 2.5 s of writes, want 1 to 3 (at most one per %v)", checkpoints, sqlite.CheckpointEvery)
	}
}
