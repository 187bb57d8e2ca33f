package consumer

import (
	"slices"
	"sync"
	"time"
)

// delivered remembers, per endpoint, the stream sequences this process delivered and acked,
// so that when JetStream sends one again it is acked without being POSTed again. That happens
// after ResetConsumer (it restarts at the ack floor and resends what was acked above it) and
// after an ack the server did not confirm. It outlives the endpoint's worker across restarts
// within the process; a crashed process forgets it, and receivers dedupe on webhook-id.
type delivered struct {
	mu   sync.Mutex
	seqs map[uint64]ackState
}

type ackState struct {
	confirmed bool
	at        time.Time
}

// maxDelivered bounds the memory one endpoint spends on this; past it the oldest are forgotten
// (a reset then resends them: duplicates, never loss).
const maxDelivered = 8192

func newDelivered() *delivered { return &delivered{seqs: make(map[uint64]ackState)} }

func (d *delivered) add(seq uint64, confirmed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seqs[seq] = ackState{confirmed: confirmed, at: time.Now()}
	if len(d.seqs) > maxDelivered {
		all := make([]uint64, 0, len(d.seqs))
		for s := range d.seqs {
			all = append(all, s)
		}
		slices.Sort(all)
		for _, s := range all[:len(all)/4] {
			delete(d.seqs, s)
		}
	}
}

// take reports whether seq was delivered, and forgets it.
func (d *delivered) take(seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.seqs[seq]
	delete(d.seqs, seq)
	return ok
}

// prune forgets confirmed acks below the lowest sequence still outstanding (JetStream's ack floor
// is past them, so no reset resends them), and unconfirmed ones older than forget.
func (d *delivered) prune(lowestHeld uint64, forget time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, st := range d.seqs {
		if st.confirmed && (lowestHeld == 0 || s < lowestHeld) || !st.confirmed && time.Since(st.at) > forget {
			delete(d.seqs, s)
		}
	}
}

func (d *delivered) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seqs)
}
