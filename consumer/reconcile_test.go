package consumer_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// A consumer that cannot be created (here: the stream's consumer limit) is retried on a timer,
// and the endpoint is listed as degraded until it converges — nobody edits it.
func TestManagerRetriesConsumersUntilTheyConverge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	info, err := e.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	limited := cfg
	limited.MaxConsumers = 2 // the manager's watcher, and one endpoint
	if _, err := e.js.UpdateStream(t.Context(), limited); err != nil {
		t.Fatalf("lower the stream's MaxConsumers: %v", err)
	}
	first := e.createEndpoint(t, "*")
	second := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, consumer.Options{ReconcileEvery: 50 * time.Millisecond})
	testwait.For(t, 10*time.Second, "one endpoint degraded", func() bool { return len(m.Degraded()) == 1 })
	stuck := m.Degraded()[0]
	if stuck != first.ID && stuck != second.ID {
		t.Fatalf("degraded %v", m.Degraded())
	}

	// Free the one consumer slot by deleting the other endpoint, not by raising the limit: a
	// stream update racing the retried consumer creates trips a data race inside nats-server
	// (fileStore.UpdateConfig against ConsumerStore, 2.15.2) that the race detector reports.
	other := first.ID
	if stuck == first.ID {
		other = second.ID
	}
	if err := e.reg.Delete(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "every endpoint converged", func() bool { return len(m.Degraded()) == 0 && e.hasConsumer(t, stuck) })
	e.publishEvent(t, event{id: "after-1", typ: "cargo_loaded", entity: "C1"})
	testwait.For(t, 10*time.Second, "the once-stuck endpoint delivers", func() bool { return rec.hasDelivered(stuck, "after-1") })
}

// Stopping a worker whose receiver hangs does not hold up other registry changes: another
// endpoint is created and delivers while the hanging one is still stopping.
func TestManagerStopsWorkersOffTheWatchLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hanging := e.createEndpoint(t, "cargo_loaded")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	rec := newRecorder(func(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
		if d.Endpoint.ID == hanging.ID {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release // a receiver that does not answer, and a POST the shutdown lets finish
		}
		return delivered
	})
	m := startManager(t, e, rec, consumer.Options{ShutdownTimeout: time.Minute})
	defer close(release)
	e.publishEvent(t, event{id: "stuck-1", typ: "cargo_loaded", entity: "C1"})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging endpoint's delivery did not start")
	}

	if _, err := e.reg.Update(t.Context(), hanging.ID, func(ep *consumer.Endpoint) error {
		ep.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other := e.createEndpoint(t, "cargo_gated_in")
	e.publishEvent(t, event{id: "other-1", typ: "cargo_gated_in", entity: "C2"})
	testwait.For(t, 20*time.Second, "the other endpoint delivers while the hanging one stops", func() bool {
		return rec.hasDelivered(other.ID, "other-1")
	})
	if slices.Contains(m.Degraded(), other.ID) {
		t.Errorf("degraded: %v", m.Degraded())
	}
}
