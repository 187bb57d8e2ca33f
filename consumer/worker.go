package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/quaycast/quaycast/internal/backoff"
)

// worker delivers one endpoint's events: it consumes the endpoint's durable consumer and routes
// each event to the lane of its entity. A lane is a FIFO per entity served by one goroutine, so
// entities go out in parallel (up to MaxInFlight at once) and each entity strictly in stream
// order: the next event of an entity is not sent before the previous one was acknowledged.
//
// Order also holds across retries and restarts because nothing is ever Nak'ed: a failing head is
// held and retried by its lane, kept alive with InProgress so JetStream does not redeliver it
// behind later events, and a (re)started worker first resets the consumer to its ack floor, so
// what was unacknowledged comes again in stream order before anything newer. While a head waits
// for its next attempt, the events queued behind it are parked (park.go), so that they do not
// hold the endpoint's MaxAckPending and stall its other entities.
type worker struct {
	ep          atomic.Pointer[Endpoint]
	stream      jetstream.Stream
	park        jetstream.Stream // QUAYCAST_PARK, set when run starts
	openPark    func(context.Context) (jetstream.Stream, error)
	js          jetstream.JetStream
	deliver     Deliverer
	reg         *Registry
	checked     *checked                           // verdicts on recent events, shared with the other workers
	onDead      func(dl DeadLetter)                // counts dead letters; may be nil
	onDisabled  func(ep *Endpoint)                 // after quaycast disabled the endpoint; may be nil
	onInvalid   func(endpointID, reason string)    // counts invalid events; may be nil
	onCondition func(endpointID string, err error) // counts events the condition did not take; may be nil
	cond        atomic.Pointer[compiledCondition]  // the endpoint's condition, compiled (condition.go)
	condStats   *conditionStats
	log         zerolog.Logger
	ackLog      zerolog.Logger // log sampled to a line a minute: with the connection down every ack fails
	o           Options

	progress *progress   // what was delivered and acked: not to be sent again
	lanes    *lanes      // lanes.go
	paused   atomic.Bool // pausedUntil was set and not cleared: resume has something to lift

	// mu is taken by route and the lanes around parks, pauses and stops: on a cache line of its
	// own, so that its writes do not take the fields above and below, read for every event on
	// both cores, from either.
	_           [56]byte
	mu          sync.Mutex
	_           [56]byte
	pausedUntil time.Time
	// recovered is closed, and replaced, when the endpoint takes events again after its breaker
	// paused it: the lanes waiting out a retry step or the pause then try at once (blockedWait,
	// pauseWait).
	recovered chan struct{}

	// Parks (park.go), guarded by mu.
	stuck      map[string]*stuck // entities blocked or parked
	stuckN     atomic.Int32      // len(stuck), set under mu: route reads it without the lock
	gated      atomic.Int32      // parks whose gate is not open yet: set under mu, read without it by route
	lowestGate uint64            // the lowest of those gates

	// The connection as run found it before resetting the consumer (reconnect.go): set before
	// consuming, then read and written by onMessage only.
	reconnects *atomic.Uint64     // the manager's count of reconnects, moved by Reconnected
	epoch      uint64             // its value then
	lost       <-chan nats.Status // RECONNECTING since then
	broken     bool               // lost was seen
	// divert is closed when a delivery of the consumer went elsewhere (inSequence).
	diverted bool
	divert   chan struct{}
	idle     chan struct{} // the puller saw idleExpiries empty pull expiries in a row (sleep.go)
	awake    chan struct{} // the answer to idle when the worker stays awake: the puller asks again
	noOne    chan struct{} // the puller's requests found no consumer to answer them (gone.go)
	woken    *cleanSleep   // woken from a clean sleep: the consumer need not be reset (sleep.go)
	// noPullLeft: the run ended with none of its pull requests left at the server.
	noPullLeft bool
	opening    chan struct{} // the manager's bound on workers opening their consumer at once
	pulls      *pulls        // the manager's budget of pulled events, shared by the endpoints awake
	noParks    bool          // the endpoint is known to have nothing parked: loadParks need not read

	abort <-chan struct{} // closed when the gateway lost its lease: stop without waiting for POSTs (nil: never)
	lease Lease           // supervised: this gateway's right to act on the endpoint (nil: always)
	// limiter is the endpoint's tenant's share of POSTs (tenantrate.go); nil: none.
	limiter *rate.Limiter
	stop    chan struct{} // closed at shutdown: lanes stop waiting and leave the rest unacked

	pulled
}

// pulled is what onMessage writes for every message, on the pulling goroutine: on cache lines of
// its own, so that the lanes, which read the worker's other fields for every event on another
// core, do not lose them to each write (a third of route's time at 64 entities on two cores).
type pulled struct {
	_              [64]byte
	routed         atomic.Uint64 // the highest stream sequence route has seen, or where the reset restarted (set by route, or before it runs)
	routedDelivery atomic.Uint64 // the consumer's delivery sequence of the last message routed
	// caughtUp is the store time (unix ns) of the last message routed if the server had nothing
	// more for the consumer when it sent it (0 if it had), and caughtUpEp the definition it was
	// routed under: every event the consumer has not sent yet is younger (expiry.go).
	caughtUp   atomic.Int64
	caughtUpEp atomic.Pointer[Endpoint]
	received   uint64 // the consumer's deliveries as this run received them (inSequence); onMessage's only
	_          [64]byte
}

// newWorker makes a worker for ep; callers hold m.mu.
func newWorker(ep *Endpoint, m *Manager, p *progress) *worker {
	w := &worker{
		stream: m.stream, js: m.js, deliver: m.deliver, reg: m.reg, checked: m.checked, onDead: m.onDead, onDisabled: m.onDisabled, onInvalid: m.onInvalid, onCondition: m.onCondition, o: m.o,
		condStats: m.conditionStatsLocked(ep.ID),
		log:       m.log.With().Str("endpoint_id", ep.ID).Logger(),
		lanes:     newLanes(m.o.MaxInFlight, &m.parkedLanes),
		stuck:     make(map[string]*stuck),
		recovered: make(chan struct{}),
		progress:  p,
		stop:      make(chan struct{}),
		divert:    make(chan struct{}),
		idle:      make(chan struct{}, 1),
		awake:     make(chan struct{}, 1),
		noOne:     make(chan struct{}, 1),
		opening:   m.opening,
		abort:     m.abort,
		lease:     m.lease,
		limiter:   m.tenantLimiter(ep.Tenant),
	}
	w.lanes.maxRun = runLength(m.o.MaxAckPending)
	w.ackLog = w.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	w.reconnects = &m.reconnects
	w.pulls = &m.pulls
	w.ep.Store(ep)
	w.openPark = m.parkStream
	return w
}

// run consumes until ctx ends, then shuts down in order: stop fetching, let deliveries in flight
// finish within ShutdownTimeout, leave everything else unacknowledged for redelivery.
func (w *worker) run(ctx context.Context) error {
	ctx, end := context.WithCancel(ctx) // a diverted delivery ends the run as a shutdown does
	defer end()
	defer w.ended() // once the lanes have ended (below)
	name := w.ep.Load().ConsumerName()
	defer w.watchConnection()() // before the reset: see reconnect.go
	// A bounded number of workers open at once: a gateway that wakes thousands of endpoints
	// (sleep.go) would otherwise time its own JetStream API requests out.
	select {
	case w.opening <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	opened := false
	release := func() {
		if !opened {
			opened = true
			<-w.opening
		}
	}
	defer release()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var start uint64 // the first sequence JetStream may send
	var err error
	if c := w.woken; c != nil {
		start = c.ackFloor + 1
		w.routedDelivery.Store(c.delivered)
		w.received = c.delivered
	} else if w.canReset() {
		// Start from the ack floor in stream order: without this, after a crash JetStream sends
		// new events first and the unacknowledged ones only when their AckWait runs out. A reset
		// that fails (a timeout under load) fails the run: the manager tries again.
		rr, rerr := w.stream.ResetConsumer(cctx, name)
		switch {
		case rerr != nil && w.consumerGone(ctx, name):
			// The reset is answered by the consumer itself: with none, it only times out.
			err = fmt.Errorf("reset consumer %s: %w: %w", name, errConsumerGone, rerr)
		case rerr != nil:
			err = fmt.Errorf("reset consumer %s: %w", name, rerr)
		default:
			start = rr.ResetSeq
			w.routedDelivery.Store(rr.Delivered.Consumer)
			w.received = rr.Delivered.Consumer
		}
	}
	if err == nil && start == 0 {
		var cons jetstream.Consumer
		if cons, err = w.stream.Consumer(cctx, name); err == nil {
			start = cons.CachedInfo().AckFloor.Stream + 1
			w.routedDelivery.Store(cons.CachedInfo().Delivered.Consumer)
			w.received = cons.CachedInfo().Delivered.Consumer
		}
	}
	if err == nil {
		w.park, err = w.openPark(cctx)
	}
	cancel()
	if err == nil {
		err = w.loadParks(ctx, start)
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		err = fmt.Errorf("%w: %w", errConsumerGone, err)
	}
	if err != nil {
		return fmt.Errorf("open consumer %s: %w", name, err)
	}

	// Deliveries run on a context of their own, so that a shutdown signal does not abort a POST
	// half-way; it is cancelled only when ShutdownTimeout has passed.
	dctx, cancelDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliveries()

	stopPulling, err := w.startPulling(ctx, w.stream.CachedInfo().Config.Name, name, func(msg jetstream.Msg) { w.onMessage(dctx, msg) })
	if err != nil {
		return fmt.Errorf("consume %s: %w", name, err)
	}
	release()
	w.log.Debug().Msg("consuming")
	defer w.startSweeper(ctx)() // events about to expire unfetched: see expiry.go
	w.startParked(dctx)

	tick := time.NewTicker(w.o.AckWait / 3)
	defer tick.Stop()
	var result error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-w.divert:
			end()
			done, result = true, errDiverted
		case <-w.idle:
			if w.quiet() {
				end()
				done, result = true, errIdle
			} else {
				select { // the puller waits for it
				case w.awake <- struct{}{}:
				default:
				}
			}
		case <-w.noOne:
			if w.consumerGone(ctx, name) {
				end()
				done, result = true, errConsumerGone
			}
		case now := <-tick.C:
			w.keepAlive()
			w.lanes.retire(now)
			w.openGatesIfIdle(ctx, dctx, name)
		}
	}

	w.noPullLeft = stopPulling()
	w.lanes.stop()
	close(w.stop)

	finished := make(chan struct{})
	go func() { w.lanes.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.o.ShutdownTimeout):
		w.log.Warn().Dur("shutdown_timeout", w.o.ShutdownTimeout).Msg("deliveries still in flight at shutdown: cancelled, they will be redelivered")
		cancelDeliveries()
		<-finished
	case <-w.abort: // this gateway lost its lease: another may start on the endpoint soon
		cancelDeliveries()
		<-finished
	}
	return result
}

// ended notes that the worker's lanes have all ended: the marks they set for events route
// queued did not raise the progress's top (addRouted), and the next worker's route starts from the
// ack floor, below some of them.
func (w *worker) ended() { w.progress.raise(w.routed.Load()) }

// quiet reports whether the worker holds nothing: no event queued, in flight or retrying, no
// park, gate or pause. With its pull requests expiring empty, it may sleep (sleep.go).
func (w *worker) quiet() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.lanes.busy() && len(w.stuck) == 0 && w.gated.Load() == 0 && !time.Now().Before(w.pausedUntil)
}

// canReset reports whether the server has ResetConsumer (nats-server 2.14). Older servers do
// not answer the request at all, so this is decided from the version.
func (w *worker) canReset() bool {
	v := w.js.Conn().ConnectedServerVersion()
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil || ma > 2 || ma == 2 && mi >= 14 {
		return true // unknown: try, and let a failure fail the run
	}
	oldServerOnce.Do(func() {
		w.log.Error().Str("server_version", v).Msg("nats-server before 2.14 has no ResetConsumer: order per entity is not kept across gateway restarts and reconnects")
	})
	return false
}

var oldServerOnce sync.Once

// onMessage routes one message to its entity's lane. It runs on the pulling goroutine (pull.go),
// so it never blocks on a delivery.
func (w *worker) onMessage(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without JetStream metadata")
		return
	}
	seq := meta.Sequence.Stream
	if !w.inSequence(meta.Sequence.Consumer) {
		return // left unacknowledged: the restart sends it again, in order
	}

	if !w.sameConnection() {
		return // messages may have been lost since the reset: nothing more until the restart
	}
	renewed := w.route(ctx, msg, seq, meta.Timestamp)
	w.routedDelivery.Store(meta.Sequence.Consumer)
	if renewed {
		return
	}
	if meta.NumPending == 0 {
		w.caughtUpEp.Store(w.ep.Load())
		w.caughtUp.Store(meta.Timestamp.UnixNano())
	} else {
		w.caughtUp.Store(0)
	}
}

// route checks a new message and queues it on its entity's lane, starting the lane if it was
// idle; an invalid message is set aside. A redelivery of an event a lane holds only renews its
// handle (renewed): one copy is kept, acked through the newest handle.
func (w *worker) route(ctx context.Context, msg jetstream.Msg, seq uint64, published time.Time) (renewed bool) {
	env, reason := w.screen(ctx, msg, seq, published)
	if reason != "" {
		w.setAside(ctx, msg, seq, reason)
		w.routedTo(ctx, seq)
		return false
	}
	sh := w.lanes.shard(env.Entity)
	fresh := seq > w.routed.Load() // route has not seen it: no lane holds it (most events), and only top bounds its marks
	if !fresh {
		sh.mu.Lock()
		if it, ok := sh.lookup(env.Entity, seq); ok {
			it.msg = msg
			sh.mu.Unlock()
			return true
		}
		sh.mu.Unlock()
	}
	// The park first: a drain marks an event delivered before it moves the park's start past it,
	// so one of the two checks catches a copy whatever the drain does in between.
	if w.inPark(env.Entity, seq) { // parked already: a copy of the original
		w.ack(msg, seq)
		w.routedTo(ctx, seq)
		return false
	}
	if !(fresh && w.progress.above(seq)) && w.progress.covers(env.Entity, seq) { // sent before: only JetStream does not know (a copy, a reset, a lost ack)
		w.ackMsg(msg, seq, env.Entity, env.ID)
		w.routedTo(ctx, seq)
		return false
	}
	if !forTenant(w.ep.Load(), msg, env) || !w.takes(seq, env, msg.Data()) {
		w.skip(ctx, msg, seq)
		return false
	}
	if w.lanes.stopping.Load() {
		return false // left unacknowledged: redelivered to the next run
	}
	it := newItem()
	it.seq, it.msg, it.subject, it.body, it.header, it.env, it.published = seq, msg, msg.Subject(), msg.Data(), msg.Headers(), env, published

	sh.mu.Lock()
	claimed := sh.hold(it)
	sh.mu.Unlock()
	if claimed != nil {
		w.launch(ctx, w.lanes.schedule(claimed)) // none once stopping: no lane starts after wg.Wait
	}
	// The worker's lock only with something stuck: a blocked head is told that an event queued
	// behind it (only its own lane makes an entity stuck, and it looks at its queue after the
	// count is raised).
	if w.stuckN.Load() > 0 {
		w.mu.Lock()
		w.wakeLocked(env.Entity)
		w.mu.Unlock()
	}
	w.routedTo(ctx, seq) // after it is queued: a park whose gate this opens comes after it
	return false
}

// deliverItem attempts it until the receiver takes it (ack) or it is dead-lettered (record, then
// ack), and returns true; it returns false when the worker stops first, leaving it unacknowledged.
// Attempts are POSTs made: waits for an open breaker spend none. held are the events its lane's
// run delivered before it: settled when it is not delivered at once, or when they were held for
// runHold.
func (w *worker) deliverItem(ctx context.Context, it *item, d *Delivery, held *delivered) bool {
	// The budget spent before a worker restart, a reconnect or a gateway restart counts.
	previous, attempts, first := w.progress.headState(it.env.Entity, it.seq)
	*d = Delivery{Seq: it.seq, Subject: it.subject, Event: *it.env, Body: it.body, Header: it.header, Published: it.published,
		PreviousEventID: previous, Redelivery: isRedelivery(it.subject, it.header)}
	var out Outcome
	resumed := false // its place given back after a wait: it POSTs before it yields it
	for {
		if !resumed && w.lanes.waiters.Load() > 0 { // a lane back from a wait waits for a place
			w.settle(held)
			if !w.lanes.yield(w.stop) {
				return false
			}
		}
		resumed = false
		if !w.tenantWait(held) {
			return false
		}
		select { // a place taken as the worker stops: a stopping worker starts nothing new
		case <-w.stop:
			return false
		default:
		}
		if w.fenced() { // the manager stops this worker soon: another gateway owns the endpoint now
			<-w.stop
			return false
		}
		start := time.Now()
		if len(held.done) == 0 {
			held.since = start
		} else if start.Sub(held.since) >= runHold {
			w.settle(held)
			held.since = start
		}
		if w.expiring(it, start) { // before it leaves the stream undelivered: see expiry.go
			return w.expire(ctx, it, attempts, first, out)
		}
		d.Endpoint, d.Attempt = w.ep.Load(), attempts+1
		out = w.deliver.Deliver(ctx, d)
		if out.Result != Delivered {
			w.settle(held) // this one waits, or is dead-lettered: those before it are done
		}
		switch out.Result {
		case BreakerOpen: // no POST: no attempt spent
		case Delivered: // done: the mark that follows replaces any retry state
			attempts++
		default:
			attempts, first = w.progress.attempted(it.env.Entity, it.seq, start)
		}
		log := w.log.Debug()
		now := start // delivered and not logged: its mark needs only the second it was sent (a clock read is 5 % of a dispatch)
		if out.Result != Delivered || log.Enabled() {
			now = time.Now()
		}
		dec := decide(attempt{out: out, attempts: attempts, first: first, start: start, now: now, jitter: rand.Float64()}, &w.o)
		log = log.Str("event_id", it.env.ID).Str("entity", it.env.Entity).Int("attempt", attempts).
			Int("status", out.Status).AnErr("err", out.Err).Dur("duration_ms", now.Sub(start))

		switch dec.act {
		case actAck:
			log.Msg("delivered")
			w.finish(ctx, it, now)
			w.resume(ctx)
			return true
		case actDeadLetter:
			if out.Result == Permanent {
				log.Msg("refused")
			}
			return w.deadLetter(ctx, it, attempts, first, out, dec.reason)
		case actDisable:
			log.Msg("gone")
			if w.disable(ctx, dec.reason) {
				<-w.stop // the manager stops this worker; the event stays for when it is enabled again
				return false
			}
		case actPause:
			w.pause(ctx, dec.wait)
		case actRetry:
			log.Dur("retry_in", dec.wait).Msg("delivery failed")
			// It parks what queues behind it meanwhile. A wait the receiver asked for (Retry-After)
			// is kept; a step of the schedule ends when the endpoint recovers from an outage.
			if !w.blockedWait(ctx, it, w.capWait(it, dec.wait), dec.park, out.RetryAfter == 0) {
				return false
			}
			resumed = true
			continue
		}
		if !w.pauseWait(w.capWait(it, dec.wait)) {
			return false
		}
	}
}

// pauseWait waits d — the breaker open, or a disable that failed — or until the endpoint
// recovers (resume), in its place among the lanes that deliver: nothing is POSTed meanwhile but
// the breaker's probe, and giving the place up would start a lane for every entity with events
// held, each to wait the same. The lanes back from a retry wait at the recovery get a place as
// this one yields it before its next POST. false when the worker stops first.
func (w *worker) pauseWait(d time.Duration) bool {
	w.mu.Lock()
	recovered := w.recovered
	w.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-recovered:
	case <-w.stop:
		return false
	}
	return true
}

// jsRetry is the wait between tries of a JetStream read or write that keeps failing (a dead
// letter's record, a park, a worker's consumer): 1 s doubling to 30 s.
func jsRetry() backoff.Backoff { return backoff.Backoff{First: time.Second, Max: 30 * time.Second} }

// pause asks JetStream to stop delivering to this endpoint until the breaker lets a probe
// through: an open breaker fetches nothing more, and a paused consumer costs the server nothing.
// The pause ends by itself, also if this gateway dies meanwhile.
func (w *worker) pause(ctx context.Context, d time.Duration) {
	until := time.Now().Add(d)
	w.mu.Lock()
	if until.Before(w.pausedUntil.Add(time.Second)) {
		w.mu.Unlock()
		return
	}
	w.pausedUntil = until
	w.paused.Store(true)
	w.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.stream.PauseConsumer(pctx, w.ep.Load().ConsumerName(), until); err != nil {
		w.log.Warn().Err(err).Msg("pause consumer")
	}
}

// resume lifts a pause at once when the endpoint takes events again (its probe went through),
// rather than when the pause would have ended, and ends the retry waits of the lanes that failed
// during the outage: without it their entities waited out a step of the schedule (5 s, 30 s, ...)
// after the receiver was back, and the backlog drained at their pace.
func (w *worker) resume(ctx context.Context) {
	if !w.paused.Load() { // as good as the lock: a pause set meanwhile could as well come after it
		return
	}
	w.mu.Lock()
	paused := time.Now().Before(w.pausedUntil)
	w.pausedUntil = time.Time{}
	w.paused.Store(false)
	close(w.recovered) // once per outage: an entity that fails alone is not retried faster
	w.recovered = make(chan struct{})
	w.mu.Unlock()
	if !paused {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := endPause(rctx, w.stream, w.ep.Load().ConsumerName()); err != nil {
		w.log.Warn().Err(err).Msg("resume consumer")
	}
}

// endPause ends a consumer's pause so that the pull request waiting on it is served at once.
// ResumeConsumer does not do that: the server then leaves the request until something else wakes
// the consumer's delivery loop (a new event, a new request), and a backlog with nothing new
// published waited for the request's expiry — 6.3–6.6 s of nothing in every backlog run
// (bench/PERFORMANCE.md; TestUpstreamResumeLeavesPullWaiting in bench/). A pause that runs
// out does wake it, so the pause is moved to a moment from now. If the server reads the request
// after that moment, it sets no timer (the response says not paused) and a later one is tried.
func endPause(ctx context.Context, st jetstream.Stream, consumer string) error {
	for wait := 20 * time.Millisecond; wait <= 2*time.Second; wait *= 4 {
		resp, err := st.PauseConsumer(ctx, consumer, time.Now().Add(wait))
		if err != nil {
			return err
		}
		if resp.Paused {
			return nil
		}
	}
	_, err := st.ResumeConsumer(ctx, consumer) // the request's expiry renews it at worst
	return err
}

// fenced reports whether this gateway's lease ran out: another gateway may own the endpoint now,
// so the worker must act on nothing more — the manager stops it soon (Fence). A process frozen
// with its lanes mid-loop (SIGSTOP, a long pause) resumes here.
func (w *worker) fenced() bool { return w.lease != nil && !w.lease.Held() }

// disable switches the endpoint off in the registry, saying why.
func (w *worker) disable(ctx context.Context, reason string) bool {
	if w.fenced() {
		return false
	}
	id := w.ep.Load().ID
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ep, err := w.reg.Update(uctx, id, func(e *Endpoint) error {
		e.Enabled, e.DisabledReason = false, reason
		return nil
	})
	if err != nil {
		w.log.Error().Err(err).Msg("disable endpoint")
		return false
	}
	w.log.Warn().Str("reason", reason).Msg("endpoint disabled")
	if w.onDisabled != nil {
		w.onDisabled(ep)
	}
	return true
}

// ackMsg remembers the event as delivered — if it comes again (a copy, a reset, a lost ack) it is
// acked without being sent again — then acknowledges it.
func (w *worker) ackMsg(msg jetstream.Msg, seq uint64, entity, id string) {
	w.progress.add(entity, seq, id, time.Now())
	w.ack(msg, seq)
}

// ack acknowledges an event without waiting for the server's answer, so a lane goes on to its
// entity's next event at once. The guarantees do not rest on that answer: what was delivered is
// in the marks (or the park) before its ack is sent, and an event whose ack is lost comes back
// and is acked again without a POST. Waiting for it put every lane behind its ack's reply, which
// the server sends through the stream's one send queue, behind the events it sends to every
// consumer (the fan-out's ack timeouts). The connection's answer to a ping tells that the server
// reads the acks (Manager.watchAcks).
func (w *worker) ack(msg jetstream.Msg, seq uint64) {
	if err := msg.Ack(); err != nil {
		w.ackLog.Warn().Err(err).Uint64("seq", seq).Msg("ack not sent (the event is not sent again if it comes back; more may follow)")
	}
}

// keepAlive tells JetStream that every event we hold is still being worked on, so that it does
// not redeliver it behind later events of its entity while a lane retries or waits.
func (w *worker) keepAlive() {
	w.mu.Lock()
	msgs := w.lanes.handles()
	w.mu.Unlock()
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			w.log.Debug().Err(err).Msg("keep alive")
		}
	}
}
