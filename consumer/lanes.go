package consumer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// lanes are one worker's per-entity FIFOs: the events each entity has waiting, head first, the
// events held by stream sequence, and which entities have their lane goroutine running — at most
// one each, so that an entity's events go out one after the other while entities go in parallel.
//
// Its fields and methods are guarded by the worker's mu, not a lock of their own: what a lane
// delivers next is decided from its queue and its entity's park together (worker.next), and an
// event is queued in the same step that wakes a blocked head (route). wg is the exception.
type lanes struct {
	queues   map[string][]*item // entity -> events waiting, head first
	held     map[uint64]*item   // stream seq -> event, while it is ours to ack
	running  map[string]bool    // entities whose lane goroutine runs
	stopping bool               // set once at shutdown: nothing is taken on, no lane started
	wg       sync.WaitGroup     // the lane goroutines; no Add once stopping
}

// item is one event held by a lane.
type item struct {
	seq       uint64
	msg       jetstream.Msg // latest handle; a redelivery replaces it (guarded by worker.mu)
	subject   string
	body      []byte
	header    nats.Header // as published: the trace context rides here
	env       subjects.Envelope
	published time.Time

	parkSeq uint64 // a parked event: its sequence in the park (seq stays the original's); 0 otherwise
	noPark  bool   // it cannot be parked (guarded by worker.mu)
}

func newLanes() *lanes {
	return &lanes{queues: make(map[string][]*item), held: make(map[uint64]*item), running: make(map[string]bool)}
}

// hold takes it on: held by its sequence and queued behind its entity's events. start reports
// that the entity's lane was idle and is now claimed: the caller starts it. Once stopping nothing
// is taken on (ok is false): the event stays unacknowledged for the next run.
func (l *lanes) hold(it *item) (ok, start bool) {
	if l.stopping {
		return false, false
	}
	l.held[it.seq] = it
	l.queues[it.env.Entity] = append(l.queues[it.env.Entity], it)
	return true, l.claim(it.env.Entity)
}

// claim marks entity's lane as running and counts it in wg, and reports whether the caller must
// start its goroutine: not when it runs already, nor once stopping.
func (l *lanes) claim(entity string) bool {
	if l.running[entity] || l.stopping {
		return false
	}
	l.running[entity] = true
	l.wg.Add(1)
	return true
}

// idle records that entity's lane ends: it found nothing to deliver. The next event claims it
// again.
func (l *lanes) idle(entity string) { delete(l.running, entity) }

// head is entity's first queued event, nil if none.
func (l *lanes) head(entity string) *item {
	if q := l.queues[entity]; len(q) > 0 {
		return q[0]
	}
	return nil
}

// queued is entity's queue, head first; the caller does not change it.
func (l *lanes) queued(entity string) []*item { return l.queues[entity] }

// done lets go of it, its entity's head, once it was delivered or dead-lettered.
func (l *lanes) done(it *item) {
	delete(l.held, it.seq)
	q := l.queues[it.env.Entity]
	if len(q) == 0 || q[0] != it {
		l.remove(it)
		return
	}
	if q = q[1:]; len(q) > 0 {
		l.queues[it.env.Entity] = q
	} else {
		delete(l.queues, it.env.Entity)
	}
}

// remove lets go of it wherever it stands in its queue (it was parked).
func (l *lanes) remove(it *item) {
	delete(l.held, it.seq)
	q := slices.DeleteFunc(l.queues[it.env.Entity], func(x *item) bool { return x == it })
	if len(q) > 0 {
		l.queues[it.env.Entity] = q
	} else {
		delete(l.queues, it.env.Entity)
	}
}

// lookup is the event held at seq.
func (l *lanes) lookup(seq uint64) (*item, bool) {
	it, ok := l.held[seq]
	return it, ok
}

// handles are the newest message handles of every event held.
func (l *lanes) handles() []jetstream.Msg {
	msgs := make([]jetstream.Msg, 0, len(l.held))
	for _, it := range l.held {
		msgs = append(msgs, it.msg)
	}
	return msgs
}

// stop takes nothing more on and starts no lane; wg.Wait then waits for those running.
func (l *lanes) stop() { l.stopping = true }

// runLane delivers an entity's events one after the other, in the order next gives, until there
// is nothing left to deliver. Its lane was claimed.
func (w *worker) runLane(ctx context.Context, entity string) {
	defer w.lanes.wg.Done()
	var done *item // delivered, still to be let go of: next does it under its lock
	for {
		it := w.next(ctx, entity, done)
		if it == nil {
			return // nothing left now, or shutting down
		}
		if !w.deliverItem(ctx, it) {
			return // shutting down: this event and the rest stay unacknowledged (or parked)
		}
		done = nil
		if it.parkSeq == 0 { // a parked one: finish took it out of the park
			done = it
		}
	}
}

// startLanes starts the goroutines of lanes claimed.
func (w *worker) startLanes(ctx context.Context, entities []string) {
	for _, entity := range entities {
		go w.runLane(ctx, entity)
	}
}

// handle is the newest message handle of it (a redelivery replaces it).
func (w *worker) handle(it *item) jetstream.Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return it.msg
}
