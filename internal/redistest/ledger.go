package redistest

import "fmt"

// Ledger is one client's account of a counter that only it increments,
// one request at a time, through an application on Redis: every answer
// that says the increment was stored carries the counter's new value.
// Comparing consecutive values tells how many increments landed in
// between, and so whether an answer was true:
//
//   - an increment answered "failed" must never be stored: an extra
//     increment in a gap that holds no unknown outcome is a phantom;
//   - an increment answered "unknown" (504, a timeout, no answer at all)
//     may or may not be stored: extra increments up to their number are
//     counted as UnknownLanded;
//   - an increment answered "stored" must stay stored: a value lower than
//     expected is Lost (Redis's asynchronous replication can drop the
//     last writes a dying primary acknowledged; an evicted session starts
//     again from zero).
//
// Check the final value with one more Stored, of a last increment. A
// Ledger is not safe for concurrent use: one per client.
type Ledger struct {
	// Last is the counter's value in the last "stored" answer.
	Last int

	// Answers by kind.
	Stored, Failed, Unknown int

	// Phantoms counts increments stored although every answer in their gap
	// said "failed"; UnknownLanded those that an "unknown" answer may
	// explain; Lost those answered "stored" but missing later.
	Phantoms, UnknownLanded, Lost int

	pendingFailed, pendingUnknown int
}

// AnswerStored records an answer that says the increment was stored and
// that the counter is now value.
func (l *Ledger) AnswerStored(value int) {
	l.Stored++
	landed := value - l.Last - 1 // increments stored since Last besides this one
	switch {
	case landed < 0:
		l.Lost += -landed
	case landed > l.pendingUnknown:
		l.UnknownLanded += l.pendingUnknown
		l.Phantoms += landed - l.pendingUnknown
	default:
		l.UnknownLanded += landed
	}
	l.Last = value
	l.pendingFailed, l.pendingUnknown = 0, 0
}

// StartedOver records that the counter started again from zero (the
// session was lost, e.g. evicted, and the client got a new one): what
// Last counted is lost, and the answers pending since are forgotten.
func (l *Ledger) StartedOver() {
	l.Lost += l.Last
	l.Last = 0
	l.pendingFailed, l.pendingUnknown = 0, 0
}

// AnswerFailed records an answer that says the increment was not stored.
func (l *Ledger) AnswerFailed() {
	l.Failed++
	l.pendingFailed++
}

// AnswerUnknown records an answer that says the increment may or may not
// have been stored, or no answer.
func (l *Ledger) AnswerUnknown() {
	l.Unknown++
	l.pendingUnknown++
}

// Add adds o's counts to l's (Last and pending answers excepted), to sum
// the ledgers of many clients.
func (l *Ledger) Add(o *Ledger) {
	l.Stored += o.Stored
	l.Failed += o.Failed
	l.Unknown += o.Unknown
	l.Phantoms += o.Phantoms
	l.UnknownLanded += o.UnknownLanded
	l.Lost += o.Lost
}

// String summarises the counts.
func (l *Ledger) String() string {
	return fmt.Sprintf("%d stored, %d failed, %d unknown (%d of them landed); %d phantoms, %d lost",
		l.Stored, l.Failed, l.Unknown, l.UnknownLanded, l.Phantoms, l.Lost)
}
