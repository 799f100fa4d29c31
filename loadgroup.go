package sessions

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/sessionx/sessions/backend"
)

// loadGroups coalesces the loads of one session key made at the same time
// in this process (a page firing a dozen XHRs): while a load of the key is
// on its way to the store, the loads that arrive wait and then share one
// load, sent as soon as the one on its way returns. So a hot session costs
// one store round trip per round trip's worth of requests, not one per
// request.
//
// A request never shares a load sent before it arrived: the load it gets
// was sent after it, so it sees every write that completed before it
// arrived (a request's own earlier writes, another request's answered
// writes), as a load of its own would. A request that shares a load whose
// sender's context ended (its client went away) loads again on its own.
//
// Only stores outside the process use it (not backend.InProcess), where a
// load is a round trip; the memory store answers faster than a hand-over.
type loadGroups struct {
	mu    sync.Mutex
	lines map[string]*loadLine
}

// loadLine is the loads of one key: the one on its way, and the one that
// collects the requests arriving meanwhile.
type loadLine struct {
	sending *loadCall
	waiting *loadCall
}

// loadCall is one load, shared by the requests that joined it. A call
// sent at once (nothing on its way) has no start and no joiners: only a
// waiting call collects them.
type loadCall struct {
	start  chan struct{} // closed when it may be sent
	ready  chan struct{} // closed when e, slid and err are in
	joined int           // requests sharing it besides its sender (guarded by loadGroups.mu until start closes)
	e      backend.Entry
	slid   bool
	err    error
}

// do returns what send, a load of key, returns, sharing the call with the
// other requests of key in this process as loadGroups says. The Entry's
// Value is the caller's own (a copy for all but the sender).
func (g *loadGroups) do(ctx context.Context, key string, send func() (backend.Entry, bool, error)) (backend.Entry, bool, error) {
	g.mu.Lock()
	if g.lines == nil {
		g.lines = make(map[string]*loadLine)
	}
	l := g.lines[key]
	if l == nil {
		l = &loadLine{}
		g.lines[key] = l
	}
	var c *loadCall
	switch {
	case l.sending == nil:
		c = &loadCall{}
		l.sending = c
	case l.waiting == nil:
		c = &loadCall{start: make(chan struct{}), ready: make(chan struct{})}
		l.waiting = c
	default:
		c = l.waiting
		c.joined++
		g.mu.Unlock()
		return g.join(ctx, c, send)
	}
	g.mu.Unlock()

	if c.start != nil {
		// Wait for the load on its way even past ctx: the requests that
		// join this call count on it being sent. (That load is bounded by
		// its own request's deadline.)
		<-c.start
	}
	e, slid, err := send()
	if c.ready != nil {
		c.e, c.slid, c.err = e, slid, err
		if c.joined > 0 {
			c.e.Value = bytes.Clone(e.Value) // the sender opens its own in place
		}
	}
	g.mu.Lock()
	if next := l.waiting; next != nil {
		l.sending, l.waiting = next, nil
		close(next.start)
	} else {
		l.sending = nil
		delete(g.lines, key)
	}
	g.mu.Unlock()
	if c.ready != nil {
		close(c.ready)
	}
	return e, slid, err
}

// join waits for c, which another request sends, and returns a copy of its
// result; it loads on its own when c failed only because its sender's
// context ended.
func (g *loadGroups) join(ctx context.Context, c *loadCall, send func() (backend.Entry, bool, error)) (backend.Entry, bool, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return backend.Entry{}, false, ctx.Err()
	}
	if c.err != nil && ctx.Err() == nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
		return send()
	}
	e := c.e
	e.Value = bytes.Clone(e.Value)
	return e, c.slid, c.err
}
