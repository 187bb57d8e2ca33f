package gateway_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
)

// Deliveries follow registry changes while the gateway runs, including changes written by another
// process straight into the registry bucket.
func TestDeliveriesFollowRegistryChanges(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	recv, clock := newReceiver(t), newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"cargo_loaded"}})
	g.addEndpoint(t, map[string]any{"url": clock.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	ctx := context.Background()

	publishNATS(t, g, event("a1", "cargo_gated_in", "C1"), event("a2", "cargo_loaded", "C1"))
	recv.waitCount(t, 1)
	waitDrained(t, g, ep.ID)
	if got := recv.ids(); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("before the change got %v, want [a2]", got)
	}

	// Another process adds a subscription, through its own registry handle.
	other := g.registry(t, consumer.RegistryOptions{Key: g.secretKey(t)})
	if _, err := other.Update(ctx, ep.ID, func(e *consumer.Endpoint) error {
		e.EventTypes = append(e.EventTypes, "cargo_gated_in")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := jsAs(t, g, natsauth.InternalFile).Stream(ctx, consumer.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "consumer filter updated", func() bool {
		c, err := stream.Consumer(ctx, ep.ID)
		return err == nil && slices.Contains(c.CachedInfo().Config.FilterSubjects, "evt.*.cargo_gated_in")
	})
	publishNATS(t, g, event("b1", "cargo_gated_in", "C1"), event("b2", "cargo_loaded", "C1"))
	recv.waitCount(t, 3)
	waitDrained(t, g, ep.ID)
	if got := recv.ids(); !slices.Equal(got, []string{"a2", "b1", "b2"}) {
		t.Fatalf("after adding a subscription got %v, want [a2 b1 b2]", got)
	}

	// Deleting the endpoint deletes its consumer; later events are not sent to it.
	if err := g.api.Do(ctx, "DELETE", "/v1/endpoints/"+ep.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "consumer deleted", func() bool {
		_, err := stream.Consumer(ctx, ep.ID)
		return err != nil
	})
	publishNATS(t, g, event("c1", "cargo_loaded", "C1"))
	testwait.For(t, 10*time.Second, "clock endpoint got c1", func() bool { return slices.Contains(clock.ids(), "c1") })
	if got := recv.ids(); !slices.Equal(got, []string{"a2", "b1", "b2"}) {
		t.Errorf("after delete got %v, want no more than [a2 b1 b2]", got)
	}
}
