package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// parked is the number of events in the endpoint's parks, read from the server.
func (e *env) parked(t *testing.T, endpointID string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, consumer.ParkStream)
	if err != nil {
		t.Fatalf("park stream: %v", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("quaycast.park."+subjects.EncodeToken(endpointID)+".>"))
	if err != nil {
		t.Fatalf("park stream info: %v", err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// publishInterleaved publishes n events of entity A (ids, ...) with, after each, one
// event of one of `others` other entities; it returns A's ids and the others', in publish order.
func (e *env) publishInterleaved(t *testing.T, from, n, others int) (as, rest []string) {
	t.Helper()
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("A-%02d", i)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "A"})
		as = append(as, id)
		if others > 0 {
			o := fmt.Sprintf("O%02d-%02d", i%others, i)
			e.publishEvent(t, event{id: o, typ: "cargo_gated_in", entity: fmt.Sprintf("O%02d", i%others)})
			rest = append(rest, o)
		}
	}
	return as, rest
}

// startedFor lists the ids of the calls started for entity, in order.
func (r *recorder) startedFor(entity string) []string {
	var ids []string
	for _, c := range r.startedCalls() {
		if c.entity == entity {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// deliveredOnce fails the test unless each id was delivered exactly once, in this order, and
// nothing else of the entity was delivered.
func (r *recorder) deliveredOnce(t *testing.T, endpoint, entity string, ids []string) {
	t.Helper()
	var got []string
	for _, c := range r.snapshot() {
		if c.endpoint == endpoint && c.entity == entity && c.result == consumer.Delivered {
			got = append(got, c.id)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("entity %s delivered\n%v\nwant each once, in publish order\n%v", entity, got, ids)
	}
}

// One entity whose receiver fails does not stall its endpoint: with MaxAckPending 8 and 50
// events of A behind A's failing head, the events of 20 other entities are all delivered while A
// still fails — A's queued events are parked and acked, freeing their places. When A recovers,
// its events arrive exactly in stream order, none lost, and the park ends empty.
func TestParkKeepsOtherEntitiesFlowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	var healthy atomic.Bool
	rec := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.Entity == "A" && !healthy.Load() })
	m := startManager(t, e, rec, consumer.Options{MaxAckPending: 8, RetrySchedule: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second})

	as, others := e.publishInterleaved(t, 0, 50, 20)
	testwait.For(t, 30*time.Second, "the other entities delivered while A fails", func() bool { return rec.hasDelivered(ep.ID, others...) })
	if got := rec.startedFor("A"); slices.ContainsFunc(got, func(id string) bool { return id != "A-00" }) {
		t.Fatalf("A's calls while its head fails: %v, want A-00 only", got)
	}
	testwait.For(t, 10*time.Second, "A's 49 later events parked", func() bool { return e.parked(t, ep.ID) == 49 })
	want := consumer.Stuck{Blocked: 1, Parked: 1, ParkedEvents: 49, Entities: []string{"A"}}
	testwait.For(t, 10*time.Second, fmt.Sprintf("Stuck = %+v", want), func() bool { // counted just after each PubAck
		return equalStuck(m.Stuck(ep.ID), want)
	})

	healthy.Store(true)
	testwait.For(t, 30*time.Second, "A's events delivered once it recovers", func() bool { return rec.hasDelivered(ep.ID, as...) })
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	rec.deliveredOnce(t, ep.ID, "A", as)
	testwait.For(t, 10*time.Second, "nothing stuck", func() bool { return m.Stuck(ep.ID).IsZero() })
	rec.checkNoOverlap(t)
}

// A lane takes the events queued behind its head in one run. When one of them fails, those the
// run delivered before it are acked before it waits (they hold no place of MaxAckPending while it
// retries), the events behind it are parked — not those ahead of it — and the lane does not go on
// with the run it took: they come from the park, each once. A-00's slow POST lets A's other
// seven queue; whichever run A-02 is in, A-01 was delivered in the same run ahead of it.
func TestRunStopsWhereItsRestIsParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	as, _ := e.publishInterleaved(t, 0, 8, 0)
	var healthy atomic.Bool
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		switch {
		case d.Event.ID == "A-00":
			time.Sleep(300 * time.Millisecond) // the rest are queued meanwhile
		case d.Event.ID == "A-02" && !healthy.Load():
			return retry
		}
		return delivered
	})
	// MaxAckPending 64: runs of up to 8 (runLength).
	startManager(t, e, rec, consumer.Options{MaxAckPending: 64, RetrySchedule: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second})

	testwait.For(t, 30*time.Second, "A-03 to A-07 parked behind A-02", func() bool { return e.parked(t, ep.ID) == 5 })
	testwait.For(t, 10*time.Second, "only A-02 unacknowledged while it retries", func() bool {
		return e.consumerInfo(t, ep.ID).NumAckPending == 1
	})
	healthy.Store(true)
	testwait.For(t, 30*time.Second, "A's events delivered", func() bool { return rec.hasDelivered(ep.ID, as...) })
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	rec.deliveredOnce(t, ep.ID, "A", as)
	rec.checkNoOverlap(t)
}

// A run with a slow receiver acks as it goes: the events it delivered are acked before its next
// POST once they were held for a few milliseconds (runHold), rather than when the run ends —
// they would keep places of MaxAckPending meanwhile. A-00's slow POST lets A's other seven queue
// (a run of up to 8), each of them takes 20 ms, and while A-07's POST hangs only A-07 is
// unacknowledged.
func TestRunAcksAsItGoesWhenPOSTsAreSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	as, _ := e.publishInterleaved(t, 0, 8, 0)
	release := make(chan struct{})
	rec := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		switch d.Event.ID {
		case "A-00":
			time.Sleep(300 * time.Millisecond)
		case "A-07":
			select {
			case <-release:
			case <-ctx.Done():
				return retry
			}
		default:
			time.Sleep(20 * time.Millisecond)
		}
		return delivered
	})
	startManager(t, e, rec, consumer.Options{MaxAckPending: 64, AckWait: 30 * time.Second})

	testwait.For(t, 30*time.Second, "A-07 attempted", func() bool { return slices.Contains(rec.startedFor("A"), "A-07") })
	testwait.For(t, 10*time.Second, "only A-07 unacknowledged while its POST hangs", func() bool {
		return e.consumerInfo(t, ep.ID).NumAckPending == 1
	})
	close(release)
	testwait.For(t, 10*time.Second, "A's events delivered", func() bool { return rec.hasDelivered(ep.ID, as...) })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	rec.deliveredOnce(t, ep.ID, "A", as)
}

func equalStuck(a, b consumer.Stuck) bool {
	return a.Blocked == b.Blocked && a.Parked == b.Parked && a.ParkedEvents == b.ParkedEvents && slices.Equal(a.Entities, b.Entities)
}

// Order holds across a restart with events parked: the head, still unacknowledged, comes first,
// then the park, then what was published while no gateway ran — each once, nothing lost.
func TestParkSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	o := consumer.Options{MaxAckPending: 8, RetrySchedule: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second, ShutdownTimeout: time.Second}
	failing := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.Entity == "A" })
	m1 := startManager(t, e, failing, o)
	as, others := e.publishInterleaved(t, 0, 20, 5)
	testwait.For(t, 30*time.Second, "others delivered and A parked", func() bool {
		return failing.hasDelivered(ep.ID, others...) && e.parked(t, ep.ID) == 19
	})
	m1.stop(t, 10*time.Second)

	more, _ := e.publishInterleaved(t, 20, 5, 5) // while no gateway runs
	as = append(as, more...)

	e2 := connectEnv(t, e.srv) // as a restarted gateway: a new connection
	ok := newRecorder(nil)
	m2 := startManager(t, e2, ok, o)
	testwait.For(t, 30*time.Second, "A delivered after the restart", func() bool { return ok.hasDelivered(ep.ID, as...) })
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e2.drained(t, ep.ID) })
	ok.deliveredOnce(t, ep.ID, "A", as)
	if got := ok.startedFor("A"); !slices.Equal(got, as) {
		t.Errorf("A attempted after the restart in order\n%v\nwant\n%v", got, as)
	}
	if s := m2.Stuck(ep.ID); !s.IsZero() {
		t.Errorf("Stuck = %+v after the drain, want nothing", s)
	}
	ok.checkNoOverlap(t)
}

// A crash after a parked event was delivered but before it was deleted from the park does not
// send it again: its delivery mark covers it. The first gateway's connection may not delete from
// the park, so its lane stops exactly there; the next gateway finds the event still parked.
func TestParkDeliveredBeforeCrashNotSentAgain(t *testing.T) {
	t.Parallel()
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "gateway"},
			{Username: "nodelete", Password: "nodelete", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.MSG.DELETE." + consumer.ParkStream}},
			}},
		}
		o.NoAuthUser = "gateway"
	})
	e := connectEnv(t, srv)
	ep := e.createEndpoint(t, "*")
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("nodelete", "nodelete"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the denied deletes are the point
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e1 := envOn(t, srv, nc, streamOptions)
	marks1 := e1.newMarks(t)
	o := consumer.Options{RetrySchedule: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second, ShutdownTimeout: time.Second}

	var healthy atomic.Bool
	rec1 := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.Entity == "A" && !healthy.Load() })
	o.Marks = marks1
	m1 := startManager(t, e1, rec1, o)
	as, _ := e.publishInterleaved(t, 0, 10, 0)
	testwait.For(t, 10*time.Second, "A-01..A-09 parked", func() bool { return e.parked(t, ep.ID) == 9 })
	healthy.Store(true)
	testwait.For(t, 10*time.Second, "A-00 and the first parked event delivered", func() bool { return rec1.hasDelivered(ep.ID, "A-00", "A-01") })
	m1.stop(t, 15*time.Second) // its lane was retrying the delete of A-01; marks are written at stop
	rec1.deliveredOnce(t, ep.ID, "A", as[:2])
	if n := e.parked(t, ep.ID); n != 9 {
		t.Fatalf("%d events parked after the first gateway stopped, want 9 (A-01 delivered, not deleted)", n)
	}

	marks2 := e.newMarks(t)
	o.Marks = marks2
	rec2 := newRecorder(nil)
	startManager(t, e, rec2, o)
	testwait.For(t, 10*time.Second, "the rest of A delivered", func() bool { return rec2.hasDelivered(ep.ID, as[2:]...) })
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	if got := rec2.startedFor("A"); !slices.Equal(got, as[2:]) {
		t.Errorf("the next gateway sent A's\n%v\nwant\n%v (A-00, A-01 were delivered before)", got, as[2:])
	}
}

// Dead-lettering the head (MaxAttempts reached) drains its park next, in order.
func TestParkDrainsAfterDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	rec := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.ID == "A-00" })
	as, _ := e.publishInterleaved(t, 0, 10, 0) // before the start: all queued behind A-00 at once
	startManager(t, e, rec, consumer.Options{MaxAttempts: 3, RetrySchedule: []time.Duration{300 * time.Millisecond}})

	testwait.For(t, 10*time.Second, "A-01..A-09 delivered", func() bool { return rec.hasDelivered(ep.ID, as[1:]...) })
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
	testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
	rec.deliveredOnce(t, ep.ID, "A", as[1:])
	heads := rec.callsFor(ep.ID, "A-00")
	if len(heads) != 3 {
		t.Fatalf("A-00 attempted %d times, want 3 (MaxAttempts)", len(heads))
	}
	for _, c := range rec.startedCalls() {
		if c.entity == "A" && c.id != "A-00" && c.start.Before(heads[2].end) {
			t.Errorf("%s started before A-00's last attempt ended", c.id)
		}
	}
	st, err := e.js.Stream(t.Context(), consumer.ParkStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(t.Context()); err != nil || info.State.LastSeq != 9 {
		t.Errorf("park stream: %+v (%v), want the 9 events behind A-00 to have gone through it", info.State, err)
	}
	if list := e.deadLetters(t, ep.ID); len(list) != 1 || list[0].EventID != "A-00" || list[0].Attempts != 3 {
		t.Errorf("dead letters %+v, want A-00 after 3 attempts", list)
	}
}

// Deleting an endpoint removes its parked events with its consumer.
func TestParkPurgedWithEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	rec := newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome { return retry })
	startManager(t, e, rec, consumer.Options{RetrySchedule: []time.Duration{50 * time.Millisecond}})
	e.publishInterleaved(t, 0, 5, 0)
	testwait.For(t, 10*time.Second, "A-01..A-04 parked", func() bool { return e.parked(t, ep.ID) == 4 })
	if err := e.reg.Delete(t.Context(), ep.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	testwait.For(t, 10*time.Second, "consumer and park gone", func() bool { return !e.hasConsumer(t, ep.ID) && e.parked(t, ep.ID) == 0 })
}

// parkedHeadGone leaves what a stopped gateway left: A-01..A-04 (cargo_loaded) parked behind
// A-00, which failed, and the endpoint no longer taking cargo_loaded, so that A-00 never comes
// again. It returns the endpoint, A's ids and the options the next gateway runs with.
func parkedHeadGone(t *testing.T, e *env) (*consumer.Endpoint, []string, consumer.Options) {
	t.Helper()
	ep := e.createEndpoint(t, "cargo_loaded", "cargo_gated_in")
	o := consumer.Options{RetrySchedule: []time.Duration{50 * time.Millisecond}, AckWait: 3 * time.Second, ShutdownTimeout: time.Second}
	m1 := startManager(t, e, newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome { return retry }), o)
	as, _ := e.publishInterleaved(t, 0, 5, 0)
	testwait.For(t, 10*time.Second, "A-01..A-04 parked", func() bool { return e.parked(t, ep.ID) == 4 })
	m1.stop(t, 10*time.Second)
	if _, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error {
		ep.EventTypes = []string{"cargo_gated_in"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ep, as, o
}

// A park whose head never comes again after a restart — the endpoint no longer takes its type —
// is drained once the consumer has nothing more to send, not held for ever.
func TestParkDrainsWhenItsHeadNeverComes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, as, o := parkedHeadGone(t, e)

	rec := newRecorder(nil)
	startManager(t, e, rec, o)
	testwait.For(t, 15*time.Second, "the parked events delivered", func() bool { return rec.hasDelivered(ep.ID, as[1:]...) })
	rec.deliveredOnce(t, ep.ID, "A", as[1:])
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
}

// A newer event of a parked entity, the first of it route sees after a restart, waits for the
// park: its lane, claimed by it, finds the park's gate not open yet and the park then drains
// ahead of it, rather than the event going at once as the only one queued (lanes.go, handed).
func TestParkDrainsBeforeANewerEventOfItsEntity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, as, o := parkedHeadGone(t, e) // A-00 never comes again: A-05 is A's first
	e.publishEvent(t, event{id: "A-05", typ: "cargo_gated_in", entity: "A"})

	rec := newRecorder(nil)
	startManager(t, e, rec, o)
	want := append(as[1:], "A-05")
	testwait.For(t, 15*time.Second, "the parked events and A-05 delivered", func() bool { return rec.hasDelivered(ep.ID, want...) })
	rec.deliveredOnce(t, ep.ID, "A", want)
	if got := rec.startedFor("A"); !slices.Equal(got, want) {
		t.Errorf("A attempted after the restart\n%v\nwant the park first\n%v", got, want)
	}
	testwait.For(t, 10*time.Second, "park empty", func() bool { return e.parked(t, ep.ID) == 0 })
}

// Lanes back from a retry wait keep the endpoint's bound on POSTs in flight: eight entities
// fail their first attempt at once — each lane's wait lets the next ready lane start, so all
// eight wait together — and come back within a few milliseconds of each other to POSTs that
// take 50 ms; no more than MaxInFlight (2) are ever in flight.
func TestResumedLanesKeepTheBoundOnPOSTs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("E%d-00", i)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: fmt.Sprintf("E%d", i)})
		ids = append(ids, id)
	}
	rec := newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome {
		time.Sleep(50 * time.Millisecond)
		return delivered
	})
	failFirst := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		if d.Attempt == 1 {
			return retry
		}
		return rec.Deliver(ctx, d)
	})
	runManager(t, e, failFirst, consumer.Options{MaxInFlight: 2, RetrySchedule: []time.Duration{300 * time.Millisecond}})

	testwait.For(t, 30*time.Second, "every entity delivered on its second attempt", func() bool { return rec.hasDelivered(ep.ID, ids...) })
	if n := failFirst.peakRunning(); n > 2 {
		t.Errorf("%d POSTs in flight at once, want at most MaxInFlight 2", n)
	}
	if n := len(failFirst.startedCalls()); n != 16 {
		t.Errorf("%d attempts, want 16: each entity's failed first and its delivery", n)
	}
}

// A lane back from its retry wait gets a POST through while another entity's backlog keeps every
// other place busy: with MaxInFlight 1, F fails once and H has 150 events of 20 ms each; F's
// second attempt comes before H's backlog is done (3 s), not after it.
func TestRetryNotHeldBehindABusyEntity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	e.publishEvent(t, event{id: "F-00", typ: "cargo_loaded", entity: "F"})
	var hs []string
	for i := range 150 {
		id := fmt.Sprintf("H-%03d", i)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "H"})
		hs = append(hs, id)
	}
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		switch {
		case d.Event.Entity == "F" && d.Attempt == 1:
			return retry
		case d.Event.Entity == "H":
			time.Sleep(20 * time.Millisecond)
		}
		return delivered
	})
	runManager(t, e, rec, consumer.Options{MaxInFlight: 1, RetrySchedule: []time.Duration{100 * time.Millisecond}})

	testwait.For(t, 60*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, append(hs, "F-00")...) })
	var retried, lastH time.Time
	for _, c := range rec.snapshot() {
		switch {
		case c.id == "F-00" && c.attempt == 2:
			retried = c.start
		case c.id == hs[len(hs)-1]:
			lastH = c.start
		}
	}
	if !retried.Before(lastH) {
		t.Errorf("F's retry started %v after H's last event: it waited out H's backlog", retried.Sub(lastH))
	}
}

// When an endpoint's breaker paused it and a probe then goes through, the lanes that failed
// during the outage try again at once instead of waiting out their step of the retry schedule
// (an hour here); a wait the receiver asked for with Retry-After is kept, and an entity that
// fails alone while others are delivered keeps its step until an outage ends.
func TestRecoveryEndsScheduledRetryWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	var up atomic.Bool
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		switch {
		case d.Event.ID == "poison" && d.Attempt == 1 || d.Event.ID == "asked" && !up.Load():
			return consumer.Outcome{Result: consumer.Retry, Status: 503, RetryAfter: retryAfter(d.Event.ID)}
		case up.Load():
			return delivered
		case d.Event.ID == "probe":
			return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: 200 * time.Millisecond}
		}
		return consumer.Outcome{Result: consumer.Retry, Status: 503}
	})
	runManager(t, e, rec, consumer.Options{RetrySchedule: []time.Duration{time.Hour}})

	// Before the outage: an entity that fails alone keeps its wait while another is delivered.
	e.publishEvent(t, event{id: "poison", typ: "cargo_loaded", entity: "P"})
	testwait.For(t, 10*time.Second, "poison tried", func() bool { return len(rec.callsFor(ep.ID, "poison")) == 1 })
	up.Store(true)
	e.publishEvent(t, event{id: "fine", typ: "cargo_loaded", entity: "F"})
	e.publishEvent(t, event{id: "fine-2", typ: "cargo_loaded", entity: "F"})
	testwait.For(t, 10*time.Second, "fine delivered", func() bool { return rec.hasDelivered(ep.ID, "fine", "fine-2") })
	if n := len(rec.startedCalls()); n != 3 {
		t.Errorf("%d attempts before the outage, want 3: poison, fine, fine-2 (poison keeps its wait)", n)
	}
	up.Store(false)

	// The outage: one lane fails with a scheduled wait, one with the receiver's Retry-After, and
	// the breaker opens on a third.
	e.publishEvent(t, event{id: "failed", typ: "cargo_loaded", entity: "A"})
	e.publishEvent(t, event{id: "asked", typ: "cargo_loaded", entity: "B"})
	testwait.For(t, 10*time.Second, "both tried", func() bool {
		return len(rec.callsFor(ep.ID, "failed")) == 1 && len(rec.callsFor(ep.ID, "asked")) == 1
	})
	e.publishEvent(t, event{id: "probe", typ: "cargo_loaded", entity: "C"})
	testwait.For(t, 10*time.Second, "the breaker's pause", func() bool { return len(rec.callsFor(ep.ID, "probe")) >= 1 })
	up.Store(true) // the next probe goes through

	testwait.For(t, 30*time.Second, "the failed lane tried again on recovery, not in an hour", func() bool {
		return rec.hasDelivered(ep.ID, "probe", "failed")
	})
	if n := len(rec.callsFor(ep.ID, "asked")); n != 1 {
		t.Errorf("asked tried %d times, want once: the receiver's Retry-After is kept", n)
	}
	rec.checkNoOverlap(t)
}

// retryAfter is what the test's receiver asks for: an hour for "asked", nothing otherwise.
func retryAfter(id string) time.Duration {
	if id == "asked" {
		return time.Hour
	}
	return 0
}

// Lanes that wait out a retry do not hold the endpoint's goroutines: with two POSTs in flight at
// most and two entities failing for an hour, every other entity is still delivered.
func TestRetryWaitsDoNotHoldUpOtherEntities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		if strings.HasPrefix(d.Event.Entity, "FAILING") {
			return consumer.Outcome{Result: consumer.Retry, Status: 503}
		}
		return delivered
	})
	runManager(t, e, rec, consumer.Options{MaxInFlight: 2, RetrySchedule: []time.Duration{time.Hour}})
	for _, id := range []string{"failing-1", "failing-2"} {
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: strings.ToUpper(strings.ReplaceAll(id, "-", ""))})
	}
	testwait.For(t, 10*time.Second, "both failing entities tried", func() bool {
		return len(rec.callsFor(ep.ID, "failing-1")) == 1 && len(rec.callsFor(ep.ID, "failing-2")) == 1
	})
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("fine-%d", i)
		ids = append(ids, id)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: fmt.Sprintf("FINE%d", i%10)})
	}
	testwait.For(t, 20*time.Second, "every other entity delivered", func() bool { return rec.hasDelivered(ep.ID, ids...) })
	rec.checkNoOverlap(t)
}
