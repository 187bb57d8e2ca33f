package consumer

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
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

	// The entities are split into shards by name, each under a lock of its own: every lane takes
	// one for each event it attempts and each it finishes, and one lock for all was where the
	// lanes of a busy endpoint waited on each other.
	seed   maphash.Seed
	_      [32]byte // the shards start a cache line: each on its own (TestLanesLayout)
	shards [progressShards]progressShard

	// top is at least every mark's sequence but those a running worker's lanes set for events its
	// route passed them (addRouted): route knows those are below what it has routed, and answers a
	// new event (above both: most of them) without a lock (worker.route). A worker raises it to
	// what it routed when it ends; the manager starts the next only then (runWorker). Raised for
	// every event, it was a line both cores wrote in turn and route read between: on a cache line
	// of its own.
	top atomic.Uint64
	_   [56]byte
}

// progressShards is how many shards an endpoint's progress is split into: enough that the lanes
// running at once on a few cores seldom share one, few enough that an endpoint's share stays
// small (the progress of every endpoint is kept, awake or not).
const progressShards = 8

// progressShard holds the state of the entities that hash to it. Its maps are made on first use.
type progressShard struct {
	mu    sync.Mutex
	marks map[string]*mark    // a mark replaced is written in place: the map's own lines stay as they are
	heads map[string]head     // entities whose head is being retried
	dirty map[string]struct{} // entities changed since the last flush (with durable)
	_     [32]byte            // a cache line each
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
// quarter of a shard is forgotten (a reset may then resend some of their events, and their next
// event carries no previous id: duplicates and a missing hint, never loss).
const maxDelivered = 100_000

func newProgress(endpointID string, durable *Marks) *progress {
	d := &progress{endpointID: endpointID, durable: durable, seed: maphash.MakeSeed()}
	durable.register(d)
	return d
}

// lock is the shard where entity's state is kept, locked; the caller unlocks it.
func (d *progress) lock(entity string) *progressShard {
	sh := &d.shards[maphash.String(d.seed, entity)%progressShards]
	sh.mu.Lock()
	if sh.marks == nil {
		sh.marks, sh.heads, sh.dirty = make(map[string]*mark), make(map[string]head), make(map[string]struct{})
	}
	return sh
}

// each calls f on every shard, locked.
func (d *progress) each(f func(sh *progressShard)) {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		f(sh)
		sh.mu.Unlock()
	}
}

// add records that seq (id) of entity was delivered or dead-lettered at at, ending its head's
// retry state. at is the caller's: a clock read costs as much as the rest of add.
func (d *progress) add(entity string, seq uint64, id string, at time.Time) {
	d.addRaising(entity, seq, id, at, true)
}

// addRouted is add for an event the route of a running worker queued on a lane: top is not
// raised, the worker's route knows it (see top).
func (d *progress) addRouted(entity string, seq uint64, id string, at time.Time) {
	d.addRaising(entity, seq, id, at, false)
}

func (d *progress) addRaising(entity string, seq uint64, id string, at time.Time, raise bool) {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	m := sh.marks[entity]
	switch {
	case m == nil:
		sh.marks[entity] = &mark{seq: seq, id: id, at: at.Unix()}
	case seq <= m.seq:
		return
	default:
		*m = mark{seq: seq, id: id, at: at.Unix()}
	}
	if raise {
		d.raise(seq)
	}
	if len(sh.heads) > 0 {
		if h, ok := sh.heads[entity]; ok && h.seq <= seq {
			delete(sh.heads, entity)
		}
	}
	d.touch(sh, entity)
	if len(sh.marks) > maxDelivered/progressShards {
		sh.forgetOldest(len(sh.marks) / 4)
	}
}

// set puts an entity's stored state back as the durable record has it (at start, or a rewind):
// the mark replaced, not only raised.
func (d *progress) set(entity string, e markEntry) {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	if e.Seq == 0 {
		delete(sh.marks, entity)
	} else {
		sh.marks[entity] = &mark{seq: e.Seq, id: e.ID, at: e.At}
		d.raise(e.Seq)
	}
	if e.Head > e.Seq {
		sh.heads[entity] = head{seq: e.Head, attempts: e.Attempts, first: e.First}
	} else {
		delete(sh.heads, entity)
	}
}

// rewind lowers the mark of every entity to below seq, so that events from seq on are delivered
// again when JetStream sends them (a "redeliver from here"). The previous id is kept only where
// the mark stays.
func (d *progress) rewind(seq uint64) {
	for i := range d.shards { // all at once: an add meanwhile would raise top past what is lowered here
		d.shards[i].mu.Lock()
	}
	top := uint64(0)
	for i := range d.shards {
		sh := &d.shards[i]
		for e, m := range sh.marks {
			if m.seq >= seq {
				delete(sh.marks, e)
				d.touch(sh, e)
			} else {
				top = max(top, m.seq)
			}
		}
	}
	d.top.Store(top)
	for i := range d.shards {
		d.shards[i].mu.Unlock()
	}
}

// raise keeps top at or above seq. Callers hold seq's entity's shard lock (rewind holds them
// all), or raise what their worker routed once its lanes have ended.
func (d *progress) raise(seq uint64) {
	for {
		top := d.top.Load()
		if seq <= top || d.top.CompareAndSwap(top, seq) {
			return
		}
	}
}

// attempted records a POST of seq, the entity's head, and returns how many it has had and when
// the first was: counted across worker restarts (and, through the durable record, gateway
// restarts).
func (d *progress) attempted(entity string, seq uint64, at time.Time) (attempts int, first time.Time) {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	h := sh.heads[entity]
	if h.seq != seq {
		h = head{seq: seq, first: at}
	}
	h.attempts++
	sh.heads[entity] = h
	d.touch(sh, entity)
	return h.attempts, h.first
}

// retryState is what attempted has counted for seq so far.
func (d *progress) retryState(entity string, seq uint64) (attempts int, first time.Time) {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	if h, ok := sh.heads[entity]; ok && h.seq == seq {
		return h.attempts, h.first
	}
	return 0, time.Time{}
}

// touch marks entity to be written to the durable record. Callers hold sh.mu.
func (d *progress) touch(sh *progressShard, entity string) {
	if d.durable != nil {
		if len(sh.dirty) == 0 {
			d.durable.changed(d)
		}
		sh.dirty[entity] = struct{}{}
	}
}

// headState is what a lane needs to attempt seq, entity's head, under one lock: previous's id
// and retryState's count.
func (d *progress) headState(entity string, seq uint64) (previous string, attempts int, first time.Time) {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	if m := sh.marks[entity]; m != nil && m.seq < seq {
		previous = m.id
	}
	if len(sh.heads) > 0 {
		if h, ok := sh.heads[entity]; ok && h.seq == seq {
			attempts, first = h.attempts, h.first
		}
	}
	return previous, attempts, first
}

// above reports whether seq is above every mark but those the caller's worker's lanes set for
// events its route queued (see top).
func (d *progress) above(seq uint64) bool { return seq > d.top.Load() }

// covers reports whether seq of entity was delivered already.
func (d *progress) covers(entity string, seq uint64) bool {
	sh := d.lock(entity)
	defer sh.mu.Unlock()
	m := sh.marks[entity]
	return m != nil && seq <= m.seq
}

// entry is what the durable record stores for entity. Callers hold sh.mu.
func (sh *progressShard) entry(entity string) markEntry {
	e := markEntry{Entity: entity}
	if m := sh.marks[entity]; m != nil {
		e.Seq, e.ID, e.At = m.seq, m.id, m.at
	}
	if h, ok := sh.heads[entity]; ok && h.seq > e.Seq {
		e.Head, e.Attempts, e.First = h.seq, h.attempts, h.first
	}
	return e
}

// takeDirty returns the entries changed since the last call.
func (d *progress) takeDirty() []markEntry {
	var out []markEntry
	d.each(func(sh *progressShard) {
		for e := range sh.dirty {
			out = append(out, sh.entry(e))
		}
		clear(sh.dirty)
	})
	return out
}

// snapshot returns every entry, and clears the changes it includes.
func (d *progress) snapshot() []markEntry {
	out := make([]markEntry, 0, d.len())
	d.each(func(sh *progressShard) {
		for e := range sh.marks {
			out = append(out, sh.entry(e))
		}
		for e := range sh.heads {
			if _, ok := sh.marks[e]; !ok {
				out = append(out, sh.entry(e))
			}
		}
		clear(sh.dirty)
	})
	return out
}

// redirty has entities written again (their write failed).
func (d *progress) redirty(entries []markEntry) {
	for _, e := range entries {
		sh := d.lock(e.Entity)
		d.touch(sh, e.Entity)
		sh.mu.Unlock()
	}
}

// prune forgets the marks set before cutoff (Unix seconds): their events have left the stream.
func (d *progress) prune(cutoff int64) {
	d.each(func(sh *progressShard) {
		for e, m := range sh.marks {
			if m.at < cutoff {
				delete(sh.marks, e)
			}
		}
	})
}

func (sh *progressShard) forgetOldest(n int) {
	type aged struct {
		entity string
		at     int64
	}
	all := make([]aged, 0, len(sh.marks))
	for e, m := range sh.marks {
		all = append(all, aged{e, m.at})
	}
	slices.SortFunc(all, func(a, b aged) int { return int(a.at - b.at) })
	for _, a := range all[:n] {
		delete(sh.marks, a.entity)
	}
}

func (d *progress) len() int {
	n := 0
	d.each(func(sh *progressShard) { n += len(sh.marks) })
	return n
}
