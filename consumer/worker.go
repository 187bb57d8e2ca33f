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

	"github.com/quaycast/quaycast/subjects"
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
	ep        atomic.Pointer[Endpoint]
	stream    jetstream.Stream
	park      jetstream.Stream // QUAYCAST_PARK, set when run starts
	openPark  func(context.Context) (jetstream.Stream, error)
	js        jetstream.JetStream
	deliver   Deliverer
	reg       *Registry
	checked   *checked                        // verdicts on recent events, shared with the other workers
	onDead    func(endpointID string)         // counts dead letters; may be nil
	onInvalid func(endpointID, reason string) // counts invalid events; may be nil
	log       zerolog.Logger
	o         Options

	mu          sync.Mutex
	queues      map[string][]*item   // entity -> events waiting, head first
	held        map[uint64]*item     // stream seq -> event, while it is ours to ack
	unconfirmed map[uint64]time.Time // acks sent and not yet confirmed by the server
	received    uint64               // the highest stream sequence routed
	delivered   *delivered           // what was delivered and acked: not to be sent again
	stopping    bool
	pausedUntil time.Time
	epoch       uint64       // the connection's reconnect count when this worker reset its consumer
	ackWarned   atomic.Int64 // when an unconfirmed ack was last logged, Unix seconds

	// Lanes and parks (park.go), guarded by mu.
	active         map[string]bool   // entities whose lane runs
	stuck          map[string]*stuck // entities blocked or parked
	routed         uint64            // the highest stream sequence route has seen, or where the reset restarted
	gated          int               // parks whose gate is not open yet
	lowestGate     uint64            // the lowest of those gates
	routedDelivery atomic.Uint64     // the consumer's delivery sequence of the last message routed (not under mu)

	abort <-chan struct{} // closed when the gateway lost its lease: stop without waiting for POSTs (nil: never)
	sem   chan struct{}   // bounds deliveries in flight across lanes
	stop  chan struct{}   // closed at shutdown: lanes stop waiting and leave the rest unacked
	lanes sync.WaitGroup
	acks  sync.WaitGroup // acks of copies, sent off the consumer's callback
}

// item is one event held by a lane.
type item struct {
	seq       uint64
	msg       jetstream.Msg // latest handle; a redelivery replaces it (guarded by worker.mu)
	subject   string
	body      []byte
	env       subjects.Envelope
	published time.Time

	parkSeq uint64 // a parked event: its sequence in the park (seq stays the original's); 0 otherwise
	noPark  bool   // it cannot be parked (guarded by worker.mu)
}

func newWorker(ep *Endpoint, m *Manager, done *delivered) *worker {
	w := &worker{
		stream: m.stream, js: m.js, deliver: m.deliver, reg: m.reg, checked: m.checked, onDead: m.onDead, onInvalid: m.onInvalid, o: m.o,
		log:         m.log.With().Str("endpoint_id", ep.ID).Logger(),
		queues:      make(map[string][]*item),
		held:        make(map[uint64]*item),
		active:      make(map[string]bool),
		stuck:       make(map[string]*stuck),
		unconfirmed: make(map[uint64]time.Time),
		delivered:   done,
		sem:         make(chan struct{}, m.o.MaxInFlight),
		stop:        make(chan struct{}),
		abort:       m.abort,
	}
	w.ep.Store(ep)
	w.openPark = m.parkStream
	return w
}

// run consumes until ctx ends, then shuts down in order: stop fetching, let deliveries in flight
// finish within ShutdownTimeout, leave everything else unacknowledged for redelivery.
func (w *worker) run(ctx context.Context) error {
	name := w.ep.Load().ConsumerName()
	w.epoch = w.js.Conn().Stats().Reconnects // before the reset: see onMessage
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := w.stream.Consumer(cctx, name)
	var start uint64 // the first sequence JetStream may send
	if err == nil && w.canReset() {
		// Start from the ack floor in stream order: without this, after a crash JetStream sends
		// new events first and the unacknowledged ones only when their AckWait runs out. A reset
		// that fails (a timeout under load) fails the run: the manager tries again.
		rr, rerr := w.stream.ResetConsumer(cctx, name)
		if rerr != nil {
			err = fmt.Errorf("reset consumer %s: %w", name, rerr)
		} else {
			start = rr.ResetSeq
			w.routedDelivery.Store(rr.Delivered.Consumer)
		}
	}
	if err == nil && start == 0 {
		start = cons.CachedInfo().AckFloor.Stream + 1
		w.routedDelivery.Store(cons.CachedInfo().Delivered.Consumer)
	}
	if err == nil {
		w.park, err = w.openPark(cctx)
	}
	cancel()
	if err == nil {
		err = w.loadParks(ctx, start)
	}
	if err != nil {
		return fmt.Errorf("open consumer %s: %w", name, err)
	}

	// Deliveries run on a context of their own, so that a shutdown signal does not abort a POST
	// half-way; it is cancelled only when ShutdownTimeout has passed.
	dctx, cancelDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliveries()

	cc, err := cons.Consume(func(msg jetstream.Msg) { w.onMessage(dctx, msg) },
		jetstream.PullMaxMessages(min(w.o.MaxAckPending, 256)),
		// Shorter pull requests than nats.go's 30 s: a consumer whose pulls the client lost
		// track of sat idle with events pending until the missed-heartbeat check (2 x expiry/2)
		// renewed them — 28 s in the bench. Shorter still costs idle CPU with thousands of
		// endpoints (heartbeats every expiry/2 each): 10 s is the compromise.
		jetstream.PullExpiry(10*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, nats.ErrConnectionClosed):
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				w.log.Debug().Err(err).Msg("consume: pull request renewed")
			default:
				w.log.Warn().Err(err).Msg("consume")
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", name, err)
	}
	w.log.Debug().Msg("consuming")
	defer w.startSweeper(ctx)() // events about to expire unfetched: see expiry.go
	w.startParked(dctx)

	tick := time.NewTicker(w.o.AckWait / 3)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			w.keepAlive()
			w.openGatesIfIdle(ctx, dctx, cons)
		}
	}

	cc.Stop()
	<-cc.Closed()
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	close(w.stop)

	finished := make(chan struct{})
	go func() { w.lanes.Wait(); close(finished) }()
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
	w.acks.Wait() // no Add after this: the consumer's callback has returned for good
	return nil
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

// onMessage routes one message to its entity's lane. It runs on the consumer's callback
// goroutine, so it never blocks on a delivery.
func (w *worker) onMessage(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without JetStream metadata")
		return
	}
	seq := meta.Sequence.Stream

	w.mu.Lock()
	if it, ok := w.held[seq]; ok { // a redelivery of what a lane holds: keep one copy, the newest handle
		it.msg = msg
		w.mu.Unlock()
		w.routedDelivery.Store(meta.Sequence.Consumer)
		return
	}
	stopping := w.stopping
	w.mu.Unlock()
	if stopping {
		return // left unacknowledged: redelivered to the next run
	}
	if w.js.Conn().Stats().Reconnects != w.epoch {
		// The connection broke since this worker reset its consumer: messages JetStream sent
		// meanwhile were lost and would come back only after later ones. Deliver nothing more;
		// the manager restarts this worker, which resets the consumer to its ack floor.
		return
	}
	w.route(ctx, msg, seq, meta.Timestamp)
	w.routedDelivery.Store(meta.Sequence.Consumer)
}

// route checks a new message and queues it on its entity's lane, starting the lane if it was
// idle; an invalid message is set aside.
func (w *worker) route(ctx context.Context, msg jetstream.Msg, seq uint64, published time.Time) {
	env, reason := w.check(msg, seq)
	if reason != "" {
		w.setAside(ctx, msg, seq, reason)
		w.routedTo(ctx, seq)
		return
	}
	// The park first: a drain marks an event delivered before it moves the park's start past it,
	// so one of the two checks catches a copy whatever the drain does in between.
	if w.inPark(env.Entity, seq) { // parked already: a copy of the original
		w.acks.Go(func() { w.ack(ctx, msg, seq) })
		w.routedTo(ctx, seq)
		return
	}
	if w.delivered.covers(env.Entity, seq) { // sent before: only JetStream does not know (a copy, a reset, a lost ack)
		w.acks.Go(func() { w.ackMsg(ctx, msg, seq, env) }) // not on the callback: it waits for the server
		w.routedTo(ctx, seq)
		return
	}
	it := &item{seq: seq, msg: msg, subject: msg.Subject(), body: msg.Data(), env: env, published: published}

	w.mu.Lock()
	if w.stopping { // checked under the lock that Wait's caller sets it with: no Add after Wait
		w.mu.Unlock()
		return // left unacknowledged: redelivered to the next run
	}
	w.received = max(w.received, seq)
	w.held[seq] = it
	w.queues[env.Entity] = append(w.queues[env.Entity], it)
	start := !w.active[env.Entity]
	if start {
		w.active[env.Entity] = true
		w.lanes.Add(1)
	}
	w.wakeLocked(env.Entity)
	gates := w.routedLocked(seq) // after it is queued: a park whose gate this opens comes after it
	w.mu.Unlock()
	if start {
		go w.runLane(ctx, env.Entity)
	}
	w.startLanes(ctx, gates)
}

// check parses and cross-checks a message, once per event however many endpoints get it;
// reason is empty when it can be delivered.
func (w *worker) check(msg eventMsg, seq uint64) (subjects.Envelope, string) {
	replayFor, _, _, _ := subjects.ParseAny(msg.Subject())
	if id := w.ep.Load().ID; replayFor != "" && replayFor != id {
		return subjects.Envelope{}, fmt.Sprintf("replay for endpoint %q reached endpoint %q", replayFor, id)
	}
	if v, ok := w.checked.get(seq); ok {
		return v.env, v.reason
	}
	env, reason := check(msg)
	env.Data = nil // the body travels as Delivery.Body
	w.checked.put(seq, verdict{env: env, reason: reason})
	return env, reason
}

// check parses and cross-checks a message; reason is empty when it can be delivered.
func check(msg eventMsg) (subjects.Envelope, string) {
	_, source, typ, err := subjects.ParseAny(msg.Subject())
	if err != nil {
		return subjects.Envelope{}, err.Error()
	}
	env, err := subjects.ParseEnvelope(msg.Data())
	if err != nil {
		return env, "envelope: " + err.Error()
	}
	if env.Type != typ || env.Source != source {
		return env, fmt.Sprintf("envelope source %q and type %q do not match subject %s", env.Source, env.Type, msg.Subject())
	}
	if h := msg.Headers().Get(subjects.HeaderEntity); h != "" && h != env.Entity {
		return env, fmt.Sprintf("%s header %q does not match envelope entity %q", subjects.HeaderEntity, h, env.Entity)
	}
	return env, ""
}

// maxInvalidCopy bounds the copy of an invalid event kept with its reason.
const maxInvalidCopy = 64 << 10

// setAside records an event that cannot be delivered in the invalid-events stream, with the
// reason, and terminates it. If the record cannot be written, the event stays unacknowledged and
// comes again.
func (w *worker) setAside(ctx context.Context, msg jetstream.Msg, seq uint64, reason string) {
	if !w.recordInvalid(ctx, msg, seq, "invalid-"+strconv.FormatUint(seq, 10), reason) {
		return
	}
	if err := msg.TermWithReason(reason); err != nil {
		w.log.Warn().Err(err).Uint64("seq", seq).Msg("terminate invalid event")
	}
}

// recordInvalid writes an event that cannot be delivered to the invalid-events stream, with the
// reason, and says so; false if it could not.
func (w *worker) recordInvalid(ctx context.Context, msg eventMsg, seq uint64, msgID, reason string) bool {
	rec := nats.NewMsg("quaycast.invalid.events")
	rec.Data = msg.Data()
	if len(rec.Data) > maxInvalidCopy { // an oversized event would not fit in a message again
		rec.Data = rec.Data[:maxInvalidCopy]
		rec.Header.Set("Quaycast-Truncated", strconv.Itoa(len(msg.Data())))
	}
	rec.Header.Set("Quaycast-Reason", reason)
	rec.Header.Set("Quaycast-Subject", msg.Subject())
	rec.Header.Set("Quaycast-Stream-Seq", strconv.FormatUint(seq, 10))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// One record per event (msgID), however many endpoints' consumers see it.
	if _, err := w.js.PublishMsg(pctx, rec, jetstream.WithMsgID(msgID)); err != nil {
		w.log.Error().Err(err).Uint64("seq", seq).Msg("record invalid event")
		return false
	}
	w.log.Warn().Uint64("seq", seq).Str("subject", msg.Subject()).Str("reason", reason).Msg("invalid event set aside")
	if w.onInvalid != nil {
		w.onInvalid(w.ep.Load().ID, reason)
	}
	return true
}

// runLane delivers an entity's events one after the other, in the order next gives, until there
// is nothing left to deliver.
func (w *worker) runLane(ctx context.Context, entity string) {
	defer w.lanes.Done()
	for {
		it := w.next(ctx, entity)
		if it == nil {
			return // nothing left now, or shutting down
		}
		if !w.deliverItem(ctx, it) {
			return // shutting down: this event and the rest stay unacknowledged (or parked)
		}
		if it.parkSeq != 0 {
			continue // finish took it out of the park
		}
		w.mu.Lock()
		delete(w.held, it.seq)
		if q := w.queues[entity][1:]; len(q) > 0 { // it was the head
			w.queues[entity] = q
		} else {
			delete(w.queues, entity)
		}
		w.mu.Unlock()
	}
}

// deliverItem attempts it until the receiver takes it (ack) or it is dead-lettered (record, then
// ack), and returns true; it returns false when the worker stops first, leaving it unacknowledged.
// Attempts are POSTs made: waits for an open breaker spend none.
func (w *worker) deliverItem(ctx context.Context, it *item) bool {
	d := &Delivery{Seq: it.seq, Subject: it.subject, Event: it.env, Body: it.body, Published: it.published,
		PreviousEventID: w.delivered.previous(it.env.Entity, it.seq)}
	// The budget spent before a worker restart, a reconnect or a gateway restart counts.
	attempts, first := w.delivered.retryState(it.env.Entity, it.seq)
	var out Outcome
	for {
		select {
		case w.sem <- struct{}{}:
		case <-w.stop:
			return false
		}
		select { // select picks at random when both are ready: a stopping worker starts nothing new
		case <-w.stop:
			<-w.sem
			return false
		default:
		}
		if w.expiring(it) { // before it leaves the stream undelivered: see expiry.go
			<-w.sem
			return w.expire(ctx, it, attempts, first, out)
		}
		d.Endpoint, d.Attempt = w.ep.Load(), attempts+1
		start := time.Now()
		out = w.deliver.Deliver(ctx, d)
		<-w.sem
		switch out.Result {
		case BreakerOpen: // no POST: no attempt spent
		case Delivered: // done: the mark that follows replaces any retry state
			attempts++
		default:
			attempts, first = w.delivered.attempted(it.env.Entity, it.seq, start)
		}
		log := w.log.Debug().Str("event_id", it.env.ID).Str("entity", it.env.Entity).Int("attempt", attempts).
			Int("status", out.Status).AnErr("err", out.Err).Dur("duration_ms", time.Since(start))

		var wait time.Duration
		switch out.Result {
		case Delivered:
			log.Msg("delivered")
			w.finish(ctx, it)
			w.resume(ctx)
			return true
		case Permanent:
			log.Msg("refused")
			return w.deadLetter(ctx, it, attempts, first, out, fmt.Sprintf("receiver refused the event (status %d)", out.Status))
		case Gone:
			log.Msg("gone")
			if w.disable(ctx, fmt.Sprintf("receiver answered %d Gone at %s", out.Status, start.UTC().Format(time.RFC3339))) {
				<-w.stop // the manager stops this worker; the event stays for when it is enabled again
				return false
			}
			wait = w.backoff(attempts, 0)
		case BreakerOpen:
			wait = max(out.RetryAfter, 100*time.Millisecond)
			w.pause(ctx, wait)
		default:
			if w.o.MaxAttempts > 0 && attempts >= w.o.MaxAttempts {
				return w.deadLetter(ctx, it, attempts, first, out, fmt.Sprintf("no success in %d attempts", attempts))
			}
			if time.Since(first) >= w.o.MaxRetryAge {
				return w.deadLetter(ctx, it, attempts, first, out, fmt.Sprintf("no success within %s of the first attempt", w.o.MaxRetryAge))
			}
			wait = w.backoff(attempts, out.RetryAfter)
			log.Dur("retry_in", wait).Msg("delivery failed")
			if !w.blockedWait(ctx, it, w.capWait(it, wait), attempts) { // parks what queues behind it meanwhile
				return false
			}
			continue
		}
		select {
		case <-time.After(w.capWait(it, wait)):
		case <-w.stop:
			return false
		}
	}
}

// handle is the newest message handle of it (a redelivery replaces it).
func (w *worker) handle(it *item) jetstream.Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return it.msg
}

// deadLetter records it in the dead-letter stream, then acks it so its entity moves on. Until the
// record is stored the event is not acked; it returns false only if the worker stops first.
func (w *worker) deadLetter(ctx context.Context, it *item, attempts int, first time.Time, out Outcome, reason string) bool {
	dl := DeadLetter{
		EndpointID: w.ep.Load().ID, EventID: it.env.ID, EventSeq: it.seq, Subject: it.subject, Entity: it.env.Entity,
		Attempts: attempts, LastStatus: out.Status, Reason: reason, FirstAttempt: first, Body: it.body,
	}
	if out.Err != nil {
		dl.LastError = out.Err.Error()
	}
	msgID := deadMsgID(dl)
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.js.PublishMsg(pctx, newDeadMsg(dl), jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			break
		}
		w.log.Error().Err(err).Str("event_id", it.env.ID).Msg("record dead letter: will retry")
		select {
		case <-time.After(wait):
		case <-w.stop:
			return false
		}
	}
	w.log.Warn().Str("event_id", it.env.ID).Str("entity", it.env.Entity).Int("attempt", attempts).
		Int("status", out.Status).Str("reason", reason).Msg("dead-lettered")
	if w.onDead != nil {
		w.onDead(dl.EndpointID)
	}
	w.finish(ctx, it)
	return true
}

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
	w.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.stream.PauseConsumer(pctx, w.ep.Load().ConsumerName(), until); err != nil {
		w.log.Warn().Err(err).Msg("pause consumer")
	}
}

// resume lifts a pause at once when the endpoint takes events again (its probe went through),
// rather than when the pause would have ended.
func (w *worker) resume(ctx context.Context) {
	w.mu.Lock()
	paused := time.Now().Before(w.pausedUntil)
	w.pausedUntil = time.Time{}
	w.mu.Unlock()
	if !paused {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.stream.ResumeConsumer(rctx, w.ep.Load().ConsumerName()); err != nil {
		w.log.Warn().Err(err).Msg("resume consumer")
	}
}

// disable switches the endpoint off in the registry, saying why.
func (w *worker) disable(ctx context.Context, reason string) bool {
	id := w.ep.Load().ID
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.reg.Update(uctx, id, func(e *Endpoint) error {
		e.Enabled, e.DisabledReason = false, reason
		return nil
	})
	if err != nil {
		w.log.Error().Err(err).Msg("disable endpoint")
		return false
	}
	w.log.Warn().Str("reason", reason).Msg("endpoint disabled")
	return true
}

// backoff is the wait before the attempt after `attempt`: the schedule with ±20 % jitter, so
// that many endpoints failing together do not retry in step, or the receiver's Retry-After.
func (w *worker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, 24*time.Hour)
	}
	s := w.o.RetrySchedule
	base := s[min(attempt-1, len(s)-1)]
	return time.Duration(float64(base) * (0.8 + 0.4*rand.Float64()))
}

// ackMsg remembers the event as delivered — if it comes again (a copy, a reset, a lost ack) it is
// acked without being sent again — then acknowledges it and waits for the server's confirmation.
func (w *worker) ackMsg(ctx context.Context, msg jetstream.Msg, seq uint64, env subjects.Envelope) {
	w.delivered.add(env.Entity, seq, env.ID)
	w.ack(ctx, msg, seq)
}

// ack acknowledges an event and waits for the server's confirmation.
func (w *worker) ack(ctx context.Context, msg jetstream.Msg, seq uint64) {
	w.mu.Lock()
	w.unconfirmed[seq] = time.Now()
	w.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := msg.DoubleAck(actx)
	if err == nil { // an unconfirmed one stays, holding the floor down, until keepAlive forgets it
		w.mu.Lock()
		delete(w.unconfirmed, seq)
		w.mu.Unlock()
	}
	if err != nil {
		// Under overload this can happen for every event: say it once a minute per endpoint.
		if now := time.Now().Unix(); now-w.ackWarned.Load() >= 60 {
			w.ackWarned.Store(now)
			w.log.Warn().Err(err).Uint64("seq", seq).Msg("acks not confirmed (the event is not sent again if it comes back; more may follow)")
		}
	}
}

// keepAlive tells JetStream that every event we hold is still being worked on, so that it does
// not redeliver it behind later events of its entity while a lane retries or waits.
func (w *worker) keepAlive() {
	w.mu.Lock()
	msgs := make([]jetstream.Msg, 0, len(w.held))
	for _, it := range w.held {
		msgs = append(msgs, it.msg)
	}
	for seq, at := range w.unconfirmed {
		if time.Since(at) > 10*w.o.AckWait { // JetStream redelivered it long since: acked again
			delete(w.unconfirmed, seq)
		}
	}
	w.mu.Unlock()
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			w.log.Debug().Err(err).Msg("keep alive")
		}
	}
}
