package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// WaitApplied holds an API write until the manager has taken it in: it does not return for a
// revision not yet written, and once it has returned the next delivery carries the change.
func TestWaitAppliedHoldsUntilTheChangeIsApplied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, consumer.Options{})
	ctx := t.Context()
	if err := m.WaitApplied(ctx, ep.Revision); err != nil {
		t.Fatalf("WaitApplied of the creation: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := m.WaitApplied(short, ep.Revision+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied of a revision not yet written: %v, want the context's deadline", err)
	}

	updated, err := e.reg.Update(ctx, ep.ID, func(x *consumer.Endpoint) error {
		x.Secret = consumer.NewSecret("whsec_other")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitApplied(ctx, updated.Revision); err != nil {
		t.Fatalf("WaitApplied of the update: %v", err)
	}
	e.publishEvent(t, event{id: "e1", typ: "cargo_loaded", entity: "C1"})
	testwait.For(t, 10*time.Second, "e1 delivered", func() bool { return rec.hasDelivered(ep.ID, "e1") })
	if got := rec.callsFor(ep.ID, "e1")[0].revision; got != updated.Revision {
		t.Errorf("e1 went out with revision %d, want the update's %d", got, updated.Revision)
	}
}
