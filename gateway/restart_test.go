package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// A gateway stopped while events keep arriving on (external) NATS resumes where it left off:
// nothing published while it was down is missing, and each event arrives once.
func TestRestartResumesWhereItLeftOff(t *testing.T) {
	t.Parallel()
	ns, cfg, g, recv, ep := startOnExternalNATS(t)
	want := map[string][]string{} // entity -> ids in publish order
	publish := func(from, to int) {
		publishNATS(t, externalNATS(ns.ClientURL()), spread(want, "ev-%03d", from, to, 3)...)
	}
	publish(0, 10)
	recv.waitCount(t, 10)
	waitDrained(t, externalNATS(ns.ClientURL()), ep.ID)
	g.Stop(t)

	publish(10, 25) // while no gateway runs

	g2 := startGateway(t, cfg)
	g2.waitReady(t)
	recv.waitCount(t, 25)
	waitDrained(t, externalNATS(ns.ClientURL()), ep.ID)
	got := recv.byEntity(t)
	for entity, ids := range want {
		if !slices.Equal(got[entity], ids) {
			t.Errorf("entity %s: after restart got %v, want %v", entity, got[entity], ids)
		}
	}
}

// With the embedded NATS, events not yet delivered when the gateway stops (the receiver was
// failing) are delivered by the next gateway on the same data dir.
func TestRestartOnSameDataDirKeepsUndelivered(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	recv := newReceiver(t)
	recv.setStatus(http.StatusServiceUnavailable)

	g := startGateway(t, cfg)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"group:gate"}})
	g.waitReady(t)
	var want []string
	for i := range 6 {
		id := fmt.Sprintf("gate-%d", i)
		want = append(want, id)
		publishNATS(t, g, event(id, "cargo_gated_in", fmt.Sprintf("C%d", i%2)))
	}
	g.Stop(t)
	if n := len(recv.ids()); n != 0 {
		t.Fatalf("receiver accepted %d events while answering 503", n)
	}

	recv.setStatus(http.StatusOK)
	g2 := startGateway(t, cfg)
	g2.waitReady(t)
	recv.waitCount(t, len(want))
	waitDrained(t, g2, ep.ID)
	got := recv.ids()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("after restart got %v, want %v", got, want)
	}
}
