package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/sessionx/sessions/backend"
)

// An embedded database has no network to lose a reply on, but the driver
// can leave a write's outcome open all the same: when the context of a
// statement ends while it runs, modernc.org/sqlite interrupts it and
// returns the context's error, and it does so also when the statement
// had committed before the interrupt came (the statement finished, then
// the context ended before the driver returned). SQLite itself is exact:
// by the time the driver returns, the statement's transaction has either
// committed or rolled back, and the rows say which.
//
// So after such an error the store reads the rows back (check), with a
// context of its own bounded by Options.ResolveWithin (the caller's has
// ended), and reports what happened: success for a write that landed (its
// write id, or the state it sets, is in the row), the context's error for
// one that did not (the state it required is still there, which it would
// have ended), and backend.ErrUnknownOutcome when the rows cannot tell (a
// write that deleted a row, say, when the row is gone) or the read fails.

// outcome is what check found of a write whose outcome was open.
type outcome int

const (
	unknownOutcome outcome = iota // the rows do not tell
	landed                        // the write is in the rows
	notApplied                    // the rows are as the write required: it did not happen
)

// outcomeOpen reports whether err, returned by a write's statements, leaves
// open whether they changed the file: the context ended while they ran
// (see above), or SQLite reports an interrupt (a driver that reports it
// so). Other errors are SQLite's answer to a statement it rolled back.
func outcomeOpen(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	code, ok := sqliteCode(err)
	return ok && code&0xff == 9 // SQLITE_INTERRUPT
}

// sqliteCode returns the SQLite result code err carries, if it carries
// one (modernc.org/sqlite's *Error and other drivers' errors alike have a
// Code method).
func sqliteCode(err error) (int, bool) {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code(), true
	}
	return 0, false
}

// settleOutcome reads back what a write whose statements returned first
// (an open outcome) left, with check, and returns nil when it landed,
// first (wrapped) when it did not, and an error matching
// backend.ErrUnknownOutcome otherwise.
func (s *Store) settleOutcome(ctx context.Context, op string, first error, check func(ctx context.Context) (outcome, error)) error {
	if s.resolve < 0 {
		return unknown(op, first, nil)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.resolve)
	defer cancel()
	o, err := check(rctx)
	switch {
	case err != nil:
		return unknown(op, first, fmt.Errorf("reading it back: %w", err))
	case o == landed:
		return nil
	case o == notApplied:
		return wrap(op, fmt.Errorf("not written: %w", first))
	}
	return unknown(op, first, errors.New("the rows do not tell whether it landed"))
}

// unknown is the error of a write whose outcome could not be found out.
func unknown(op string, first, then error) error {
	if then == nil {
		return fmt.Errorf("sessions: sqlite %s: %w: %w", op, backend.ErrUnknownOutcome, first)
	}
	return fmt.Errorf("sessions: sqlite %s: %w: %w (%w)", op, backend.ErrUnknownOutcome, first, then)
}
