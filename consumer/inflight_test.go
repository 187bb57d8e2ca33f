package consumer

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A slot is taken at once while one is free; beyond the bound a take waits for a give, and a
// stop ends the wait without a slot.
func TestInFlightBoundsAndWaits(t *testing.T) {
	t.Parallel()
	f := newInFlight(2)
	stop := make(chan struct{})
	if !f.take(stop) || !f.take(stop) {
		t.Fatal("a free slot was not taken")
	}
	got := make(chan bool)
	go func() { got <- f.take(stop) }()
	select {
	case <-got:
		t.Fatal("a third slot was taken beyond the bound of 2")
	case <-time.After(50 * time.Millisecond):
	}
	f.give()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiting take failed after a give")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting take did not end after a give")
	}
	go func() { got <- f.take(stop) }()
	close(stop)
	select {
	case ok := <-got:
		if ok {
			t.Fatal("a take ended by stop reports a slot")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end a waiting take")
	}
	if n := f.used.Load(); n != 2 {
		t.Errorf("%d slots used, want 2", n)
	}
}

// Many lanes taking and giving at once never hold more than the bound, and none is left waiting
// while a slot is free (each finishes its rounds).
func TestInFlightUnderContention(t *testing.T) {
	t.Parallel()
	const bound, lanes, rounds = 3, 16, 2000
	f := newInFlight(bound)
	var holding, most atomic.Int64
	var wg sync.WaitGroup
	for range lanes {
		wg.Go(func() {
			for range rounds {
				if !f.take(nil) {
					t.Error("take without a stop failed")
					return
				}
				n := holding.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				holding.Add(-1)
				f.give()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("lanes still waiting for a slot: a give was lost")
	}
	if m := most.Load(); m > bound {
		t.Errorf("%d slots held at once, bound %d", m, bound)
	}
}
