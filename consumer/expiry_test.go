package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// expiringEnv is an env whose events stream keeps events for maxAge only.
func expiringEnv(t *testing.T, maxAge time.Duration) *env {
	t.Helper()
	return connectEnvWith(t, natstest.Start(t), consumer.StreamOptions{MaxAge: maxAge, Duplicates: maxAge / 2, MaxConsumers: 100})
}

// runManager runs a manager like startManager does, counting its dead letters.
func runManager(t *testing.T, e *env, d consumer.Deliverer, o consumer.Options) (deadCount func() int) {
	t.Helper()
	m := newManager(t, e, d, o)
	var n atomic.Int64
	m.OnDeadLetter(func(consumer.DeadLetter) { n.Add(1) })
	m.start(t)
	return func() int { return int(n.Load()) }
}

const expiryReason = "about to expire from the events stream (max age "

// checkExpired fails the test unless the dead letters are exactly one per id in want, in the
// order of want within each entity, each with the expiry reason and recorded before its event
// could leave the stream (and not before its horizon).
func checkExpired(t *testing.T, dls []consumer.DeadLetter, want []event, maxAge, margin time.Duration, published map[string]time.Time) {
	t.Helper()
	var got, wantIDs []string
	byEntity := map[string][]string{}
	for _, dl := range dls {
		got = append(got, dl.EventID)
		byEntity[dl.Entity] = append(byEntity[dl.Entity], dl.EventID)
		if !strings.HasPrefix(dl.Reason, expiryReason) {
			t.Errorf("dead letter of %s has reason %q, want %q...", dl.EventID, dl.Reason, expiryReason)
		}
		if p, ok := published[dl.EventID]; ok {
			if expires := p.Add(maxAge); !dl.DeadAt.Before(expires) {
				t.Errorf("dead letter of %s recorded at %v, not before its event expired at %v", dl.EventID, dl.DeadAt, expires)
			}
			if horizon := p.Add(maxAge - margin); dl.DeadAt.Before(horizon) {
				t.Errorf("dead letter of %s recorded at %v, before its horizon %v", dl.EventID, dl.DeadAt, horizon)
			}
		}
	}
	wantByEntity := map[string][]string{}
	for _, ev := range want {
		wantIDs = append(wantIDs, ev.id)
		wantByEntity[ev.entity] = append(wantByEntity[ev.entity], ev.id)
	}
	slices.Sort(got)
	slices.Sort(wantIDs)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("dead letters for %v, want one each for %v", got, wantIDs)
	}
	for entity, ids := range wantByEntity {
		if !slices.Equal(byEntity[entity], ids) {
			t.Errorf("entity %s dead-lettered in order %v, want %v", entity, byEntity[entity], ids)
		}
	}
}

// An event a lane holds and retries is dead-lettered when it comes within the margin of the
// stream's max age — although its retry schedule would wait an hour, past its expiry — and the
// entity's next event is delivered after it.
func TestExpiryDeadLettersHeldEvent(t *testing.T) {
	t.Parallel()
	const maxAge, margin = 10 * time.Second, 4 * time.Second
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "*")
	unavailable := consumer.Outcome{Result: consumer.Retry, Status: 503, Err: errors.New("503 Service Unavailable")}
	rec := failingWhen(unavailable, func(d *consumer.Delivery) bool { return d.Event.ID == "stuck" })
	deadCount := runManager(t, e, rec, consumer.Options{ExpiryMargin: margin, RetrySchedule: []time.Duration{300 * time.Millisecond, time.Hour}})

	stuck := event{id: "stuck", typ: "cargo_loaded", entity: "MSCU1111111"}
	seq := e.publishEvent(t, stuck)
	testwait.For(t, 10*time.Second, "stuck attempted twice", func() bool { return len(rec.callsFor(ep.ID, "stuck")) >= 2 })
	published := rec.callsFor(ep.ID, "stuck")[0].pubTime
	// The entity's next event comes while the first waits, late enough in the first one's life
	// that it is far from its own horizon when its turn comes.
	time.Sleep(time.Until(published.Add(3 * time.Second)))
	e.publishEvent(t, event{id: "next", typ: "cargo_gated_out", entity: stuck.entity})

	testwait.For(t, 3*maxAge, "next delivered", func() bool { return rec.hasDelivered(ep.ID, "next") })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	dls := e.deadLetters(t, ep.ID)
	checkExpired(t, dls, []event{stuck}, maxAge, margin, map[string]time.Time{"stuck": published})
	if dl := dls[0]; dl.EventSeq != seq || dl.Attempts != 2 || dl.LastStatus != 503 || dl.Reason != "about to expire from the events stream (max age 10s) undelivered" {
		t.Errorf("dead letter = %+v, want seq %d, 2 attempts, last status 503 and the expiry reason", dl, seq)
	}
	if n := len(rec.callsFor(ep.ID, "stuck")); n != 2 {
		t.Errorf("stuck attempted %d times, want 2: dead-lettered at its horizon instead of a third attempt", n)
	}
	if n := deadCount(); n != 1 {
		t.Errorf("OnDeadLetter called %d times, want 1", n)
	}
	rec.checkNoOverlap(t)
}

// While the breaker is open the consumer is paused: events published meanwhile are never
// fetched. Each is dead-lettered before it expires, none is dropped silently, and when the
// receiver is back none of them is POSTed or dead-lettered again: JetStream sends them, and they
// are acked as done.
func TestExpiryDeadLettersEventsNotFetchedWhileBreakerOpen(t *testing.T) {
	t.Parallel()
	const maxAge, margin = 10 * time.Second, 4 * time.Second
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "*")
	var up atomic.Bool
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		if up.Load() {
			return delivered
		}
		return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: time.Hour, Err: errors.New("breaker open")}
	})
	deadCount := runManager(t, e, rec, consumer.Options{ExpiryMargin: margin})

	first := event{id: "evt-0", typ: "cargo_loaded", entity: "A"}
	e.publishEvent(t, first)
	testwait.For(t, 10*time.Second, "consumer paused by the open breaker", func() bool { return e.consumerInfo(t, ep.ID).Paused })
	all := []event{first}
	entities := []string{"A", "B", "C", "D"}
	for i := 1; i < 9; i++ {
		all = append(all, event{id: fmt.Sprintf("evt-%d", i), typ: "cargo_gated_in", entity: entities[i%len(entities)]})
		e.publishEvent(t, all[i])
	}

	// The stream's info read now and then, as the gateway's metrics do: the sweeper skips its
	// passes while the oldest event so read is not past its horizon, and must not skip past it.
	refresh, stopRefresh := context.WithCancel(t.Context())
	defer stopRefresh()
	go func() {
		for tick := time.Tick(500 * time.Millisecond); ; {
			_, _ = e.stream.Info(refresh)
			select {
			case <-refresh.Done():
				return
			case <-tick:
			}
		}
	}()
	testwait.For(t, 3*maxAge, "every event dead-lettered", func() bool { return len(e.deadLetters(t, ep.ID)) >= len(all) })
	published := map[string]time.Time{}
	for _, c := range rec.snapshot() {
		published[c.id] = c.pubTime
	}
	checkExpired(t, e.deadLetters(t, ep.ID), all, maxAge, margin, published)
	for _, c := range rec.startedCalls() {
		if c.id != first.id {
			t.Errorf("%s was fetched and tried while the consumer was paused", c.id)
		}
	}

	up.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := e.stream.ResumeConsumer(ctx, ep.ID); err != nil { // as the pause ending would
		t.Fatalf("resume consumer: %v", err)
	}
	e.publishEvent(t, event{id: "after", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "the next event delivered", func() bool { return rec.hasDelivered(ep.ID, "after") })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	for _, c := range rec.snapshot() {
		if c.result != consumer.BreakerOpen && c.id != "after" {
			t.Errorf("%s was POSTed (%v) after it was dead-lettered", c.id, c.result)
		}
	}
	if n := deadCount(); n != len(all) {
		t.Errorf("OnDeadLetter called %d times, want %d", n, len(all))
	}
	checkExpired(t, e.deadLetters(t, ep.ID), all, maxAge, margin, published)
}

// With --max-ack-pending 1 and a head whose POST hangs, the events behind it are never fetched.
// Each is dead-lettered before it expires — those of the head's entity only after the head — and
// none of them is POSTed when the consumer moves on.
func TestExpiryDeadLettersEventsBehindMaxAckPending(t *testing.T) {
	t.Parallel()
	const maxAge, margin = 10 * time.Second, 4 * time.Second
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "*")
	release, open := gate(t)
	rec := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		if d.Event.ID == "head" {
			select { // the receiver hangs, then fails
			case <-release:
			case <-ctx.Done():
			}
			return consumer.Outcome{Result: consumer.Retry, Status: 503, Err: errors.New("503 Service Unavailable")}
		}
		return delivered
	})
	deadCount := runManager(t, e, rec, consumer.Options{ExpiryMargin: margin, MaxAckPending: 1, RetrySchedule: []time.Duration{time.Hour}})

	head := event{id: "head", typ: "cargo_loaded", entity: "A"}
	all := []event{head}
	e.publishEvent(t, head)
	testwait.For(t, 10*time.Second, "head attempted", func() bool { return len(rec.startedCalls()) == 1 })
	entities := []string{"B", "A", "C"}
	var others []event // not of the head's entity
	for i := 1; i < 10; i++ {
		ev := event{id: fmt.Sprintf("evt-%d", i), typ: "cargo_gated_in", entity: entities[i%len(entities)]}
		all = append(all, ev)
		if ev.entity != head.entity {
			others = append(others, ev)
		}
		e.publishEvent(t, ev)
	}

	// While the head is held, the sweeper dead-letters the other entities' events, not the head's.
	testwait.For(t, 3*maxAge, "other entities' events dead-lettered", func() bool { return len(e.deadLetters(t, ep.ID)) >= len(others) })
	checkExpired(t, e.deadLetters(t, ep.ID), others, maxAge, margin, nil)

	open()
	testwait.For(t, 3*maxAge, "every event dead-lettered", func() bool { return len(e.deadLetters(t, ep.ID)) >= len(all) })
	e.publishEvent(t, event{id: "after", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "the next event delivered", func() bool { return rec.hasDelivered(ep.ID, "after") })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })

	published := map[string]time.Time{"head": rec.callsFor(ep.ID, "head")[0].pubTime}
	checkExpired(t, e.deadLetters(t, ep.ID), all, maxAge, margin, published)
	for _, c := range rec.startedCalls() {
		if c.id != "head" && c.id != "after" {
			t.Errorf("%s was POSTed although it was dead-lettered", c.id)
		}
	}
	if n := len(rec.callsFor(ep.ID, "head")); n != 1 {
		t.Errorf("head attempted %d times, want 1", n)
	}
	if n := deadCount(); n != len(all) {
		t.Errorf("OnDeadLetter called %d times, want %d", n, len(all))
	}
}

// A disabled endpoint has no worker, but its events still age: each is dead-lettered before it
// leaves the stream, and when the endpoint is enabled again none of them is POSTed.
func TestExpiryDeadLettersEventsOfDisabledEndpoint(t *testing.T) {
	t.Parallel()
	const maxAge, margin = 10 * time.Second, 4 * time.Second
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "*")
	if _, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error { ep.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(nil)
	deadCount := runManager(t, e, rec, consumer.Options{ExpiryMargin: margin})
	var all []event
	for i := range 6 {
		all = append(all, event{id: fmt.Sprintf("off-%d", i), typ: "cargo_loaded", entity: []string{"A", "B"}[i%2]})
		e.publishEvent(t, all[i])
	}
	// Read from the stream by the sweep: an event that left the stream first is never counted.
	testwait.For(t, 3*maxAge, "every event dead-lettered", func() bool { return len(e.deadLetters(t, ep.ID)) >= len(all) })
	// OnDeadLetter is called once the record is written: the last call may follow the read above.
	testwait.For(t, 10*time.Second, "every dead letter counted", func() bool { return deadCount() >= len(all) })
	if n := deadCount(); n != len(all) {
		t.Errorf("OnDeadLetter called %d times, want %d", n, len(all))
	}

	if _, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error { ep.Enabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	e.publishEvent(t, event{id: "on", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "the next event delivered", func() bool { return rec.hasDelivered(ep.ID, "on") })
	if got := rec.delivered(ep.ID); !slices.Equal(got, []string{"on"}) {
		t.Errorf("delivered %v after the endpoint was enabled, want only [on]", got)
	}
}

// A worker caught up asks the server nothing at its sweeps, although the stream holds an event
// past its horizon (of another endpoint's type): nothing its consumer has not sent is older than
// the last event it was sent, when the server had nothing more for it. 10,000 endpoints woken
// together on a stream older than the horizon each read their consumer's info every sweep.
func TestExpirySweepAsksNothingOfACaughtUpConsumer(t *testing.T) {
	t.Parallel()
	const maxAge, margin = 10 * time.Second, 4 * time.Second // a sweep every 2 s
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome { return delivered })
	runManager(t, e, rec, consumer.Options{ExpiryMargin: margin, PullExpiry: time.Minute})

	e.publishEvent(t, event{id: "old", typ: "cargo_gated_in", entity: "A"}) // not the endpoint's
	time.Sleep(maxAge - margin + 500*time.Millisecond)
	if _, err := e.stream.Info(t.Context()); err != nil { // as the gateway's metrics read it
		t.Fatal(err)
	}
	e.publishEvent(t, event{id: "new", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "new delivered", func() bool { return rec.hasDelivered(ep.ID, "new") })

	var infos atomic.Int64
	nc := natstest.Connect(t, e.srv)
	if _, err := nc.Subscribe("$JS.API.CONSUMER.INFO."+consumer.EventsStream+"."+ep.ConsumerName(), func(*nats.Msg) { infos.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*margin/2 + 500*time.Millisecond) // two sweeps
	if n := infos.Load(); n != 0 {
		t.Errorf("%d consumer info requests in two sweeps of a caught-up worker, want none", n)
	}
}
