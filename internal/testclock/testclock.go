// Package testclock is a clock for tests: it moves only when told, so that
// expiry can be tested without sleeping. It is safe for concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock; its Now method fits Config.Now and
// memory.Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock that reads t until moved.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
