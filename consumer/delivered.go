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
	dirty map[string]struct{} // entities whose mark changed since the last flush (with durable)
}

type mark struct {
	seq uint64
	at  time.Time
	// The entity's head, while it is being retried: its attempts (POSTs made) and the time of its
	// first, so that a restart or a reconnect does not give it a new retry budget.
	head     uint64
	attempts int
	first    time.Time
}

// maxDelivered bounds the entities remembered per endpoint; past it the least recently touched
// quarter is forgotten (a reset may then resend some of their events: duplicates, never loss).
const maxDelivered = 100_000

func newDelivered(endpointID string, durable *Marks) *delivered {
	d := &delivered{endpointID: endpointID, durable: durable, marks: make(map[string]mark), dirty: make(map[string]struct{})}
	durable.register(d)
	return d
}

// add records that seq of entity was delivered or dead-lettered.
func (d *delivered) add(entity string, seq uint64) {
	d.update(entity, true, func(m *mark) bool { return m.advance(seq) })
}

// restore records a mark read back from the durable record.
func (d *delivered) restore(entity string, seq uint64) {
	d.update(entity, false, func(m *mark) bool { return m.advance(seq) })
}

// advance raises the mark to seq, ending the retry state of a head it passes; false if the mark
// is there already.
func (m *mark) advance(seq uint64) bool {
	if seq <= m.seq {
		return false
	}
	m.seq = seq
	if m.head <= seq {
		m.head, m.attempts, m.first = 0, 0, time.Time{}
	}
	return true
}

// restoreHead records a head's retry state read back from the durable record.
func (d *delivered) restoreHead(entity string, head uint64, attempts int, first time.Time) {
	d.update(entity, false, func(m *mark) bool {
		if head <= m.seq || head < m.head {
			return false
		}
		m.head, m.attempts, m.first = head, attempts, first
		return true
	})
}

// attempted records a POST of seq, the entity's head, and returns how many it has had and when
// the first was: counted across worker restarts (and, through the durable record, gateway
// restarts).
func (d *delivered) attempted(entity string, seq uint64, at time.Time) (attempts int, first time.Time) {
	m := d.update(entity, true, func(m *mark) bool {
		if m.head != seq {
			m.head, m.attempts, m.first = seq, 0, at
		}
		m.attempts++
		return true
	})
	return m.attempts, m.first
}

// retryState is what attempted has counted for seq so far.
func (d *delivered) retryState(entity string, seq uint64) (attempts int, first time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.marks[entity]; ok && m.head == seq {
		return m.attempts, m.first
	}
	return 0, time.Time{}
}

// update changes an entity's mark under the lock (change reports whether it changed anything;
// persist, whether the change is to be written to the durable record) and returns it.
func (d *delivered) update(entity string, persist bool, change func(*mark) bool) mark {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.marks[entity]
	if change(&m) {
		m.at = time.Now()
		d.marks[entity] = m
		if persist && d.durable != nil {
			d.dirty[entity] = struct{}{}
		}
	}
	if len(d.marks) > maxDelivered {
		d.forgetOldest(len(d.marks) / 4)
	}
	return m
}

// covers reports whether seq of entity was delivered already.
func (d *delivered) covers(entity string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.marks[entity]
	return ok && m.seq > 0 && seq <= m.seq
}

// takeDirty returns the marks changed since the last call.
func (d *delivered) takeDirty() map[string]mark {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]mark, len(d.dirty))
	for e := range d.dirty {
		out[e] = d.marks[e]
	}
	clear(d.dirty)
	return out
}

// redirty marks an entity to be written again (its write failed), unless it changed meanwhile.
func (d *delivered) redirty(entity string) {
	d.mu.Lock()
	d.dirty[entity] = struct{}{}
	d.mu.Unlock()
}

// prune forgets the marks not touched for forget.
func (d *delivered) prune(forget time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e, m := range d.marks {
		if _, dirty := d.dirty[e]; !dirty && time.Since(m.at) > forget {
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
