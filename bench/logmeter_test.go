package bench

import "testing"

// logMeter measures how many bytes a database server wrote to its log
// (PostgreSQL's WAL, InnoDB's redo log) while a benchmark ran: the write
// work behind a request that its time alone does not show (every commit
// waits for its log to reach the disk). It reads the server's whole log
// position, so a private server with nothing else writing is what makes the
// figure one library's.
type logMeter struct {
	read  func() (int64, error) // nil: nothing to measure
	start int64
}

// reset takes the log's position at the start of the timed loop.
func (m *logMeter) reset(b *testing.B) {
	if m.read == nil {
		return
	}
	n, err := m.read()
	if err != nil {
		b.Fatalf("reading the server's log position: %v", err)
	}
	m.start = n
}

// report adds log-B/op: the log's growth since reset over b.N.
func (m *logMeter) report(b *testing.B) {
	if m.read == nil {
		return
	}
	n, err := m.read()
	if err != nil {
		b.Fatalf("reading the server's log position: %v", err)
	}
	b.ReportMetric(float64(n-m.start)/float64(b.N), "log-B/op")
}
