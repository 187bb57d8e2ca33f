package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/subjects"
)

// Operator events: what happens to endpoints, published on core NATS for the operator's systems
// (and a tenant's, through a publisher with replies) to follow, one subject per tenant:
//
//	quaycast.sys.ops.operator.<kind>          the operator's endpoints
//	quaycast.sys.ops.tenant.<tenant>.<kind>   a tenant's
//
// Each is published once, by the gateway where it happened: a change through the API by the
// gateway that served it, a disable, breaker change or dead letter by the gateway delivering to
// the endpoint. Like the breaker notices (BreakerSubject), these are not stored: a subscriber that
// is away misses them.
//
// The same gateway also stores each in the events stream, as an event of source "quaycast" and
// type <kind> about entity <endpoint id> (subjects.OpsSubject: quaycast.ops.[<tenant>.]<kind>),
// so that an endpoint selecting "quaycast:*" receives them as webhooks, with everything a delivery
// has. That publish is queued and made by one goroutine (opsEvents.Run): neither the API call nor
// the delivery that caused the event waits for it, and a failure is logged and counted, never
// theirs. The dead letter of an operator event is not stored again as one: an endpoint that
// refuses operator events would otherwise feed itself one more for each it refuses.
const OpsPrefix = "quaycast.sys.ops."

// The kinds of operator events: their types in the catalogue (subjects, group operator).
const (
	OpsEndpointCreated  = "endpoint_created"
	OpsEndpointUpdated  = "endpoint_updated"
	OpsEndpointDeleted  = "endpoint_deleted"
	OpsEndpointDisabled = "endpoint_disabled" // by quaycast: Reason says why (410 Gone)
	OpsBreakerOpened    = "breaker_opened"
	OpsBreakerClosed    = "breaker_closed"
	OpsDeadLetter       = "dead_letter_recorded"
)

// opsKinds are the kinds of the service's endpoint changes.
var opsKinds = map[service.EndpointChange]string{
	service.EndpointCreated: OpsEndpointCreated, service.EndpointUpdated: OpsEndpointUpdated, service.EndpointDeleted: OpsEndpointDeleted,
}

// OpsEvent is one operator event, as JSON: the body on core NATS, and the data of the stored
// event.
type OpsEvent struct {
	Kind       string    `json:"kind"`
	EndpointID string    `json:"endpoint_id"`
	Tenant     string    `json:"tenant,omitempty"` // absent: the operator's endpoint
	EventID    string    `json:"event_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

// OpsSubject is the subject of an operator event of kind about an endpoint of tenant ("": the
// operator's).
func OpsSubject(tenant, kind string) string {
	if tenant == "" {
		return OpsPrefix + "operator." + kind
	}
	return OpsPrefix + "tenant." + tenant + "." + kind
}

// opsQueue bounds the operator events waiting to be stored: far more than a burst of API calls
// makes while the stream answers; beyond it (the stream unreachable for long) they are dropped
// and counted.
const opsQueue = 4096

// opsDrain is how long the operator events queued when the gateway stops may still take to be
// stored.
const opsDrain = 5 * time.Second

// opsEvents publishes operator events: on core NATS at once, into the events stream through a
// queue that Run drains.
type opsEvents struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    zerolog.Logger
	result *prometheus.CounterVec // stored, duplicate, failed, dropped
	queue  chan *nats.Msg
	drain  time.Duration // opsDrain; shorter in tests

	mu       sync.Mutex
	stopped  bool // Run has returned: nothing more is stored
	dropping bool // a drop was logged; the next store logs that they stopped
}

func newOpsEvents(nc *nats.Conn, js jetstream.JetStream, log zerolog.Logger, result *prometheus.CounterVec) *opsEvents {
	return &opsEvents{nc: nc, js: js, log: log.With().Str("component", "operator-events").Logger(), result: result, queue: make(chan *nats.Msg, opsQueue), drain: opsDrain}
}

// publish publishes ev on core NATS and queues it for the events stream unless store is false. It
// never blocks.
func (o *opsEvents) publish(ev OpsEvent, store bool) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	data, _ := json.Marshal(ev)
	if err := o.nc.Publish(OpsSubject(ev.Tenant, ev.Kind), data); err != nil {
		o.log.Warn().Err(err).Str("endpoint_id", ev.EndpointID).Str("kind", ev.Kind).Msg("publish operator event")
	}
	if !store {
		return
	}
	m := opsMsg(ev, data)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.stopped {
		select {
		case o.queue <- m:
			return
		default:
		}
	}
	o.result.WithLabelValues("dropped").Inc()
	if !o.dropping {
		o.dropping = true
		o.log.Warn().Str("endpoint_id", ev.EndpointID).Str("kind", ev.Kind).Bool("stopped", o.stopped).Msg("operator event not stored: its queue is full, or the gateway is stopping")
	}
}

// opsMsg is the stored form of ev, whose JSON is data: an event of source quaycast about the
// endpoint, of its tenant. Its id, the Nats-Msg-Id, makes a retried publish store it once.
func opsMsg(ev OpsEvent, data []byte) *nats.Msg {
	env := subjects.Envelope{ID: "ops_" + nuid.Next(), Type: ev.Kind, Source: subjects.OpsSource, Entity: ev.EndpointID, OccurredAt: ev.At, Data: data}
	if ev.Tenant != "" {
		env.Tenants = []string{ev.Tenant}
	}
	body, _ := json.Marshal(env)
	m := NewEventMsg(env, body)
	m.Subject = subjects.OpsSubject(ev.Tenant, ev.Kind)
	return m
}

// Run stores the queued operator events in order until ctx ends, then what is still queued
// within the drain window (opsDrain). Stores run with a context of their own that outlives ctx by
// that window, so the one under way when ctx ends is not cut short. What the window leaves
// unstored, and what comes after, is dropped and counted, and said once with the count.
func (o *opsEvents) Run(ctx context.Context) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(o.drain, cancel) })()
	var batch []*nats.Msg
	for {
		var m *nats.Msg
		select {
		case m = <-o.queue:
		case <-ctx.Done():
			select {
			case m = <-o.queue:
			default:
				o.mu.Lock() // publish queues under it: nothing is left behind
				empty := len(o.queue) == 0
				o.stopped = empty
				o.mu.Unlock()
				if empty {
					return
				}
				continue
			}
		}
		batch = append(batch[:0], m)
	more:
		for len(batch) < opsBatch {
			select {
			case m := <-o.queue:
				batch = append(batch, m)
			default:
				break more
			}
		}
		if n := o.storeBatch(sctx, batch); n > 0 {
			o.dropRest(n)
			return
		}
	}
}

// opsBatch is how many queued operator events are published together, their acks awaited after.
// One at a time, each waiting for its ack, the store fell behind 10,000 endpoint creates in 6 s
// while the server was busy making their consumers, and 4,096 queued events were not enough.
const opsBatch = 256

// opsAckTimeout bounds the wait for a store's ack: a batch's, or one try of an event alone.
const opsAckTimeout = 5 * time.Second

// storeBatch publishes the batch without waiting, in order, then awaits the acks. An event whose
// ack does not come within opsAckTimeout is stored alone (store: the same id, so it is stored
// once), after the rest of the batch, so it may come after later events of its endpoint. It
// returns how many it could not store because ctx ended: the caller drops them with the rest.
func (o *opsEvents) storeBatch(ctx context.Context, batch []*nats.Msg) int {
	if len(batch) == 1 {
		if !o.store(ctx, batch[0]) {
			return 1
		}
		return 0
	}
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, m := range batch {
		// A copy: nats.go may publish it again on its own (no responders) while m is stored alone.
		futures[i], _ = o.js.PublishMsgAsync(copyMsg(m), jetstream.WithExpectStream(consumer.EventsStream)) // nil: stored alone below
	}
	actx, cancel := context.WithTimeout(ctx, opsAckTimeout)
	defer cancel()
	for i, f := range futures {
		if f != nil && o.acked(actx, f) {
			continue
		}
		if !o.store(ctx, batch[i]) {
			n := 1
			for _, f := range futures[i+1:] { // ctx has ended: only acks already in
				if f == nil || !o.acked(ctx, f) {
					n++
				}
			}
			return n
		}
	}
	return 0
}

// dropRest ends the store once the drain window is over: n events it could not store, and those
// still queued, are counted as dropped and said once.
func (o *opsEvents) dropRest(n int) {
	o.mu.Lock()
	o.stopped = true
	for len(o.queue) > 0 {
		<-o.queue
		n++
	}
	o.mu.Unlock()
	o.result.WithLabelValues("dropped").Add(float64(n))
	o.log.Warn().Int("dropped", n).Dur("drain", o.drain).Msg("operator events not stored: the gateway stopped before they were")
}

// store publishes m, trying a few times over some seconds (the same id: stored once), and counts
// the result. It returns false, counting nothing, when ctx ended first (the drain window is over):
// the caller counts it with the rest.
func (o *opsEvents) store(ctx context.Context, m *nats.Msg) bool {
	retry := backoff.Backoff{First: 200 * time.Millisecond, Max: 2 * time.Second}
	var err error
	for try := 0; try < 4; try++ {
		if try > 0 && backoff.Sleep(ctx, retry.Next()) != nil {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, opsAckTimeout)
		var ack *jetstream.PubAck
		ack, err = o.js.PublishMsg(pctx, m, jetstream.WithExpectStream(consumer.EventsStream))
		cancel()
		if err == nil {
			o.stored(ack.Duplicate)
			return true
		}
	}
	if ctx.Err() != nil {
		return false
	}
	o.result.WithLabelValues("failed").Inc()
	o.log.Warn().Err(err).Str("subject", m.Subject).Str("event_id", m.Header.Get(subjects.HeaderMsgID)).Msg("store operator event")
	return true
}

// copyMsg is m with headers of its own: each publish sets its expected-stream header.
func copyMsg(m *nats.Msg) *nats.Msg {
	h := make(nats.Header, len(m.Header))
	for k, v := range m.Header {
		h[k] = slices.Clone(v)
	}
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// acked waits for f's ack until ctx ends, and counts it. Once ctx has ended it takes an ack
// already in: select would pick at random between the two.
func (o *opsEvents) acked(ctx context.Context, f jetstream.PubAckFuture) bool {
	select {
	case ack := <-f.Ok():
		o.stored(ack.Duplicate)
		return true
	default:
	}
	select {
	case ack := <-f.Ok():
		o.stored(ack.Duplicate)
		return true
	case <-f.Err():
	case <-ctx.Done():
	}
	return false
}

// stored counts an event the stream took (duplicate: it had it already), and says so once after
// drops.
func (o *opsEvents) stored(duplicate bool) {
	result := "stored"
	if duplicate {
		result = "duplicate"
	}
	o.result.WithLabelValues(result).Inc()
	o.mu.Lock()
	if o.dropping {
		o.dropping = false
		o.log.Info().Msg("operator events stored again")
	}
	o.mu.Unlock()
}

// isOpsEvent reports whether subject (of an event, a tenant copy or a replay) holds an operator
// event.
func isOpsEvent(subject string) bool {
	_, source, _, err := subjects.ParseAny(subject)
	return err == nil && source == subjects.OpsSource
}
