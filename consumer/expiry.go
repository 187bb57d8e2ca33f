package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Expiry: the events stream drops events older than its MaxAge (--stream-max-age) whether or not
// every endpoint got them. An event still undelivered when it comes within a margin of that age
// is dead-lettered instead, so that nothing leaves silently. Two paths find such events:
//
//   - an event a lane holds is checked before each attempt, and its waits end at its horizon
//     (expiring, capWait, expire);
//   - events JetStream has not sent to the worker — its consumer is paused by the open breaker,
//     or --max-ack-pending events are held — are found by a sweeper that reads the stream from
//     the consumer's ack floor in stream order (sweep).

// maxSweep bounds the stream reads of one sweep pass; a pass that reaches it is followed at once
// (after catchUp) by the next, which starts where it stopped.
const (
	maxSweep = 10_000
	catchUp  = time.Second
)

// expiry returns the events stream's max age and the margin before it at which an undelivered
// event is dead-lettered: ExpiryMargin, by default min(maxAge/10, 1h). Both are 0 when the stream
// keeps events for ever.
func (w *worker) expiry() (maxAge, margin time.Duration) {
	if w.stream == nil { // the lane benchmark runs without a stream
		return 0, 0
	}
	info := w.stream.CachedInfo() // refreshed by whoever reads the stream's info
	if info == nil || info.Config.MaxAge <= 0 {
		return 0, 0
	}
	maxAge = info.Config.MaxAge
	margin = w.o.ExpiryMargin
	if margin <= 0 {
		margin = min(maxAge/10, time.Hour)
	}
	return maxAge, min(margin, maxAge/2) // a margin as long as the age would dead-letter at once
}

// horizon is when an event stored at published is dead-lettered if still undelivered; ok is false
// when events never expire.
func (w *worker) horizon(published time.Time) (at time.Time, ok bool) {
	maxAge, margin := w.expiry()
	if maxAge == 0 {
		return time.Time{}, false
	}
	return published.Add(maxAge - margin), true
}

// expiring reports whether it is past its horizon.
func (w *worker) expiring(it *item, now time.Time) bool {
	at, ok := w.horizon(it.published)
	return ok && !now.Before(at)
}

// capWait shortens a wait between attempts so that it ends at its horizon at the latest: a
// retry schedule or a Retry-After longer than the margin would otherwise outlast the event.
func (w *worker) capWait(it *item, wait time.Duration) time.Duration {
	if at, ok := w.horizon(it.published); ok {
		return max(min(wait, time.Until(at)), 0)
	}
	return wait
}

// expire dead-letters a held event that is about to leave the stream undelivered. If the sweeper
// has dead-lettered it already (JetStream sent it while the sweeper wrote its record), it is
// only acknowledged.
func (w *worker) expire(ctx context.Context, it *item, attempts int, first time.Time, last Outcome) bool {
	if w.progress.covers(it.env.Entity, it.seq) {
		w.finish(ctx, it, time.Now())
		return true
	}
	maxAge, _ := w.expiry()
	return w.deadLetter(ctx, it, attempts, first, last, expiryReason(maxAge))
}

func expiryReason(maxAge time.Duration) string {
	return fmt.Sprintf("about to expire from the events stream (max age %s) undelivered", shortDuration(maxAge))
}

// shortDuration is d without trailing zero units: 168h, not 168h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// eventMsg is what checkEvent reads of an event: a message JetStream delivered, or one read from the
// stream by the sweeper.
type eventMsg interface {
	Subject() string
	Data() []byte
	Headers() nats.Header
}

// storedMsg is an event read from the stream.
type storedMsg struct{ m *jetstream.RawStreamMsg }

func (s storedMsg) Subject() string      { return s.m.Subject }
func (s storedMsg) Data() []byte         { return s.m.Data }
func (s storedMsg) Headers() nats.Header { return s.m.Header }

// sweepState is what one worker's sweeper carries from pass to pass.
type sweepState struct {
	cursor  uint64 // every event below it was handled by an earlier pass
	filters string // the consumer's filters the cursor was found with
}

// startSweeper runs the sweeper until ctx ends; the returned function waits for it.
func (w *worker) startSweeper(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.sweep(ctx)
	}()
	return func() { <-done }
}

// sweep runs a pass every min(margin/2, 1 min) until ctx ends. The first pass comes at a random
// point of the first period, so that the workers of a gateway that starts do not sweep all at
// once.
func (w *worker) sweep(ctx context.Context) {
	s := &sweepState{}
	period := func() time.Duration {
		p := time.Minute
		if _, margin := w.expiry(); margin > 0 {
			p = min(p, margin/2)
		}
		return max(p, 10*time.Millisecond)
	}
	t := time.NewTimer(rand.N(period()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := period()
		if full := w.sweepOnce(ctx, s); full {
			next = min(next, catchUp)
		}
		t.Reset(next)
	}
}

// sweepOnce dead-letters, in stream order, the endpoint's events past their horizon that the
// worker does not hold and that were not delivered, and marks each done, so that the consumer
// acks it without a POST if it sends it before it expires (a mark is kept until its event has
// left the stream). It stops at the first event not past its horizon (stream order is store
// order: the rest are younger) or after maxSweep reads, and reports whether it stopped at the
// bound.
//
// An entity with an event held by a lane is skipped from there on in this pass: the lane
// dead-letters the held one at its horizon, and a later event must not be marked done before
// an earlier one is (the mark says everything up to it is done).
func (w *worker) sweepOnce(ctx context.Context, s *sweepState) (full bool) {
	maxAge, margin := w.expiry()
	if maxAge == 0 || w.fenced() {
		return false
	}
	// While no event the consumer has not sent can be past its horizon, the pass asks the server
	// nothing: 10,000 endpoints woken together each read their consumer's info every minute, and
	// timed out under the wake's load. The events a lane holds expire by themselves.
	if since := w.youngestUnsent(); !since.IsZero() && time.Now().Before(since.Add(maxAge-margin)) {
		return false
	}
	name := w.ep.Load().ConsumerName()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := w.stream.Consumer(cctx, name)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn().Err(err).Msg("expiry sweep: read consumer")
		}
		return false
	}
	info := cons.CachedInfo()
	if info.NumPending == 0 && info.NumAckPending == 0 {
		return false // nothing undelivered
	}
	filters := info.Config.FilterSubjects
	if len(filters) == 0 {
		filters = []string{info.Config.FilterSubject}
	}
	for i, f := range filters {
		if f == "" {
			filters[i] = ">"
		}
	}
	if key := strings.Join(filters, " "); key != s.filters {
		s.filters, s.cursor = key, 0
	}
	start := max(info.AckFloor.Stream+1, info.Config.OptStartSeq, s.cursor)

	sw := sweepPass{w: w, s: s, ctx: ctx, maxAge: maxAge, blocked: make(map[string]bool), advancing: true}
	if len(filters) > 1 { // one read tells whether anything from start on is old enough
		m, err := sw.read(start, ">")
		if m == nil || err != nil || !sw.pastHorizon(m) {
			return false
		}
	}
	heads := make([]*jetstream.RawStreamMsg, len(filters))
	for i, f := range filters {
		if heads[i], err = sw.read(start, f); err != nil {
			return false
		}
	}
	for {
		if sw.reads >= maxSweep {
			full = true
			break
		}
		i := -1
		for j, m := range heads {
			if m != nil && (i < 0 || m.Sequence < heads[i].Sequence) {
				i = j
			}
		}
		if i < 0 || !sw.pastHorizon(heads[i]) {
			break
		}
		if err := sw.handle(heads[i]); err != nil {
			if ctx.Err() == nil {
				w.log.Error().Err(err).Uint64("seq", heads[i].Sequence).Msg("expiry sweep stopped: tried again at the next pass")
			}
			break
		}
		if heads[i], err = sw.read(heads[i].Sequence+1, filters[i]); err != nil {
			break
		}
	}
	if sw.dead > 0 {
		w.log.Warn().Int("dead_lettered", sw.dead).Dur("max_age", maxAge).Bool("more", full).
			Msg("events about to expire from the events stream undelivered: dead-lettered")
	}
	return full
}

// youngestUnsent is a time every event the consumer has not sent yet was stored after, or zero
// if none is known: the later of the stream's oldest event as last read (the gateway reads the
// stream's info every 15 s or more; the oldest now can only be younger), and the store time of
// the last event routed when the server had nothing more for the consumer then — under the
// endpoint's current definition, since new filters may match older events.
func (w *worker) youngestUnsent() time.Time {
	var at time.Time
	if info := w.stream.CachedInfo(); info != nil {
		at = info.State.FirstTime
	}
	if ns := w.caughtUp.Load(); ns != 0 && w.caughtUpEp.Load() == w.ep.Load() {
		if t := time.Unix(0, ns); t.After(at) {
			at = t
		}
	}
	return at
}

// sweepPass is one pass of the sweeper.
type sweepPass struct {
	w         *worker
	s         *sweepState
	ctx       context.Context
	maxAge    time.Duration
	blocked   map[string]bool // entities with an event skipped in this pass
	advancing bool            // every event so far was handled: the cursor follows
	reads     int
	dead      int
}

// read returns the first event at or after seq on subject, nil if there is none.
func (p *sweepPass) read(seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	p.reads++
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	m, err := p.w.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		if p.ctx.Err() == nil {
			p.w.log.Warn().Err(err).Uint64("seq", seq).Msg("expiry sweep: read stream")
		}
		return nil, err
	}
	return m, nil
}

func (p *sweepPass) pastHorizon(m *jetstream.RawStreamMsg) bool {
	at, ok := p.w.horizon(m.Time)
	return ok && !time.Now().Before(at)
}

// handle dead-letters one event past its horizon, unless it is done, held, or behind one held.
func (p *sweepPass) handle(m *jetstream.RawStreamMsg) error {
	w, seq := p.w, m.Sequence
	env, reason := w.screen(p.ctx, storedMsg{m}, seq, m.Time)
	switch {
	case reason != "": // as route does; its Term comes when JetStream sends it
		if !w.recordInvalid(p.ctx, storedMsg{m}, seq, "invalid-"+strconv.FormatUint(seq, 10), reason) {
			return errors.New("record invalid event")
		}
	case p.blocked[env.Entity]:
		p.skip()
		return nil
	case w.holds(env.Entity, seq):
		p.blocked[env.Entity] = true
		p.skip()
		return nil
	case w.progress.covers(env.Entity, seq): // delivered, acked above the ack floor
	default:
		attempts, first := w.progress.retryState(env.Entity, seq)
		dl := DeadLetter{
			EndpointID: w.ep.Load().ID, EventID: env.ID, EventSeq: seq, Subject: m.Subject, Entity: env.Entity,
			Attempts: attempts, Reason: expiryReason(p.maxAge), FirstAttempt: first, Body: m.Data,
		}
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ack, err := w.js.PublishMsg(ctx, newDeadMsg(dl), jetstream.WithMsgID(deadMsgID(dl)))
		cancel()
		if err != nil {
			return fmt.Errorf("record dead letter: %w", err)
		}
		w.progress.add(env.Entity, seq, env.ID, time.Now())
		if !ack.Duplicate { // a lane recorded it already (JetStream sent it meanwhile)
			p.dead++
			if w.onDead != nil {
				w.onDead(dl)
			}
		}
	}
	if p.advancing {
		p.s.cursor = seq + 1
	}
	return nil
}

func (p *sweepPass) skip() { p.advancing = false }

// holds reports whether a lane holds the event.
func (w *worker) holds(entity string, seq uint64) bool {
	_, ok := w.lanes.lookup(entity, seq)
	return ok
}
