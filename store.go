package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessionx/sessions/backend"
)

// store is Config.Store with every optional capability the core relies on,
// resolved once by New: what the store implements is called as it is, and
// what it lacks is filled in here, in the manner of database/sql's
// ctxutil.go, so that the rest of the package calls one shape and every
// fallback lives (and is tested) in one place.
//
//   - Without backend.Conditional, setIf reads the entry, checks its
//     version and then writes with Set: not atomic, so two racing writes
//     may both land (last writer wins), but a session that ended before the
//     read is reported gone and not brought back.
//   - Without backend.Replacer, replace writes the new key (only if free),
//     then removes the old one only if it still holds the version loaded
//     (a conditional write with a past deadline), and takes the new key out
//     again if that fails: for a moment both keys work, never neither.
//   - Without backend.GetToucher, getTouch is a Get and, when due, a Touch.
//   - backend.Indexer has no fallback: indexer is nil without it, and the
//     features that need it say so (backend.ErrUnsupported).
//   - Without backend.OwnerRecorder (or without native SetIf and Replace,
//     whose atomic step it extends), recordsOwners is false and the core
//     keeps the owner index around its writes (see Manager.ownerBefore).
type store struct {
	backend.Store
	cas        backend.Conditional
	replacer   backend.Replacer
	getToucher backend.GetToucher
	indexer    backend.Indexer
	inProcess  bool // backend.InProcess says the bytes stay in this process

	// recordsOwners: SetIf (old 0) and Replace record Entry.Owner in the
	// write's own atomic step (backend.OwnerRecorder).
	recordsOwners bool
}

func newStore(st backend.Store) store {
	s := store{Store: st}
	s.cas, _ = st.(backend.Conditional)
	s.replacer, _ = st.(backend.Replacer)
	s.getToucher, _ = st.(backend.GetToucher)
	s.indexer, _ = st.(backend.Indexer)
	if ip, ok := st.(backend.InProcess); ok {
		s.inProcess = ip.InProcess()
	}
	if or, ok := st.(backend.OwnerRecorder); ok {
		s.recordsOwners = or.RecordsOwners() && s.cas != nil && s.replacer != nil
	}
	return s
}

// setIf is backend.Conditional's SetIf: e is stored under key only if the
// live entry there has version old (old == 0: no live entry). It returns
// backend.ErrNotFound when old != 0 and nothing live is there, and
// backend.ErrConflict for another version.
func (s store) setIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if s.cas != nil {
		return s.cas.SetIf(ctx, key, old, now, e)
	}
	cur, err := s.Get(ctx, key)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	live := err == nil && now.Before(cur.Expires)
	switch {
	case old == 0 && live, old != 0 && live && cur.Version != old:
		return backend.ErrConflict
	case old != 0 && !live:
		return backend.ErrNotFound
	}
	return s.Set(ctx, key, e)
}

// replace is backend.Replacer's Replace: e is stored under newKey and oldKey
// removed, only if oldKey holds version old and newKey is free.
func (s store) replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if s.replacer != nil {
		return s.replacer.Replace(ctx, oldKey, old, newKey, now, e)
	}
	if err := s.setIf(ctx, newKey, 0, now, e); err != nil {
		return err
	}
	// A conditional write with a past deadline is a conditional delete.
	if err := s.setIf(ctx, oldKey, old, now, backend.Entry{Expires: time.Unix(0, 1), Version: old}); err != nil {
		return s.undo(ctx, newKey, err)
	}
	return nil
}

// undo removes key, written by a step that then failed with err, so that
// the failed step leaves the store as it found it; it returns err, noting a
// failed removal (the key then only lingers until its idle deadline: its
// token was never sent).
func (s store) undo(ctx context.Context, key string, err error) error {
	if derr := s.Delete(ctx, key); derr != nil {
		return fmt.Errorf("%w (and removing the new key failed: %v)", err, derr)
	}
	return err
}

// getTouch is backend.GetToucher's GetTouch: the live entry under key, its
// deadline first moved to expires when it is before ifBefore.
func (s store) getTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	if s.getToucher != nil {
		return s.getToucher.GetTouch(ctx, key, now, ifBefore, expires)
	}
	e, err := s.Get(ctx, key)
	if err != nil {
		return e, false, err
	}
	if !now.Before(e.Expires) {
		return backend.Entry{}, false, backend.ErrNotFound
	}
	ifBefore, expires = backend.Slide(e, now, ifBefore, expires) // the session's own idle timeout
	if !e.Expires.Before(ifBefore) || (!e.Limit.IsZero() && !e.Expires.Before(e.Limit)) {
		return e, false, nil
	}
	if err := s.Touch(ctx, key, now, expires); err != nil {
		return backend.Entry{}, false, err
	}
	if !e.Limit.IsZero() && expires.After(e.Limit) {
		expires = e.Limit
	}
	e.Expires = expires
	return e, true, nil
}
