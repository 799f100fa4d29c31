package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sessionx/sessions/backend"
)

// TestErrorClassification: which errors leave a write's outcome open (the
// statement was sent and no answer came), and which are worth sending the
// write again for.
func TestErrorClassification(t *testing.T) {
	myErr := func(n uint16) error { return fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: n, Message: "m"}) }
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name               string
		err                error
		unknown, retryable bool
	}{
		{"the server refused: duplicate key", myErr(errDupEntry), false, false},
		{"the server refused: syntax", myErr(1064), false, false},
		{"deadlock victim, rolled back", myErr(errLockDeadlock), false, true},
		{"lock wait timeout, rolled back", myErr(errLockWaitTimeout), false, true},
		{"server shutting down", myErr(errServerShutdown), false, true},
		{"too many connections", myErr(errConCount), false, true},
		{"no connection to be had", notSent{dial}, false, true},
		{"driver.ErrBadConn: nothing sent", sent(driver.ErrBadConn), false, true},
		{"packet too large: nothing sent", sent(mysql.ErrPktTooLarge), false, false},
		{"connection broke awaiting the answer", sent(mysql.ErrInvalidConn), true, true},
		{"EOF awaiting the answer", sent(io.EOF), true, true},
		{"context ended awaiting the answer", sent(context.DeadlineExceeded), true, false},
		{"context cancelled awaiting the answer", sent(context.Canceled), true, false},
		{"the row kept changing", errChanging, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcomeUnknown(tc.err); got != tc.unknown {
				t.Errorf("outcomeUnknown(%v) = %v, want %v", tc.err, got, tc.unknown)
			}
			if got := retryable(tc.err); got != tc.retryable {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.retryable)
			}
		})
	}
}

// TestWriteResolves: write runs a write again while its outcome is unknown
// (saying so to it), runs a deadlock's victim again at once, and reports an
// outcome it could not find out as backend.ErrUnknownOutcome, never as a
// plain failure; errors the server answered with are plain failures.
func TestWriteResolves(t *testing.T) {
	lost := sent(mysql.ErrInvalidConn)
	deadlock := &mysql.MySQLError{Number: errLockDeadlock, Message: "Deadlock found"}
	for _, tc := range []struct {
		name       string
		resolve    time.Duration
		tries      []error // what each try returns; the last repeats
		cancel     int     // cancel the context during this try (0: never)
		want       error   // errors.Is the result
		notWant    error   // and not this
		runs       int     // tries made
		replayFrom int     // the first try told replay (0: none)
	}{
		{"success", time.Second, []error{nil}, 0, nil, nil, 1, 0},
		{"an answer: conflict", time.Second, []error{backend.ErrConflict}, 0, backend.ErrConflict, nil, 1, 0},
		{"lost, then resolved", time.Second, []error{lost, lost, nil}, 0, nil, nil, 3, 2},
		{"lost, then the answer", time.Second, []error{lost, backend.ErrNotFound}, 0, backend.ErrNotFound, nil, 2, 2},
		{"lost, retries off", -1, []error{lost}, 0, backend.ErrUnknownOutcome, nil, 1, 0},
		{"lost, never resolved", 200 * time.Millisecond, []error{lost}, 0, backend.ErrUnknownOutcome, nil, 0, 2},
		{"lost, then the context ends", time.Minute, []error{lost}, 2, context.Canceled, nil, 2, 2},
		{"deadlocks, then success", time.Second, []error{deadlock, deadlock, nil}, 0, nil, nil, 3, 0},
		{"always a deadlock", time.Second, []error{deadlock}, 0, deadlock, backend.ErrUnknownOutcome, 1 + maxDeadlockRetries, 0},
		{"nothing sent: a plain failure", time.Second, []error{notSent{io.EOF}}, 0, io.EOF, backend.ErrUnknownOutcome, 1, 0},
		{"the server refused: a plain failure", time.Second, []error{&mysql.MySQLError{Number: 1406}}, 0, nil, backend.ErrUnknownOutcome, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{resolve: tc.resolve}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			runs, replayFrom := 0, 0
			err := s.write(ctx, "set", func(_ context.Context, replay bool) error {
				runs++
				if replay && replayFrom == 0 {
					replayFrom = runs
				}
				if runs == tc.cancel {
					cancel()
				}
				return tc.tries[min(runs, len(tc.tries))-1]
			})
			t.Logf("after %d tries: %v", runs, err)
			switch {
			case tc.want == nil && tc.notWant == nil && err != nil:
				t.Errorf("write: %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("write: %v, want %v", err, tc.want)
			case tc.notWant != nil && (err == nil || errors.Is(err, tc.notWant)):
				t.Errorf("write: %v, want an error, not %v", err, tc.notWant)
			}
			if tc.runs != 0 && runs != tc.runs {
				t.Errorf("%d tries, want %d", runs, tc.runs)
			}
			if replayFrom != tc.replayFrom {
				t.Errorf("replay first told on try %d, want %d", replayFrom, tc.replayFrom)
			}
			if errors.Is(err, backend.ErrUnknownOutcome) && !strings.Contains(err.Error(), "outcome") {
				t.Errorf("the error does not say the outcome is unknown: %v", err)
			}
		})
	}
}
