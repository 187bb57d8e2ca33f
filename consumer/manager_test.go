package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

var (
	delivered = consumer.Outcome{Result: consumer.Delivered, Status: 200}
	retry     = consumer.Outcome{Result: consumer.Retry, Status: 503}
)

// Every event is delivered exactly once and each entity's events in publish order, while the
// receiver fails about a third of the attempts; one entity never has two deliveries in flight.
func TestManagerOrderPerEntityUnderRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")

	// Each (event, attempt) fails or not by a seeded draw, so a run does not depend on timing.
	const seed = 20260301
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		h := fnv.New64a()
		h.Write([]byte(d.Event.ID))
		rng := rand.New(rand.NewPCG(seed, h.Sum64()+uint64(d.Attempt)))
		time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond) // the receiver's work
		if rng.Float64() < 0.3 {
			return retry
		}
		return delivered
	})
	startManager(t, e, rec, consumer.Options{
		RetrySchedule: []time.Duration{time.Millisecond, 3 * time.Millisecond},
		MaxInFlight:   8,
		AckWait:       3 * time.Second,
	})

	const n, entities = 300, 20
	types := []string{"cargo_loaded", "cargo_gated_in", "cargo_unloaded", "cargo_held", "shipment_booked"}
	rng := rand.New(rand.NewPCG(seed, 0))
	want := make(map[string][]string) // entity -> ids in publish order
	var all []string
	for i := range n {
		ev := event{id: fmt.Sprintf("evt-%03d", i), typ: types[rng.IntN(len(types))], entity: fmt.Sprintf("MSCU%07d", rng.IntN(entities))}
		e.publishEvent(t, ev)
		want[ev.entity] = append(want[ev.entity], ev.id)
		all = append(all, ev.id)
	}

	testwait.For(t, 30*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, all...) })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })

	calls := rec.snapshot()
	count := make(map[string]int)
	got := make(map[string][]string)
	for _, c := range calls {
		if c.result == consumer.Delivered {
			count[c.id]++
			got[c.entity] = append(got[c.entity], c.id)
		}
	}
	for _, id := range all {
		if count[id] != 1 {
			t.Errorf("event %s delivered %d times, want exactly once", id, count[id])
		}
	}
	for entity, ids := range want {
		if !slices.Equal(got[entity], ids) {
			t.Errorf("entity %s delivered in order\n%v\nwant publish order\n%v", entity, got[entity], ids)
		}
	}
	retries := 0
	for _, id := range all {
		cs := rec.callsFor(ep.ID, id)
		for i, c := range cs {
			if c.attempt != i+1 {
				t.Errorf("event %s call %d has Attempt %d, want %d", id, i+1, c.attempt, i+1)
			}
			if last := i == len(cs)-1; last != (c.result == consumer.Delivered) {
				t.Errorf("event %s call %d answered %v, but was called again after a success or never succeeded", id, i+1, c.result)
			}
		}
		retries += len(cs) - 1
	}
	if retries < n/5 {
		t.Errorf("only %d retries over %d events: the script did not fail ~30%% of attempts", retries, n)
	}
	rec.checkNoOverlap(t)
}

// An entity whose receiver hangs does not hold up the others.
func TestManagerEntitiesInParallel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	release, open := gate(t)
	rec := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		if d.Event.Entity == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return retry
			}
		}
		return delivered
	})
	startManager(t, e, rec, consumer.Options{ShutdownTimeout: 2 * time.Second})

	e.publishEvent(t, event{id: "slow-1", typ: "cargo_loaded", entity: "slow"})
	e.publishEvent(t, event{id: "slow-2", typ: "cargo_loaded", entity: "slow"})
	var fast []string
	for i := range 10 {
		id := "fast-" + strconv.Itoa(i)
		e.publishEvent(t, event{id: id, typ: "cargo_gated_in", entity: "fast" + strconv.Itoa(i%5)})
		fast = append(fast, id)
	}

	testwait.For(t, 10*time.Second, "other entities delivered while slow is blocked", func() bool { return rec.hasDelivered(ep.ID, fast...) })
	var started []string
	for _, c := range rec.startedCalls() {
		if c.entity == "slow" {
			started = append(started, c.id)
		}
	}
	if !slices.Equal(started, []string{"slow-1"}) {
		t.Fatalf("slow entity calls started = %v, want only slow-1 (slow-2 waits behind it)", started)
	}
	if len(rec.callsFor(ep.ID, "slow-1")) != 0 {
		t.Fatal("slow-1 returned before it was released")
	}

	open()
	testwait.For(t, 10*time.Second, "slow entity delivered once released", func() bool { return rec.hasDelivered(ep.ID, "slow-1", "slow-2") })
	var slow []string
	for _, id := range rec.delivered(ep.ID) {
		if id == "slow-1" || id == "slow-2" {
			slow = append(slow, id)
		}
	}
	if !slices.Equal(slow, []string{"slow-1", "slow-2"}) {
		t.Errorf("slow entity delivered %v, want [slow-1 slow-2]", slow)
	}
	rec.checkNoOverlap(t)
}

// barrier returns once the manager has applied every registry change made before it: the
// manager applies changes one at a time, so when a new endpoint's consumer exists, the
// changes before it are done.
func (e *env) barrier(t *testing.T) {
	t.Helper()
	ep, err := e.reg.Create(t.Context(), consumer.Endpoint{URL: "http://127.0.0.1:9/barrier", EventTypes: []string{"train_departed"}})
	if err != nil {
		t.Fatalf("create barrier endpoint: %v", err)
	}
	testwait.For(t, 10*time.Second, "barrier endpoint applied", func() bool { return e.hasConsumer(t, ep.ID) })
}

// The consumers follow the registry: its filters, its enabled flag, its deletion.
func TestManagerFollowsRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	rec := newRecorder(nil)
	witness := e.createEndpoint(t, "*")
	ep := e.createEndpoint(t, "cargo_loaded")
	m := startManager(t, e, rec, consumer.Options{AckWait: 3 * time.Second})
	if m.Workers() != 2 {
		t.Fatalf("Workers() = %d when ready, want 2", m.Workers())
	}
	const entity = "MSCU7654321"
	pub := func(id, typ string) { e.publishEvent(t, event{id: id, typ: typ, entity: entity}) }
	assertGot := func(what string, want ...string) {
		t.Helper()
		if got := rec.delivered(ep.ID); !slices.Equal(got, want) {
			t.Fatalf("%s: endpoint got %v, want %v", what, got, want)
		}
	}

	// Subscribed to cargo_loaded only: a cargo_gated_in before it is not sent.
	pub("gated-1", "cargo_gated_in")
	pub("loaded-1", "cargo_loaded")
	testwait.For(t, 10*time.Second, "loaded-1 delivered", func() bool {
		return rec.hasDelivered(ep.ID, "loaded-1") && rec.hasDelivered(witness.ID, "gated-1", "loaded-1")
	})
	assertGot("subscribed to cargo_loaded", "loaded-1")

	// Subscribing to cargo_gated_in: later ones arrive, the one published before does not.
	updated, err := e.reg.Update(ctx, ep.ID, func(ep *consumer.Endpoint) error {
		ep.EventTypes = append(ep.EventTypes, "cargo_gated_in")
		return nil
	})
	if err != nil {
		t.Fatalf("update types: %v", err)
	}
	testwait.For(t, 10*time.Second, "consumer filters updated", func() bool {
		f := e.consumerInfo(t, ep.ID).Config.FilterSubjects
		return slices.Contains(f, "evt.*.cargo_gated_in") && slices.Contains(f, "evt.*.cargo_loaded")
	})
	pub("gated-2", "cargo_gated_in")
	pub("loaded-2", "cargo_loaded")
	testwait.For(t, 10*time.Second, "gated-2 and loaded-2 delivered", func() bool { return rec.hasDelivered(ep.ID, "gated-2", "loaded-2") })
	assertGot("after adding cargo_gated_in", "loaded-1", "gated-2", "loaded-2")
	if c := rec.callsFor(ep.ID, "loaded-2"); c[len(c)-1].revision < updated.Revision {
		t.Errorf("loaded-2 delivered with definition revision %d, want at least %d", c[len(c)-1].revision, updated.Revision)
	}

	// Disabled: nothing is sent, the events wait on the consumer.
	if _, err := e.reg.Update(ctx, ep.ID, func(ep *consumer.Endpoint) error { ep.Enabled = false; return nil }); err != nil {
		t.Fatalf("disable: %v", err)
	}
	e.barrier(t)
	if m.Workers() != 1 {
		t.Fatalf("Workers() = %d with one endpoint disabled, want 1", m.Workers())
	}
	pub("loaded-3", "cargo_loaded")
	pub("gated-3", "cargo_gated_in")
	testwait.For(t, 10*time.Second, "witness got loaded-3, gated-3", func() bool { return rec.hasDelivered(witness.ID, "loaded-3", "gated-3") })
	assertGot("while disabled", "loaded-1", "gated-2", "loaded-2")
	if info := e.consumerInfo(t, ep.ID); info.NumPending != 2 || info.NumAckPending != 0 {
		t.Fatalf("disabled endpoint's consumer: %d pending, %d ack pending; want 2 waiting, none out", info.NumPending, info.NumAckPending)
	}

	// Enabled again: what was published meanwhile comes, in order.
	if _, err := e.reg.Update(ctx, ep.ID, func(ep *consumer.Endpoint) error { ep.Enabled = true; return nil }); err != nil {
		t.Fatalf("enable: %v", err)
	}
	testwait.For(t, 10*time.Second, "loaded-3 and gated-3 delivered after re-enabling", func() bool {
		return rec.hasDelivered(ep.ID, "loaded-3", "gated-3")
	})
	assertGot("after re-enabling", "loaded-1", "gated-2", "loaded-2", "loaded-3", "gated-3")

	// Deleted: the consumer goes, nothing more is sent.
	if err := e.reg.Delete(ctx, ep.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	testwait.For(t, 10*time.Second, "consumer deleted", func() bool { return !e.hasConsumer(t, ep.ID) })
	pub("loaded-4", "cargo_loaded")
	testwait.For(t, 10*time.Second, "witness got loaded-4", func() bool { return rec.hasDelivered(witness.ID, "loaded-4") })
	assertGot("after delete", "loaded-1", "gated-2", "loaded-2", "loaded-3", "gated-3")
	if e.hasConsumer(t, ep.ID) {
		t.Error("deleted endpoint's consumer came back")
	}
	rec.checkNoOverlap(t)
}

// A new endpoint gets the events published after it was created, never those before, and each
// delivery carries the event as published.
func TestManagerNewEndpointStartsAfterCreation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder(nil)
	m := startManager(t, e, rec, consumer.Options{})

	for i, entity := range []string{"E", "E", "E", "F"} {
		e.publishEvent(t, event{id: "old-" + strconv.Itoa(i), typ: "cargo_loaded", entity: entity})
	}
	ep := e.createEndpoint(t, "*")
	events := []event{
		{"new-0", "cargo_loaded", "E"}, {"new-1", "cargo_gated_in", "E"}, {"new-2", "cargo_held", "E"}, {"new-3", "cargo_loaded", "F"},
	}
	seqs := make(map[string]uint64)
	var ids []string
	for _, ev := range events {
		seqs[ev.id] = e.publishEvent(t, ev)
		ids = append(ids, ev.id)
	}
	testwait.For(t, 10*time.Second, "new endpoint running", func() bool { return m.Workers() == 1 })
	testwait.For(t, 10*time.Second, "new events delivered", func() bool { return rec.hasDelivered(ep.ID, ids...) })

	calls := rec.snapshot()
	if len(calls) != len(events) {
		t.Errorf("%d calls, want %d (one per new event, none for the old ones): %v", len(calls), len(events), rec.delivered(ep.ID))
	}
	for _, ev := range events {
		cs := rec.callsFor(ep.ID, ev.id)
		if len(cs) != 1 {
			t.Errorf("%s: %d calls, want 1", ev.id, len(cs))
			continue
		}
		c := cs[0]
		if c.seq != seqs[ev.id] || c.subject != "evt.tos."+ev.typ || string(c.body) != string(envelope(ev)) ||
			c.entity != ev.entity || c.attempt != 1 || c.revision != ep.Revision || c.pubTime.IsZero() {
			t.Errorf("%s delivered as seq %d subject %s entity %s attempt %d revision %d published %v body %s;\nwant seq %d subject evt.tos.%s entity %s attempt 1 revision %d, the body as published",
				ev.id, c.seq, c.subject, c.entity, c.attempt, c.revision, c.pubTime, c.body, seqs[ev.id], ev.typ, ev.entity, ep.Revision)
		}
	}
}

// Events that cannot be delivered as published are recorded in the invalid-events stream and
// never reach the Deliverer; the valid events of the same entity around them still go out.
func TestManagerSetsInvalidEventsAside(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.createEndpoint(t, "*")
	b := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	startManager(t, e, rec, consumer.Options{})

	const entity = "MSCU1111111"
	hdr := func(id, entity string) map[string]string {
		return map[string]string{subjects.HeaderMsgID: id, subjects.HeaderEntity: entity}
	}
	noEntity := []byte(`{"id":"bad-3","type":"cargo_loaded","source":"tos","occurred_at":"2026-03-01T14:05:09Z","data":{}}`)
	type published struct {
		subject string
		body    []byte
	}
	invalid := make(map[uint64]published)
	setAside := func(subject string, body []byte, headers map[string]string) {
		invalid[e.publishRaw(t, subject, body, headers)] = published{subject, body}
	}

	e.publishEvent(t, event{id: "valid-1", typ: "cargo_loaded", entity: entity})
	setAside("evt.tos.cargo_loaded", []byte("this is not json"), hdr("bad-1", entity))
	setAside("evt.tos.cargo_loaded", envelope(event{id: "bad-2", typ: "cargo_gated_in", entity: entity}), hdr("bad-2", entity))
	setAside("evt.tos.cargo_loaded", noEntity, hdr("bad-3", entity))
	setAside("evt.tos.cargo_loaded", envelope(event{id: "bad-4", typ: "cargo_loaded", entity: entity}), hdr("bad-4", "MSCU2222222"))
	setAside("evt.tms.cargo_loaded", envelope(event{id: "bad-5", typ: "cargo_loaded", entity: entity}), hdr("bad-5", entity))
	setAside("evt.tos.cargo_loaded.extra", envelope(event{id: "bad-6", typ: "cargo_loaded", entity: entity}), hdr("bad-6", entity))
	e.publishEvent(t, event{id: "valid-2", typ: "cargo_loaded", entity: entity})

	for _, ep := range []*consumer.Endpoint{a, b} {
		testwait.For(t, 10*time.Second, "valid events delivered to "+ep.ID, func() bool { return rec.hasDelivered(ep.ID, "valid-1", "valid-2") })
		testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
		if got := rec.delivered(ep.ID); !slices.Equal(got, []string{"valid-1", "valid-2"}) {
			t.Errorf("%s got %v, want [valid-1 valid-2]", ep.ID, got)
		}
	}
	if calls := rec.snapshot(); len(calls) != 4 {
		t.Errorf("%d Deliver calls, want 4 (2 valid events x 2 endpoints)", len(calls))
	}

	// Both endpoints' consumers saw every invalid event: one record each all the same.
	inv, err := e.js.Stream(t.Context(), consumer.InvalidStream)
	if err != nil {
		t.Fatalf("invalid stream: %v", err)
	}
	info, err := inv.Info(t.Context())
	if err != nil {
		t.Fatalf("invalid stream info: %v", err)
	}
	if info.State.Msgs != uint64(len(invalid)) {
		t.Errorf("invalid stream holds %d records, want %d (one per invalid event)", info.State.Msgs, len(invalid))
	}
	seen := make(map[uint64]bool)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		r, err := inv.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("invalid record %d: %v", seq, err)
		}
		if r.Subject != "quaycast.invalid.events" {
			t.Errorf("record %d on %s, want quaycast.invalid.events", seq, r.Subject)
		}
		if r.Header.Get("Quaycast-Reason") == "" {
			t.Errorf("record %d has no Quaycast-Reason", seq)
		}
		eventSeq, err := strconv.ParseUint(r.Header.Get("Quaycast-Stream-Seq"), 10, 64)
		p, ok := invalid[eventSeq]
		if err != nil || !ok || seen[eventSeq] {
			t.Errorf("record %d: Quaycast-Stream-Seq %q is not one invalid event once", seq, r.Header.Get("Quaycast-Stream-Seq"))
			continue
		}
		seen[eventSeq] = true
		if string(r.Data) != string(p.body) || r.Header.Get("Quaycast-Subject") != p.subject {
			t.Errorf("record of event %d: subject %q body %q, want %q %q", eventSeq, r.Header.Get("Quaycast-Subject"), r.Data, p.subject, p.body)
		}
		t.Logf("event %d set aside: %s", eventSeq, r.Header.Get("Quaycast-Reason"))
	}
	if len(seen) != len(invalid) {
		t.Errorf("records for %d invalid events, want %d", len(seen), len(invalid))
	}
}

// A restarted manager resumes from what was not acknowledged, in stream order: the events of an
// entity that kept failing come first and in order, before any later event of that entity.
func TestManagerRestartKeepsOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	o := consumer.Options{RetrySchedule: []time.Duration{20 * time.Millisecond}, AckWait: 2 * time.Second, ShutdownTimeout: 2 * time.Second}

	failing := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.Entity == "E" })
	m1 := startManager(t, e, failing, o)
	var eIDs, others []string
	for i := range 5 {
		id := "E-" + strconv.Itoa(i)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "E"})
		eIDs = append(eIDs, id)
		for _, x := range []string{"a", "b"} {
			id := "O" + x + "-" + strconv.Itoa(i)
			e.publishEvent(t, event{id: id, typ: "cargo_gated_in", entity: "O" + x})
			others = append(others, id)
		}
	}
	testwait.For(t, 10*time.Second, "other entities delivered while E fails", func() bool {
		return failing.hasDelivered(ep.ID, others...) && len(failing.callsFor(ep.ID, "E-0")) >= 3
	})
	for _, c := range failing.startedCalls() {
		if c.entity == "E" && c.id != "E-0" {
			t.Fatalf("%s attempted while E-0 had not been delivered", c.id)
		}
	}
	m1.stop(t, 10*time.Second)

	// Published while no manager runs.
	e.publishEvent(t, event{id: "E-5", typ: "cargo_loaded", entity: "E"})
	e.publishEvent(t, event{id: "Oa-5", typ: "cargo_loaded", entity: "Oa"})
	eIDs = append(eIDs, "E-5")

	e2 := connectEnv(t, e.srv) // as a restarted gateway: a new connection
	ok := newRecorder(nil)
	startManager(t, e2, ok, o)
	testwait.For(t, 15*time.Second, "E delivered after restart", func() bool { return ok.hasDelivered(ep.ID, append(eIDs, "Oa-5")...) })
	var eCalls []string
	for _, c := range ok.startedCalls() {
		if c.entity == "E" {
			eCalls = append(eCalls, c.id)
		}
	}
	if !slices.Equal(eCalls, eIDs) {
		t.Errorf("E attempted after restart in order %v, want each once in publish order %v", eCalls, eIDs)
	}
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e2.drained(t, ep.ID) })
	failing.checkNoOverlap(t)
	ok.checkNoOverlap(t)
}

// At shutdown, deliveries in flight finish (their context is not the cancelled one) and Run
// returns within ShutdownTimeout; what was not acknowledged goes to the next manager.
func TestManagerShutdownLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	all := e.publishAcross(t, 48, 12)
	o := consumer.Options{MaxInFlight: 4, ShutdownTimeout: 3 * time.Second, AckWait: 5 * time.Second}
	slow := newRecorder(func(ctx context.Context, _ *consumer.Delivery) consumer.Outcome {
		select {
		case <-time.After(200 * time.Millisecond):
			return delivered
		case <-ctx.Done():
			return consumer.Outcome{Result: consumer.Retry, Err: ctx.Err()}
		}
	})
	m1 := startManager(t, e, slow, o)
	testwait.For(t, 10*time.Second, "deliveries in flight", func() bool { return slow.running() == o.MaxInFlight })
	m1.stop(t, o.ShutdownTimeout+10*time.Second)
	if limit := o.ShutdownTimeout + time.Second; m1.took > limit {
		t.Errorf("Run returned %v after cancel, want within %v", m1.took, limit)
	}
	if n := slow.running(); n != 0 {
		t.Errorf("%d deliveries still in flight after Run returned", n)
	}
	first := slow.delivered(ep.ID)
	for _, c := range slow.snapshot() {
		if c.result != consumer.Delivered || c.ctxErr != nil {
			t.Errorf("%s in flight at shutdown came to %v (context error %v), want finished undisturbed", c.id, c.result, c.ctxErr)
		}
	}
	if len(first) >= len(all) {
		t.Fatalf("all %d events delivered before shutdown: nothing left to prove", len(all))
	}

	e2 := connectEnv(t, e.srv)
	fast := newRecorder(nil)
	startManager(t, e2, fast, o)
	var rest []string
	for _, id := range all {
		if !slices.Contains(first, id) {
			rest = append(rest, id)
		}
	}
	testwait.For(t, 15*time.Second, "the unacknowledged events delivered by the next manager", func() bool { return fast.hasDelivered(ep.ID, rest...) })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e2.drained(t, ep.ID) })
	t.Logf("first manager delivered %d of %d; Run returned %v after cancel", len(first), len(all), m1.took)
}

// Once shutdown has begun, no new delivery starts: lanes finish what is in flight and leave the
// rest unacknowledged for the next run.
func TestManagerShutdownStartsNoNewDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createEndpoint(t, "*")
	const entities = 12
	e.publishAcross(t, entities*3, entities)
	gate := make(chan struct{})
	rec := newRecorder(func(ctx context.Context, _ *consumer.Delivery) consumer.Outcome {
		select {
		case <-gate:
			return delivered
		case <-ctx.Done():
			return consumer.Outcome{Result: consumer.Retry, Err: ctx.Err()}
		}
	})
	m := startManager(t, e, rec, consumer.Options{MaxInFlight: entities, ShutdownTimeout: 10 * time.Second})
	testwait.For(t, 10*time.Second, "one delivery per entity in flight", func() bool { return rec.running() == entities })

	m.cancel()
	// Not an assertion: give the worker time to see the cancellation and stop fetching, while
	// every delivery slot is taken, so nothing can start in between.
	time.Sleep(500 * time.Millisecond)
	before := len(rec.startedCalls())
	close(gate)
	m.stop(t, 15*time.Second)

	if after := rec.startedCalls()[before:]; len(after) > 0 {
		var ids []string
		for _, c := range after {
			ids = append(ids, c.id)
		}
		t.Errorf("%d deliveries started after shutdown began, want none: %v", len(after), ids)
	}
}

// A delivery that outlasts ShutdownTimeout is cancelled, Run returns, and the event comes again
// to the next manager.
func TestManagerShutdownCancelsAfterTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	all := e.publishAcross(t, 6, 3)
	hang := newRecorder(func(ctx context.Context, _ *consumer.Delivery) consumer.Outcome {
		<-ctx.Done()
		return consumer.Outcome{Result: consumer.Retry, Err: ctx.Err()}
	})
	o := consumer.Options{ShutdownTimeout: 300 * time.Millisecond}
	m1 := startManager(t, e, hang, o)
	testwait.For(t, 10*time.Second, "deliveries in flight", func() bool { return hang.running() == 3 })
	m1.stop(t, 10*time.Second)
	if m1.took < o.ShutdownTimeout || m1.took > o.ShutdownTimeout+3*time.Second {
		t.Errorf("Run returned %v after cancel, want just after ShutdownTimeout %v", m1.took, o.ShutdownTimeout)
	}
	for _, c := range hang.snapshot() {
		if c.ctxErr == nil {
			t.Errorf("%s: context not cancelled at ShutdownTimeout", c.id)
		}
	}

	ok := newRecorder(nil)
	e2 := connectEnv(t, e.srv)
	startManager(t, e2, ok, o)
	testwait.For(t, 10*time.Second, "every event delivered by the next manager", func() bool { return ok.hasDelivered(ep.ID, all...) })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e2.drained(t, ep.ID) })
}

// Attempts are ours: a retry counts one, an open breaker none; the wait between attempts
// follows the schedule, or the receiver's Retry-After. The breaker is another endpoint's: its
// recovery would end this one's scheduled waits (TestRecoveryEndsScheduledRetryWaits).
func TestManagerAttemptsAndWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	breakerEP := e.createEndpoint(t, "cargo_gated_in")
	script := map[string][]consumer.Outcome{
		"retry-twice": {retry, retry},
		"retry-after": {{Result: consumer.Retry, Status: 429, RetryAfter: 400 * time.Millisecond}},
		"breaker":     {{Result: consumer.BreakerOpen}, {Result: consumer.BreakerOpen}},
	}
	var mu sync.Mutex
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		mu.Lock()
		defer mu.Unlock()
		s := script[d.Event.ID]
		if len(s) == 0 {
			return delivered
		}
		script[d.Event.ID] = s[1:]
		return s[0]
	})
	o := consumer.Options{RetrySchedule: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}}
	startManager(t, e, rec, o)
	for _, id := range []string{"retry-twice", "retry-after"} {
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: id})
	}
	e.publishEvent(t, event{id: "breaker", typ: "cargo_gated_in", entity: "breaker"})
	testwait.For(t, 10*time.Second, "all delivered", func() bool {
		return rec.hasDelivered(ep.ID, "retry-twice", "retry-after") && rec.hasDelivered(breakerEP.ID, "breaker")
	})

	tests := []struct {
		ep       *consumer.Endpoint
		id       string
		attempts []int
		minWaits []time.Duration // between the end of a call and the start of the next
	}{
		{ep, "retry-twice", []int{1, 2, 3}, []time.Duration{80 * time.Millisecond, 160 * time.Millisecond}}, // schedule -20% jitter
		{ep, "retry-after", []int{1, 2}, []time.Duration{400 * time.Millisecond}},
		{breakerEP, "breaker", []int{1, 1, 1}, []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		cs := rec.callsFor(tt.ep.ID, tt.id)
		var attempts []int
		for _, c := range cs {
			attempts = append(attempts, c.attempt)
		}
		if !slices.Equal(attempts, tt.attempts) {
			t.Errorf("%s: attempts %v, want %v", tt.id, attempts, tt.attempts)
			continue
		}
		for i, least := range tt.minWaits {
			if wait := cs[i+1].start.Sub(cs[i].end); wait < least {
				t.Errorf("%s: attempt %d came %v after the previous one, want at least %v", tt.id, i+2, wait, least)
			}
		}
	}
}

// A permanent refusal is not retried: the event is dead-lettered at once, with what the
// receiver said, and the entity's later events go on.
func TestManagerPermanentIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	refused := consumer.Outcome{Result: consumer.Permanent, Status: 422, Err: errors.New("schema mismatch")}
	rec := failingWhen(refused, func(d *consumer.Delivery) bool { return d.Event.ID == "refused" })
	m := newManager(t, e, rec, consumer.Options{RetrySchedule: []time.Duration{20 * time.Millisecond}})
	var mu sync.Mutex
	var dead []string
	m.OnDeadLetter(func(dl consumer.DeadLetter) { mu.Lock(); dead = append(dead, dl.EndpointID); mu.Unlock() })
	m.start(t)

	refusedSeq := e.publishEvent(t, event{id: "refused", typ: "cargo_loaded", entity: "E"})
	e.publishEvent(t, event{id: "after", typ: "cargo_loaded", entity: "E"})

	testwait.For(t, 10*time.Second, "the event after a permanently refused one delivered", func() bool { return rec.hasDelivered(ep.ID, "after") })
	if n := len(rec.callsFor(ep.ID, "refused")); n != 1 {
		t.Errorf("permanently refused event attempted %d times, want 1", n)
	}
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	mu.Lock()
	if !slices.Equal(dead, []string{ep.ID}) {
		t.Errorf("OnDeadLetter called for %v, want once for %s", dead, ep.ID)
	}
	mu.Unlock()

	list := e.deadLetters(t, ep.ID)
	if len(list) != 1 {
		t.Fatalf("%d dead letters, want 1: %+v", len(list), list)
	}
	dl := list[0]
	if dl.EventID != "refused" || dl.EventSeq != refusedSeq || dl.Attempts != 1 || dl.LastStatus != 422 ||
		dl.LastError != "schema mismatch" || dl.Reason == "" || dl.Entity != "E" ||
		string(dl.Body) != string(envelope(event{id: "refused", typ: "cargo_loaded", entity: "E"})) {
		t.Errorf("dead letter = %+v (body %s), want event refused (seq %d), 1 attempt, status 422, its error, a reason and the body as published", dl, dl.Body, refusedSeq)
	}
}

// At start, a manager deletes endpoint consumers whose endpoint is gone, and only those: not a
// consumer that is no endpoint's, nor one whose record cannot be decoded (after a rollback, say),
// which keeps its consumer and position.
func TestManagerRemovesOrphanConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	deleted := e.createEndpoint(t, "*")
	kept := e.createEndpoint(t, "cargo_loaded")
	unreadable := e.createEndpoint(t, "*")
	m1 := startManager(t, e, newRecorder(nil), consumer.Options{})
	m1.stop(t, 10*time.Second)
	if err := e.reg.Delete(t.Context(), deleted.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.kv.Put(t.Context(), unreadable.ID, []byte(`{"id": "written by a later release", "url": 7}`)); err != nil {
		t.Fatal(err)
	}
	stray := consumer.NewID() // an endpoint consumer with no registry entry at all
	for _, name := range []string{stray, "audit"} {
		if _, err := e.stream.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: name}); err != nil {
			t.Fatalf("create consumer %s: %v", name, err)
		}
	}
	if !e.hasConsumer(t, deleted.ID) {
		t.Fatal("setup: the deleted endpoint's consumer should still exist while no manager runs")
	}

	startManager(t, e, newRecorder(nil), consumer.Options{})
	want := []string{"audit", kept.ID, unreadable.ID}
	slices.Sort(want)
	var got []string
	testwait.For(t, 10*time.Second, "the orphans removed and only those", func() bool { // off the watch loop
		got = e.consumerNames(t)
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}

// A head retried for longer than AckWait is kept alive with InProgress: JetStream never
// redelivers it (nor what is queued behind it) while its lane holds it.
func TestHeldEventsKeptAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	var healthy atomic.Bool
	rec := failingWhen(retry, func(*consumer.Delivery) bool { return !healthy.Load() })
	// Long enough that a keep-alive (every AckWait/3) is not late on a starved machine: it
	// failed beside stress-ng with 600 ms.
	const ackWait = 2 * time.Second
	startManager(t, e, rec, consumer.Options{AckWait: ackWait, RetrySchedule: []time.Duration{100 * time.Millisecond}})
	e.publishEvent(t, event{id: "A-1", typ: "cargo_loaded", entity: "A"})
	e.publishEvent(t, event{id: "A-2", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "A-1 tried", func() bool { return len(rec.callsFor(ep.ID, "A-1")) > 0 })
	time.Sleep(3 * ackWait) // the condition: several AckWaits pass while A-1 is held
	if n := e.consumerInfo(t, ep.ID).NumRedelivered; n != 0 {
		t.Errorf("%d events redelivered by JetStream while their lane held them", n)
	}
	healthy.Store(true)
	testwait.For(t, 10*time.Second, "A delivered", func() bool { return rec.hasDelivered(ep.ID, "A-1", "A-2") })
	if got := rec.delivered(ep.ID); !slices.Equal(got, []string{"A-1", "A-2"}) {
		t.Errorf("delivered %v, want [A-1 A-2]", got)
	}
}

// Another subscriber pulls from the endpoint's consumer and never acks: the pull requests of a
// gateway frozen past its lease, which stay open on the server until they expire. What it takes
// comes back only after AckWait, behind later events of its entity, and must not then be acked
// as sent because a later event raised the entity's mark: the worker restarts from the ack floor
// when a delivery goes elsewhere. Every event arrives once, each entity's in publish order.
func TestManagerDeliveriesTakenByAnotherSubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	startManager(t, e, rec, consumer.Options{AckWait: 2 * time.Second})
	testwait.For(t, 10*time.Second, "consumer created", func() bool {
		_, err := e.stream.Consumer(t.Context(), ep.ConsumerName())
		return err == nil
	})

	frozen, err := jetstream.New(natstest.Connect(t, e.srv))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := frozen.Consumer(t.Context(), consumer.EventsStream, ep.ConsumerName())
	if err != nil {
		t.Fatal(err)
	}
	// Open before anything is published: the server serves it with the worker's own request.
	if _, err := cons.Fetch(5, jetstream.FetchMaxWait(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	ids := e.publishAcross(t, 40, 4)

	testwait.For(t, 30*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, ids...) })
	for k := range 4 {
		var want []string
		for i := k; i < len(ids); i += 4 {
			want = append(want, ids[i])
		}
		rec.deliveredOnce(t, ep.ID, "MSCU"+strconv.Itoa(k), want)
	}
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	rec.checkNoOverlap(t)
}

// An endpoint disabled and enabled again while its worker still waits for a POST gets its next
// worker only once that one has ended: two at once would each send what the other holds or has
// just delivered (JetStream sends the unacknowledged events to the new one after its reset).
func TestReenabledEndpointWaitsForItsLastWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	release, open := gate(t)
	var b1Calls atomic.Int32
	rec := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		if d.Event.ID == "b1" && b1Calls.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return delivered
	})
	startManager(t, e, rec, consumer.Options{ShutdownTimeout: time.Minute})

	e.publishEvent(t, event{id: "b1", typ: "cargo_loaded", entity: "B"})
	e.publishEvent(t, event{id: "a1", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "a1 delivered while b1's POST hangs", func() bool { return rec.hasDelivered(ep.ID, "a1") && b1Calls.Load() == 1 })
	for _, enabled := range []bool{false, true} {
		if _, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error { ep.Enabled = enabled; return nil }); err != nil {
			t.Fatal(err)
		}
		e.barrier(t)
	}
	e.publishEvent(t, event{id: "c1", typ: "cargo_loaded", entity: "C"})
	time.Sleep(2 * time.Second) // a worker started beside the hanging one would have sent b1 and a1 again by now
	open()
	testwait.For(t, 30*time.Second, "c1 delivered by the next worker", func() bool { return rec.hasDelivered(ep.ID, "c1") })
	for _, id := range []string{"a1", "b1", "c1"} {
		if n := len(rec.callsFor(ep.ID, id)); n != 1 {
			t.Errorf("%s POSTed %d times, want 1", id, n)
		}
	}
}
