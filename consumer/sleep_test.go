package consumer_test

import (
	"context"
	"encoding/json"
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
	"github.com/quaycast/quaycast/subjects"
)

// sleepy are options under which a quiet endpoint falls asleep within a second.
var sleepy = consumer.Options{PullExpiry: 150 * time.Millisecond, ShutdownTimeout: 2 * time.Second}

// asleep reports whether the endpoint sleeps: the manager counts it, and its consumer has no
// pull request open.
func (e *env) asleep(t *testing.T, m *manager, id string, sleeping int) bool {
	t.Helper()
	return m.Sleeping() == sleeping && e.consumerInfo(t, id).NumWaiting == 0
}

// A new endpoint with nothing pending starts asleep; an event of its type wakes it, it delivers,
// and falls asleep again once quiet; the next event wakes it again. An event of another type
// does not wake it.
func TestSleepingEndpointWakesForItsEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	other := e.createEndpoint(t, "cargo_gated_in")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "both endpoints asleep from the start", func() bool { return e.asleep(t, m, ep.ID, 2) })
	if got := m.State(ep.ID); got != consumer.StateDelivering {
		t.Errorf("state of a sleeping endpoint %q, want %q", got, consumer.StateDelivering)
	}

	for i, id := range []string{"first", "second"} {
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "C1"})
		testwait.For(t, 10*time.Second, id+" delivered", func() bool { return rec.hasDelivered(ep.ID, id) })
		testwait.For(t, 10*time.Second, "asleep again after "+id, func() bool { return e.asleep(t, m, ep.ID, 2) && e.drained(t, ep.ID) })
		if got := rec.delivered(ep.ID); len(got) != i+1 {
			t.Fatalf("delivered %v, want each event once", got)
		}
	}
	if got := rec.delivered(other.ID); len(got) != 0 {
		t.Errorf("the other endpoint got %v", got)
	}
}

// A replayed dead letter (replay.<endpoint>.… subject) wakes its sleeping endpoint, and only it.
func TestSleepingEndpointWakesForReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	other := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "both endpoints asleep", func() bool { return e.asleep(t, m, ep.ID, 2) })

	subject, err := subjects.ReplaySubject(ep.ID, "tos", "cargo_loaded")
	if err != nil {
		t.Fatal(err)
	}
	ev := event{id: "replayed", typ: "cargo_loaded", entity: "C1"}
	e.publishRaw(t, subject, envelope(ev), map[string]string{subjects.HeaderMsgID: "replay-1", subjects.HeaderEntity: ev.entity})
	testwait.For(t, 10*time.Second, "the replay delivered", func() bool { return rec.hasDelivered(ep.ID, "replayed") })
	testwait.For(t, 10*time.Second, "asleep again", func() bool { return e.asleep(t, m, ep.ID, 2) })
	if got := rec.delivered(other.ID); len(got) != 0 {
		t.Errorf("the other endpoint got %v", got)
	}
}

// An endpoint disabled while asleep keeps its position; events published meanwhile are
// delivered, in order, once it is enabled again.
func TestSleepingEndpointDisabledThenEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "asleep", func() bool { return e.asleep(t, m, ep.ID, 1) })

	setEnabled := func(on bool) {
		t.Helper()
		if _, err := e.reg.Update(t.Context(), ep.ID, func(x *consumer.Endpoint) error { x.Enabled = on; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	setEnabled(false)
	testwait.For(t, 10*time.Second, "stopped", func() bool { return m.State(ep.ID) == consumer.StateStopped && m.Sleeping() == 0 })
	ids := e.publishAcross(t, 5, 1) // one entity: delivered in stream order
	setEnabled(true)
	testwait.For(t, 10*time.Second, "every event delivered", func() bool { return len(rec.delivered(ep.ID)) == len(ids) })
	if got := rec.delivered(ep.ID); !slices.Equal(got, ids) {
		t.Errorf("delivered %v, want %v", got, ids)
	}
	testwait.For(t, 10*time.Second, "asleep again", func() bool { return e.asleep(t, m, ep.ID, 1) })
}

// After a gateway restart, an endpoint with events waiting starts awake and delivers them; one
// with nothing waiting starts asleep.
func TestRestartWithBacklogStartsAwake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	busy := e.createEndpoint(t, "cargo_loaded")
	idle := e.createEndpoint(t, "cargo_gated_in")
	rec := newRecorder(nil)
	m1 := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "both asleep", func() bool { return e.asleep(t, m1, busy.ID, 2) })
	m1.stop(t, 10*time.Second)

	ids := e.publishAcross(t, 5, 1) // while no gateway runs, one entity: delivered in stream order
	m2 := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "the backlog delivered", func() bool { return len(rec.delivered(busy.ID)) == len(ids) })
	if got := rec.delivered(busy.ID); !slices.Equal(got, ids) {
		t.Errorf("delivered %v, want %v", got, ids)
	}
	testwait.For(t, 10*time.Second, "both asleep after", func() bool { return e.asleep(t, m2, busy.ID, 2) && e.asleep(t, m2, idle.ID, 2) })
}

// A restart of the NATS server (a reconnect) does not leave a sleeping endpoint deaf: an event
// published after it wakes it.
func TestSleepingEndpointWakesAfterNATSRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	e := connectEnv(t, srv)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	resets := e.resets(t, ep.ID)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "asleep", func() bool { return e.asleep(t, m, ep.ID, 1) })

	natstest.Restart(t, srv)
	ev := event{id: "after-restart", typ: "cargo_loaded", entity: "C1"}
	testwait.For(t, 30*time.Second, "published after the restart", func() bool { // JetStream may still be recovering
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		msg := nats.NewMsg("evt.tos." + ev.typ)
		msg.Data = envelope(ev)
		msg.Header.Set(subjects.HeaderMsgID, ev.id)
		msg.Header.Set(subjects.HeaderEntity, ev.entity)
		_, err := e.js.PublishMsg(ctx, msg)
		return err == nil
	})
	testwait.For(t, 30*time.Second, "delivered after the restart", func() bool { return rec.hasDelivered(ep.ID, ev.id) })
	if resets.Load() == 0 { // a clean sleep is not trusted across a reconnect
		t.Error("woken after a reconnect without a reset of its consumer")
	}
	testwait.For(t, 30*time.Second, "asleep again", func() bool { return e.asleep(t, m, ep.ID, 1) })
	if got := rec.delivered(ep.ID); !slices.Equal(got, []string{ev.id}) {
		t.Errorf("delivered %v, want it once", got)
	}
}

// An endpoint does not sleep while it holds an event: the held event is still dead-lettered at
// its expiry horizon (expiry.go), and the endpoint sleeps only after.
func TestEndpointHoldingAnEventStaysAwakeUntilExpiry(t *testing.T) {
	t.Parallel()
	const maxAge = 3 * time.Second
	e := expiringEnv(t, maxAge)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome {
		return consumer.Outcome{Result: consumer.Retry, Status: 503}
	})
	o := sleepy
	o.RetrySchedule = []time.Duration{100 * time.Millisecond}
	o.ExpiryMargin = maxAge / 2
	m := startManager(t, e, rec, o)
	e.publishEvent(t, event{id: "held", typ: "cargo_loaded", entity: "C1"})
	testwait.For(t, 20*time.Second, "the held event dead-lettered", func() bool {
		for _, dl := range e.deadLetters(t, ep.ID) {
			if dl.EventID == "held" {
				return true
			}
		}
		return false
	})
	testwait.For(t, 10*time.Second, "asleep after the dead letter", func() bool { return e.asleep(t, m, ep.ID, 1) && e.drained(t, ep.ID) })
}

// A sleeping tenant's endpoint wakes for its tenant's copy (tnt.<tenant>.…), and neither for the
// original event nor for another tenant's copy; an operator's endpoint that did not opt in
// skips the original naming a tenant.
func TestSleepingTenantEndpointWakesForItsCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, err := e.reg.Create(t.Context(), consumer.Endpoint{URL: "http://127.0.0.1:9/hook", EventTypes: []string{"*"}, Enabled: true,
		Secret: consumer.NewSecret("whsec_test"), Tenant: "maersk"})
	if err != nil {
		t.Fatal(err)
	}
	op := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "both asleep", func() bool { return e.asleep(t, m, ep.ID, 2) })

	body := func(id string) []byte {
		var env map[string]any
		_ = json.Unmarshal(envelope(event{id: id, typ: "cargo_loaded", entity: "C1"}), &env)
		env["tenants"] = []string{"maersk"}
		b, _ := json.Marshal(env)
		return b
	}
	e.publishRaw(t, "evt.tos.cargo_loaded", body("original"), map[string]string{subjects.HeaderMsgID: "original"})
	e.publishRaw(t, subjects.TenantSubject("hlag", "tos", "cargo_loaded"), body("hlags"), map[string]string{subjects.HeaderMsgID: "hlags"})
	e.publishRaw(t, subjects.TenantSubject("maersk", "tos", "cargo_loaded"), body("copy"), map[string]string{subjects.HeaderMsgID: "copy"})
	testwait.For(t, 10*time.Second, "the copy delivered", func() bool { return rec.hasDelivered(ep.ID, "copy") })
	testwait.For(t, 10*time.Second, "both drained", func() bool { return e.drained(t, ep.ID) && e.drained(t, op.ID) })
	if got := rec.delivered(ep.ID); !slices.Equal(got, []string{"copy"}) {
		t.Errorf("the tenant's endpoint got %v, want [copy]", got)
	}
	if got := rec.delivered(op.ID); len(got) != 0 {
		t.Errorf("the operator's endpoint got %v, want nothing (it did not opt in to tenants' events)", got)
	}
}

// resets counts the ResetConsumer requests made for an endpoint's consumer.
func (e *env) resets(t *testing.T, id string) *atomic.Int32 {
	t.Helper()
	return e.countRequests(t, "$JS.API.CONSUMER.RESET.*."+id, "")
}

// countRequests counts the requests on subject (a wildcard) whose subject contains part, as the
// server sees them: from the time it returns until the test ends.
func (e *env) countRequests(t *testing.T, subject, part string) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	sub, err := e.js.Conn().Subscribe(subject, func(msg *nats.Msg) {
		if strings.Contains(msg.Subject, part) {
			n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// An endpoint that slept clean — everything sent acked, no pull request of its own left at the
// server — is woken without a reset of its consumer, wake after wake, and still delivers each
// event once and in order.
func TestCleanSleepWakesWithoutReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	resets := e.resets(t, ep.ID)
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "asleep from the start", func() bool { return e.asleep(t, m, ep.ID, 1) })

	var want []string
	for round := range 3 {
		ids := []string{fmt.Sprintf("r%d-a", round), fmt.Sprintf("r%d-b", round)}
		for _, id := range ids {
			e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "C1"})
		}
		want = append(want, ids...)
		testwait.For(t, 10*time.Second, "round delivered", func() bool { return len(rec.delivered(ep.ID)) == len(want) })
		testwait.For(t, 10*time.Second, "asleep again", func() bool { return e.asleep(t, m, ep.ID, 1) && e.drained(t, ep.ID) })
	}
	if got := rec.delivered(ep.ID); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if n := resets.Load(); n != 0 {
		t.Errorf("%d consumer resets for clean wakes, want none", n)
	}
}

// A pull request another subscriber leaves at the server while the endpoint sleeps (a gateway
// frozen past its lease) takes the next event out of turn. The woken worker, which skipped the
// reset, sees the gap in the consumer's delivery sequence and starts again from the ack floor:
// the event is still delivered, once.
func TestWokenWorkerResetsWhenAnotherPulledWhileAsleep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	resets := e.resets(t, ep.ID)
	rec := newRecorder(nil)
	o := sleepy
	o.AckWait = time.Second
	m := startManager(t, e, rec, o)
	testwait.For(t, 10*time.Second, "asleep", func() bool { return e.asleep(t, m, ep.ID, 1) })

	nc := e.js.Conn()
	foreign, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = foreign.Unsubscribe() })
	req, _ := json.Marshal(map[string]any{"batch": 1, "expires": (30 * time.Second).Nanoseconds()})
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+e.stream.CachedInfo().Config.Name+"."+ep.ID, foreign.Subject, req); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the foreign pull waiting", func() bool { return e.consumerInfo(t, ep.ID).NumWaiting == 1 })

	e.publishEvent(t, event{id: "taken", typ: "cargo_loaded", entity: "C1"})
	if _, err := foreign.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the foreign pull got nothing: %v", err)
	}
	testwait.For(t, 20*time.Second, "delivered after all", func() bool { return rec.hasDelivered(ep.ID, "taken") })
	testwait.For(t, 10*time.Second, "asleep again", func() bool { return e.asleep(t, m, ep.ID, 1) && e.drained(t, ep.ID) })
	if got := rec.delivered(ep.ID); !slices.Equal(got, []string{"taken"}) {
		t.Errorf("delivered %v, want it once", got)
	}
	if resets.Load() == 0 {
		t.Error("the woken worker never reset its consumer")
	}
}

// consumerCreates counts the create-or-update requests made for an endpoint's consumer.
func (e *env) consumerCreates(t *testing.T, ep *consumer.Endpoint) *atomic.Int32 {
	t.Helper()
	return e.countRequests(t, "$JS.API.CONSUMER.CREATE.>", "."+ep.ConsumerName())
}

// A restarted gateway reads an endpoint's consumer and, as it is already as wanted, does not
// update it (one JetStream API request per endpoint instead of two); it still starts asleep and
// delivers. A consumer that differs (another ack wait) is updated.
func TestRestartUsesConsumerAsItIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	first := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "asleep from the start", func() bool { return e.asleep(t, first, ep.ID, 1) })
	first.stop(t, 10*time.Second)

	creates := e.consumerCreates(t, ep)
	second := startManager(t, e, rec, sleepy)
	testwait.For(t, 10*time.Second, "asleep after the restart", func() bool { return e.asleep(t, second, ep.ID, 1) })
	if n := creates.Load(); n != 0 {
		t.Errorf("%d create requests for a consumer already as wanted, want 0", n)
	}
	e.publishEvent(t, event{id: "after-restart", typ: "cargo_loaded", entity: "C1"})
	testwait.For(t, 10*time.Second, "delivered after the restart", func() bool { return rec.hasDelivered(ep.ID, "after-restart") })
	testwait.For(t, 10*time.Second, "asleep again", func() bool { return e.asleep(t, second, ep.ID, 1) && e.drained(t, ep.ID) })
	second.stop(t, 10*time.Second)

	o := sleepy
	o.AckWait = 47 * time.Second
	third := startManager(t, e, rec, o)
	testwait.For(t, 10*time.Second, "asleep with the new ack wait", func() bool { return e.asleep(t, third, ep.ID, 1) })
	// The count's subscription hears of the request on a connection of its own, maybe after the
	// manager has its answer.
	testwait.For(t, 10*time.Second, "the consumer updated", func() bool { return creates.Load() > 0 })
	if n := creates.Load(); n != 1 {
		t.Errorf("%d create requests for a consumer with another ack wait, want 1", n)
	}
	if got := e.consumerInfo(t, ep.ID).Config.AckWait; got != 47*time.Second {
		t.Errorf("ack wait %s after the restart, want 47s", got)
	}
	if got := rec.delivered(ep.ID); len(got) != 1 {
		t.Errorf("delivered %v, want the one event once", got)
	}
}
