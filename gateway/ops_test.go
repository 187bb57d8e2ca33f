package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// opsWatch collects the operator events published on one subject filter.
type opsWatch struct {
	mu     sync.Mutex
	events []gateway.OpsEvent
	subs   []string
}

func watchOps(t *testing.T, g *running, filter string) *opsWatch {
	t.Helper()
	w := &opsWatch{}
	g.follow(t, filter, func(m *nats.Msg) {
		var ev gateway.OpsEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("operator event %q: %v", m.Data, err)
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.subs = append(w.subs, m.Subject)
		w.mu.Unlock()
	})
	return w
}

// kinds lists the kinds seen for an endpoint, in order.
func (w *opsWatch) kinds(endpointID string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ev := range w.events {
		if ev.EndpointID == endpointID {
			out = append(out, ev.Kind)
		}
	}
	return out
}

func (w *opsWatch) find(endpointID, kind string) (gateway.OpsEvent, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, ev := range w.events {
		if ev.EndpointID == endpointID && ev.Kind == kind {
			return ev, w.subs[i], true
		}
	}
	return gateway.OpsEvent{}, "", false
}

// Operator events, per tenant: a tenant's systems following quaycast.sys.ops.tenant.<it>.> see
// their endpoints created, changed, their dead letters, breaker and a 410's disable, with the
// reason — and nothing of another tenant's or the operator's endpoints.
func TestOperatorEventsPerTenant(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.LogLevel = "info"
	g := startGateway(t, cfg)
	ctx := context.Background()
	for _, id := range []string{"maersk", "hlag"} {
		gatewaytest.AddTenant(t, g.api, id, id)
	}
	all := watchOps(t, g, gateway.OpsPrefix+">")
	maersk := watchOps(t, g, gateway.OpsPrefix+"tenant.maersk.>")

	// maersk's receiver refuses its first event (a dead letter), fails five in a row (the breaker
	// opens), and then answers 410 Gone. Both events are of one entity: they go out in turn.
	script := []int{http.StatusUnprocessableEntity}
	script = append(script, slices.Repeat([]int{http.StatusServiceUnavailable}, 5)...)
	recv := newReceiver(t, append(script, slices.Repeat([]int{http.StatusGone}, 100)...)...)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}, "tenant": "maersk"})
	other := g.addEndpoint(t, map[string]any{"url": newReceiver(t).URL, "event_types": []string{"*"}, "tenant": "hlag"})
	op := g.addEndpoint(t, map[string]any{"url": newReceiver(t).URL, "event_types": []string{"*"}})
	g.waitReady(t)
	if err := g.api.Do(ctx, "PATCH", "/v1/endpoints/"+ep.ID, map[string]any{"description": "maersk's TOS feed"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.api.Do(ctx, "POST", "/v1/events", []byte(`{"id":"ops-1","type":"cargo_loaded","source":"tos","entity":"A1","occurred_at":"2026-11-23T10:00:00Z","data":{},"tenants":["maersk"]}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := g.api.Do(ctx, "POST", "/v1/events", []byte(`{"id":"ops-2","type":"cargo_loaded","source":"tos","entity":"A1","occurred_at":"2026-11-23T10:00:00Z","data":{},"tenants":["maersk"]}`), nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "maersk's endpoint disabled", func() bool {
		_, _, ok := maersk.find(ep.ID, gateway.OpsEndpointDisabled)
		return ok
	})
	if err := g.api.Do(ctx, "DELETE", "/v1/endpoints/"+other.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "hlag's endpoint deleted", func() bool {
		_, _, ok := all.find(other.ID, gateway.OpsEndpointDeleted)
		return ok
	})

	kinds := maersk.kinds(ep.ID)
	for _, k := range []string{gateway.OpsEndpointCreated, gateway.OpsEndpointUpdated, gateway.OpsDeadLetter, gateway.OpsBreakerOpened, gateway.OpsEndpointDisabled} {
		if !slices.Contains(kinds, k) {
			t.Errorf("maersk's systems saw %v, want %s among them", kinds, k)
		}
	}
	if ev, subject, _ := maersk.find(ep.ID, gateway.OpsEndpointDisabled); ev.Tenant != "maersk" || !strings.Contains(ev.Reason, "410") || subject != gateway.OpsSubject("maersk", gateway.OpsEndpointDisabled) {
		t.Errorf("disable: %+v on %s, want tenant maersk, a reason naming 410", ev, subject)
	}
	if ev, _, _ := maersk.find(ep.ID, gateway.OpsDeadLetter); ev.EventID != "ops-1" {
		t.Errorf("dead letter: %+v, want event ops-1", ev)
	}
	for _, id := range []string{other.ID, op.ID} {
		if k := maersk.kinds(id); len(k) > 0 {
			t.Errorf("maersk's systems saw another's endpoint %s: %v", id, k)
		}
	}
	if _, subject, ok := all.find(op.ID, gateway.OpsEndpointCreated); !ok || subject != gateway.OpsSubject("", gateway.OpsEndpointCreated) {
		t.Errorf("the operator's endpoint's creation: on %q (%v), want %s", subject, ok, gateway.OpsSubject("", gateway.OpsEndpointCreated))
	}
}
