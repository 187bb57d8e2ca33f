package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/subjects"
)

// The park: events of one (endpoint, entity) moved out of the endpoint's consumer while the
// entity's head fails and waits for its next attempt. Queued events count toward MaxAckPending,
// so without it one stuck entity would hold back every other entity of its endpoint; a Nak is no
// way out, since JetStream would send the Nak'ed event again after later ones. A parked event is
// a copy of the event in QUAYCAST_PARK on quaycast.park.<endpoint>.<entity> (both EncodeToken'd),
// with headers naming its original sequence, subject and publish time; the original is then acked.
//
// Order per entity, also across restarts: main events below the park's first original sequence
// (the head), then the park in order, then main events above its last. A main event within the
// park's range is a copy of a parked one (a lost ack, a reset): it is acked and dropped.
const (
	ParkStream   = "QUAYCAST_PARK"
	parkPrefix   = "quaycast.park."
	parkSubjects = parkPrefix + ">"
	hdrPublished = "Quaycast-Published"
)

// parkFilter catches every park of an endpoint.
func parkFilter(endpointID string) string {
	return parkPrefix + subjects.EncodeToken(endpointID) + ".>"
}

func parkSubject(endpointID, entity string) string {
	return parkPrefix + subjects.EncodeToken(endpointID) + "." + subjects.EncodeToken(entity)
}

// stuck is an entity whose head failed and waits for its next attempt (blocked), or that has
// events parked, or both. Guarded by worker.mu; the park itself is changed by the entity's lane only.
type stuck struct {
	since   time.Time     // when it got stuck: the first failure, or when its oldest parked event was parked
	blocked bool          // its head failed and waits for its next attempt
	wake    chan struct{} // an event was queued behind the blocked head: park it
	parked  bool          // the park may hold events: true until a read finds it empty
	first   uint64        // lowest original sequence that may be parked (exact when loaded, a bound after drains)
	last    uint64        // highest original sequence parked
	next    uint64        // park-stream sequence from which to read the next parked event
	events  int           // parked events, as counted here (for display; emptiness is what a read finds)
	gate    uint64        // after a restart: not drained before every main event below gate was routed
}

// Stuck says what holds up an endpoint's entities on this gateway.
type Stuck struct {
	Blocked      int      `json:"blocked"`       // entities whose head failed and waits for its next attempt
	Parked       int      `json:"parked"`        // entities with events parked behind their head
	ParkedEvents int      `json:"parked_events"` // events in those parks
	Entities     []string `json:"entities"`      // the longest stuck first, at most StuckTop
}

// StuckTop bounds Stuck.Entities.
const StuckTop = 10

// IsZero reports that nothing is stuck.
func (s Stuck) IsZero() bool { return s.Blocked == 0 && s.Parked == 0 }

// stuckView counts the stuck entities; names lists up to StuckTop of them when asked for.
func (w *worker) stuckView(names bool) Stuck {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out Stuck
	type aged struct {
		entity string
		since  time.Time
	}
	var all []aged
	for e, s := range w.stuck {
		if s.blocked {
			out.Blocked++
		}
		if s.parked && s.events > 0 {
			out.Parked++
			out.ParkedEvents += s.events
		}
		if names && (s.blocked || s.parked && s.events > 0) {
			all = append(all, aged{e, s.since})
		}
	}
	slices.SortFunc(all, func(a, b aged) int { return cmp.Or(a.since.Compare(b.since), strings.Compare(a.entity, b.entity)) })
	for _, a := range all[:min(len(all), StuckTop)] {
		out.Entities = append(out.Entities, a.entity)
	}
	return out
}

// stuckLocked returns entity's entry, making it if needed.
func (w *worker) stuckLocked(entity string) *stuck {
	s := w.stuck[entity]
	if s == nil {
		s = &stuck{since: time.Now(), wake: make(chan struct{}, 1)}
		w.stuck[entity] = s
		w.stuckN.Store(int32(len(w.stuck)))
	}
	return s
}

// forgetLocked drops entity's entry once it is neither blocked nor parked.
func (w *worker) forgetLocked(entity string) {
	if s := w.stuck[entity]; s != nil && !s.blocked && !s.parked {
		delete(w.stuck, entity)
		w.stuckN.Store(int32(len(w.stuck)))
	}
}

// inPark reports whether seq of entity is within its park's range: a copy of a parked event.
// With nothing stuck (most of the time) it takes no lock: a park is entered in stuck before its
// first event leaves the lane (under mu), and a copy finds that event held until then (onMessage).
func (w *worker) inPark(entity string, seq uint64) bool {
	if w.stuckN.Load() == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stuck[entity]
	return s != nil && s.parked && s.first <= seq && seq <= s.last
}

// wakeLocked tells entity's blocked lane that an event was queued behind its head.
func (w *worker) wakeLocked(entity string) {
	if s := w.stuck[entity]; s != nil && s.blocked {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// blockedWait waits out a failed head's retry wait and, meanwhile — if park (decide says from
// which attempt) — parks every event queued behind it, now and as more come. With early, the wait
// ends when the endpoint recovers from a breaker's pause (resume); then it waits for a place
// among the lanes that deliver (lanes.resumed). It returns false when the worker stops first.
func (w *worker) blockedWait(ctx context.Context, head *item, wait time.Duration, park, early bool) bool {
	w.mu.Lock()
	s := w.stuckLocked(head.env.Entity)
	s.blocked = true
	wake := s.wake
	var recovered <-chan struct{} // nil: never
	if early {
		recovered = w.recovered
	}
	start := w.lanes.waiting() // another lane delivers meanwhile
	w.mu.Unlock()
	w.launch(ctx, start)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if park && !w.parkQueued(ctx, head) {
			return false
		}
		select {
		case <-timer.C:
			return w.lanes.resumed(w.stop)
		case <-recovered:
			return w.lanes.resumed(w.stop)
		case <-wake:
		case <-w.stop:
			return false
		}
	}
}

// parkQueued parks, in order, the events queued behind head. It stops at one that cannot be
// parked (too large for a message with the park's headers): that one and the rest stay held, so
// the park never skips an event. It returns false when the worker stops first.
func (w *worker) parkQueued(ctx context.Context, head *item) bool {
	entity := head.env.Entity
	sh := w.lanes.shard(entity)
	for {
		w.mu.Lock()
		if time.Now().Before(w.pausedUntil) { // an open breaker: the whole endpoint waits, nothing is fetched
			w.mu.Unlock()
			return true
		}
		var next *item
		sh.mu.Lock()
		// The first behind head: what its lane's run delivered ahead of it was let go of before it
		// waits (settle), and a head from the park is ahead of the whole queue (Index -1).
		q := sh.queued(entity)
		if i := slices.Index(q, head); i+1 < len(q) {
			next = q[i+1]
		}
		sh.mu.Unlock()
		if s := w.stuck[entity]; next != nil && (next.noPark || s.parked && next.seq <= s.last) {
			next = nil // the park only grows at its end
		}
		w.mu.Unlock()
		if next == nil {
			return true
		}
		if !w.parkOne(ctx, next) {
			return false
		}
	}
}

// parkOne moves a queued event into the park: publish the copy (and wait for the PubAck), note
// it parked, ack the original, then drop it from the queue. A crash in between leaves the
// original unacked: it comes again within the park's range and is dropped then.
func (w *worker) parkOne(ctx context.Context, it *item) bool {
	if w.fenced() { // its next owner has read the park already: what is parked now it would miss
		<-w.stop
		return false
	}
	id := w.ep.Load().ID
	msg := copyMsg(parkSubject(id, it.env.Entity), it.body, w.handle(it).Headers())
	msg.Header.Set(hdrEndpoint, id)
	msg.Header.Set(hdrEventSeq, strconv.FormatUint(it.seq, 10))
	msg.Header.Set(hdrSubject, it.subject)
	msg.Header.Set(hdrPublished, it.published.UTC().Format(time.RFC3339Nano))
	var ack *jetstream.PubAck
	retry := jsRetry()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		// The msg id makes a publish retried after a lost PubAck store one copy.
		ack, err = w.js.PublishMsg(pctx, msg, jetstream.WithMsgID(id+"."+strconv.FormatUint(it.seq, 10)), jetstream.WithExpectStream(ParkStream))
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrMaxPayload) { // refused before sending: it stays held, as without a park
			w.log.Warn().Err(err).Str("event_id", it.env.ID).Str("entity", it.env.Entity).Msg("event too large to park: it and later events of its entity stay held")
			w.mu.Lock()
			it.noPark = true
			w.mu.Unlock()
			return true
		}
		w.log.Error().Err(err).Str("event_id", it.env.ID).Str("entity", it.env.Entity).Msg("park event: will retry")
		if !backoff.Wait(w.stop, retry.Next()) {
			return false
		}
	}

	w.mu.Lock()
	s := w.stuckLocked(it.env.Entity)
	if !s.parked {
		s.parked, s.first, s.next, s.events = true, it.seq, ack.Sequence, 0
	}
	s.last = it.seq
	s.events++
	w.mu.Unlock()
	w.ack(w.handle(it), it.seq)
	sh := w.lanes.shard(it.env.Entity)
	sh.mu.Lock()
	sh.remove(it)
	sh.mu.Unlock()
	w.log.Debug().Str("event_id", it.env.ID).Str("entity", it.env.Entity).Uint64("seq", it.seq).Msg("parked")
	return true
}

// next is what entity's lane delivers next, by the order rule: queued events below the park,
// then the park, then the rest of the queue. Parked events already delivered (a crash before
// their delete) are deleted on the way. Empty when there is nothing to deliver now — the lane
// ends, and its goroutine takes the ready lane, parks (park) or ends; route claims the lane again
// when something comes — or the worker stops.
//
// With nothing stuck, it is a run: the head and events queued behind it (runLength), appended
// to run, which the lane delivers one after the other without coming back (they stay queued
// until then, the head first). One lock per run rather than per event: the lock route takes for
// every event it queues was otherwise taken on both cores in turn. Otherwise it is one event.
//
// done are the main events the lane finished since, at the head of its queue in order: they are
// let go of under the same lock, and acked. With nothing stuck, only the entity's shard is
// locked: only an entity's own lane makes it stuck, so the count read here cannot miss this
// entity's.
func (w *worker) next(ctx context.Context, ln *lane, done, run []*item) (_ []*item, ready *lane, park bool) {
	entity := ln.entity
	sh := w.lanes.shard(entity)
	retry := jsRetry()
	for {
		locked := w.stuckN.Load() > 0
		if locked {
			w.mu.Lock()
		}
		sh.mu.Lock()
		sh.letGo(ln, done)
		if len(done) > 0 && locked {
			w.unblockLocked(entity)
		}
		var s *stuck
		if locked {
			s = w.stuck[entity]
		}
		head, parked := ln.head(), s != nil && s.parked
		drain, from, idle := false, uint64(0), false
		switch {
		case head != nil && !locked:
			run = ln.run(run, w.lanes.maxRun)
		case head != nil && (!parked || head.seq < s.first):
			run = append(run, head)
		case !parked || s.gate > 0:
			sh.idle(ln)
			idle = true
		default:
			drain, from = true, s.next
		}
		sh.mu.Unlock()
		if idle {
			ready, park = w.lanes.idle()
		}
		if locked {
			w.mu.Unlock()
		}
		w.ackDone(done)
		done = nil
		if !drain {
			return run, ready, park
		}

		select {
		case <-w.stop:
			return nil, nil, false
		default:
		}
		it, err := w.readParked(ctx, entity, from)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound): // drained
			w.mu.Lock()
			s.parked, s.events = false, 0
			w.forgetLocked(entity)
			w.mu.Unlock()
		case err != nil:
			w.log.Error().Err(err).Str("entity", entity).Msg("read parked event: will retry")
			if !backoff.Wait(w.stop, retry.Next()) {
				return nil, nil, false
			}
		case it.seq == 0 || w.progress.covers(entity, it.seq):
			// Delivered before a crash kept it from being deleted; or not a parked event.
			if !w.unpark(ctx, it) {
				return nil, nil, false
			}
		default:
			return append(run, it), nil, false
		}
	}
}

// readParked reads entity's first parked event at or after park sequence from. A message that
// is not a parked event (quaycast writes none such) is set aside as invalid and comes back with
// seq 0, to be removed from the park.
func (w *worker) readParked(ctx context.Context, entity string, from uint64) (*item, error) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	raw, err := w.park.GetMsg(gctx, from, jetstream.WithGetMsgSubject(parkSubject(w.ep.Load().ID, entity)))
	if err != nil {
		return nil, err
	}
	it, err := parkedItem(ctx, w.o.Catalogue, raw)
	if err == nil && it.env.Entity != entity {
		err = fmt.Errorf("entity %q in the park of %q", it.env.Entity, entity)
	}
	if err != nil {
		reason := "not a parked event: " + err.Error()
		if !w.recordInvalid(gctx, storedMsg{raw}, raw.Sequence, "invalid-park-"+w.ep.Load().ID+"-"+strconv.FormatUint(raw.Sequence, 10), reason) {
			return nil, errors.New("record a parked message that is not an event")
		}
		return &item{parkSeq: raw.Sequence, env: &subjects.Envelope{Entity: entity}}, nil
	}
	return it, nil
}

// parkedItem is the event a park message holds.
func parkedItem(ctx context.Context, cat Catalogue, raw *jetstream.RawStreamMsg) (*item, error) {
	seq, err := strconv.ParseUint(raw.Header.Get(hdrEventSeq), 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("header %s: %q", hdrEventSeq, raw.Header.Get(hdrEventSeq))
	}
	published, err := time.Parse(time.RFC3339Nano, raw.Header.Get(hdrPublished))
	if err != nil {
		return nil, fmt.Errorf("header %s: %w", hdrPublished, err)
	}
	env, err := WithCatalogue(ctx, cat, func(c *subjects.Catalogue) (subjects.Envelope, error) { return c.ParseEnvelope(raw.Data) })
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	env.Data = nil // the body travels as Delivery.Body
	return &item{seq: seq, parkSeq: raw.Sequence, subject: raw.Header.Get(hdrSubject), body: raw.Data, header: raw.Header, env: &env, published: published}, nil
}

// finish ends a delivered or dead-lettered event, remembered as done first: a main event is then
// let go of and acked by its lane's next step (next, under the shard lock that step takes
// anyway: one lock per event fewer), a parked one deleted from the park. Either way its entity's
// head is no longer waiting. at is now, as the caller read it last.
func (w *worker) finish(ctx context.Context, it *item, at time.Time) {
	// Before the ack or the delete: a copy or a crash between must not send it again.
	if it.parkSeq == 0 {
		w.progress.addRouted(it.env.Entity, it.seq, it.env.ID, at)
		return
	}
	w.progress.add(it.env.Entity, it.seq, it.env.ID, at)
	w.mu.Lock()
	w.unblockLocked(it.env.Entity)
	w.mu.Unlock()
	w.unpark(ctx, it)
}

// unblockLocked notes that entity's head is no longer waiting.
func (w *worker) unblockLocked(entity string) {
	if s := w.stuck[entity]; s != nil {
		s.blocked = false
		w.forgetLocked(entity)
	}
}

// unpark deletes a parked event, retrying until it is gone or the worker stops (false).
func (w *worker) unpark(ctx context.Context, it *item) bool {
	retry := jsRetry()
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.park.DeleteMsg(dctx, it.parkSeq)
		if err != nil { // nats.go does not say why: gone already (expired, deleted before a crash) is done
			if _, gerr := w.park.GetMsg(dctx, it.parkSeq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
				err = nil
			}
		}
		cancel()
		if err == nil {
			break
		}
		w.log.Error().Err(err).Uint64("park_seq", it.parkSeq).Msg("delete parked event: will retry")
		if !backoff.Wait(w.stop, retry.Next()) {
			return false
		}
	}
	w.mu.Lock()
	if s := w.stuck[it.env.Entity]; s != nil && s.parked {
		s.next = max(s.next, it.parkSeq+1)
		s.first = max(s.first, it.seq+1)
		s.events = max(s.events-1, 0)
	}
	w.mu.Unlock()
	return true
}

// loadParks reads this endpoint's parks from the server, before consuming: which entities have
// one, their original sequence range and where each starts. start is where the reset consumer
// resends from: a park whose first event is above it drains only once every main event below it
// was routed, so that an unacked head comes first.
func (w *worker) loadParks(ctx context.Context, start uint64) error {
	if w.noParks { // woken from sleep, or started with none read at start: nothing to read
		w.routed.Store(start - 1)
		return nil
	}
	id := w.ep.Load().ID
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := w.park.Info(lctx, jetstream.WithSubjectFilter(parkFilter(id)))
	if err != nil {
		return fmt.Errorf("read parks: %w", err)
	}
	loaded := make(map[string]*stuck, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		entity, err := subjects.DecodeToken(subject[strings.LastIndexByte(subject, '.')+1:])
		if err != nil || parkSubject(id, entity) != subject {
			w.log.Error().Str("subject", subject).Msg("not a park subject: left alone")
			continue
		}
		first, err := w.park.GetMsg(lctx, 1, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // drained meanwhile
		}
		if err != nil {
			return fmt.Errorf("read park %s: %w", subject, err)
		}
		last, err := w.park.GetLastMsgForSubject(lctx, subject)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("read park %s: %w", subject, err)
		}
		s := &stuck{since: first.Time, wake: make(chan struct{}, 1), parked: true, next: first.Sequence, events: int(info.State.Subjects[subject])}
		s.first, _ = strconv.ParseUint(first.Header.Get(hdrEventSeq), 10, 64)
		if last != nil {
			s.last, _ = strconv.ParseUint(last.Header.Get(hdrEventSeq), 10, 64)
		}
		s.last = max(s.last, s.first)
		if s.first > start {
			s.gate = s.first
		}
		loaded[entity] = s
	}
	w.mu.Lock()
	w.routed.Store(start - 1)
	for entity, s := range loaded {
		w.stuck[entity] = s
		if s.gate > 0 {
			w.gated.Add(1)
			w.lowestGate = min(cmp.Or(w.lowestGate, s.gate), s.gate)
		}
	}
	w.stuckN.Store(int32(len(w.stuck)))
	gated := w.gated.Load()
	w.mu.Unlock()
	if len(loaded) > 0 {
		w.log.Info().Int("entities", len(loaded)).Int32("waiting_for_head", gated).Msg("parked events to drain")
	}
	return nil
}

// startParked starts a lane for each park that may drain now (once consuming: a run that fails
// before must leave no lane behind).
func (w *worker) startParked(ctx context.Context) {
	w.mu.Lock()
	var starts []launch
	for entity, s := range w.stuck {
		if !s.parked || s.gate > 0 {
			continue
		}
		if l := w.lanes.claim(entity); l.ln != nil {
			starts = append(starts, l)
		}
	}
	w.mu.Unlock()
	w.launchAll(ctx, starts)
}

// routedTo notes that route has seen seq: every main event below it came before (JetStream
// sends in stream order after the reset). It starts the lanes of the parks that may drain now.
// Only route calls it, from the one goroutine that receives the consumer's messages.
func (w *worker) routedTo(ctx context.Context, seq uint64) {
	if seq > w.routed.Load() {
		w.routed.Store(seq)
	}
	if w.gated.Load() == 0 { // gates are set before route runs, and only opened after
		return
	}
	w.mu.Lock()
	starts := w.openGatesLocked(false)
	w.mu.Unlock()
	w.launchAll(ctx, starts)
}

// openGatesLocked opens the gates route has passed (all of them with all), returning the
// lanes to start.
func (w *worker) openGatesLocked(all bool) []launch {
	routed := w.routed.Load()
	if w.gated.Load() == 0 || !all && routed+1 < w.lowestGate {
		return nil
	}
	var starts []launch
	w.lowestGate = 0
	for entity, s := range w.stuck {
		if s.gate == 0 {
			continue
		}
		if !all && routed+1 < s.gate {
			w.lowestGate = min(cmp.Or(w.lowestGate, s.gate), s.gate)
			continue
		}
		s.gate = 0
		w.gated.Add(-1)
		if l := w.lanes.claim(entity); l.ln != nil {
			starts = append(starts, l)
		}
	}
	return starts
}

// openGatesIfIdle opens every gate once the consumer has nothing more to send and every message
// it delivered was routed: a park's head that never comes (aged out of the stream, or of a type
// the endpoint no longer takes) does not hold its park for ever. Deliveries are counted by the
// consumer's delivery sequence: its stream position moves past events that do not match without
// delivering them.
func (w *worker) openGatesIfIdle(ctx, dctx context.Context, name string) {
	if w.gated.Load() == 0 {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cons, err := w.stream.Consumer(ictx, name)
	cancel()
	if err != nil {
		return
	}
	if info := cons.CachedInfo(); info.NumPending > 0 || info.Delivered.Consumer > w.routedDelivery.Load() {
		return
	}
	w.mu.Lock()
	starts := w.openGatesLocked(true)
	w.mu.Unlock()
	w.launchAll(dctx, starts)
}
