// Package backend is the contract between the sessions core and the stores
// that keep session bytes.
//
// A Store keeps opaque bytes under a key, with a deadline after which the
// bytes are gone, and a version number chosen by the caller. It never sees a
// session token (keys are hashes of tokens), never decodes the bytes and never
// decides anything about sessions: the core owns the envelope around the
// encoded data, so that a new backend is a small file.
//
// The required interface is Store. A store may implement optional
// capabilities, each an interface of its own, which the core discovers once
// by type assertion (in the manner of database/sql/driver):
//
//   - Conditional: write only if the stored version is the one loaded. Without
//     it concurrent requests of one session are last-writer-wins and a request
//     that loaded a session before it was destroyed can write it back.
//   - Replacer: move an entry to a new key in one step (Migrate). Without it
//     the core writes the new key, then deletes the old one.
//   - GetToucher: read an entry and slide its deadline in one step. Without it
//     a load whose deadline refresh is due costs a Get and a Touch.
//   - Indexer: keep, per owner (a user id), the keys of the owner's sessions,
//     for listing them and ending them all. Without it Manager.Sessions and
//     Manager.DestroyAll return ErrUnsupported.
//   - InProcess: the store keeps its bytes only in this process's memory,
//     so the core does not seal them. Without it, the core seals what it
//     stores (the session's data, CSRF secret and binding), as a store
//     outside the process needs.
//   - ExpiryNotifier: tell the core of the entries the store removes
//     because their deadline passed, so that it can report expiries
//     (sessions.EventExpired). Without it, expiries go unreported.
//   - io.Closer: release the store's resources.
//
// Package storetest holds the conformance suite every store must pass.
package backend

import (
	"context"
	"errors"
	"time"
)

// Errors returned by stores. Implementations return them (possibly wrapped)
// so that callers can test with errors.Is.
var (
	// ErrNotFound means no live entry is stored under the key: it was never
	// written, was deleted, or its deadline has passed. A conditional write
	// that expected a live entry (SetIf with old != 0, Replace) returns it
	// when there is none, so that the core can tell a session that is gone
	// from one that another request changed.
	ErrNotFound = errors.New("sessions: not found")

	// ErrConflict means a conditional write found a live entry with a
	// different version than the one it expected (or, creating, found a
	// live entry at all): another request changed or rotated the session
	// since it was loaded.
	ErrConflict = errors.New("sessions: conflict: session changed since it was loaded")

	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("sessions: store closed")

	// ErrFull means a bounded store refused a new entry because it is at
	// its capacity.
	ErrFull = errors.New("sessions: store full")

	// ErrUnsupported means the store lacks an optional capability the
	// caller needs.
	ErrUnsupported = errors.New("sessions: not supported by this store")

	// ErrUnknownOutcome means a write was sent but the store's answer was
	// lost (the connection broke, the context ended after the command went
	// out) and the store could not find out within its bounds whether it
	// was applied: it may or may not have been. A store returns it
	// (wrapped) instead of a plain error for such a write, so that nobody
	// is told "failed" for a change that was stored; a store that can
	// resolve such outcomes (by replaying an idempotent write, or reading
	// back a write id) returns what really happened instead.
	ErrUnknownOutcome = errors.New("sessions: outcome of the write unknown")
)

// Entry is one stored session as a store sees it.
type Entry struct {
	// Value is the encoded session, opaque to the store. A store copies it
	// on Set (the caller may reuse the slice afterwards) and hands out a
	// slice the caller may modify on Get (never its own storage).
	Value []byte

	// Expires is when the store forgets the entry: the session's idle
	// deadline. An entry whose Expires is not after the store's clock is
	// gone: Get reports ErrNotFound.
	Expires time.Time

	// Limit is the latest instant Touch may move Expires to: the session's
	// absolute deadline. The zero Limit means no limit.
	Limit time.Time

	// Idle is the session's own idle timeout, which GetTouch slides the
	// entry's deadline by when set (see GetToucher). Zero means the
	// caller's. Stores keep it beside the entry and return it unchanged.
	Idle time.Duration

	// Owner is set by the core only for a store that implements
	// OwnerRecorder, and only on the writes that put a session with an
	// owner under a new key: SetIf with old 0 and Replace. It is the owner
	// as the core gives it to Indexer (hash or escape it as for AddOwned).
	// Such a store records the new key under Owner until Limit in the same
	// atomic step as the write (see OwnerRecorder). Other stores, and Get,
	// ignore it: it is never stored in the entry.
	Owner string

	// Version is chosen by the writer and returned by Get unchanged. The
	// core starts a session at 1 and counts up with every write, so a stored
	// version is never 0 (0 means "no entry" to SetIf); stores without
	// Conditional keep it all the same.
	Version uint64
}

// Store is the byte-level storage the sessions core needs.
//
// Keys are short printable ASCII strings (hashes of tokens) chosen by the
// core. Every method takes a context first: called with a context that has
// already ended, it returns an error wrapping the context's error, and a
// store doing I/O honours the context's cancellation and deadline while it
// waits. A Store must be safe for concurrent use by many goroutines.
//
// Deadlines may be kept to the millisecond (Redis keeps no finer ones). A
// bounded store may refuse a new entry with ErrFull from Set, SetIf and
// Replace.
//
// Time: the core's clock decides. Every method that may keep an entry alive
// (Touch, SetIf, Replace, GetTouch) takes the core's now, and treats an
// entry whose Expires is not after now as missing, even if the store's own
// clock (a Redis server's, a database's) is behind the core's. A store may
// also drop entries by its own clock; it must never keep, extend or
// overwrite-as-live an entry that either clock says has ended. So clock skew
// between the application and the store can shorten a session, never revive
// one.
//
// Errors: a missing key is ErrNotFound from Get and Touch, and no error from
// Delete. Any other error means the store could not do what was asked (it is
// down, the context ended, ...): the core returns it to the application and
// never treats it as a missing session.
type Store interface {
	// Get returns the live entry stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)

	// Set stores e under key, replacing whatever was there. If e.Expires is
	// not in the future (including the zero time), nothing is stored and any
	// entry under key is removed: a past deadline never means "keep forever".
	Set(ctx context.Context, key string, e Entry) error

	// Touch moves the Expires of the entry under key to expires, but never
	// past its Limit, and leaves its Value and Version alone. It returns
	// ErrNotFound, and creates nothing, when no live entry is stored under
	// key, judged at now (the core's clock; see Store). An expires not after
	// now removes the entry.
	Touch(ctx context.Context, key string, now, expires time.Time) error

	// Delete removes the entry under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Conditional may be implemented by a Store that can write an entry only if
// the stored version is still the one the writer loaded, atomically.
//
// Without it, the core writes with Set: two requests of one session are
// last-writer-wins, and a request that loaded a session before another
// destroyed it may write it back.
type Conditional interface {
	// SetIf stores e under key, as Set does, only if the live entry under
	// key has Version old. With old == 0 it stores e only if no live entry
	// is stored under key. Live is judged at now, the core's clock (see
	// Store): an entry whose Expires is not after now counts as missing.
	//
	// Otherwise it stores nothing and returns ErrNotFound when old != 0 and
	// no live entry is stored under key (the session is gone), or
	// ErrConflict when the live entry has another version (or, with
	// old == 0, when a live entry exists). In particular, once a key is
	// deleted or expired, no SetIf with old != 0 can bring it back.
	SetIf(ctx context.Context, key string, old uint64, now time.Time, e Entry) error
}

// Replacer may be implemented by a Store that can move an entry to a new key
// in one atomic step, so that no observer sees both keys or neither.
//
// Without it, the core calls SetIf (or Set) on the new key, then Delete on the
// old one: for a moment both keys exist.
type Replacer interface {
	// Replace stores e under newKey and removes oldKey, only if the live
	// entry under oldKey has Version old and no live entry is stored under
	// newKey, live judged at now (the core's clock). Otherwise it changes
	// nothing and returns ErrNotFound when no live entry is stored under
	// oldKey, or ErrConflict when oldKey holds another version or newKey is
	// taken.
	Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e Entry) error
}

// GetToucher may be implemented by a Store that can read an entry and slide
// its deadline in one step (one round trip on a networked store).
//
// Without it, a load that finds the deadline refresh due costs a Get and a
// Touch.
type GetToucher interface {
	// GetTouch returns the live entry under key, as Get does, live judged
	// at now (the core's clock) as well as by the store's: an entry whose
	// Expires is not after now is ErrNotFound and is not touched. If the
	// entry's Expires is before ifBefore, it first moves Expires to expires
	// (never past Limit), as Touch does, and the returned entry shows the
	// new Expires, and touched is true. An entry whose Expires is not before
	// ifBefore, or is already at its Limit, is not written and touched is
	// false. A zero ifBefore never touches.
	//
	// An entry with its own Idle slides by it instead: to now + Idle
	// (never past Limit), when its Expires is before now + Idle - slack,
	// where slack is the smaller of expires - ifBefore and Idle/10. So the
	// caller, which cannot know the entry's Idle before reading it, passes
	// its defaults, and a session with a longer or shorter idle timeout of
	// its own ("remember me") still slides in the same round trip.
	GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (e Entry, touched bool, err error)
}

// Indexer may be implemented by a Store that can keep, for each owner (for
// example a user id), the set of keys of the owner's sessions, so that the
// core can list them and end them all ("log out everywhere").
//
// The index is a hint, kept beside the entries and not atomically with them:
// it may name keys whose entries are gone (the core checks each key with Get
// and removes the dead ones with RemoveOwned), but after AddOwned returns it
// names the key until RemoveOwned, or until the limit given to AddOwned has
// passed. Owners are arbitrary strings; a store hashes or escapes them as it
// needs. Records whose limit has passed must not pile up: the store drops
// them by itself (a sweep, a TTL, or pruning on each write).
//
// Without it, Manager.Sessions and Manager.DestroyAll return an error
// wrapping ErrUnsupported, and a per-owner session limit cannot be enforced.
type Indexer interface {
	// AddOwned records that key belongs to owner until limit (the session's
	// absolute deadline), replacing any earlier limit for that key.
	AddOwned(ctx context.Context, owner, key string, limit time.Time) error

	// RemoveOwned forgets keys from owner's set. Missing keys are not an
	// error.
	RemoveOwned(ctx context.Context, owner string, keys ...string) error

	// Owned returns the keys recorded for owner whose limit has not
	// passed, in no particular order; none is not an error.
	Owned(ctx context.Context, owner string) ([]string, error)
}

// OwnerRecorder may be implemented by an Indexer that keeps the owner
// index in the same transaction as the entries, so that the core needs no
// AddOwned around a login:
//
//   - SetIf with old 0 and an Entry.Owner records key under Owner until
//     the entry's Limit (as AddOwned does) if and only if it writes the
//     entry;
//   - Replace with an Entry.Owner records newKey under Owner, and drops
//     Owner's record of oldKey, if and only if it moves the entry (the
//     records of another owner, when the session changed hands, the core
//     removes with RemoveOwned).
//
// A write sent again after a lost reply must find both done or neither.
// Without OwnerRecorder (or when RecordsOwners reports false), the core
// records the key with AddOwned before the write (so that a live session is
// never missing from the index, even for a moment) and again after it (in
// case a concurrent listing pruned the first record as dead), and removes
// the old key's record with RemoveOwned: two or three more round trips.
type OwnerRecorder interface {
	Indexer
	RecordsOwners() bool
}

// InProcess may be implemented by a Store that keeps its bytes only in the
// memory of the process that uses it (no file, no network, no other
// process), to say whether the core may leave them unsealed.
//
// The core seals the private part of every session (its data, CSRF secret,
// binding and owner) with a key derived from the session's token, so that a
// copy of the store (a dump, a backup, a replica) reveals none of it. That
// costs about a microsecond per request. A store in the process's own memory
// is exposed only together with the process, whose memory also holds the
// tokens of the requests in flight: sealing it buys little. When
// InProcess returns true, the core does not seal; without this interface, or
// when it returns false, the core seals.
type InProcess interface {
	InProcess() bool
}

// Slide returns the ifBefore and expires that GetTouch applies to e when the
// caller passes ifBefore and expires at now: the caller's, or, when e has an
// Idle of its own, now+e.Idle and now+e.Idle-slack (see GetToucher). Stores
// that compute the slide in Go call it; a store that computes it elsewhere
// (a script, a statement) must compute the same.
func Slide(e Entry, now, ifBefore, expires time.Time) (time.Time, time.Time) {
	if e.Idle <= 0 || ifBefore.IsZero() {
		return ifBefore, expires
	}
	slack := min(expires.Sub(ifBefore), e.Idle/10)
	expires = now.Add(e.Idle)
	return expires.Add(-slack), expires
}

// ExpiryNotifier may be implemented by a Store that removes expired entries
// by itself (a sweeper) and can tell which, so that the core reports each
// session's expiry (sessions.EventExpired) once.
//
// NotifyExpired registers f, which the store calls, from its own goroutine
// and outside its locks, once for each entry it removes because its Expires
// passed, with the entry as it was; stop unregisters f. An entry removed by
// Delete, by a write or by eviction is not an expiry. Several functions may
// be registered (one per Manager); each is called for every expiry. Stores
// that cannot tell reliably (Redis's keyspace notifications are dropped
// while a client is disconnected) should not implement it.
type ExpiryNotifier interface {
	NotifyExpired(f func(key string, e Entry)) (stop func())
}
