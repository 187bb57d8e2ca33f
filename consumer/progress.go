package consumer

import (
	"slices"
	"sync"
	"time"
)

// progress remembers, per entity of one endpoint, the last event delivered (or dead-lettered)
// to it: its stream sequence and its id. Delivery is strictly ordered per entity, so every event
// of that entity at or below the mark is done: when JetStream sends one again — a copy
// redelivered after its AckWait while it waited in the client's buffer, everything above the ack
// floor after a ResetConsumer, an ack the server did not confirm — it is acked without being
// POSTed again. The id is the next event's Quaycast-Previous-Event-Id. It also holds the retry
// state of each entity's head while it is retried, so that a restart does not renew its budget.
//
// It outlives the endpoint's worker across restarts within the process, and is written to the
// durable record (Marks) every flush interval and read back at start, so a restart or a crash
// resends only what was in flight or delivered within the last interval. A mark is forgotten
// when the events stream no longer holds its event (Marks' max age).
type progress struct {
	endpointID string
	durable    *Marks // where changes are also written, in batches; nil: memory only

	mu    sync.Mutex
	marks map[string]mark
	heads map[string]head     // entities whose head is being retried
	dirty map[string]struct{} // entities changed since the last flush (with durable)
}

// mark is the last event done for an entity. Kept small: there is one per endpoint and entity.
type mark struct {
	seq uint64
	id  string
	at  int64 // Unix seconds it was set: when its event leaves the stream it is forgotten
}

// head is the retry state of an entity's head: its attempts (POSTs made) and the time of its
// first, so that a restart or a reconnect does not give it a new retry budget.
type head struct {
	seq      uint64
	attempts int
	first    time.Time
}

// maxDelivered bounds the entities remembered per endpoint; past it the least recently touched
// quarter is forgotten (a reset may then resend some of their events, and their next event
// carries no previous id: duplicates and a missing hint, never loss).
const maxDelivered = 100_000

func newProgress(endpointID string, durable *Marks) *progress {
	d := &progress{endpointID: endpointID, durable: durable,
		marks: make(map[string]mark), heads: make(map[string]head), dirty: make(map[string]struct{})}
	durable.register(d)
	return d
}

// add records that seq (id) of entity was delivered or dead-lettered, ending its head's retry
// state.
func (d *progress) add(entity string, seq uint64, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.marks[entity]; ok && seq <= m.seq {
		return
	}
	d.marks[entity] = mark{seq: seq, id: id, at: time.Now().Unix()}
	if h, ok := d.heads[entity]; ok && h.seq <= seq {
		delete(d.heads, entity)
	}
	d.touch(entity)
	if len(d.marks) > maxDelivered {
		d.forgetOldest(len(d.marks) / 4)
	}
}

// set puts an entity's stored state back as the durable record has it (at start, or a rewind):
// the mark replaced, not only raised.
func (d *progress) set(entity string, e markEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.Seq == 0 {
		delete(d.marks, entity)
	} else {
		d.marks[entity] = mark{seq: e.Seq, id: e.ID, at: e.At}
	}
	if e.Head > e.Seq {
		d.heads[entity] = head{seq: e.Head, attempts: e.Attempts, first: e.First}
	} else {
		delete(d.heads, entity)
	}
}

// rewind lowers the mark of every entity to below seq, so that events from seq on are delivered
// again when JetStream sends them (a "redeliver from here"). The previous id is kept only where
// the mark stays.
func (d *progress) rewind(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e, m := range d.marks {
		if m.seq >= seq {
			delete(d.marks, e)
			d.touch(e)
		}
	}
}

// attempted records a POST of seq, the entity's head, and returns how many it has had and when
// the first was: counted across worker restarts (and, through the durable record, gateway
// restarts).
func (d *progress) attempted(entity string, seq uint64, at time.Time) (attempts int, first time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.heads[entity]
	if h.seq != seq {
		h = head{seq: seq, first: at}
	}
	h.attempts++
	d.heads[entity] = h
	d.touch(entity)
	return h.attempts, h.first
}

// retryState is what attempted has counted for seq so far.
func (d *progress) retryState(entity string, seq uint64) (attempts int, first time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.heads[entity]; ok && h.seq == seq {
		return h.attempts, h.first
	}
	return 0, time.Time{}
}

// touch marks entity to be written to the durable record. Callers hold d.mu.
func (d *progress) touch(entity string) {
	if d.durable != nil {
		if len(d.dirty) == 0 {
			d.durable.changed(d)
		}
		d.dirty[entity] = struct{}{}
	}
}

// headState is what a lane needs to attempt seq, entity's head, under one lock: previous's id
// and retryState's count.
func (d *progress) headState(entity string, seq uint64) (previous string, attempts int, first time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.marks[entity]; ok && m.seq < seq {
		previous = m.id
	}
	if h, ok := d.heads[entity]; ok && h.seq == seq {
		attempts, first = h.attempts, h.first
	}
	return previous, attempts, first
}

// covers reports whether seq of entity was delivered already.
func (d *progress) covers(entity string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.marks[entity]
	return ok && seq <= m.seq
}

// entry is what the durable record stores for entity. Callers hold d.mu.
func (d *progress) entry(entity string) markEntry {
	m := d.marks[entity]
	e := markEntry{Entity: entity, Seq: m.seq, ID: m.id, At: m.at}
	if h, ok := d.heads[entity]; ok && h.seq > m.seq {
		e.Head, e.Attempts, e.First = h.seq, h.attempts, h.first
	}
	return e
}

// takeDirty returns the entries changed since the last call.
func (d *progress) takeDirty() []markEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]markEntry, 0, len(d.dirty))
	for e := range d.dirty {
		out = append(out, d.entry(e))
	}
	clear(d.dirty)
	return out
}

// snapshot returns every entry, and clears the changes it includes.
func (d *progress) snapshot() []markEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]markEntry, 0, len(d.marks)+len(d.heads))
	for e := range d.marks {
		out = append(out, d.entry(e))
	}
	for e := range d.heads {
		if _, ok := d.marks[e]; !ok {
			out = append(out, d.entry(e))
		}
	}
	clear(d.dirty)
	return out
}

// redirty has entities written again (their write failed).
func (d *progress) redirty(entries []markEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		d.touch(e.Entity)
	}
}

// prune forgets the marks set before cutoff (Unix seconds): their events have left the stream.
func (d *progress) prune(cutoff int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e, m := range d.marks {
		if m.at < cutoff {
			delete(d.marks, e)
		}
	}
}

func (d *progress) forgetOldest(n int) {
	type aged struct {
		entity string
		at     int64
	}
	all := make([]aged, 0, len(d.marks))
	for e, m := range d.marks {
		all = append(all, aged{e, m.at})
	}
	slices.SortFunc(all, func(a, b aged) int { return int(a.at - b.at) })
	for _, a := range all[:n] {
		delete(d.marks, a.entity)
	}
}

func (d *progress) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.marks)
}
