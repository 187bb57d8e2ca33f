package consumer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/conditions"
	"github.com/quaycast/quaycast/subjects"
)

// What may be delivered: an event is checked once (checkEvent, its verdict cached in checked for
// the other endpoints' workers), and one that fails is set aside in the invalid-events stream
// with the reason.

// checked remembers the verdict on recent events by stream sequence. An event that fans out to
// many endpoints reaches each endpoint's consumer as its own copy; parsing and validating the
// envelope once instead of once per endpoint takes that cost off the fan-out.
//
// A slot per sequence modulo checkedSize, read without a lock: every endpoint's worker reads it
// for every event, and a lock shared by them all was written by each read (a cache line sent
// from core to core per event). An entry, once stored, is not changed: event stores a new one.
// An entry is the event's at its sequence and store time: a stream made again numbers its events
// from 1 again.
type checked struct {
	slots [checkedSize]atomic.Pointer[checkedEntry]
}

type checkedEntry struct {
	seq uint64
	at  int64 // the event's store time in the stream, Unix ns
	v   verdict
}

type verdict struct {
	env    subjects.Envelope // Data left out: the body travels as Delivery.Body
	reason string            // why it cannot be delivered; "" when it can
	event  *conditions.Event // what conditions see of it, made by the first that asks
}

// checkedSize is how many recent sequences checked keeps: an endpoint further behind than that
// parses the envelope again.
const checkedSize = 8192

func newChecked() *checked { return &checked{} }

func (c *checked) slot(seq uint64) *atomic.Pointer[checkedEntry] { return &c.slots[seq%checkedSize] }

// get is the verdict on the event stored at seq at time at (Unix ns), nil if none. It is not
// changed, ever: lanes hold its envelope rather than a copy.
func (c *checked) get(seq uint64, at int64) *verdict {
	if e := c.slot(seq).Load(); e != nil && e.seq == seq && e.at == at {
		return &e.v
	}
	return nil
}

// put stores the verdict on the event stored at seq at time at, in place of any other event's —
// a newer one too, if this worker is far behind: the others then parse it again — unless it is
// stored already (two workers checked it at once: the same verdict). It returns the verdict
// stored.
func (c *checked) put(seq uint64, at int64, v verdict) *verdict {
	s := c.slot(seq)
	e := &checkedEntry{seq: seq, at: at, v: v}
	for {
		old := s.Load()
		if old != nil && old.seq == seq && old.at == at {
			return &old.v
		}
		if s.CompareAndSwap(old, e) {
			return &e.v
		}
	}
}

// event is what endpoints' conditions see of the event at seq: one for all of them, so that its
// data is parsed once however many endpoints have a condition.
func (c *checked) event(seq uint64, env *subjects.Envelope, body []byte) *conditions.Event {
	s := c.slot(seq)
	same := func(e *checkedEntry) bool { return e != nil && e.seq == seq && e.v.env.ID == env.ID }
	old := s.Load()
	if same(old) && old.v.event != nil {
		return old.v.event
	}
	ev := conditions.NewEvent(env.ID, env.Type, env.Source, env.Entity, env.OccurredAt, body)
	if same(old) {
		v := old.v
		v.event = ev
		if !s.CompareAndSwap(old, &checkedEntry{seq: seq, at: old.at, v: v}) { // another made it meanwhile
			if cur := s.Load(); same(cur) && cur.v.event != nil {
				return cur.v.event
			}
		}
	}
	return ev
}

// screen decides whether a message may go to this endpoint: a replay only to its own, and an event
// only if checkEvent passes it (once per event, however many endpoints get it). reason is empty
// when it can be delivered.
func (w *worker) screen(ctx context.Context, msg eventMsg, seq uint64, stored time.Time) (*subjects.Envelope, string) {
	replayFor, _, _, _ := subjects.ParseAny(msg.Subject())
	if id := w.ep.Load().ID; replayFor != "" && replayFor != id {
		return &subjects.Envelope{}, fmt.Sprintf("replay for endpoint %q reached endpoint %q", replayFor, id)
	}
	at := stored.UnixNano()
	v := w.checked.get(seq, at)
	if v == nil {
		env, reason := checkEvent(ctx, w.o.Catalogue, msg)
		env.Data = nil // the body travels as Delivery.Body
		v = w.checked.put(seq, at, verdict{env: env, reason: reason})
	}
	return &v.env, v.reason
}

// checkEvent parses and cross-checks a message; reason is empty when it can be delivered. A type
// the catalogue does not know is looked up again in a fresh read before the event is set aside:
// it may have been added through another gateway a moment ago.
func checkEvent(ctx context.Context, cat Catalogue, msg eventMsg) (subjects.Envelope, string) {
	replayFor, source, typ, err := subjects.ParseAny(msg.Subject())
	if err != nil {
		return subjects.Envelope{}, err.Error()
	}
	// Where the event was first stored: a replay is judged by its original's subject.
	stored := msg.Subject()
	if replayFor != "" {
		stored = msg.Headers().Get(subjects.HeaderOrigin)
	}
	env, err := WithCatalogue(ctx, cat, func(c *subjects.Catalogue) (subjects.Envelope, error) { return c.ParseEnvelope(msg.Data()) })
	if err != nil {
		return env, "envelope: " + err.Error()
	}
	if env.Type != typ || env.Source != source {
		return env, fmt.Sprintf("envelope source %q and type %q do not match subject %s", env.Source, env.Type, msg.Subject())
	}
	reserved := subjects.ReservedReason(msg.Subject(), source, typ)
	if replayFor != "" {
		reserved = subjects.ReplayReservedReason(stored, source, typ)
	}
	if reserved != "" {
		return env, reserved
	}
	if h := msg.Headers().Get(subjects.HeaderEntity); h != "" && h != env.Entity {
		return env, fmt.Sprintf("%s header %q does not match envelope entity %q", subjects.HeaderEntity, h, env.Entity)
	}
	if h := msg.Headers().Get(subjects.HeaderTenants); h != "" && !subjects.SameTenants(h, env.Tenants) {
		return env, fmt.Sprintf("%s header %q does not match envelope tenants %q", subjects.HeaderTenants, h, env.Tenants)
	}
	if t := subjects.TenantOf(stored); t != "" && !slices.Contains(env.Tenants, t) {
		return env, fmt.Sprintf("copy for tenant %q of an event whose envelope names tenants %q", t, env.Tenants)
	}
	if t, ok := subjects.OpsTenantOf(stored); ok && !slices.Equal(env.Tenants, opsTenants(t)) {
		return env, fmt.Sprintf("operator event for tenant %q whose envelope names tenants %q", t, env.Tenants)
	}
	return env, ""
}

// opsTenants are the envelope's tenants of an operator event about an endpoint of tenant.
func opsTenants(tenant string) []string {
	if tenant == "" {
		return nil
	}
	return []string{tenant}
}

// forTenant reports whether an event that passed the checks goes to ep as far as tenants go: a
// tenant's endpoint takes only its tenant's copies (its filters let no other through; this holds
// it whatever they are) of events published since it was created, an operator's endpoint the
// events that name no tenant, and those that do when it opted in (TenantEvents). Operator events
// go the same way, by the tenant their subject names. A replay is the endpoint's own dead letter
// or redelivery (screen checked it); one of an operator event goes by its original's tenant too.
func forTenant(ep *Endpoint, msg eventMsg, env *subjects.Envelope) bool {
	subject := msg.Subject()
	if strings.HasPrefix(subject, subjects.ReplayPrefix+".") {
		if t, ok := subjects.OpsTenantOf(msg.Headers().Get(subjects.HeaderOrigin)); ok {
			return opsForTenant(ep, t)
		}
		return true
	}
	if t, ok := subjects.OpsTenantOf(subject); ok { // about an endpoint of t ("" the operator's)
		return opsForTenant(ep, t)
	}
	t := subjects.TenantOf(subject)
	if ep.Tenant != "" {
		// A copy is stored after its original: one made just after the endpoint was created may
		// be of an event from before (StartSeq is the original's numbering).
		src, err := strconv.ParseUint(msg.Headers().Get(HeaderSourceSeq), 10, 64)
		return t == ep.Tenant && (err != nil || src >= ep.StartSeq)
	}
	if t != "" {
		return false // operator endpoints read the original
	}
	return len(env.Tenants) == 0 || ep.TenantEvents
}

// opsForTenant reports whether an operator event about an endpoint of tenant t ("" the
// operator's) goes to ep.
func opsForTenant(ep *Endpoint, t string) bool {
	if ep.Tenant != "" {
		return t == ep.Tenant
	}
	return t == "" || ep.TenantEvents
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
