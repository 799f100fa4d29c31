// Package storetest is a conformance suite for implementations of
// backend.Store and its optional capabilities, in the manner of
// testing/slogtest.
//
// A store author calls Run from an ordinary test, with a function that
// returns a fresh, empty-enough store for each case:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) backend.Store {
//			s, err := mystore.Open(mystore.Options{Addr: addr})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls newStore once per case, inside the case's subtest, so t.Cleanup
// registered there runs when the case ends. Every case is its own subtest,
// named after the rule it checks; a failing case logs that rule. Cases for the
// optional capabilities (backend.Conditional, backend.Replacer,
// backend.GetToucher, backend.Indexer) run only when the store implements
// them and are skipped otherwise. Single cases can be selected with go test -run, e.g.
// -run 'TestConformance/SetIf'.
//
// The suite writes only keys (and owners) of its own, made of a fixed prefix
// and random characters, so the stores handed to it may share one server (a Redis
// database, say) with other runs and other data. It never closes the stores.
//
// Time-based cases use real time, because a networked store expires entries
// by its own server's clock: entries get deadlines a few hundred
// milliseconds ahead and the suite sleeps or polls past them, so the whole
// suite takes a few seconds. It never asserts how fast a store is: when a
// store answers so slowly that an entry's deadline has passed before a check
// could be made, the case is skipped as inconclusive rather than failed.
// Deadlines are compared at millisecond precision, the precision of Redis's
// PXAT.
//
// The methods that take the core's now (Touch, SetIf, Replace, GetTouch) get
// the real time, so that the store's clock and the core's agree, except in
// the CoreClockAhead cases: there the core's clock runs 90 minutes ahead of
// the real time, past the deadline of an entry that the store's clock still
// finds live, and the store must treat that entry as missing (ErrNotFound
// from Touch, GetTouch, SetIf with old != 0 and Replace, which write nothing;
// SetIf with old 0 and Replace may write over it).
//
// Conditional writes tell a session that is gone from one that changed:
// SetIf with old != 0 and Replace return ErrNotFound when no live entry is
// stored under the (old) key, and ErrConflict only when a live entry holds
// another version, or is in the way of a create or a move.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Time constants of the suite.
const (
	// tolerance is how far apart two deadlines may be and still count as
	// the same: stores may keep them at millisecond precision.
	tolerance = 2 * time.Millisecond

	// short is how far ahead a deadline is set when a case waits for it.
	short = 300 * time.Millisecond

	// slack is how long before a deadline a check must have been made for
	// "not found" to count as a failure rather than a slow store.
	slack = 50 * time.Millisecond

	// grace is how long after a deadline the suite polls before it
	// declares that an entry was never removed.
	grace = 3 * time.Second

	// pollEvery is the polling interval while waiting for an entry to go.
	pollEvery = 20 * time.Millisecond

	// long is a deadline far enough ahead never to pass during a case.
	long = time.Hour
)

// Run runs the conformance suite against the stores made by newStore, each
// case as a subtest of t on a store of its own. newStore is called from
// within the subtest with its *testing.T, so it may call t.Fatal when it
// cannot make a store and t.Cleanup to close it.
func Run(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			defer func() {
				if t.Failed() {
					t.Logf("rule: %s", c.doc)
				}
			}()
			c.run(t, s)
		})
	}
}

// cases is the suite: each case has a name (its subtest's), a one-line
// statement of the rule it checks, and the check.
var cases = []struct {
	name string
	doc  string
	run  func(t *testing.T, s backend.Store)
}{
	// Store.
	{"GetMissing", "Get of a key never written returns ErrNotFound and the zero Entry.", testGetMissing},
	{"IdleRoundTrips", "An entry's Idle is returned by Get as written, and kept by Touch.", testIdleRoundTrips},
	{"SetGet", "Get returns the Value, Version, Expires and Limit given to Set (deadlines at ms precision; a zero Limit stays zero).", testSetGet},
	{"SetReplaces", "Set replaces the entry stored under the key.", testSetReplaces},
	{"EmptyValue", "A zero-length or nil Value round trips as a zero-length Value without error.", testEmptyValue},
	{"SetPastExpires", "Set with an Expires not in the future (past or zero) stores nothing and removes the entry under the key.", testSetPastExpires},
	{"Expires", "An entry is found before its Expires and gone after it.", testExpires},
	{"GetReturnsCopy", "The Value returned by Get is the caller's: modifying it does not change the stored entry.", testGetReturnsCopy},
	{"SetCopiesValue", "Set copies the Value: the caller may reuse the slice afterwards.", testSetCopiesValue},
	{"TouchExtends", "Touch moves Expires later, so the entry outlives its old deadline, and keeps Value and Version.", testTouchExtends},
	{"TouchCappedAtLimit", "Touch never moves Expires past Limit, and the entry is gone after Limit.", testTouchCappedAtLimit},
	{"TouchMissing", "Touch of a missing key returns ErrNotFound and creates nothing.", testTouchMissing},
	{"TouchPastRemoves", "Touch with an expires not in the future (past or zero) removes the entry.", testTouchPastRemoves},
	{"Delete", "Delete removes the entry under its key only; deleting a missing key is not an error.", testDelete},
	{"LargeValue", "A 1 MiB Value round trips byte for byte.", testLargeValue},
	{"BinaryValue", "A Value holding all 256 byte values round trips byte for byte.", testBinaryValue},
	{"Concurrent", "Concurrent Set, Get, Touch and Delete are safe, and each goroutine reads back its own last write.", testConcurrent},
	{"ContextCanceled", "Every method called with a cancelled context returns an error matching context.Canceled and changes nothing.", testContextCanceled},

	// Conditional.
	{"SetIfCreate", "SetIf with old 0 on a missing key stores the entry.", testSetIfCreate},
	{"SetIfCreateExisting", "SetIf with old 0 on a live key returns ErrConflict and changes nothing.", testSetIfCreateExisting},
	{"SetIfMatch", "SetIf with the stored version replaces the entry.", testSetIfMatch},
	{"SetIfMismatch", "SetIf with another version returns ErrConflict and changes nothing.", testSetIfMismatch},
	{"SetIfMissing", "SetIf with old != 0 on a key never written returns ErrNotFound and stores nothing.", testSetIfMissing},
	{"SetIfAfterDelete", "Once a key is deleted, SetIf with its old version returns ErrNotFound (gone, not changed) and does not bring it back.", testSetIfAfterDelete},
	{"SetIfAfterExpiry", "Once a key has expired, SetIf with its old version returns ErrNotFound (gone, not changed) and does not bring it back; SetIf with old 0 creates it.", testSetIfAfterExpiry},
	{"SetIfPastExpires", "SetIf with the stored version and an Expires in the past removes the entry, as Set does.", testSetIfPastExpires},
	{"SetIfConcurrent", "Of several concurrent SetIf calls from the same version, exactly one succeeds; the others return ErrConflict.", testSetIfConcurrent},

	// Replacer.
	{"ReplaceMoves", "Replace stores the new entry under the new key and removes the old key.", testReplaceMoves},
	{"ReplaceWrongVersion", "Replace with a version other than the old key's returns ErrConflict and changes nothing.", testReplaceWrongVersion},
	{"ReplaceMissingOld", "Replace of a missing old key (never written, or deleted) returns ErrNotFound and does not create the new key.", testReplaceMissingOld},
	{"ReplaceExistingNew", "Replace onto a live new key returns ErrConflict and changes neither key.", testReplaceExistingNew},
	{"ReplaceOverExpired", "An expired entry under the new key does not stop Replace.", testReplaceOverExpired},

	// GetToucher.
	{"GetTouchMissing", "GetTouch of a missing key returns ErrNotFound and creates nothing.", testGetTouchMissing},
	{"GetTouchDue", "GetTouch of an entry whose Expires is before ifBefore moves Expires and reports touched; the returned entry and a later Get show the new Expires.", testGetTouchDue},
	{"GetTouchCappedAtLimit", "GetTouch never moves Expires past Limit, and does not write (touched false) an entry already at its Limit.", testGetTouchCappedAtLimit},
	{"GetTouchNotDue", "GetTouch of an entry whose Expires is not before ifBefore returns it unchanged with touched false.", testGetTouchNotDue},
	{"GetTouchSlidesByEntryIdle", "GetTouch of an entry with its own Idle slides to now+Idle when its Expires is before now+Idle-slack (backend.Slide), whatever the caller's defaults.", testGetTouchSlidesByEntryIdle},

	// The core's clock ahead of the store's: an entry whose Expires is not
	// after the now passed in is missing, whatever the store's clock says.
	{"CoreClockAheadTouch", "Touch with a now past the entry's Expires (the core's clock ahead of the store's) returns ErrNotFound and does not move Expires.", testCoreClockAheadTouch},
	{"CoreClockAheadGetTouch", "GetTouch with a now past the entry's Expires returns ErrNotFound, touched false, and does not move Expires.", testCoreClockAheadGetTouch},
	{"CoreClockAheadSetIf", "SetIf with the stored version and a now past the entry's Expires returns ErrNotFound and stores nothing.", testCoreClockAheadSetIf},
	{"CoreClockAheadSetIfCreate", "SetIf with old 0 and a now past the entry's Expires stores the new entry over the one ended by that now.", testCoreClockAheadSetIfCreate},
	{"CoreClockAheadReplace", "Replace from a key whose Expires is before now returns ErrNotFound and leaves the new key empty.", testCoreClockAheadReplace},
	{"CoreClockAheadReplaceOverNew", "Replace onto a new key whose entry's Expires is before now (but not before the store's clock) succeeds.", testCoreClockAheadReplaceOverNew},

	// Indexer.
	{"OwnedAfterAdd", "After AddOwned, Owned of that owner lists the key.", testOwnedAfterAdd},
	{"OwnedSeveralKeys", "Owned lists every key recorded for an owner, each once.", testOwnedSeveralKeys},
	{"OwnersIndependent", "Keys recorded for one owner are not listed, nor removed, through another.", testOwnersIndependent},
	{"OwnerStrings", "Owners are arbitrary strings: spaces, unicode, ':', '{', '}', and 1 KiB owners work and stay distinct.", testOwnerStrings},
	{"RemoveOwned", "RemoveOwned forgets the given keys only; removing a missing key, from a known or an unknown owner, or no key at all, is not an error.", testRemoveOwned},
	{"AddOwnedTwice", "AddOwned of a recorded key keeps one record and replaces its limit, later or earlier.", testAddOwnedTwice},
	{"AddOwnedPastLimit", "AddOwned with a limit not in the future leaves the key unlisted, also when it was recorded with a later limit.", testAddOwnedPastLimit},
	{"OwnedLimit", "A key is listed before the limit given to AddOwned and no longer after it.", testOwnedLimit},
	{"OwnedUnknown", "Owned of an owner never recorded returns no key and no error.", testOwnedUnknown},
	{"IndexerContextCanceled", "AddOwned, RemoveOwned and Owned called with a cancelled context return an error matching context.Canceled and change nothing.", testIndexerContextCanceled},
	{"IndexerConcurrent", "Concurrent AddOwned, RemoveOwned and Owned on one owner are safe: each goroutine sees its own records, and the owner ends with exactly the keys added and not removed.", testIndexerConcurrent},

	// OwnerRecorder.
	{"OwnerRecordedOnCreate", "SetIf with old 0 and an Entry.Owner records the key under Owner until the entry's Limit; Get does not return the Owner.", testOwnerRecordedOnCreate},
	{"OwnerNotRecordedOnRefusedCreate", "SetIf with old 0 and an Entry.Owner onto a live key returns ErrConflict and records nothing.", testOwnerNotRecordedOnRefusedCreate},
	{"OwnerRecordedOnReplace", "Replace with an Entry.Owner records the new key under Owner and drops Owner's record of the old key.", testOwnerRecordedOnReplace},
	{"OwnerNotRecordedOnRefusedReplace", "Replace with an Entry.Owner that is refused (another version) changes no record.", testOwnerNotRecordedOnRefusedReplace},
}

// ---- Store cases ----

func testGetMissing(t *testing.T, s backend.Store) {
	key := newKey(t)
	e, err := s.Get(t.Context(), key)
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
	if e.Value != nil || !e.Expires.IsZero() || !e.Limit.IsZero() || e.Version != 0 {
		t.Errorf("Get(missing) entry = %+v, want the zero Entry", e)
	}
}

func testSetGet(t *testing.T, s backend.Store) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		e    backend.Entry
	}{
		{"no limit", backend.Entry{Value: []byte("session one"), Expires: now.Add(long), Version: 1}},
		{"limit", backend.Entry{Value: []byte("session two"), Expires: now.Add(long), Limit: now.Add(2 * long), Version: 7}},
		{"sub-ms deadlines", backend.Entry{Value: []byte("x"), Expires: now.Add(long + 123456789), Limit: now.Add(2*long + 987654321), Version: 2}},
		{"max version", backend.Entry{Value: []byte("y"), Expires: now.Add(long), Version: math.MaxUint64}},
	} {
		key := newKey(t)
		mustSet(t, s, key, tc.e)
		got := mustGet(t, s, key)
		checkEntry(t, tc.name, got, tc.e)
	}
}

func testSetReplaces(t *testing.T, s backend.Store) {
	key := newKey(t)
	now := time.Now()
	mustSet(t, s, key, backend.Entry{Value: []byte("first"), Expires: now.Add(long), Limit: now.Add(2 * long), Version: 1})
	second := backend.Entry{Value: []byte("second, longer"), Expires: now.Add(2 * long), Version: 2}
	mustSet(t, s, key, second)
	checkEntry(t, "after second Set", mustGet(t, s, key), second)
}

func testEmptyValue(t *testing.T, s backend.Store) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
	} {
		key := newKey(t)
		mustSet(t, s, key, backend.Entry{Value: tc.value, Expires: time.Now().Add(long), Version: 3})
		got, err := s.Get(t.Context(), key)
		if err != nil {
			t.Errorf("%s value: Get error = %v, want nil", tc.name, err)
			continue
		}
		if len(got.Value) != 0 || got.Version != 3 {
			t.Errorf("%s value: Get = value %q version %d, want empty value version 3", tc.name, got.Value, got.Version)
		}
	}
}

func testSetPastExpires(t *testing.T, s backend.Store) {
	for _, tc := range []struct {
		name    string
		expires time.Time
	}{
		{"past", time.Now().Add(-time.Second)},
		{"long past", time.Now().Add(-365 * 24 * time.Hour)},
		{"zero", time.Time{}},
	} {
		// On a missing key: nothing is stored.
		key := newKey(t)
		mustSet(t, s, key, backend.Entry{Value: []byte("v"), Expires: tc.expires, Version: 1})
		wantNotFound(t, s, key, tc.name+" Expires on a missing key")

		// On an existing key: the entry is removed.
		key = newKey(t)
		mustSet(t, s, key, backend.Entry{Value: []byte("v"), Expires: time.Now().Add(long), Version: 1})
		mustSet(t, s, key, backend.Entry{Value: []byte("w"), Expires: tc.expires, Version: 2})
		wantNotFound(t, s, key, tc.name+" Expires on an existing key")
	}
}

func testExpires(t *testing.T, s backend.Store) {
	key := newKey(t)
	deadline := time.Now().Add(short)
	want := backend.Entry{Value: []byte("short-lived"), Expires: deadline, Version: 1}
	mustSet(t, s, key, want)
	got, err := s.Get(t.Context(), key)
	inconclusiveIfLate(t, err, deadline)
	if err != nil {
		t.Fatalf("Get before the deadline: %v", err)
	}
	checkEntry(t, "before the deadline", got, want)
	waitGone(t, s, key, deadline)
}

func testGetReturnsCopy(t *testing.T, s backend.Store) {
	key := newKey(t)
	mustSet(t, s, key, backend.Entry{Value: []byte("original"), Expires: time.Now().Add(long), Version: 1})
	got := mustGet(t, s, key)
	for i := range got.Value {
		got.Value[i] = 'X'
	}
	got.Value = append(got.Value[:0], "appended"...)
	if again := mustGet(t, s, key); string(again.Value) != "original" {
		t.Errorf("after modifying the slice returned by Get, Get = %q, want %q", again.Value, "original")
	}
}

func testSetCopiesValue(t *testing.T, s backend.Store) {
	key := newKey(t)
	buf := []byte("original")
	mustSet(t, s, key, backend.Entry{Value: buf, Expires: time.Now().Add(long), Version: 1})
	copy(buf, "XXXXXXXX")
	if got := mustGet(t, s, key); string(got.Value) != "original" {
		t.Errorf("after overwriting the slice given to Set, Get = %q, want %q", got.Value, "original")
	}
}

func testTouchExtends(t *testing.T, s backend.Store) {
	key := newKey(t)
	first := time.Now().Add(short)
	mustSet(t, s, key, backend.Entry{Value: []byte("touched"), Expires: first, Version: 5})
	later := time.Now().Add(10 * short)
	err := s.Touch(t.Context(), key, time.Now(), later)
	inconclusiveIfLate(t, err, first)
	if err != nil {
		t.Fatalf("Touch: %v", err)
	}
	time.Sleep(time.Until(first.Add(short / 2)))
	got, err := s.Get(t.Context(), key)
	inconclusiveIfLate(t, err, later)
	if err != nil {
		t.Fatalf("Get after the original deadline: %v, want the touched entry", err)
	}
	checkEntry(t, "after Touch", got, backend.Entry{Value: []byte("touched"), Expires: later, Version: 5})
}

func testTouchCappedAtLimit(t *testing.T, s backend.Store) {
	key := newKey(t)
	now := time.Now()
	first, limit := now.Add(short), now.Add(2*short)
	mustSet(t, s, key, backend.Entry{Value: []byte("limited"), Expires: first, Limit: limit, Version: 2})

	// Below the Limit, Touch moves Expires where asked.
	within := limit.Add(-short / 2)
	err := s.Touch(t.Context(), key, time.Now(), within)
	inconclusiveIfLate(t, err, first)
	if err != nil {
		t.Fatalf("Touch below Limit: %v", err)
	}
	got, err := s.Get(t.Context(), key)
	inconclusiveIfLate(t, err, within)
	if err != nil {
		t.Fatalf("Get after Touch below Limit: %v", err)
	}
	checkEntry(t, "after Touch below Limit", got, backend.Entry{Value: []byte("limited"), Expires: within, Limit: limit, Version: 2})

	// Past the Limit, Touch stops at the Limit.
	err = s.Touch(t.Context(), key, time.Now(), time.Now().Add(long))
	inconclusiveIfLate(t, err, within)
	if err != nil {
		t.Fatalf("Touch past Limit: %v", err)
	}
	got, err = s.Get(t.Context(), key)
	inconclusiveIfLate(t, err, limit)
	if err != nil {
		t.Fatalf("Get after Touch past Limit: %v", err)
	}
	checkEntry(t, "after Touch past Limit", got, backend.Entry{Value: []byte("limited"), Expires: limit, Limit: limit, Version: 2})
	waitGone(t, s, key, limit)
}

func testTouchMissing(t *testing.T, s backend.Store) {
	key := newKey(t)
	if err := s.Touch(t.Context(), key, time.Now(), time.Now().Add(long)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Touch(missing) error = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, key, "after Touch of a missing key")
}

func testTouchPastRemoves(t *testing.T, s backend.Store) {
	for _, tc := range []struct {
		name    string
		expires time.Time
	}{
		{"past", time.Now().Add(-time.Second)},
		{"zero", time.Time{}},
	} {
		key := newKey(t)
		mustSet(t, s, key, backend.Entry{Value: []byte("v"), Expires: time.Now().Add(long), Version: 1})
		if err := s.Touch(t.Context(), key, time.Now(), tc.expires); err != nil {
			t.Errorf("Touch(%s expires) error = %v, want nil", tc.name, err)
		}
		wantNotFound(t, s, key, "after Touch with "+tc.name+" expires")
	}
}

func testDelete(t *testing.T, s backend.Store) {
	key, other := newKey(t), newKey(t)
	e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(long), Version: 1}
	mustSet(t, s, key, e)
	mustSet(t, s, other, e)
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, key, "after Delete")
	checkEntry(t, "other key after Delete", mustGet(t, s, other), e)
	if err := s.Delete(t.Context(), key); err != nil {
		t.Errorf("Delete of a deleted key: %v, want nil", err)
	}
	if err := s.Delete(t.Context(), newKey(t)); err != nil {
		t.Errorf("Delete of a key never written: %v, want nil", err)
	}
}

func testLargeValue(t *testing.T, s backend.Store) {
	key := newKey(t)
	value := make([]byte, 1<<20)
	rand.Read(value)
	want := backend.Entry{Value: value, Expires: time.Now().Add(long), Version: 1}
	mustSet(t, s, key, want)
	checkEntry(t, "1 MiB value", mustGet(t, s, key), want)
}

func testBinaryValue(t *testing.T, s backend.Store) {
	key := newKey(t)
	value := make([]byte, 0, 512)
	for i := range 256 {
		value = append(value, byte(i))
	}
	for i := range 256 {
		value = append(value, byte(255-i))
	}
	want := backend.Entry{Value: value, Expires: time.Now().Add(long), Version: 1}
	mustSet(t, s, key, want)
	checkEntry(t, "binary value", mustGet(t, s, key), want)
}

func testConcurrent(t *testing.T, s backend.Store) {
	const (
		goroutines = 16
		ops        = 100
	)
	ctx := t.Context()
	shared := make([]string, 4)
	for i := range shared {
		shared[i] = newKey(t)
	}
	own := make([]string, goroutines)
	for i := range own {
		own[i] = newKey(t)
	}
	// okOrNotFound accepts the outcomes of an operation on a shared key,
	// which another goroutine may have deleted.
	okOrNotFound := func(g, i int, op string, err error) {
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("goroutine %d op %d: %s on a shared key: %v", g, i, op, err)
		}
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			key := own[g]
			var last []byte // nil: own key absent
			// Ops run in blocks of six; every third block deletes the own
			// key at its end and the next one reads it back as missing.
			for i := range ops {
				exp := time.Now().Add(long)
				block := i / 6
				sk := shared[(g+i)%len(shared)]
				switch i % 6 {
				case 0:
					if block%3 == 2 {
						break // leave the own key deleted for this block
					}
					v := fmt.Appendf(nil, "goroutine %d op %d", g, i)
					if err := s.Set(ctx, key, backend.Entry{Value: v, Expires: exp, Version: uint64(i + 1)}); err != nil {
						t.Errorf("goroutine %d op %d: Set: %v", g, i, err)
						return
					}
					last = v
				case 1, 4:
					e, err := s.Get(ctx, key)
					switch {
					case last == nil && !errors.Is(err, backend.ErrNotFound):
						t.Errorf("goroutine %d op %d: Get of own deleted key = %q, %v; want ErrNotFound", g, i, e.Value, err)
					case last != nil && (err != nil || !bytes.Equal(e.Value, last)):
						t.Errorf("goroutine %d op %d: Get of own key = %q, %v; want %q", g, i, e.Value, err, last)
					}
				case 2:
					err := s.Touch(ctx, key, time.Now(), exp)
					if last == nil && !errors.Is(err, backend.ErrNotFound) || last != nil && err != nil {
						t.Errorf("goroutine %d op %d: Touch of own key (present: %t): %v", g, i, last != nil, err)
					}
				case 3:
					switch block % 4 {
					case 0:
						okOrNotFound(g, i, "Set", s.Set(ctx, sk, backend.Entry{Value: []byte{byte(g)}, Expires: exp, Version: 1}))
					case 1:
						_, err := s.Get(ctx, sk)
						okOrNotFound(g, i, "Get", err)
					case 2:
						okOrNotFound(g, i, "Touch", s.Touch(ctx, sk, time.Now(), exp))
					case 3:
						okOrNotFound(g, i, "Delete", s.Delete(ctx, sk))
					}
				case 5:
					if block%3 == 1 {
						if err := s.Delete(ctx, key); err != nil {
							t.Errorf("goroutine %d op %d: Delete of own key: %v", g, i, err)
						}
						last = nil
					} else {
						_, err := s.Get(ctx, sk)
						okOrNotFound(g, i, "Get", err)
					}
				}
			}
			e, err := s.Get(ctx, key)
			switch {
			case last == nil && !errors.Is(err, backend.ErrNotFound):
				t.Errorf("goroutine %d: final Get of own deleted key = %q, %v; want ErrNotFound", g, e.Value, err)
			case last != nil && (err != nil || !bytes.Equal(e.Value, last)):
				t.Errorf("goroutine %d: final Get of own key = %q, %v; want %q", g, e.Value, err, last)
			}
		})
	}
	close(start)
	wg.Wait()
}

func testContextCanceled(t *testing.T, s backend.Store) {
	key, newK := newKey(t), newKey(t)
	want := backend.Entry{Value: []byte("kept"), Expires: time.Now().Add(long), Version: 4}
	mustSet(t, s, key, want)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	other := backend.Entry{Value: []byte("changed"), Expires: time.Now().Add(2 * long), Version: 5}
	type call struct {
		name string
		call func() error
	}
	calls := []call{
		{"Get", func() error { _, err := s.Get(ctx, key); return err }},
		{"Set", func() error { return s.Set(ctx, key, other) }},
		{"Touch", func() error { return s.Touch(ctx, key, time.Now(), time.Now().Add(2*long)) }},
		{"Delete", func() error { return s.Delete(ctx, key) }},
	}
	if c, ok := s.(backend.Conditional); ok {
		calls = append(calls, call{"SetIf", func() error { return c.SetIf(ctx, key, 4, time.Now(), other) }})
	}
	if r, ok := s.(backend.Replacer); ok {
		calls = append(calls, call{"Replace", func() error { return r.Replace(ctx, key, 4, newK, time.Now(), other) }})
	}
	if g, ok := s.(backend.GetToucher); ok {
		calls = append(calls, call{"GetTouch", func() error {
			_, _, err := g.GetTouch(ctx, key, time.Now(), time.Now().Add(3*long), time.Now().Add(4*long))
			return err
		}})
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want one matching context.Canceled", c.name, err)
		}
	}
	checkEntry(t, "after calls with a cancelled context", mustGet(t, s, key), want)
	wantNotFound(t, s, newK, "new key of a Replace with a cancelled context")
}

// ---- Conditional cases ----

func testSetIfCreate(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	want := backend.Entry{Value: []byte("created"), Expires: time.Now().Add(long), Version: 1}
	if err := c.SetIf(t.Context(), key, 0, time.Now(), want); err != nil {
		t.Fatalf("SetIf(old 0) on a missing key: %v", err)
	}
	checkEntry(t, "after SetIf(old 0)", mustGet(t, s, key), want)
}

func testSetIfCreateExisting(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	want := backend.Entry{Value: []byte("existing"), Expires: time.Now().Add(long), Version: 1}
	mustSet(t, s, key, want)
	err := c.SetIf(t.Context(), key, 0, time.Now(), backend.Entry{Value: []byte("intruder"), Expires: time.Now().Add(2 * long), Version: 1})
	if !errors.Is(err, backend.ErrConflict) {
		t.Errorf("SetIf(old 0) on a live key: error = %v, want ErrConflict", err)
	}
	checkEntry(t, "after conflicting SetIf", mustGet(t, s, key), want)
}

func testSetIfMatch(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	mustSet(t, s, key, backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(long), Version: 1})
	want := backend.Entry{Value: []byte("v2"), Expires: time.Now().Add(2 * long), Limit: time.Now().Add(3 * long), Version: 2}
	if err := c.SetIf(t.Context(), key, 1, time.Now(), want); err != nil {
		t.Fatalf("SetIf with the stored version: %v", err)
	}
	checkEntry(t, "after SetIf", mustGet(t, s, key), want)
	want3 := backend.Entry{Value: []byte("v3"), Expires: time.Now().Add(long), Version: 3}
	if err := c.SetIf(t.Context(), key, 2, time.Now(), want3); err != nil {
		t.Fatalf("second SetIf with the stored version: %v", err)
	}
	checkEntry(t, "after second SetIf", mustGet(t, s, key), want3)
}

func testSetIfMismatch(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	want := backend.Entry{Value: []byte("v5"), Expires: time.Now().Add(long), Version: 5}
	mustSet(t, s, key, want)
	for _, old := range []uint64{4, 6, 1, math.MaxUint64} {
		err := c.SetIf(t.Context(), key, old, time.Now(), backend.Entry{Value: []byte("stale"), Expires: time.Now().Add(2 * long), Version: old + 1})
		if !errors.Is(err, backend.ErrConflict) {
			t.Errorf("SetIf(old %d) on version 5: error = %v, want ErrConflict", old, err)
		}
	}
	checkEntry(t, "after conflicting SetIfs", mustGet(t, s, key), want)
}

func testSetIfMissing(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	for _, old := range []uint64{1, 7, math.MaxUint64} {
		err := c.SetIf(t.Context(), key, old, time.Now(), backend.Entry{Value: []byte("ghost"), Expires: time.Now().Add(long), Version: old + 1})
		if !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("SetIf(old %d) on a key never written: error = %v, want ErrNotFound", old, err)
		}
	}
	wantNotFound(t, s, key, "after SetIf(old != 0) on a key never written")
}

func testSetIfAfterDelete(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	mustSet(t, s, key, backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(long), Version: 1})
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err := c.SetIf(t.Context(), key, 1, time.Now(), backend.Entry{Value: []byte("zombie"), Expires: time.Now().Add(long), Version: 2})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("SetIf(old 1) after Delete: error = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, key, "after SetIf on a deleted key")
}

func testSetIfAfterExpiry(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	deadline := time.Now().Add(short)
	mustSet(t, s, key, backend.Entry{Value: []byte("v1"), Expires: deadline, Version: 1})
	waitGone(t, s, key, deadline)
	err := c.SetIf(t.Context(), key, 1, time.Now(), backend.Entry{Value: []byte("zombie"), Expires: time.Now().Add(long), Version: 2})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("SetIf(old 1) after expiry: error = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, key, "after SetIf(old 1) on an expired key")

	want := backend.Entry{Value: []byte("fresh"), Expires: time.Now().Add(long), Version: 1}
	if err := c.SetIf(t.Context(), key, 0, time.Now(), want); err != nil {
		t.Fatalf("SetIf(old 0) on an expired key: %v", err)
	}
	checkEntry(t, "after SetIf(old 0) on an expired key", mustGet(t, s, key), want)
}

func testSetIfPastExpires(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key := newKey(t)
	want := backend.Entry{Value: []byte("v1"), Expires: time.Now().Add(long), Version: 1}
	mustSet(t, s, key, want)
	past := backend.Entry{Value: []byte("v2"), Expires: time.Now().Add(-time.Second), Version: 2}
	if err := c.SetIf(t.Context(), key, 9, time.Now(), past); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("SetIf(old 9, past Expires) on version 1: error = %v, want ErrConflict", err)
	}
	checkEntry(t, "after conflicting SetIf with past Expires", mustGet(t, s, key), want)
	if err := c.SetIf(t.Context(), key, 1, time.Now(), past); err != nil {
		t.Errorf("SetIf(old 1, past Expires) on version 1: %v", err)
	}
	wantNotFound(t, s, key, "after SetIf with past Expires")
}

func testSetIfConcurrent(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	const racers = 8
	key := newKey(t)
	mustSet(t, s, key, backend.Entry{Value: []byte("base"), Expires: time.Now().Add(long), Version: 1})

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []int
		others []error
	)
	start := make(chan struct{})
	for g := range racers {
		wg.Go(func() {
			<-start
			err := c.SetIf(t.Context(), key, 1, time.Now(), backend.Entry{Value: fmt.Appendf(nil, "racer %d", g), Expires: time.Now().Add(long), Version: 2})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, g)
			case !errors.Is(err, backend.ErrConflict):
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range others {
		t.Errorf("racing SetIf: error = %v, want nil or ErrConflict", err)
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d racing SetIf calls from version 1 succeeded (racers %v), want exactly 1", len(won), racers, won)
	}
	got := mustGet(t, s, key)
	if want := fmt.Sprintf("racer %d", won[0]); string(got.Value) != want || got.Version != 2 {
		t.Errorf("after the race Get = %q version %d, want %q version 2 (the winner's)", got.Value, got.Version, want)
	}
}

// ---- Replacer cases ----

func testReplaceMoves(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, newK := newKey(t), newKey(t)
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("before"), Expires: time.Now().Add(long), Version: 3})
	want := backend.Entry{Value: []byte("after"), Expires: time.Now().Add(2 * long), Limit: time.Now().Add(3 * long), Version: 4}
	if err := r.Replace(t.Context(), oldKey, 3, newK, time.Now(), want); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	checkEntry(t, "new key after Replace", mustGet(t, s, newK), want)
	wantNotFound(t, s, oldKey, "old key after Replace")
}

func testReplaceWrongVersion(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, newK := newKey(t), newKey(t)
	want := backend.Entry{Value: []byte("before"), Expires: time.Now().Add(long), Version: 3}
	mustSet(t, s, oldKey, want)
	for _, old := range []uint64{2, 4} {
		err := r.Replace(t.Context(), oldKey, old, newK, time.Now(), backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Version: old + 1})
		if !errors.Is(err, backend.ErrConflict) {
			t.Errorf("Replace(old %d) of version 3: error = %v, want ErrConflict", old, err)
		}
	}
	checkEntry(t, "old key after conflicting Replace", mustGet(t, s, oldKey), want)
	wantNotFound(t, s, newK, "new key after conflicting Replace")
}

func testReplaceMissingOld(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, newK := newKey(t), newKey(t)
	err := r.Replace(t.Context(), oldKey, 1, newK, time.Now(), backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Version: 2})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Replace of a missing old key: error = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, newK, "new key after Replace of a missing old key")
	wantNotFound(t, s, oldKey, "old key after Replace of a missing old key")

	// Deleted: gone, not changed.
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("before"), Expires: time.Now().Add(long), Version: 1})
	if err := s.Delete(t.Context(), oldKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err = r.Replace(t.Context(), oldKey, 1, newK, time.Now(), backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Version: 2})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Replace of a deleted old key: error = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, newK, "new key after Replace of a deleted old key")
	wantNotFound(t, s, oldKey, "old key after Replace of a deleted old key")
}

func testReplaceExistingNew(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, newK := newKey(t), newKey(t)
	wantOld := backend.Entry{Value: []byte("old"), Expires: time.Now().Add(long), Version: 3}
	wantNew := backend.Entry{Value: []byte("squatter"), Expires: time.Now().Add(long), Version: 9}
	mustSet(t, s, oldKey, wantOld)
	mustSet(t, s, newK, wantNew)
	err := r.Replace(t.Context(), oldKey, 3, newK, time.Now(), backend.Entry{Value: []byte("after"), Expires: time.Now().Add(2 * long), Version: 4})
	if !errors.Is(err, backend.ErrConflict) {
		t.Errorf("Replace onto a live new key: error = %v, want ErrConflict", err)
	}
	checkEntry(t, "old key after conflicting Replace", mustGet(t, s, oldKey), wantOld)
	checkEntry(t, "new key after conflicting Replace", mustGet(t, s, newK), wantNew)

	// The degenerate move onto itself conflicts too: the key is live.
	err = r.Replace(t.Context(), oldKey, 3, oldKey, time.Now(), backend.Entry{Value: []byte("self"), Expires: time.Now().Add(2 * long), Version: 4})
	if !errors.Is(err, backend.ErrConflict) {
		t.Errorf("Replace of a key onto itself: error = %v, want ErrConflict", err)
	}
	checkEntry(t, "key after Replace onto itself", mustGet(t, s, oldKey), wantOld)
}

func testReplaceOverExpired(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, newK := newKey(t), newKey(t)
	deadline := time.Now().Add(short)
	mustSet(t, s, newK, backend.Entry{Value: []byte("expiring"), Expires: deadline, Version: 1})
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("old"), Expires: time.Now().Add(long), Version: 3})
	waitGone(t, s, newK, deadline)
	want := backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Version: 4}
	if err := r.Replace(t.Context(), oldKey, 3, newK, time.Now(), want); err != nil {
		t.Fatalf("Replace onto an expired new key: %v", err)
	}
	checkEntry(t, "new key after Replace", mustGet(t, s, newK), want)
	wantNotFound(t, s, oldKey, "old key after Replace")
}

// ---- GetToucher cases ----

func testGetTouchMissing(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	key := newKey(t)
	now := time.Now()
	if _, touched, err := g.GetTouch(t.Context(), key, time.Now(), now.Add(long), now.Add(2*long)); !errors.Is(err, backend.ErrNotFound) || touched {
		t.Errorf("GetTouch(missing) = touched %t, error %v; want false, ErrNotFound", touched, err)
	}
	wantNotFound(t, s, key, "after GetTouch of a missing key")
}

func testGetTouchDue(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	key := newKey(t)
	now := time.Now()
	mustSet(t, s, key, backend.Entry{Value: []byte("due"), Expires: now.Add(long), Version: 6})
	moved := now.Add(10 * long)
	got, touched, err := g.GetTouch(t.Context(), key, time.Now(), now.Add(2*long), moved)
	if err != nil {
		t.Fatalf("GetTouch: %v", err)
	}
	if !touched {
		t.Errorf("GetTouch of an entry due for a refresh: touched = false, want true")
	}
	want := backend.Entry{Value: []byte("due"), Expires: moved, Version: 6}
	checkEntry(t, "entry returned by GetTouch", got, want)
	checkEntry(t, "Get after GetTouch", mustGet(t, s, key), want)
}

func testGetTouchCappedAtLimit(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	key := newKey(t)
	// Millisecond times, so that a store keeping deadlines at millisecond
	// precision sees Expires reach Limit exactly.
	now := time.Now().Truncate(time.Millisecond)
	limit := now.Add(5 * long)
	mustSet(t, s, key, backend.Entry{Value: []byte("capped"), Expires: now.Add(long), Limit: limit, Version: 6})
	want := backend.Entry{Value: []byte("capped"), Expires: limit, Limit: limit, Version: 6}

	got, touched, err := g.GetTouch(t.Context(), key, time.Now(), now.Add(2*long), now.Add(10*long))
	if err != nil {
		t.Fatalf("GetTouch: %v", err)
	}
	if !touched {
		t.Errorf("GetTouch of an entry due for a refresh: touched = false, want true")
	}
	checkEntry(t, "entry returned by GetTouch", got, want)
	checkEntry(t, "Get after GetTouch", mustGet(t, s, key), want)

	// Now at its Limit, the entry is due (Expires before ifBefore) but
	// cannot move: it is not written.
	got, touched, err = g.GetTouch(t.Context(), key, time.Now(), now.Add(6*long), now.Add(10*long))
	if err != nil {
		t.Fatalf("GetTouch of an entry at its Limit: %v", err)
	}
	if touched {
		t.Errorf("GetTouch of an entry at its Limit: touched = true, want false")
	}
	checkEntry(t, "entry returned by GetTouch at Limit", got, want)
	checkEntry(t, "Get after GetTouch at Limit", mustGet(t, s, key), want)
}

func testGetTouchNotDue(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	key := newKey(t)
	// Millisecond times, so that a store keeping deadlines at millisecond
	// precision sees ifBefore equal to Expires too.
	now := time.Now().Truncate(time.Millisecond)
	want := backend.Entry{Value: []byte("fresh"), Expires: now.Add(10 * long), Version: 6}
	mustSet(t, s, key, want)
	for _, tc := range []struct {
		name     string
		ifBefore time.Time
	}{
		{"ifBefore earlier than Expires", now.Add(long)},
		{"ifBefore equal to Expires", want.Expires},
	} {
		got, touched, err := g.GetTouch(t.Context(), key, time.Now(), tc.ifBefore, now.Add(20*long))
		if err != nil {
			t.Fatalf("GetTouch (%s): %v", tc.name, err)
		}
		if touched {
			t.Errorf("GetTouch (%s): touched = true, want false", tc.name)
		}
		checkEntry(t, "entry returned by GetTouch ("+tc.name+")", got, want)
		checkEntry(t, "Get after GetTouch ("+tc.name+")", mustGet(t, s, key), want)
	}
}

// ---- Core clock ahead cases ----

// ahead is how far ahead of the real time (the store's clock) the core's
// clock is in the CoreClockAhead cases: past the deadline of the entry
// written by setAhead, before its limit.
const ahead = 90 * time.Minute

// setAhead writes under a new key an entry that lives for an hour (limit two
// hours) by the real time, and returns the key, the entry and a core's now
// that is ahead minutes ahead of the real time: past the entry's Expires.
func setAhead(t *testing.T, s backend.Store) (string, backend.Entry, time.Time) {
	t.Helper()
	key := newKey(t)
	now := time.Now().Truncate(time.Millisecond)
	e := backend.Entry{Value: []byte("ended by the core's clock"), Expires: now.Add(long), Limit: now.Add(2 * long), Version: 3}
	mustSet(t, s, key, e)
	return key, e, time.Now().Add(ahead)
}

// wantUnmoved checks that key holds e unchanged, or nothing: a store may have
// dropped an entry the core's clock ended, never moved or rewritten it.
func wantUnmoved(t *testing.T, s backend.Store, key string, e backend.Entry, when string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	switch {
	case errors.Is(err, backend.ErrNotFound):
	case err != nil:
		t.Errorf("%s: Get: %v", when, err)
	default:
		checkEntry(t, when+" (the entry, if kept, must not have changed)", got, e)
	}
}

func testCoreClockAheadTouch(t *testing.T, s backend.Store) {
	key, e, now := setAhead(t, s)
	if err := s.Touch(t.Context(), key, now, now.Add(20*time.Minute)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Touch with now %v past Expires: error = %v, want ErrNotFound", ahead-long, err)
	}
	wantUnmoved(t, s, key, e, "after Touch with now past Expires")
}

func testCoreClockAheadGetTouch(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	key, e, now := setAhead(t, s)
	got, touched, err := g.GetTouch(t.Context(), key, now, now.Add(long), now.Add(20*time.Minute))
	if !errors.Is(err, backend.ErrNotFound) || touched {
		t.Errorf("GetTouch with now %v past Expires = %s, touched %t, error %v; want ErrNotFound, false", ahead-long, describe(got), touched, err)
	}
	wantUnmoved(t, s, key, e, "after GetTouch with now past Expires")
}

func testCoreClockAheadSetIf(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key, e, now := setAhead(t, s)
	err := c.SetIf(t.Context(), key, e.Version, now, backend.Entry{Value: []byte("revived"), Expires: now.Add(long), Version: e.Version + 1})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("SetIf(old %d) with now %v past Expires: error = %v, want ErrNotFound", e.Version, ahead-long, err)
	}
	wantUnmoved(t, s, key, e, "after SetIf with now past Expires")
}

func testCoreClockAheadSetIfCreate(t *testing.T, s backend.Store) {
	c := conditional(t, s)
	key, _, now := setAhead(t, s)
	want := backend.Entry{Value: []byte("fresh"), Expires: now.Add(long), Limit: now.Add(2 * long), Version: 1}
	if err := c.SetIf(t.Context(), key, 0, now, want); err != nil {
		t.Fatalf("SetIf(old 0) with now %v past the stored entry's Expires: %v, want nil", ahead-long, err)
	}
	checkEntry(t, "after SetIf(old 0) over the entry ended by the core's clock", mustGet(t, s, key), want)
}

func testCoreClockAheadReplace(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	oldKey, e, now := setAhead(t, s)
	newK := newKey(t)
	err := r.Replace(t.Context(), oldKey, e.Version, newK, now, backend.Entry{Value: []byte("moved"), Expires: now.Add(long), Version: e.Version + 1})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Replace(old %d) with now %v past the old key's Expires: error = %v, want ErrNotFound", e.Version, ahead-long, err)
	}
	wantNotFound(t, s, newK, "new key after Replace from a key ended by the core's clock")
	wantUnmoved(t, s, oldKey, e, "old key after Replace with now past its Expires")
}

func testCoreClockAheadReplaceOverNew(t *testing.T, s backend.Store) {
	r := replacer(t, s)
	newK, _, now := setAhead(t, s)
	oldKey := newKey(t)
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("old"), Expires: time.Now().Add(3 * long), Version: 5})
	want := backend.Entry{Value: []byte("moved"), Expires: now.Add(long), Version: 6}
	if err := r.Replace(t.Context(), oldKey, 5, newK, now, want); err != nil {
		t.Fatalf("Replace onto a new key whose entry the core's clock ended: %v, want nil", err)
	}
	checkEntry(t, "new key after Replace", mustGet(t, s, newK), want)
	wantNotFound(t, s, oldKey, "old key after Replace")
}

// ---- Indexer cases ----

func testOwnedAfterAdd(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner, key := newOwner(t), newKey(t)
	mustAddOwned(t, x, owner, key, time.Now().Add(long))
	wantOwned(t, x, owner, "after AddOwned", key)
}

func testOwnedSeveralKeys(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner := newOwner(t)
	keys := make([]string, 5)
	for i := range keys {
		keys[i] = newKey(t)
		mustAddOwned(t, x, owner, keys[i], time.Now().Add(long+time.Duration(i)*time.Minute))
	}
	wantOwned(t, x, owner, "after five AddOwned", keys...)
}

func testOwnersIndependent(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	alice, bob := newOwner(t), newOwner(t)
	ka, kb, shared := newKey(t), newKey(t), newKey(t)
	limit := time.Now().Add(long)
	mustAddOwned(t, x, alice, ka, limit)
	mustAddOwned(t, x, bob, kb, limit)
	// One key recorded under both owners: the records are separate.
	mustAddOwned(t, x, alice, shared, limit)
	mustAddOwned(t, x, bob, shared, limit)
	wantOwned(t, x, alice, "first owner", ka, shared)
	wantOwned(t, x, bob, "second owner", kb, shared)

	if err := x.RemoveOwned(t.Context(), alice, ka, kb, shared); err != nil {
		t.Fatalf("RemoveOwned: %v", err)
	}
	wantOwned(t, x, alice, "first owner after RemoveOwned of its keys")
	wantOwned(t, x, bob, "second owner after RemoveOwned from the first", kb, shared)
}

func testOwnerStrings(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	suffix := rand.Text() // owners of this run only
	owners := []string{
		"with spaces " + suffix,
		"ünïcödé 用户 👤 " + suffix,
		"colon:sep:" + suffix,
		"{hash}{tag}:" + suffix,
		"}{" + suffix,
		"*?[glob] " + suffix,
		"new\nline\x00nul " + suffix,
		strings.Repeat("k", 1024-len(suffix)) + suffix,
		strings.Repeat("k", 1024-len(suffix)) + suffix + "!", // differs only at the end
	}
	keys := make([]string, len(owners))
	for i, o := range owners {
		keys[i] = newKey(t)
		mustAddOwned(t, x, o, keys[i], time.Now().Add(long))
	}
	for i, o := range owners {
		wantOwned(t, x, o, fmt.Sprintf("owner %d (%.40q)", i, o), keys[i])
	}
	for i, o := range owners {
		if err := x.RemoveOwned(t.Context(), o, keys[i]); err != nil {
			t.Errorf("RemoveOwned for owner %d (%.40q): %v", i, o, err)
		}
		wantOwned(t, x, o, fmt.Sprintf("owner %d (%.40q) after RemoveOwned", i, o))
	}
}

func testRemoveOwned(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	ctx := t.Context()
	owner := newOwner(t)
	k1, k2, k3, k4 := newKey(t), newKey(t), newKey(t), newKey(t)
	for _, k := range []string{k1, k2, k3, k4} {
		mustAddOwned(t, x, owner, k, time.Now().Add(long))
	}
	if err := x.RemoveOwned(ctx, owner, k1); err != nil {
		t.Fatalf("RemoveOwned of one key: %v", err)
	}
	wantOwned(t, x, owner, "after RemoveOwned of one key", k2, k3, k4)
	if err := x.RemoveOwned(ctx, owner, k2, newKey(t), k3); err != nil {
		t.Fatalf("RemoveOwned of two keys and a missing one: %v", err)
	}
	wantOwned(t, x, owner, "after RemoveOwned of two keys and a missing one", k4)
	if err := x.RemoveOwned(ctx, owner, k1); err != nil {
		t.Errorf("RemoveOwned of a removed key: %v, want nil", err)
	}
	if err := x.RemoveOwned(ctx, owner); err != nil {
		t.Errorf("RemoveOwned of no key: %v, want nil", err)
	}
	if err := x.RemoveOwned(ctx, newOwner(t), k4); err != nil {
		t.Errorf("RemoveOwned from an unknown owner: %v, want nil", err)
	}
	wantOwned(t, x, owner, "after RemoveOwned of keys not recorded", k4)
	if err := x.RemoveOwned(ctx, owner, k4); err != nil {
		t.Fatalf("RemoveOwned of the last key: %v", err)
	}
	wantOwned(t, x, owner, "after RemoveOwned of the last key")
	// The owner can be recorded again after its set emptied.
	mustAddOwned(t, x, owner, k1, time.Now().Add(long))
	wantOwned(t, x, owner, "after AddOwned to an emptied owner", k1)
}

func testAddOwnedTwice(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner := newOwner(t)
	later, earlier := newKey(t), newKey(t)
	now := time.Now()
	deadline := now.Add(short)
	// later: first a short limit, then a long one; earlier: the reverse.
	mustAddOwned(t, x, owner, later, deadline)
	mustAddOwned(t, x, owner, earlier, now.Add(long))
	mustAddOwned(t, x, owner, later, now.Add(long))
	mustAddOwned(t, x, owner, earlier, deadline)
	got, err := x.Owned(t.Context(), owner)
	if err != nil {
		t.Fatalf("Owned: %v", err)
	}
	if len(got) != 2 && time.Now().After(deadline.Add(-slack)) {
		t.Skipf("inconclusive: Owned answered %v before the short limit, too late to tell; rerun on a less loaded machine", time.Until(deadline).Round(time.Millisecond))
	}
	checkOwned(t, "after AddOwned of each key twice", got, later, earlier)
	waitOwned(t, x, owner, deadline, later)
}

func testAddOwnedPastLimit(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner := newOwner(t)
	kept, fresh, renewed := newKey(t), newKey(t), newKey(t)
	mustAddOwned(t, x, owner, kept, time.Now().Add(long))
	mustAddOwned(t, x, owner, renewed, time.Now().Add(long))
	for _, tc := range []struct {
		name  string
		limit time.Time
	}{
		{"past", time.Now().Add(-time.Second)},
		{"zero", time.Time{}},
	} {
		mustAddOwned(t, x, owner, fresh, tc.limit)
		mustAddOwned(t, x, owner, renewed, tc.limit)
		wantOwned(t, x, owner, "after AddOwned with a "+tc.name+" limit", kept)
		mustAddOwned(t, x, owner, renewed, time.Now().Add(long))
	}
	// An owner whose only record is given a past limit.
	alone := newOwner(t)
	mustAddOwned(t, x, alone, fresh, time.Now().Add(long))
	mustAddOwned(t, x, alone, fresh, time.Now().Add(-time.Second))
	wantOwned(t, x, alone, "owner whose only key got a past limit")
}

func testOwnedLimit(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner, key, other := newOwner(t), newKey(t), newKey(t)
	mustAddOwned(t, x, owner, other, time.Now().Add(long))
	deadline := time.Now().Add(short)
	mustAddOwned(t, x, owner, key, deadline)
	got, err := x.Owned(t.Context(), owner)
	if err != nil {
		t.Fatalf("Owned: %v", err)
	}
	if !slices.Contains(got, key) && time.Now().After(deadline.Add(-slack)) {
		t.Skipf("inconclusive: Owned answered without the key %v before its limit, too late to tell; rerun on a less loaded machine", time.Until(deadline).Round(time.Millisecond))
	}
	checkOwned(t, "before the limit", got, key, other)
	waitOwned(t, x, owner, deadline, other)
}

func testOwnedUnknown(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	got, err := x.Owned(t.Context(), newOwner(t))
	if err != nil || len(got) != 0 {
		t.Errorf("Owned of an unknown owner = %q, %v; want none, nil", got, err)
	}
}

func testIndexerContextCanceled(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	owner, key, other := newOwner(t), newKey(t), newKey(t)
	mustAddOwned(t, x, owner, key, time.Now().Add(long))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"AddOwned", func() error { return x.AddOwned(ctx, owner, other, time.Now().Add(long)) }},
		{"RemoveOwned", func() error { return x.RemoveOwned(ctx, owner, key) }},
		{"Owned", func() error { _, err := x.Owned(ctx, owner); return err }},
	} {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want one matching context.Canceled", c.name, err)
		}
	}
	wantOwned(t, x, owner, "after calls with a cancelled context", key)
}

func testIndexerConcurrent(t *testing.T, s backend.Store) {
	x := indexer(t, s)
	const (
		goroutines = 8
		perG       = 24
	)
	ctx := t.Context()
	owner := newOwner(t)
	limit := time.Now().Add(long)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want []string
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			var mine []string // this goroutine's keys still recorded
			for i := range perG {
				key := newKey(t)
				if err := x.AddOwned(ctx, owner, key, limit); err != nil {
					t.Errorf("goroutine %d op %d: AddOwned: %v", g, i, err)
					return
				}
				mine = append(mine, key)
				switch i % 4 {
				case 1: // remove the key just added
					if err := x.RemoveOwned(ctx, owner, key); err != nil {
						t.Errorf("goroutine %d op %d: RemoveOwned: %v", g, i, err)
						return
					}
					mine = mine[:len(mine)-1]
				case 2: // record the key again, later
					if err := x.AddOwned(ctx, owner, key, limit.Add(time.Minute)); err != nil {
						t.Errorf("goroutine %d op %d: second AddOwned: %v", g, i, err)
						return
					}
				case 3: // this goroutine's records are all listed
					got, err := x.Owned(ctx, owner)
					if err != nil {
						t.Errorf("goroutine %d op %d: Owned: %v", g, i, err)
						return
					}
					for _, k := range mine {
						if !slices.Contains(got, k) {
							t.Errorf("goroutine %d op %d: Owned lacks the goroutine's key %q", g, i, k)
						}
					}
				}
			}
			// Remove the first of the remaining keys with another in one call.
			if len(mine) >= 2 {
				if err := x.RemoveOwned(ctx, owner, mine[0], mine[1]); err != nil {
					t.Errorf("goroutine %d: final RemoveOwned: %v", g, err)
					return
				}
				mine = mine[2:]
			}
			mu.Lock()
			want = append(want, mine...)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	wantOwned(t, x, owner, "after the concurrent calls", want...)
}

// ---- helpers ----

// newKey returns a key no other run of the suite uses.
func newKey(t *testing.T) string {
	t.Helper()
	return "storetest:" + rand.Text()
}

func conditional(t *testing.T, s backend.Store) backend.Conditional {
	t.Helper()
	c, ok := s.(backend.Conditional)
	if !ok {
		t.Skip("store does not implement backend.Conditional")
	}
	return c
}

func replacer(t *testing.T, s backend.Store) backend.Replacer {
	t.Helper()
	r, ok := s.(backend.Replacer)
	if !ok {
		t.Skip("store does not implement backend.Replacer")
	}
	return r
}

func getToucher(t *testing.T, s backend.Store) backend.GetToucher {
	t.Helper()
	g, ok := s.(backend.GetToucher)
	if !ok {
		t.Skip("store does not implement backend.GetToucher")
	}
	return g
}

func ownerRecorder(t *testing.T, s backend.Store) backend.OwnerRecorder {
	t.Helper()
	x, ok := s.(backend.OwnerRecorder)
	if !ok || !x.RecordsOwners() {
		t.Skip("store does not implement backend.OwnerRecorder")
	}
	return x
}

func indexer(t *testing.T, s backend.Store) backend.Indexer {
	t.Helper()
	x, ok := s.(backend.Indexer)
	if !ok {
		t.Skip("store does not implement backend.Indexer")
	}
	return x
}

// newOwner returns an owner no other run of the suite uses.
func newOwner(t *testing.T) string {
	t.Helper()
	return "storetest-owner:" + rand.Text()
}

func mustAddOwned(t *testing.T, x backend.Indexer, owner, key string, limit time.Time) {
	t.Helper()
	if err := x.AddOwned(t.Context(), owner, key, limit); err != nil {
		t.Fatalf("AddOwned(%.40q, %q): %v", owner, key, err)
	}
}

// wantOwned checks that Owned of owner lists exactly keys, each once.
func wantOwned(t *testing.T, x backend.Indexer, owner, when string, keys ...string) {
	t.Helper()
	got, err := x.Owned(t.Context(), owner)
	if err != nil {
		t.Errorf("%s: Owned: %v", when, err)
		return
	}
	checkOwned(t, when, got, keys...)
}

// checkOwned reports the differences between got, the answer of Owned, and
// want, in any order.
func checkOwned(t *testing.T, when string, got []string, want ...string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s: Owned = %q, want %q (in any order)", when, g, w)
	}
}

// waitOwned polls until Owned of owner lists exactly want, failing the test
// when that has not happened grace after deadline.
func waitOwned(t *testing.T, x backend.Indexer, owner string, deadline time.Time, want ...string) {
	t.Helper()
	time.Sleep(time.Until(deadline))
	giveUp := deadline.Add(grace)
	w := slices.Sorted(slices.Values(want))
	for {
		got, err := x.Owned(t.Context(), owner)
		if err != nil {
			t.Fatalf("Owned while waiting for a limit to pass: %v", err)
		}
		g := slices.Sorted(slices.Values(got))
		if slices.Equal(g, w) {
			return
		}
		if time.Now().After(giveUp) {
			t.Fatalf("Owned = %q %v after the limit, want %q", g, grace, w)
		}
		time.Sleep(pollEvery)
	}
}

func mustSet(t *testing.T, s backend.Store, key string, e backend.Entry) {
	t.Helper()
	if err := s.Set(t.Context(), key, e); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s backend.Store, key string) backend.Entry {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

// wantNotFound checks that Get of key reports ErrNotFound.
func wantNotFound(t *testing.T, s backend.Store, key, when string) {
	t.Helper()
	if e, err := s.Get(t.Context(), key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("%s: Get = %s, error %v; want ErrNotFound", when, describe(e), err)
	}
}

// inconclusiveIfLate skips the test when err is ErrNotFound but the call
// returned too close to (or after) deadline to tell a wrong answer from a
// slow store.
func inconclusiveIfLate(t *testing.T, err error, deadline time.Time) {
	t.Helper()
	if errors.Is(err, backend.ErrNotFound) && !time.Now().Before(deadline.Add(-slack)) {
		t.Skipf("inconclusive: the store answered ErrNotFound %v before the entry's deadline, too late to tell; rerun on a less loaded machine",
			time.Until(deadline).Round(time.Millisecond))
	}
}

// waitGone polls until Get of key reports ErrNotFound, failing the test when
// the entry outlives deadline by more than grace.
func waitGone(t *testing.T, s backend.Store, key string, deadline time.Time) {
	t.Helper()
	time.Sleep(time.Until(deadline))
	giveUp := deadline.Add(grace)
	for {
		e, err := s.Get(t.Context(), key)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			return
		case err != nil:
			t.Fatalf("Get while waiting for the entry to expire: %v", err)
		case time.Now().After(giveUp):
			t.Fatalf("entry still found %v after its deadline: %s", grace, describe(e))
		}
		time.Sleep(pollEvery)
	}
}

// checkEntry reports the differences between got and want: Value byte for
// byte, Version exactly, Expires and Limit within tolerance.
func checkEntry(t *testing.T, what string, got, want backend.Entry) {
	t.Helper()
	if !bytes.Equal(got.Value, want.Value) {
		t.Errorf("%s: Value = %s, want %s", what, describeValue(got.Value), describeValue(want.Value))
	}
	if got.Version != want.Version {
		t.Errorf("%s: Version = %d, want %d", what, got.Version, want.Version)
	}
	if !sameInstant(got.Expires, want.Expires) {
		t.Errorf("%s: Expires = %v, want %v (within %v)", what, got.Expires, want.Expires, tolerance)
	}
	switch {
	case want.Limit.IsZero() && !got.Limit.IsZero():
		t.Errorf("%s: Limit = %v, want the zero time (no limit)", what, got.Limit)
	case !want.Limit.IsZero() && !sameInstant(got.Limit, want.Limit):
		t.Errorf("%s: Limit = %v, want %v (within %v)", what, got.Limit, want.Limit, tolerance)
	}
	if got.Idle.Truncate(time.Millisecond) != want.Idle.Truncate(time.Millisecond) {
		t.Errorf("%s: Idle = %v, want %v", what, got.Idle, want.Idle)
	}
}

// sameInstant reports whether a and b are within tolerance of each other.
func sameInstant(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return -tolerance <= d && d <= tolerance
}

func describe(e backend.Entry) string {
	return fmt.Sprintf("{Value: %s, Expires: %v, Limit: %v, Version: %d}", describeValue(e.Value), e.Expires, e.Limit, e.Version)
}

func describeValue(v []byte) string {
	if len(v) > 64 {
		return fmt.Sprintf("%d bytes starting %q", len(v), v[:32])
	}
	return fmt.Sprintf("%q", v)
}

// ---- The session's own idle timeout (backend.Entry.Idle) ----

func testIdleRoundTrips(t *testing.T, s backend.Store) {
	key := newKey(t)
	now := time.Now().Truncate(time.Millisecond)
	want := backend.Entry{Value: []byte("v"), Expires: now.Add(long), Limit: now.Add(10 * long), Version: 3, Idle: 2 * time.Hour}
	mustSet(t, s, key, want)
	if got := mustGet(t, s, key); got.Idle != want.Idle {
		t.Fatalf("Get after Set: Idle %v, want %v", got.Idle, want.Idle)
	}
	if err := s.Touch(t.Context(), key, time.Now(), now.Add(2*long)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, key); got.Idle != want.Idle {
		t.Fatalf("Get after Touch: Idle %v, want %v (Touch keeps it)", got.Idle, want.Idle)
	}
}

func testGetTouchSlidesByEntryIdle(t *testing.T, s backend.Store) {
	g := getToucher(t, s)
	now := time.Now().Truncate(time.Millisecond)
	// The caller passes its defaults: slide to now+30m when Expires is
	// before now+27m.
	ifBefore, expires := now.Add(27*time.Minute), now.Add(30*time.Minute)
	for _, tc := range []struct {
		name        string
		idle        time.Duration
		expires     time.Duration // the entry's Expires, from now
		wantTouched bool
		want        time.Duration // the Expires after GetTouch, from now
	}{
		{"longer idle, due", 2 * time.Hour, time.Hour, true, 2 * time.Hour},
		{"longer idle, not due", 2 * time.Hour, 2*time.Hour - time.Minute, false, 2*time.Hour - time.Minute},
		{"shorter idle, due", 5 * time.Minute, 4 * time.Minute, true, 5 * time.Minute},
		{"shorter idle, not due", 5 * time.Minute, 4*time.Minute + 45*time.Second, false, 4*time.Minute + 45*time.Second},
		{"the caller's idle", 0, 20 * time.Minute, true, 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			mustSet(t, s, key, backend.Entry{Value: []byte("v"), Expires: now.Add(tc.expires), Limit: now.Add(10 * long), Version: 1, Idle: tc.idle})
			got, touched, err := g.GetTouch(t.Context(), key, now, ifBefore, expires)
			if err != nil {
				t.Fatal(err)
			}
			if touched != tc.wantTouched || !sameInstant(got.Expires, now.Add(tc.want)) {
				t.Fatalf("GetTouch: touched %v, Expires now%+v; want %v, now%+v", touched, got.Expires.Sub(now), tc.wantTouched, tc.want)
			}
			if after := mustGet(t, s, key); !sameInstant(after.Expires, now.Add(tc.want)) || after.Idle != tc.idle {
				t.Fatalf("Get after GetTouch: Expires now%+v, Idle %v", after.Expires.Sub(now), after.Idle)
			}
		})
	}
}

// ---- OwnerRecorder cases ----

func testOwnerRecordedOnCreate(t *testing.T, s backend.Store) {
	x := ownerRecorder(t, s)
	c := conditional(t, s)
	owner, key := newOwner(t), newKey(t)
	e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(long), Limit: time.Now().Add(2 * long), Version: 1, Owner: owner}
	if err := c.SetIf(t.Context(), key, 0, time.Now(), e); err != nil {
		t.Fatalf("SetIf with an Owner: %v", err)
	}
	wantOwned(t, x, owner, "after SetIf with an Owner", key)
	got := mustGet(t, s, key)
	if got.Owner != "" {
		t.Errorf("Get returned Owner %q, want none", got.Owner)
	}
	e.Owner = ""
	checkEntry(t, "after SetIf with an Owner", got, e)
}

func testOwnerNotRecordedOnRefusedCreate(t *testing.T, s backend.Store) {
	x := ownerRecorder(t, s)
	c := conditional(t, s)
	owner, key := newOwner(t), newKey(t)
	mustSet(t, s, key, backend.Entry{Value: []byte("there"), Expires: time.Now().Add(long), Version: 7})
	e := backend.Entry{Value: []byte("v"), Expires: time.Now().Add(long), Limit: time.Now().Add(2 * long), Version: 1, Owner: owner}
	if err := c.SetIf(t.Context(), key, 0, time.Now(), e); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("SetIf with an Owner onto a live key: %v, want ErrConflict", err)
	}
	wantOwned(t, x, owner, "after a refused SetIf with an Owner")
}

func testOwnerRecordedOnReplace(t *testing.T, s backend.Store) {
	x := ownerRecorder(t, s)
	r := replacer(t, s)
	owner, other, oldKey, newK := newOwner(t), newOwner(t), newKey(t), newKey(t)
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("before"), Expires: time.Now().Add(long), Version: 3})
	mustAddOwned(t, x, owner, oldKey, time.Now().Add(long))
	mustAddOwned(t, x, other, oldKey, time.Now().Add(long))
	e := backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Limit: time.Now().Add(2 * long), Version: 4, Owner: owner}
	if err := r.Replace(t.Context(), oldKey, 3, newK, time.Now(), e); err != nil {
		t.Fatalf("Replace with an Owner: %v", err)
	}
	wantOwned(t, x, owner, "after Replace with an Owner", newK)
	wantOwned(t, x, other, "another owner's record of the old key, after Replace", oldKey)
}

func testOwnerNotRecordedOnRefusedReplace(t *testing.T, s backend.Store) {
	x := ownerRecorder(t, s)
	r := replacer(t, s)
	owner, oldKey, newK := newOwner(t), newKey(t), newKey(t)
	mustSet(t, s, oldKey, backend.Entry{Value: []byte("before"), Expires: time.Now().Add(long), Version: 3})
	mustAddOwned(t, x, owner, oldKey, time.Now().Add(long))
	e := backend.Entry{Value: []byte("after"), Expires: time.Now().Add(long), Limit: time.Now().Add(2 * long), Version: 4, Owner: owner}
	if err := r.Replace(t.Context(), oldKey, 2, newK, time.Now(), e); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("Replace with an Owner and another version: %v, want ErrConflict", err)
	}
	wantOwned(t, x, owner, "after a refused Replace with an Owner", oldKey)
}
