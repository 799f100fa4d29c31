package sqlite

import (
	"context"
	"sync"
)

// writeGate makes the cleanup's batches and this Store's other writes take
// turns in the process, before SQLite's write lock does it for them.
//
// SQLite has no queue for its write lock: a statement that finds it taken
// sleeps in the busy handler, longer at each try (1, 2, 5, 10, 15, 20, 25
// ms, ... up to 100 ms), and tries again. With the cleanup taking the lock
// again after each short pause, a request's write that met one batch could
// sleep past the pause, meet the next batch, and sleep longer still: up
// to 97 ms in BenchmarkSQLiteCleanup's writing case. Through the gate a
// batch first stops new writes of this Store from starting and waits for
// those under way, and a write that finds a batch running waits for it on
// a channel and starts the moment it ends. So this Store's writes meet its
// cleanup in the gate only, never in the busy handler; the busy handler
// remains for other processes and other handles on the file.
type writeGate struct {
	mu      sync.Mutex
	writers int           // writes that entered and have not left
	drained chan struct{} // closed when writers reaches 0, while a batch waits for it
	shut    chan struct{} // non-nil while a batch holds the gate or waits for it; closed when it opens
}

// enter lets a write in, waiting while a cleanup batch holds the gate or
// waits for it; it fails only when ctx ends first. Call leave when done.
func (g *writeGate) enter(ctx context.Context) error {
	for {
		g.mu.Lock()
		shut := g.shut
		if shut == nil {
			g.writers++
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		select {
		case <-shut:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leave ends a write that entered.
func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.writers--; g.writers == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
}

// close stops new writes from entering and waits until those that entered
// have left; then the caller holds the gate until it calls open. When ctx
// ends first, the gate is open again and ctx's error returned. Only one
// caller (the cleanup) may hold the gate at a time.
func (g *writeGate) close(ctx context.Context) (open func(), err error) {
	g.mu.Lock()
	shut := make(chan struct{})
	g.shut = shut
	var drained chan struct{}
	if g.writers > 0 {
		drained = make(chan struct{})
		g.drained = drained
	}
	g.mu.Unlock()
	open = func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.shut, g.drained = nil, nil
		close(shut)
	}
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			open()
			return nil, ctx.Err()
		}
	}
	return open, nil
}
