package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/sqlite"
)

func entry(value string, version uint64) backend.Entry {
	return backend.Entry{Value: []byte(value), Expires: time.Now().Add(time.Minute), Limit: time.Now().Add(time.Hour), Version: version}
}

// faultOn returns a tap fault that fails the first statement starting with
// prefix, before it runs (ran false) or after it ran (ran true), with
// context.Canceled, as modernc.org/sqlite reports a statement whose
// context ended while it ran; hit counts the faults injected. The fault
// function is called from every goroutine that runs a statement on the
// tapped handle (the Store's checkpointer included), so hit is atomic.
func faultOn(prefix string, ran bool, hit *atomic.Int32) func(string, bool) error {
	return func(query string, after bool) error {
		if after == ran && strings.HasPrefix(query, prefix) && hit.CompareAndSwap(0, 1) {
			return context.Canceled
		}
		return nil
	}
}

// outcomeStore returns a store whose handle tp taps, and a plain store on
// the same file to look with.
func outcomeStore(t *testing.T, opts sqlite.Options) (*tap, *sqlite.Store, *sqlite.Store) {
	t.Helper()
	path := dbPath(t)
	tp := &tap{}
	opts.CleanupInterval = -1
	st := storeOn(t, tapDB(t, path, tp, sqlite.Options{}), opts)
	return tp, st, openStore(t, path, sqlite.Options{CleanupInterval: -1})
}

// writeCase is a write whose statement the tests fail, and what it must
// leave.
type writeCase struct {
	name   string
	stmt   string // the prefix of the statement to fail
	setup  func(t *testing.T, st *sqlite.Store)
	write  func(ctx context.Context, st *sqlite.Store) error
	landed func(t *testing.T, look *sqlite.Store) // checks that the write is stored
	// unknownIfLanded: the write deletes its row, so once it landed the
	// rows cannot show whose it was: ErrUnknownOutcome is the answer.
	unknownIfLanded bool
	// unknownIfNot: the write requires nothing of the rows and counts no
	// version up (Set, Touch, the owner index's), so when the rows do not
	// show it, a later write may have written over it: they cannot prove
	// that it did not land.
	unknownIfNot bool
}

func writeCases() []writeCase {
	now := time.Now()
	get := func(t *testing.T, look *sqlite.Store, key string) backend.Entry {
		t.Helper()
		e, err := look.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		return e
	}
	gone := func(t *testing.T, look *sqlite.Store, key string) {
		t.Helper()
		if _, err := look.Get(t.Context(), key); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("Get(%s): %v, want ErrNotFound", key, err)
		}
	}
	owned := func(t *testing.T, look *sqlite.Store, owner string, want ...string) {
		t.Helper()
		keys, err := look.Owned(t.Context(), owner)
		slices.Sort(keys)
		if err != nil || !slices.Equal(keys, want) {
			t.Fatalf("Owned(%s) = %q, %v; want %q", owner, keys, err, want)
		}
	}
	base := func(t *testing.T, st *sqlite.Store) {
		t.Helper()
		if err := st.SetIf(t.Context(), "k", 0, time.Now(), entry("v1", 1)); err != nil {
			t.Fatal(err)
		}
		if err := st.AddOwned(t.Context(), "u", "k", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return []writeCase{
		{name: "SetIf", stmt: "UPDATE \"sessions\" SET value", setup: base,
			write: func(ctx context.Context, st *sqlite.Store) error {
				return st.SetIf(ctx, "k", 1, time.Now(), entry("v2", 2))
			},
			landed: func(t *testing.T, look *sqlite.Store) {
				if e := get(t, look, "k"); string(e.Value) != "v2" || e.Version != 2 {
					t.Fatalf("after the SetIf: %q version %d, want v2 version 2", e.Value, e.Version)
				}
			}},
		{name: "SetIf creating", stmt: "INSERT INTO \"sessions\"", setup: base,
			write: func(ctx context.Context, st *sqlite.Store) error {
				return st.SetIf(ctx, "c", 0, time.Now(), entry("c1", 1))
			},
			landed: func(t *testing.T, look *sqlite.Store) {
				if e := get(t, look, "c"); string(e.Value) != "c1" {
					t.Fatalf("after the create: %q", e.Value)
				}
			}},
		{name: "SetIf creating with an owner", stmt: "INSERT INTO \"sessions\"", setup: base,
			write: func(ctx context.Context, st *sqlite.Store) error {
				e := entry("c1", 1)
				e.Owner = "w"
				return st.SetIf(ctx, "c", 0, time.Now(), e)
			},
			landed: func(t *testing.T, look *sqlite.Store) {
				get(t, look, "c")
				owned(t, look, "w", "c")
			}},
		{name: "SetIf ending the session", stmt: "DELETE FROM \"sessions\"", setup: base, unknownIfLanded: true,
			write: func(ctx context.Context, st *sqlite.Store) error {
				return st.SetIf(ctx, "k", 1, time.Now(), backend.Entry{Expires: time.Now().Add(-time.Second), Version: 2})
			},
			landed: func(t *testing.T, look *sqlite.Store) { gone(t, look, "k") }},
		{name: "Replace", stmt: "UPDATE OR REPLACE", setup: base,
			write: func(ctx context.Context, st *sqlite.Store) error {
				e := entry("v3", 2)
				e.Owner = "u"
				return st.Replace(ctx, "k", 1, "k2", time.Now(), e)
			},
			landed: func(t *testing.T, look *sqlite.Store) {
				gone(t, look, "k")
				if e := get(t, look, "k2"); string(e.Value) != "v3" {
					t.Fatalf("new key after the Replace: %q", e.Value)
				}
				owned(t, look, "u", "k2")
			}},
		{name: "Set", stmt: "INSERT INTO \"sessions\"", setup: base, unknownIfNot: true,
			write: func(ctx context.Context, st *sqlite.Store) error { return st.Set(ctx, "k", entry("s1", 5)) },
			landed: func(t *testing.T, look *sqlite.Store) {
				if e := get(t, look, "k"); string(e.Value) != "s1" || e.Version != 5 {
					t.Fatalf("after the Set: %q version %d", e.Value, e.Version)
				}
			}},
		{name: "Touch", stmt: "UPDATE \"sessions\" SET expires", setup: base, unknownIfNot: true,
			write: func(ctx context.Context, st *sqlite.Store) error {
				return st.Touch(ctx, "k", time.Now(), now.Add(30*time.Minute))
			},
			landed: func(t *testing.T, look *sqlite.Store) {
				if e := get(t, look, "k"); !e.Expires.Equal(now.Add(30 * time.Minute).Truncate(time.Microsecond)) {
					t.Fatalf("after the Touch: expires in %v", time.Until(e.Expires))
				}
			}},
		{name: "Delete", stmt: "DELETE FROM \"sessions\"", setup: base,
			write:  func(ctx context.Context, st *sqlite.Store) error { return st.Delete(ctx, "k") },
			landed: func(t *testing.T, look *sqlite.Store) { gone(t, look, "k") }},
		{name: "AddOwned", stmt: "INSERT INTO \"sessions_owners\"", setup: base, unknownIfNot: true,
			write: func(ctx context.Context, st *sqlite.Store) error {
				return st.AddOwned(ctx, "u", "k9", now.Add(time.Hour))
			},
			landed: func(t *testing.T, look *sqlite.Store) { owned(t, look, "u", "k", "k9") }},
		{name: "RemoveOwned", stmt: "DELETE FROM \"sessions_owners\"", setup: base, unknownIfNot: true,
			write:  func(ctx context.Context, st *sqlite.Store) error { return st.RemoveOwned(ctx, "u", "k") },
			landed: func(t *testing.T, look *sqlite.Store) { owned(t, look, "u") }},
	}
}

// TestWriteReportedCancelledAfterItLandedIsResolved: each kind of write
// runs and commits, then the caller hears context.Canceled (what
// modernc.org/sqlite reports when the context ends as the statement
// completes). The store reads the rows back and reports success, the write
// stored once; only a write that deleted its row, which the rows cannot
// show as its own, is ErrUnknownOutcome.
func TestWriteReportedCancelledAfterItLandedIsResolved(t *testing.T) {
	for _, tc := range writeCases() {
		t.Run(tc.name, func(t *testing.T) {
			tp, st, look := outcomeStore(t, sqlite.Options{})
			tc.setup(t, st)
			var hit atomic.Int32
			tp.setFault(faultOn(tc.stmt, true, &hit))
			err := tc.write(t.Context(), st)
			tp.setFault(nil)
			if hit.Load() != 1 {
				t.Fatal("no fault injected: the test tested nothing")
			}
			switch {
			case tc.unknownIfLanded && !errors.Is(err, backend.ErrUnknownOutcome):
				t.Fatalf("a deleting write that landed, heard as cancelled: %v, want ErrUnknownOutcome", err)
			case !tc.unknownIfLanded && err != nil:
				t.Fatalf("a write that landed, heard as cancelled: %v, want success", err)
			}
			tc.landed(t, look)
		})
	}
}

// TestWriteCancelledBeforeItRanIsNotApplied: each kind of write fails with
// context.Canceled before its statement runs. The store reads the rows
// back, finds them as the write required them, and reports the context's
// error (not ErrUnknownOutcome: it knows the write did not land); only the
// writes that require nothing of the rows and count no version up (Set,
// Touch, the owner index's) cannot tell.
func TestWriteCancelledBeforeItRanIsNotApplied(t *testing.T) {
	for _, tc := range writeCases() {
		t.Run(tc.name, func(t *testing.T) {
			tp, st, look := outcomeStore(t, sqlite.Options{})
			tc.setup(t, st)
			before := snapshot(t, look)
			var hit atomic.Int32
			tp.setFault(faultOn(tc.stmt, false, &hit))
			err := tc.write(t.Context(), st)
			tp.setFault(nil)
			if hit.Load() != 1 {
				t.Fatal("no fault injected: the test tested nothing")
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("a write that never ran: %v, want context.Canceled", err)
			}
			if unknown := errors.Is(err, backend.ErrUnknownOutcome); unknown != tc.unknownIfNot {
				t.Fatalf("a write that never ran: %v; ErrUnknownOutcome %v, want %v", err, unknown, tc.unknownIfNot)
			}
			if after := snapshot(t, look); after != before {
				t.Fatalf("the file changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestOpenOutcomeUnresolved: when the rows cannot be read back (retries
// off, or the read-back failing too), a write heard as cancelled is
// ErrUnknownOutcome, with the context's error in it, never a plain
// failure, though it landed.
func TestOpenOutcomeUnresolved(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  sqlite.Options
		fault func(hit *atomic.Int32) func(string, bool) error
	}{
		{"ResolveWithin negative", sqlite.Options{ResolveWithin: -1}, func(hit *atomic.Int32) func(string, bool) error {
			return faultOn(`UPDATE "sessions" SET value`, true, hit)
		}},
		{"read-back failing", sqlite.Options{}, func(hit *atomic.Int32) func(string, bool) error {
			write := faultOn(`UPDATE "sessions" SET value`, true, hit)
			return func(q string, ran bool) error {
				if strings.HasPrefix(q, "SELECT version, expires") {
					return errors.New("disk on fire")
				}
				return write(q, ran)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, st, look := outcomeStore(t, tc.opts)
			if err := st.SetIf(t.Context(), "k", 0, time.Now(), entry("v1", 1)); err != nil {
				t.Fatal(err)
			}
			var hit atomic.Int32
			tp.setFault(tc.fault(&hit))
			err := st.SetIf(t.Context(), "k", 1, time.Now(), entry("v2", 2))
			tp.setFault(nil)
			if !errors.Is(err, backend.ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
				t.Fatalf("%v, want ErrUnknownOutcome and context.Canceled", err)
			}
			if e, _ := look.Get(t.Context(), "k"); string(e.Value) != "v2" {
				t.Fatalf("stored %q: the write did land, the test meant it to", e.Value)
			}
			t.Logf("the error: %v", err)
		})
	}
}

// TestCancelledWritesReportTheTruth cancels 300 real writes (a chain of
// SetIf of one session, 64 KiB values) at random moments, before, during
// and after their statement, through modernc.org/sqlite itself, and checks
// each answer against the file: success only for a write that is stored,
// a plain error only for one that is not, ErrUnknownOutcome for either.
func TestCancelledWritesReportTheTruth(t *testing.T) {
	st := newStore(t, sqlite.Options{CleanupInterval: -1})
	if err := st.SetIf(t.Context(), "k", 0, time.Now(), entry("v1", 1)); err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 64<<10)
	var landed, notLanded, unknown int
	for i := range 300 {
		cur, err := st.Get(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		e := entry("", cur.Version+1)
		e.Value = fmt.Appendf(value[:0:0], "%d:%s", i, value)
		ctx, cancel := context.WithCancel(t.Context())
		timer := time.AfterFunc(time.Duration(rand.IntN(400))*time.Microsecond, cancel)
		err = st.SetIf(ctx, "k", cur.Version, time.Now(), e)
		timer.Stop()
		cancel()
		after, gerr := st.Get(t.Context(), "k")
		if gerr != nil {
			t.Fatal(gerr)
		}
		stored := after.Version == e.Version && bytes.Equal(after.Value, e.Value)
		switch {
		case errors.Is(err, backend.ErrUnknownOutcome):
			unknown++
		case err == nil && !stored:
			t.Fatalf("write %d: success, but version %d is stored, not %d", i, after.Version, e.Version)
		case err == nil:
			landed++
		case !errors.Is(err, context.Canceled):
			t.Fatalf("write %d: %v", i, err)
		case stored:
			t.Fatalf("write %d: %v, but it is stored", i, err)
		default:
			notLanded++
		}
	}
	t.Logf("300 writes cancelled at random: %d reported stored, %d not stored, %d unknown", landed, notLanded, unknown)
	if landed == 0 || notLanded == 0 {
		t.Errorf("the cancellations all fell on one side (%d stored, %d not): the test tested little", landed, notLanded)
	}
}

// snapshot returns every row of the store's two tables as text.
func snapshot(t *testing.T, look *sqlite.Store) string {
	t.Helper()
	db := lookDB(t, look)
	var b strings.Builder
	for _, q := range []string{
		`SELECT key, hex(value), version, expires, limit_at, idle FROM sessions ORDER BY key`,
		`SELECT hex(owner), key, limit_at FROM sessions_owners ORDER BY 1, 2`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// lookDB returns a handle on the file of look, closed at cleanup.
func lookDB(t *testing.T, look *sqlite.Store) *sql.DB {
	t.Helper()
	db, err := sqlite.OpenDB(sqlite.Path(look), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
