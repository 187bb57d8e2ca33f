package consumer

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// lanes are one worker's per-entity FIFOs: the events each entity has waiting, head first, in
// stream order, and which entities have their lane goroutine running — at most one each, so that an entity's events go out one after the other while entities go in parallel.
//
// The queues are split into shards by entity, each under a lock of its own: route queues an event
// and a lane takes its next under its entity's shard only, so that neither waits on the other
// lanes (one lock for all was most of an event's dispatch at 64 entities on two cores). Which
// goroutines deliver — active, ready, parked — is decided under mu, when a lane starts or ends or
// waits (and before each POST while a goroutine waits for a place), not for every event. Lock
// order: the worker's mu, then a shard's, then mu.
//
// Route and the lanes run on different cores: what both write is on cache lines apart from what
// they only read (TestLanesLayout).
type lanes struct {
	seed     maphash.Seed
	maxRun   int         // the events a lane takes at most in one run (runLength)
	stopping atomic.Bool // set once at shutdown, under mu: nothing is taken on, no lane started
	handoff  chan *lane  // a claimed lane for a parked goroutine, nil to end one (retire, stop)
	budget   *laneBudget // shared by the manager's workers; nil: no bound beyond maxActive
	_        [24]byte    // the shards start a cache line
	shards   [laneShards]laneShard

	// waiters is len(turns), read before every POST without the lock: on a line of its own,
	// written only as turns come and go.
	waiters atomic.Int32
	_       [60]byte

	// Guarded by mu, on the line of its own that a lane's start and end take.
	//
	// At most maxActive lane goroutines deliver at once — the endpoint's bound on POSTs in
	// flight (MaxInFlight); a lane claimed beyond that waits in ready, and a goroutine whose
	// entity has nothing left takes the oldest ready lane. A goroutine per entity blocked on the
	// bound was most of an event's dispatch, and their number rose and fell with latency; a slot
	// taken and given for every POST was a line both cores wrote twice an event. A lane waiting
	// out a retry is not active: the others go on meanwhile. Back from its wait it waits its turn
	// for a place (turns, first come first served, ahead of the ready lanes: pass), and while a turn
	// waits, a goroutine between two POSTs gives its place to it and waits behind (yield): a
	// backlog does not keep its places for as long as it lasts.
	//
	// A goroutine whose lane ends waits for the next lane claimed (it is parked) rather than
	// ending: one started and ended per lane made the endpoint's goroutines rise and fall with
	// latency, and paid a start and a stack growth each time. At most maxActive wait, within the
	// manager's budget; those no claim needed for laneLinger end (retire), and all end when the
	// lanes stop.
	mu        sync.Mutex
	active    int
	maxActive int
	ready     []*lane
	parked    int             // goroutines waiting on handoff, less the lanes handed to them and not yet taken
	fewest    int             // the fewest parked since the last retire: that many were not needed
	turns     []chan struct{} // goroutines waiting for a place, oldest first; closed to give it

	retired time.Time      // the last retire; guarded by mu
	sending atomic.Int32   // lanes handed to parked goroutines, not yet sent on handoff (launch)
	wg      sync.WaitGroup // the lane goroutines; no Add once stopping
}

// laneShards is how many shards the lanes are split into: enough that the lanes running at once
// on a few cores seldom share one.
const laneShards = 16

// laneShard holds the lanes of the entities that hash to it. Its map is made on first use: a
// worker of an endpoint with few entities touches few shards.
//
// A lane that ends stays in the map, idle, for its entity's next event: a delete and an insert
// for every event whose entity had nothing else queued were a tenth of its dispatch. When a new
// entity comes with more than maxIdle idle lanes in the shard, they all go (sweep), some kept for
// reuse: only route, which inserts, writes the map, so that its cache lines stay on its core.
type laneShard struct {
	mu    sync.Mutex
	lanes map[string]*lane // entities with events queued, or whose lane runs, or idle
	idleN int              // lanes in the map that neither run nor hold anything
	spare []*lane          // lanes swept, kept to be used again with their queue's array
	_     [16]byte         // a cache line each: shards taken on two cores do not share one
}

// lane is one entity's: the events it has waiting, and whether its goroutine runs. One map entry
// per entity, and a queue that keeps its array while it is emptied and filled again: a lookup
// per event, and an allocation per lane started rather than per event. A running lane is handed
// to its goroutine as it is, which needs no lookup then: it is not dropped while it runs.
type lane struct {
	entity  string
	q       []*item // q[first:] are waiting, head first, in stream order
	first   int
	running bool // on a goroutine, or ready for one
	idle    bool // neither running nor holding anything: counted in its shard's idleN
	// handed is the event that claimed the lane when its queue had nothing else: set by hold, and
	// taken by the lane's goroutine as it starts, without the shard's lock (handed).
	handed *item
}

// maxIdle bounds the idle lanes a shard keeps once a new entity comes (512 a worker, ~64 KiB);
// until then those that ended stay, as many as ran. maxSpare is the lanes it keeps for reuse once
// swept, and maxSpareQueue the array an idle or spare lane keeps.
const (
	maxIdle       = 32
	maxSpare      = 32
	maxSpareQueue = 64
)

// laneBudget bounds the lane goroutines parked across all endpoints: thousands of endpoints
// woken at once would otherwise each keep a few (55,000 goroutines at 10,000 endpoints).
type laneBudget struct{ parked atomic.Int64 }

// maxParkedLanes is the manager's budget: a few busy endpoints' worth at the default MaxInFlight,
// about 32 MiB of stacks at most.
const maxParkedLanes = 4096

// take counts one more goroutine parked, if the budget allows.
func (b *laneBudget) take() bool {
	if b == nil {
		return true
	}
	if b.parked.Add(1) > maxParkedLanes {
		b.parked.Add(-1)
		return false
	}
	return true
}

// give counts n parked goroutines fewer.
func (b *laneBudget) give(n int) {
	if b != nil {
		b.parked.Add(-int64(n))
	}
}

// laneLinger is how long a parked lane goroutine no claim needed waits before it ends: a
// minute or two, so that their number follows the endpoint's busiest moment of the last minutes.
const laneLinger = time.Minute

// item is one event held by a lane.
type item struct {
	seq       uint64
	msg       jetstream.Msg // latest handle; a redelivery replaces it (guarded by its shard's mu)
	subject   string
	body      []byte
	header    nats.Header        // as published: the trace context rides here
	env       *subjects.Envelope // the checked verdict's, never changed: an item fits two cache lines
	published time.Time

	parkSeq uint64 // a parked event: its sequence in the park (seq stays the original's); 0 otherwise
	noPark  bool   // it cannot be parked (guarded by worker.mu)
}

// items are used again once let go of: an event's one allocation was a fifth of its dispatch,
// with the collections it brought. Only an item let go of is put back (next, settle): one
// parked or read from the park is left to the collector.
var items = sync.Pool{New: func() any { return new(item) }}

// newItem is an empty item.
func newItem() *item { return items.Get().(*item) }

// release puts it back for another event, emptied: nothing it held is kept alive meanwhile. The
// caller holds the only reference left.
func (it *item) release() {
	*it = item{}
	items.Put(it)
}

func newLanes(maxActive int, budget *laneBudget) *lanes {
	maxActive = max(maxActive, 1)
	return &lanes{seed: maphash.MakeSeed(), maxRun: 1, maxActive: maxActive, handoff: make(chan *lane, maxActive), budget: budget}
}

// shard is where entity's lane is kept.
func (l *lanes) shard(entity string) *laneShard {
	return &l.shards[maphash.String(l.seed, entity)%laneShards]
}

// hold takes it on: queued behind its entity's events. It returns the entity's lane if that was
// idle and is now marked running: the caller then schedules it (lanes.schedule). The caller holds
// sh.mu.
func (sh *laneShard) hold(it *item) (claimed *lane) {
	ln := sh.lane(it.env.Entity)
	ln.q = append(ln.q, it)
	if ln.running {
		return nil
	}
	ln.running = true
	if len(ln.q)-ln.first == 1 {
		ln.handed = it
	}
	return ln
}

// lane is entity's lane, made (or reused) if it has none. The caller holds sh.mu.
func (sh *laneShard) lane(entity string) *lane {
	if ln := sh.lanes[entity]; ln != nil {
		if ln.idle {
			ln.idle = false
			sh.idleN--
		}
		return ln
	}
	if sh.lanes == nil {
		sh.lanes = make(map[string]*lane)
	}
	if sh.idleN > maxIdle {
		sh.sweep()
	}
	var ln *lane
	if n := len(sh.spare); n > 0 {
		ln, sh.spare[n-1] = sh.spare[n-1], nil
		sh.spare = sh.spare[:n-1]
	} else {
		ln = &lane{}
	}
	ln.entity = entity
	sh.lanes[entity] = ln
	return ln
}

// claim marks entity's lane as running and returns it, unless it runs already. The caller holds
// sh.mu.
func (sh *laneShard) claim(entity string) *lane {
	ln := sh.lane(entity)
	if ln.running {
		return nil
	}
	ln.running = true
	return ln
}

// idle marks ln, running, as not running (it found nothing to deliver): the next event claims
// it again. The caller holds sh.mu.
func (sh *laneShard) idle(ln *lane) {
	ln.running = false
	sh.drop(ln)
}

// drop notes that a lane is idle once it has nothing queued and does not run: the next new
// entity in the shard sweeps it away if more than maxIdle are (lane).
func (sh *laneShard) drop(ln *lane) {
	if ln.running || ln.first < len(ln.q) || ln.idle {
		return
	}
	ln.idle = true
	ln.q, ln.first = ln.q[:0], 0 // a queue parks left may end past its first
	if cap(ln.q) > maxSpareQueue {
		ln.q = nil
	}
	sh.idleN++
}

// sweep forgets the idle lanes, keeping a few for reuse.
func (sh *laneShard) sweep() {
	for entity, ln := range sh.lanes {
		if !ln.idle {
			continue
		}
		delete(sh.lanes, entity)
		if len(sh.spare) < maxSpare {
			*ln = lane{q: ln.q[:0]}
			sh.spare = append(sh.spare, ln)
		}
	}
	sh.idleN = 0
}

// head is ln's first queued event, nil if none. The caller holds sh.mu.
func (ln *lane) head() *item {
	if ln.first < len(ln.q) {
		return ln.q[ln.first]
	}
	return nil
}

// run appends ln's first events queued, up to n, to run. The caller holds sh.mu.
func (ln *lane) run(run []*item, n int) []*item {
	q := ln.q[ln.first:]
	return append(run, q[:min(len(q), max(n, 1))]...)
}

// runLength bounds the events a lane takes in one run: those it delivered are let go of, and
// acked, when the run ends (or before the lane waits: settle), so a run holds places of the
// endpoint's MaxAckPending that acks would have freed one by one — an eighth of them at most per
// lane, lest a few busy entities keep JetStream from sending meanwhile.
func runLength(maxAckPending int) int { return min(max(maxAckPending/8, 1), 16) }

// queued is entity's queue, head first; the caller holds sh.mu and does not change it.
func (sh *laneShard) queued(entity string) []*item {
	if ln := sh.lanes[entity]; ln != nil {
		return ln.q[ln.first:]
	}
	return nil
}

// lookup is the event of entity queued at seq. The queue is in stream order, and a copy of an
// event comes seldom (keepAlive holds it): a scan from the newest end.
func (sh *laneShard) lookup(entity string, seq uint64) (*item, bool) {
	ln := sh.lanes[entity]
	if ln == nil {
		return nil, false
	}
	for i := len(ln.q) - 1; i >= ln.first; i-- {
		if ln.q[i].seq == seq {
			return ln.q[i], true
		}
	}
	return nil, false
}

// done lets go of it, the head of ln (its entity's), once it was delivered or dead-lettered.
// The caller holds sh.mu.
func (sh *laneShard) done(ln *lane, it *item) {
	if ln.first == len(ln.q) || ln.q[ln.first] != it {
		sh.remove(it)
		return
	}
	ln.q[ln.first] = nil
	ln.first++
	if ln.first == len(ln.q) {
		ln.q, ln.first = ln.q[:0], 0
	}
	sh.drop(ln)
}

// remove lets go of it wherever it stands in its queue (it was parked). The caller holds sh.mu.
func (sh *laneShard) remove(it *item) {
	ln := sh.lanes[it.env.Entity]
	if ln == nil {
		return
	}
	ln.q = append(ln.q[:ln.first], slices.DeleteFunc(ln.q[ln.first:], func(x *item) bool { return x == it })...)
	sh.drop(ln)
}

// claim marks entity's lane as running and says how it gets a goroutine (launch): none when it
// runs already, once stopping, or when maxActive goroutines deliver already — it is then ready,
// for the first of them that is free. The caller launches it.
func (l *lanes) claim(entity string) launch {
	if l.stopping.Load() {
		return launch{}
	}
	sh := l.shard(entity)
	sh.mu.Lock()
	claimed := sh.claim(entity)
	sh.mu.Unlock()
	if claimed == nil {
		return launch{}
	}
	return l.schedule(claimed)
}

// schedule has ln, just marked running, delivered: by a goroutine parked or started for it, or,
// with maxActive delivering, ready for the first that is free. Once stopping it does nothing.
// The caller launches it.
func (l *lanes) schedule(ln *lane) launch {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping.Load() {
		return launch{}
	}
	if l.active >= l.maxActive {
		l.ready = append(l.ready, ln)
		return launch{}
	}
	return l.activate(ln)
}

// launch is a lane given a goroutine under mu, and which: one parked, set aside for it (it is
// sent on handoff), or one to start (counted in wg). The worker launches it once the locks are
// let go of (worker.launch): the send, which wakes the goroutine, was most of the time the lock
// was held, with every lane that ended waiting on it.
type launch struct {
	ln     *lane
	parked bool
}

// activate counts ln, claimed, as active and gives it a goroutine: one parked if any, else a new
// one. The caller holds mu.
func (l *lanes) activate(ln *lane) launch {
	l.active++
	if l.parked > 0 {
		l.parked--
		l.budget.give(1)
		l.fewest = min(l.fewest, l.parked)
		l.sending.Add(1)
		return launch{ln: ln, parked: true}
	}
	l.wg.Add(1)
	return launch{ln: ln}
}

// idle records that a lane ended — it found nothing to deliver and is no longer marked running in
// its shard; the next event claims it again. Its goroutine goes on with the oldest ready lane
// (next), or parks to wait for a claim (park), or ends (neither).
func (l *lanes) idle() (next *lane, park bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.pass() {
		if next := l.takeReady(); next != nil {
			return next, false
		}
		l.active--
	}
	// A place on handoff for every goroutine parked and every lane handed: sends never block.
	if l.stopping.Load() || l.parked+len(l.handoff)+int(l.sending.Load()) >= cap(l.handoff) || !l.budget.take() {
		return nil, false
	}
	l.parked++
	return nil, true
}

// retire ends the parked goroutines that no claim needed since the last retire, at most once a
// laneLinger.
func (l *lanes) retire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping.Load() || now.Sub(l.retired) < laneLinger {
		return
	}
	l.retired = now
	l.budget.give(l.fewest)
	for ; l.fewest > 0; l.fewest-- {
		l.parked--
		l.handoff <- nil
	}
	l.fewest = l.parked
}

// takeReady takes the oldest ready lane, unless stopping: nil if none. The caller holds mu.
func (l *lanes) takeReady() *lane {
	if len(l.ready) == 0 || l.stopping.Load() {
		return nil
	}
	next := l.ready[0]
	l.ready[0] = nil
	l.ready = l.ready[1:]
	return next
}

// waiting notes that a lane's goroutine waits out a retry: its place goes to the goroutine whose
// turn waits longest, or the oldest ready lane is to start in it (the caller launches it).
func (l *lanes) waiting() launch {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pass() {
		return launch{}
	}
	l.active--
	if start := l.takeReady(); start != nil {
		return l.activate(start)
	}
	return launch{}
}

// resumed counts a lane's goroutine as active again after its wait: at once if a place is free
// and no turn waits, else once a place is given to its turn. false if stop comes first.
func (l *lanes) resumed(stop <-chan struct{}) bool {
	l.mu.Lock()
	if l.active < l.maxActive && len(l.turns) == 0 {
		l.active++
		l.mu.Unlock()
		return true
	}
	return l.await(stop)
}

// yield gives the caller's place to the turn that waits longest, if any, and waits for its own
// behind it: false if stop comes first. A goroutine given its place back POSTs before it yields
// again, so that two goroutines do not hand a place back and forth without one.
func (l *lanes) yield(stop <-chan struct{}) bool {
	l.mu.Lock()
	if !l.pass() {
		l.mu.Unlock()
		return true
	}
	return l.await(stop)
}

// pass hands a place given up to the turn that waits longest, if any: it stays counted in
// active. The caller holds mu.
func (l *lanes) pass() bool {
	if len(l.turns) == 0 {
		return false
	}
	close(l.turns[0])
	l.turns[0] = nil
	l.turns = l.turns[1:]
	l.waiters.Store(int32(len(l.turns)))
	return true
}

// await queues a turn behind the others and waits for a place given to it; false if stop comes
// first (a place given as stop came is handed on). The caller holds mu, which await lets go of.
func (l *lanes) await(stop <-chan struct{}) bool {
	turn := make(chan struct{})
	l.turns = append(l.turns, turn)
	l.waiters.Store(int32(len(l.turns)))
	l.mu.Unlock()
	select {
	case <-turn:
		return true
	case <-stop:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.turns, turn); i >= 0 {
		l.turns = slices.Delete(l.turns, i, i+1)
		l.waiters.Store(int32(len(l.turns)))
	} else if !l.pass() {
		l.active--
	}
	return false
}

// lookup is the event of entity held at seq.
func (l *lanes) lookup(entity string, seq uint64) (*item, bool) {
	sh := l.shard(entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.lookup(entity, seq)
}

// handles are the newest message handles of every event held.
func (l *lanes) handles() []jetstream.Msg {
	var msgs []jetstream.Msg
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for _, ln := range sh.lanes {
			for _, it := range ln.q[ln.first:] {
				msgs = append(msgs, it.msg)
			}
		}
		sh.mu.Unlock()
	}
	return msgs
}

// busy reports whether any event is held or any lane runs.
func (l *lanes) busy() bool {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n := len(sh.lanes) - sh.idleN
		sh.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// stop takes nothing more on, starts no lane and ends the parked goroutines; wg.Wait then waits
// for those running. handoff stays open: lanes handed before may still be on their way to it.
func (l *lanes) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopping.Load() {
		l.stopping.Store(true)
		l.budget.give(l.parked)
		for ; l.parked > 0; l.parked-- {
			l.handoff <- nil // never blocks: a place for every goroutine parked (idle)
		}
	}
}

// runLane delivers an entity's events one after the other, in the order next gives, until there
// is nothing left to deliver; then the events of the oldest ready lane, or of the next lane
// claimed, and so on. ln was claimed.
func (w *worker) runLane(ctx context.Context, ln *lane) {
	defer w.lanes.wg.Done()
	var run []*item
	var held delivered // let go of by next, under the lock it takes anyway, or by settle
	d := new(Delivery) // each attempt's, filled anew: the receiver's side keeps none
	for {
		var ready *lane
		var park bool
		if it := w.handed(ln); it != nil {
			run = append(run[:0], it)
		} else {
			run, ready, park = w.next(ctx, ln, held.done, run[:0])
			held.done = held.done[:0]
		}
		if len(run) == 0 {
			if park {
				*d = Delivery{}           // what the last event held is not kept alive while parked
				ready = <-w.lanes.handoff // nil once retired or stopped
			}
			if ready == nil {
				return // nothing left, or shutting down
			}
			ln = ready
			continue
		}
		held.ln = ln
		for _, it := range run {
			if !w.deliverItem(ctx, it, d, &held) {
				w.settle(&held)
				return // shutting down: this event and the rest stay unacknowledged (or parked)
			}
			if it.parkSeq == 0 { // a parked one: finish took it out of the park
				held.done = append(held.done, it)
			}
			if w.stuckN.Load() > 0 { // the rest of the run may have been parked: next looks again
				break
			}
		}
		clear(run) // no item kept alive by the buffer
	}
}

// handed takes the event that claimed ln, just handed to this goroutine, if it may go at once:
// with nothing stuck it is the head (only the lane's own goroutine takes events off its queue),
// and next would give it as well, for the price of the shard's lock. nil otherwise, or if none
// was handed: next decides.
func (w *worker) handed(ln *lane) *item {
	it := ln.handed
	if it == nil {
		return nil
	}
	ln.handed = nil // the lane runs: hold does not write it until the lane is idle again
	if w.stuckN.Load() > 0 {
		return nil
	}
	return it
}

// delivered are the events of a lane's run it delivered and has not let go of yet: at the head
// of ln's queue, in order.
type delivered struct {
	ln    *lane
	done  []*item
	since time.Time // when the first of done was attempted
}

// runHold is how long a run holds the events it delivered before it lets go of them, and acks
// them, ahead of its next attempt (deliverItem): runs save locks when POSTs are quick; with a
// slow receiver a run of 16 would otherwise keep its acks for 16 POSTs.
const runHold = 5 * time.Millisecond

// settle lets go of the events held delivered, and acks them, now, as next does when the lane
// goes on: before a lane waits (a retry, a pause, the stop), so that they do not hold places of
// the endpoint's MaxAckPending meanwhile.
func (w *worker) settle(held *delivered) {
	if len(held.done) == 0 {
		return
	}
	sh := w.lanes.shard(held.ln.entity)
	sh.mu.Lock()
	sh.letGo(held.ln, held.done)
	sh.mu.Unlock()
	w.ackDone(held.done)
	clear(held.done)
	held.done = held.done[:0]
}

// letGo lets go of done, delivered at the head of ln's queue, in order. The caller holds sh.mu.
func (sh *laneShard) letGo(ln *lane, done []*item) {
	for _, it := range done {
		sh.done(ln, it)
	}
}

// ackDone acks events let go of and puts their items back: out of the queue, no copy renews
// their handle now.
func (w *worker) ackDone(done []*item) {
	for _, it := range done {
		w.ack(it.msg, it.seq)
		it.release()
	}
}

// launch gives ln its goroutine as the lanes decided (lanes.activate).
func (w *worker) launch(ctx context.Context, l launch) {
	switch {
	case l.ln == nil:
	case l.parked:
		w.lanes.handoff <- l.ln
		w.lanes.sending.Add(-1)
	default:
		go w.runLane(ctx, l.ln)
	}
}

// launchAll launches the lanes claimed.
func (w *worker) launchAll(ctx context.Context, ls []launch) {
	for _, l := range ls {
		w.launch(ctx, l)
	}
}

// handle is the newest message handle of it (a redelivery replaces it).
func (w *worker) handle(it *item) jetstream.Msg {
	sh := w.lanes.shard(it.env.Entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return it.msg
}
