package consumer

import (
	"context"
	"sync"
)

// revision is the newest registry revision the manager has applied. Bucket revisions grow
// across all keys and the watch hands them over in order, so one number says whether a given
// write has been taken into account.
type revision struct {
	mu      sync.Mutex
	n       uint64
	changed chan struct{} // closed and replaced whenever n grows
}

func (r *revision) advance(n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= r.n {
		return
	}
	r.n = n
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// wait returns once n has been reached, or with ctx's error.
func (r *revision) wait(ctx context.Context, n uint64) error {
	for {
		r.mu.Lock()
		if r.n >= n {
			r.mu.Unlock()
			return nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitApplied returns once this gateway has applied the registry write that made revision rev
// (an Endpoint's Revision after Create or Update): its own worker, if it delivers to the
// endpoint, then uses the new definition. An API call waits on it so that an event published
// after the answer goes out with the change, e.g. not signed by a secret rotated out with no
// grace. Other gateways follow within their watch's delay.
func (m *Manager) WaitApplied(ctx context.Context, rev uint64) error {
	return m.seen.wait(ctx, rev)
}
