package testutil

import (
	"sync"
	"time"
)

// FakeClock is a settable clock for deadline tests (it satisfies
// pipeline.Clock). Its tickers tick only when the test advances the time or
// calls Tick, so no test waits on real time for a deadline of hours.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []chan time.Time
}

// NewFakeClock returns a clock stopped at start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start}
}

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker driven by Advance and Tick, and the function
// that stops it.
func (c *FakeClock) NewTicker(time.Duration) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.tickers = append(c.tickers, ch)
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, t := range c.tickers {
			if t == ch {
				c.tickers = append(c.tickers[:i], c.tickers[i+1:]...)
				break
			}
		}
	}
}

// Advance moves the time by d and ticks every ticker.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.Tick()
}

// Tick ticks every ticker once (a tick still pending is not doubled) without
// moving the time.
func (c *FakeClock) Tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers {
		select {
		case t <- c.now:
		default:
		}
	}
}
