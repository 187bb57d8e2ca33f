package consumer

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/testwait"
)

// Removals of deleted endpoints wait for one of maxRemoving slots: thousands deleted at once
// must not send the server all their requests together.
func TestRemovalsWaitForASlot(t *testing.T) {
	t.Parallel()
	_, _, js, stream, reg := streamsAndRegistry(t)
	ep := createEndpoint(t, reg, "cargo_loaded")
	m := NewManager(js, stream, reg, &idDeliverer{}, zerolog.New(zerolog.NewTestWriter(t)), Options{ShutdownTimeout: 2 * time.Second})
	runManager(t, m)
	hasConsumer := func() bool {
		_, err := stream.Consumer(t.Context(), ep.ConsumerName())
		return err == nil
	}
	testwait.For(t, 10*time.Second, "consumer made", hasConsumer)

	for range cap(m.removing) { // every slot taken, as by other removals
		m.removing <- struct{}{}
	}
	if err := reg.Delete(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "deletion applied", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.running[ep.ID] == nil
	})
	time.Sleep(300 * time.Millisecond) // a removal that did not wait would be done by now
	if !hasConsumer() {
		t.Fatal("the consumer was deleted while every removal slot was taken")
	}
	<-m.removing
	testwait.For(t, 10*time.Second, "consumer deleted once a slot is free", func() bool { return !hasConsumer() })
	for range cap(m.removing) - 1 {
		<-m.removing
	}
}

// An endpoint created after the registry's snapshot, whose consumer another gateway made before
// the consumers were listed, is no orphan: removeOrphans looks each candidate up again. A CI run
// lost a whole endpoint's events when a gateway starting beside two others deleted it.
func TestOrphansLookedUpAfterTheListing(t *testing.T) {
	t.Parallel()
	_, _, js, stream, reg := streamsAndRegistry(t)
	m := NewManager(js, stream, reg, &idDeliverer{}, zerolog.New(zerolog.NewTestWriter(t)), Options{})
	late := createEndpoint(t, reg, "cargo_loaded") // not in the snapshot below
	stray := NewID()                               // a consumer whose record never existed
	for _, name := range []string{late.ConsumerName(), stray} {
		if _, err := stream.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: name}); err != nil {
			t.Fatal(err)
		}
	}

	m.removeOrphans(t.Context(), map[string]bool{})
	m.bg.Wait()
	exists := func(name string) bool {
		_, err := stream.Consumer(t.Context(), name)
		return err == nil
	}
	if !exists(late.ConsumerName()) {
		t.Error("the consumer of an endpoint created after the snapshot was deleted as an orphan")
	}
	if exists(stray) {
		t.Error("the consumer of no endpoint was kept")
	}
}
