package consumer

import "sync/atomic"

// inFlight bounds an endpoint's POSTs in flight across its lanes. Its lanes number at most the
// bound, and then a slot is an atomic add to take and one to give; a lane resumed from a retry
// wait may find none free and waits for a give. A channel as semaphore took its lock twice per
// delivery, shared by every lane of the endpoint.
type inFlight struct {
	used    atomic.Int64
	waiting atomic.Int64
	max     int64
	freed   chan struct{} // a token per slot given back while some wait (spare tokens only wake a retry)
	_       [32]byte      // 64 bytes, allocated aligned: a cache line of its own, shared with nothing else
}

func newInFlight(max int) *inFlight {
	return &inFlight{max: int64(max), freed: make(chan struct{}, max)}
}

// take takes a slot, waiting for one if none is free; false if stop is closed first.
func (f *inFlight) take(stop <-chan struct{}) bool {
	if f.used.Add(1) <= f.max {
		return true
	}
	f.used.Add(-1)
	f.waiting.Add(1) // before the retry: a give after it sees the waiter and leaves a token
	defer f.waiting.Add(-1)
	for {
		if f.used.Add(1) <= f.max {
			return true
		}
		f.used.Add(-1)
		select {
		case <-f.freed:
		case <-stop:
			return false
		}
	}
}

// give gives a slot back.
func (f *inFlight) give() {
	f.used.Add(-1)
	if f.waiting.Load() > 0 {
		select {
		case f.freed <- struct{}{}:
		default: // tokens enough are pending for every waiter to try again
		}
	}
}
