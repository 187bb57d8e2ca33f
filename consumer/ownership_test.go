package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// testLease is a lease the test holds or lets go of.
type testLease struct{ held atomic.Bool }

func (l *testLease) Held() bool { return l.held.Load() }

// startSupervised is startManager for a manager that delivers only what it is told to own.
func startSupervised(t *testing.T, e *env, d consumer.Deliverer, lease consumer.Lease, changed func()) *manager {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(t.Context())
	m := &manager{Manager: consumer.NewManager(e.js, e.stream, e.reg, d, log, consumer.Options{AckWait: 3 * time.Second}), cancel: cancel, done: make(chan error, 1)}
	m.Supervise(lease, changed)
	go func() { m.done <- m.Run(ctx) }()
	t.Cleanup(func() { m.stop(t, 30*time.Second) })
	testwait.For(t, 10*time.Second, "manager ready", m.Ready)
	return m
}

// A supervised manager delivers to the endpoints it owns and to no other, and once its lease
// has run out it posts nothing more, even before it is fenced; fenced, it stops at once, and an
// endpoint owned again resumes from where the consumer was acknowledged.
func TestSupervisedManagerDeliversWhatItOwnsWhileItsLeaseHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.createEndpoint(t, "*"), e.createEndpoint(t, "*")
	rec := newRecorder(func(context.Context, *consumer.Delivery) consumer.Outcome { return delivered })
	lease := &testLease{}
	lease.held.Store(true)
	var changes atomic.Int64
	m := startSupervised(t, e, rec, lease, func() { changes.Add(1) })
	testwait.For(t, 10*time.Second, "both endpoints known", func() bool { return len(m.Endpoints()) == 2 })

	if err := m.Own(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	e.publishEvent(t, event{id: "ev-1", typ: "cargo_loaded", entity: "MSCU1"})
	testwait.For(t, 10*time.Second, "ev-1 delivered to the owned endpoint", func() bool { return rec.hasDelivered(a.ID, "ev-1") })
	if got := rec.delivered(b.ID); len(got) != 0 {
		t.Fatalf("delivered %v to an endpoint this gateway does not own", got)
	}
	if m.State(b.ID) == consumer.StateDelivering {
		t.Fatalf("a worker runs for an endpoint not owned here")
	}

	lease.held.Store(false) // run out, not yet fenced
	e.publishEvent(t, event{id: "ev-2", typ: "cargo_loaded", entity: "MSCU1"})
	testwait.For(t, 10*time.Second, "ev-2 fetched by the worker", func() bool { return e.consumerInfo(t, a.ID).NumAckPending == 1 })
	time.Sleep(200 * time.Millisecond) // a worker without the check would have posted it by now
	m.Fence()
	if calls := rec.callsFor(a.ID, "ev-2"); len(calls) != 0 {
		t.Fatalf("ev-2 was posted %d times after the lease ran out", len(calls))
	}
	if m.State(a.ID) == consumer.StateDelivering {
		t.Fatalf("a worker still runs after Fence")
	}

	lease.held.Store(true) // joined again, and a owned again
	if err := m.Own(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "ev-2 delivered once owned again", func() bool { return rec.hasDelivered(a.ID, "ev-2") })
	if got := rec.delivered(a.ID); len(got) != 2 {
		t.Errorf("deliveries to the owned endpoint %v, want ev-1 then ev-2 once each", got)
	}
	select {
	case <-m.Disown(a.ID):
	case <-time.After(30 * time.Second):
		t.Fatal("Disown did not finish")
	}
	if changes.Load() == 0 {
		t.Error("the supervisor was never told of a registry change")
	}
}
