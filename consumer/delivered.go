package consumer

import (
	"slices"
	"sync"
	"time"
)

// delivered remembers, per entity of one endpoint, the highest stream sequence delivered (or
// dead-lettered) to it. Delivery is strictly ordered per entity, so every event of that entity
// at or below the mark is done: when JetStream sends one again — a copy redelivered after its
// AckWait while it waited in the client's buffer, everything above the ack floor after a
// ResetConsumer, an ack the server did not confirm — it is acked without being POSTed again.
// It outlives the endpoint's worker across restarts within the process.
//
// A mark is forgotten from memory when nothing touched its entity for forget: by then any copy
// in transit has arrived. Marks are also written to the durable record (Marks) in batches and
// read back when the endpoint's worker starts, so a restart or a crash resends only what was in
// flight or delivered within the last flush interval.
type delivered struct {
	endpointID string
	durable    *Marks // where marks are also written, in batches; nil: memory only

	mu    sync.Mutex
	marks map[string]mark
}

type mark struct {
	seq uint64
	at  time.Time
}

// maxDelivered bounds the entities remembered per endpoint; past it the least recently touched
// quarter is forgotten (a reset may then resend some of their events: duplicates, never loss).
const maxDelivered = 100_000

func newDelivered(endpointID string, durable *Marks) *delivered {
	return &delivered{endpointID: endpointID, durable: durable, marks: make(map[string]mark)}
}

// add records that seq of entity was delivered or dead-lettered.
func (d *delivered) add(entity string, seq uint64) {
	d.restore(entity, seq)
	d.durable.set(d.endpointID, entity, seq)
}

// restore records a mark read back from the durable record.
func (d *delivered) restore(entity string, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.marks[entity]; !ok || seq > m.seq {
		d.marks[entity] = mark{seq: seq, at: time.Now()}
	}
	if len(d.marks) > maxDelivered {
		d.forgetOldest(len(d.marks) / 4)
	}
}

// covers reports whether seq of entity was delivered already.
func (d *delivered) covers(entity string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.marks[entity]
	return ok && seq <= m.seq
}

// prune forgets the marks not touched for forget.
func (d *delivered) prune(forget time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e, m := range d.marks {
		if time.Since(m.at) > forget {
			delete(d.marks, e)
		}
	}
}

func (d *delivered) forgetOldest(n int) {
	type aged struct {
		entity string
		at     time.Time
	}
	all := make([]aged, 0, len(d.marks))
	for e, m := range d.marks {
		all = append(all, aged{e, m.at})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:n] {
		delete(d.marks, a.entity)
	}
}

func (d *delivered) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.marks)
}
