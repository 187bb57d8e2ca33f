package backoff

import (
	"context"
	"time"
)

// Backoff gives the waits between tries: First, then each twice the one before, at most Max
// (0: no cap). Call Next after each failed try and Reset after a success. It is not safe for
// concurrent use; one loop holds one.
type Backoff struct {
	First time.Duration
	Max   time.Duration

	next time.Duration
}

// Next returns the wait before the next try.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.First
	}
	d := b.next
	b.next = 2 * d
	if b.Max > 0 {
		d, b.next = min(d, b.Max), min(b.next, b.Max)
	}
	return d
}

// Reset starts the waits again from First.
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits for d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if !Wait(ctx.Done(), d) {
		return ctx.Err()
	}
	return nil
}

// Wait waits for d and returns true, or returns false as soon as stop is closed: for a loop that
// is stopped by a channel rather than a context.
func Wait(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
