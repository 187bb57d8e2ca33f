package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/subjects"
)

// opsDelivery is the body of an operator event delivered as a webhook.
type opsDelivery struct {
	ID      string           `json:"id"`
	Type    string           `json:"type"`
	Source  string           `json:"source"`
	Entity  string           `json:"entity"`
	Tenants []string         `json:"tenants"`
	Data    gateway.OpsEvent `json:"data"`

	raw received
}

// opsDeliveries are the operator events a receiver accepted, a redelivered one (at least once)
// kept where it first came.
func opsDeliveries(t *testing.T, rc *receiver) []opsDelivery {
	t.Helper()
	var out []opsDelivery
	seen := map[string]bool{}
	for _, r := range rc.accepted() {
		var d opsDelivery
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		if d.Source != subjects.OpsSource || seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		d.raw = r
		out = append(out, d)
	}
	return out
}

// kindsOf lists the kinds delivered about one endpoint, in arrival order.
func kindsOf(ds []opsDelivery, endpointID string) []string {
	var out []string
	for _, d := range ds {
		if d.Entity == endpointID {
			out = append(out, d.Type)
		}
	}
	return out
}

func hasKind(ds []opsDelivery, endpointID, kind string) bool {
	return slices.Contains(kindsOf(ds, endpointID), kind)
}

func ingest(t *testing.T, g *running, id, entity string, tenants ...string) {
	t.Helper()
	ts, _ := json.Marshal(tenants)
	if len(tenants) == 0 {
		ts = []byte("null")
	}
	body := fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":"tos","entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{},"tenants":%s}`, id, entity, ts)
	if err := g.api.Do(context.Background(), "POST", "/v1/events", body, nil); err != nil {
		t.Fatal(err)
	}
}

// An operator's endpoint subscribed to "quaycast:*" receives what happens to endpoints as signed
// webhooks, in order per endpoint: created, updated, a dead letter, the breaker opening and
// closing, and a 410's disable with its reason — the operator's own endpoints' and, opted in, every
// tenant's. A tenant's endpoint gets its own tenant's only; endpoints subscribed to "*" none.
func TestOperatorEventsAsWebhooks(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	for _, id := range []string{"maersk", "hlag"} {
		gatewaytest.AddTenant(t, g.api, id, id)
	}
	everyone, operator, maersk, hlag := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	allEp := g.addEndpoint(t, map[string]any{"url": everyone.URL, "event_types": []string{"quaycast:*"}, "tenant_events": true})
	opEp := g.addEndpoint(t, map[string]any{"url": operator.URL, "event_types": []string{"quaycast:group:operator"}})
	maerskEp := g.addEndpoint(t, map[string]any{"url": maersk.URL, "event_types": []string{"quaycast:*"}, "tenant": "maersk"})
	hlagEp := g.addEndpoint(t, map[string]any{"url": hlag.URL, "event_types": []string{"quaycast:*", "cargo_loaded"}, "tenant": "hlag"})
	// Subscribed to every event, not opted in: none of these.
	starOp, starMaersk := newReceiver(t), newReceiver(t)
	starOpEp := g.addEndpoint(t, map[string]any{"url": starOp.URL, "event_types": []string{"*"}, "tenant_events": true})
	starMaerskEp := g.addEndpoint(t, map[string]any{"url": starMaersk.URL, "event_types": []string{"*"}, "tenant": "maersk"})

	// Two failing receivers, one of the operator and one of maersk: each refuses its first event
	// (a dead letter), fails five times in a row (the breaker opens), takes the probe (it closes),
	// then answers 410 Gone (disabled). The events are of one entity: they go out in turn.
	script := append([]int{http.StatusUnprocessableEntity}, slices.Repeat([]int{http.StatusServiceUnavailable}, 5)...)
	script = append(script, http.StatusOK)
	script = append(script, slices.Repeat([]int{http.StatusGone}, 100)...)
	opVictim := g.addEndpoint(t, map[string]any{"url": newReceiver(t, script...).URL, "event_types": []string{"cargo_loaded"}})
	maerskVictim := g.addEndpoint(t, map[string]any{"url": newReceiver(t, script...).URL, "event_types": []string{"cargo_loaded"}, "tenant": "maersk"})
	g.waitReady(t)
	for _, id := range []string{opVictim.ID, maerskVictim.ID} {
		if err := g.api.Do(ctx, "PATCH", "/v1/endpoints/"+id, map[string]any{"description": "feed"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		ingest(t, g, fmt.Sprintf("op-%d", i), "A1")
		ingest(t, g, fmt.Sprintf("mae-%d", i), "A1", "maersk")
	}

	lifecycle := []string{gateway.OpsEndpointCreated, gateway.OpsEndpointUpdated, gateway.OpsDeadLetter,
		gateway.OpsBreakerOpened, gateway.OpsBreakerClosed, gateway.OpsEndpointDisabled}
	testwait.For(t, 90*time.Second, "both victims' disables delivered", func() bool {
		ds := opsDeliveries(t, everyone)
		return hasKind(ds, opVictim.ID, gateway.OpsEndpointDisabled) && hasKind(ds, maerskVictim.ID, gateway.OpsEndpointDisabled)
	})
	testwait.For(t, 30*time.Second, "the tenant's and the operator's own delivered", func() bool {
		return hasKind(opsDeliveries(t, maersk), maerskVictim.ID, gateway.OpsEndpointDisabled) &&
			hasKind(opsDeliveries(t, operator), opVictim.ID, gateway.OpsEndpointDisabled) &&
			hasKind(opsDeliveries(t, hlag), hlagEp.ID, gateway.OpsEndpointCreated)
	})

	all := opsDeliveries(t, everyone)
	for _, v := range []endpoint{opVictim, maerskVictim} {
		if got := kindsOf(all, v.ID); !slices.Equal(got, lifecycle) {
			t.Errorf("operator's endpoint with tenant events: %s's events %v, want %v", v.ID, got, lifecycle)
		}
	}
	for _, d := range all {
		verify(t, d.raw, allEp.Secret)
		if d.ID != d.raw.Header.Get("webhook-id") || d.Data.Kind != d.Type || d.Data.EndpointID != d.Entity {
			t.Errorf("delivery %+v: webhook-id, kind or endpoint do not match the envelope", d)
		}
		if ty, src := d.raw.Header.Get(gateway.HeaderEventType), d.raw.Header.Get(gateway.HeaderEventSource); ty != d.Type || src != subjects.OpsSource {
			t.Errorf("delivery %s: headers type %q, source %q; want %q, %q", d.ID, ty, src, d.Type, subjects.OpsSource)
		}
		switch d.Data.Kind {
		case gateway.OpsEndpointDisabled:
			if !strings.Contains(d.Data.Reason, "410") {
				t.Errorf("disable of %s: reason %q, want one naming 410", d.Entity, d.Data.Reason)
			}
		case gateway.OpsDeadLetter:
			if want := map[string]string{opVictim.ID: "op-0", maerskVictim.ID: "mae-0"}[d.Entity]; d.Data.EventID != want || d.Data.Reason == "" {
				t.Errorf("dead letter of %s: event %q, reason %q; want event %s and a reason", d.Entity, d.Data.EventID, d.Data.Reason, want)
			}
		}
		if wantTenants := map[string][]string{maerskVictim.ID: {"maersk"}, maerskEp.ID: {"maersk"}, hlagEp.ID: {"hlag"}, starMaerskEp.ID: {"maersk"}}[d.Entity]; !slices.Equal(d.Tenants, wantTenants) || d.Data.Tenant != strings.Join(wantTenants, "") {
			t.Errorf("event about %s names tenants %q (data %q), want %q", d.Entity, d.Tenants, d.Data.Tenant, wantTenants)
		}
	}

	// The operator's own, not opted in to tenants': its endpoints only.
	own := opsDeliveries(t, operator)
	if got := kindsOf(own, opVictim.ID); !slices.Equal(got, lifecycle) {
		t.Errorf("operator's endpoint: %s's events %v, want %v", opVictim.ID, got, lifecycle)
	}
	for _, d := range own {
		if len(d.Tenants) > 0 {
			t.Errorf("operator's endpoint without tenant events got %s about %s of %q", d.Type, d.Entity, d.Tenants)
		}
		verify(t, d.raw, opEp.Secret)
	}
	// A tenant's: its tenant's only, whatever it subscribed to.
	for _, tc := range []struct {
		rc     *receiver
		ep     endpoint
		tenant string
	}{{maersk, maerskEp, "maersk"}, {hlag, hlagEp, "hlag"}} {
		for _, d := range opsDeliveries(t, tc.rc) {
			if !slices.Equal(d.Tenants, []string{tc.tenant}) {
				t.Errorf("%s's endpoint got %s about %s of %q", tc.tenant, d.Type, d.Entity, d.Tenants)
			}
			verify(t, d.raw, tc.ep.Secret)
		}
	}
	if got := kindsOf(opsDeliveries(t, maersk), maerskVictim.ID); !slices.Equal(got, lifecycle) {
		t.Errorf("maersk's endpoint: %s's events %v, want %v", maerskVictim.ID, got, lifecycle)
	}

	// Subscribed to "*": the business events, none of these — also once their consumers have
	// nothing left to deliver.
	testwait.For(t, 30*time.Second, "the * endpoints got the business events", func() bool {
		return len(starOp.ids()) >= 6 && len(starMaersk.ids()) >= 3
	})
	waitDrained(t, g, starOpEp.ID, starMaerskEp.ID)
	for _, rc := range []*receiver{starOp, starMaersk} {
		if ds := opsDeliveries(t, rc); len(ds) > 0 {
			t.Errorf("an endpoint subscribed to * received %d operator events, first %s about %s", len(ds), ds[0].Type, ds[0].Entity)
		}
	}
}

// An endpoint subscribed to its own operator events whose receiver fails, opening its breaker,
// and then refuses every event: it gets one event per change of its state, and its refusals (dead
// letters of operator events) make no more — the traffic to it is bounded.
func TestOperatorEventsToItselfAreBounded(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	script := append(slices.Repeat([]int{http.StatusServiceUnavailable}, 5), slices.Repeat([]int{http.StatusUnprocessableEntity}, 1000)...)
	rc := newReceiver(t, script...)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"quaycast:*"}})
	g.waitReady(t)
	ops := watchOps(t, g, gateway.OpsPrefix+">")

	dead := func() int {
		var page struct {
			DeadLetters []json.RawMessage `json:"dead_letters"`
		}
		if err := g.api.Do(ctx, "GET", "/v1/endpoints/"+ep.ID+"/dead-letters?limit=100", nil, &page); err != nil {
			t.Fatal(err)
		}
		return len(page.DeadLetters)
	}
	// Created (its first event: five 503s open the breaker), opened, closed (the probe's 422 is an
	// answer): three events, each refused.
	testwait.For(t, 60*time.Second, "three dead letters", func() bool { return dead() >= 3 })
	// One more change, after them in its lane: once it is refused, everything before it was handled.
	if err := g.api.Do(ctx, "PATCH", "/v1/endpoints/"+ep.ID, map[string]any{"description": "again"}, nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "four dead letters", func() bool { return dead() >= 4 })

	js := jsAs(t, g, natsauth.InternalFile)
	defer js.Conn().Close()
	stream, err := js.Stream(ctx, "QUAYCAST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.OpsStreamSubjects))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, k := range []string{gateway.OpsEndpointCreated, gateway.OpsBreakerOpened, gateway.OpsBreakerClosed, gateway.OpsEndpointUpdated} {
		want[subjects.OpsSubject("", k)] = 1
	}
	if !maps.Equal(info.State.Subjects, want) {
		t.Errorf("operator events stored: %v, want one per change of state %v", info.State.Subjects, want)
	}
	if n := dead(); n != 4 {
		t.Errorf("%d dead letters, want 4", n)
	}
	// On core NATS each dead letter is still told.
	testwait.For(t, 10*time.Second, "four dead letters on NATS", func() bool {
		n := 0
		for _, k := range ops.kinds(ep.ID) {
			if k == gateway.OpsDeadLetter {
				n++
			}
		}
		return n == 4
	})
}

// Operator events stored while their endpoint's receiver was down reach it after a restart of
// the gateway, in order per endpoint.
func TestOperatorEventsSurviveRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	g := startGateway(t, cfg)
	ctx := context.Background()
	gatewaytest.AddTenant(t, g.api, "maersk", "Maersk")
	rc := newReceiver(t)
	rc.setStatus(http.StatusServiceUnavailable)
	follower := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"quaycast:*"}, "tenant_events": true})
	g.waitReady(t)
	x := g.addEndpoint(t, map[string]any{"url": newReceiver(t).URL, "event_types": []string{"cargo_loaded"}, "tenant": "maersk"})
	if err := g.api.Do(ctx, "PATCH", "/v1/endpoints/"+x.ID, map[string]any{"description": "changed"}, nil); err != nil {
		t.Fatal(err)
	}
	y := g.addEndpoint(t, map[string]any{"url": newReceiver(t).URL, "event_types": []string{"cargo_loaded"}})
	if err := g.api.Do(ctx, "DELETE", "/v1/endpoints/"+y.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	js := jsAs(t, g, natsauth.InternalFile)
	stream, err := js.Stream(ctx, "QUAYCAST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the events stored", func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.OpsStreamSubjects))
		return err == nil && info.State.Subjects[subjects.OpsSubject("", gateway.OpsEndpointDeleted)] == 1
	})
	js.Conn().Close()
	g.Stop(t)
	if n := len(opsDeliveries(t, rc)); n != 0 {
		t.Fatalf("receiver accepted %d events while answering 503", n)
	}

	rc.setStatus(http.StatusOK)
	g2 := startGateway(t, cfg)
	g2.waitReady(t)
	testwait.For(t, 60*time.Second, "the events delivered after the restart", func() bool {
		ds := opsDeliveries(t, rc)
		// The follower's own creation too: it is another entity's lane, with retries of its own,
		// and on a busy machine it came after the others (the merge run of December 1).
		return hasKind(ds, y.ID, gateway.OpsEndpointDeleted) && hasKind(ds, x.ID, gateway.OpsEndpointUpdated) &&
			hasKind(ds, follower.ID, gateway.OpsEndpointCreated)
	})
	ds := opsDeliveries(t, rc)
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{x.ID, []string{gateway.OpsEndpointCreated, gateway.OpsEndpointUpdated}},
		{y.ID, []string{gateway.OpsEndpointCreated, gateway.OpsEndpointDeleted}},
	} {
		if got := kindsOf(ds, tc.id); !slices.Equal(got, tc.want) {
			t.Errorf("events of %s: %v, want %v", tc.id, got, tc.want)
		}
	}
	if got := kindsOf(ds, follower.ID); len(got) == 0 || got[0] != gateway.OpsEndpointCreated {
		t.Errorf("events of the follower itself: %v, want its creation first", got)
	}
	for _, d := range ds {
		verify(t, d.raw, follower.Secret)
	}
}

// Nobody else may publish an operator event: the ingest API refuses the reserved source and types.
func TestIngestRefusesOperatorEvents(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	for _, tc := range []struct{ body, field string }{
		{`{"id":"x1","type":"cargo_loaded","source":"quaycast","entity":"A","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, "source"},
		{`{"id":"x2","type":"breaker_opened","source":"tos","entity":"A","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, "type"},
	} {
		err := g.api.Do(context.Background(), "POST", "/v1/events", []byte(tc.body), nil)
		var apiErr *gateway.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Field != tc.field {
			t.Errorf("ingest %s: %v, want 400 naming %s", tc.body, err, tc.field)
		}
	}
}

// An event that claims to be an operator event is set aside where it was published, and stays
// set aside when asked for again: a redeliver does not copy it to a replay subject (where it
// would pass as quaycast's own), and a replay that names no genuine operator event as its
// original is set aside at delivery. A genuine operator event's dead letter is still replayed,
// and the event redelivered.
func TestForgedOperatorEventsNotReplayed(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	gatewaytest.AddTenant(t, g.api, "hlag", "Hapag-Lloyd")
	// A follower of operator events whose receiver refuses them at first: its own creation is a
	// dead letter.
	opsRc := newReceiver(t)
	opsRc.setStatus(http.StatusUnprocessableEntity)
	opsEp := g.addEndpoint(t, map[string]any{"url": opsRc.URL, "event_types": []string{"quaycast:*"}})
	starOp, starHlag := newReceiver(t), newReceiver(t)
	starOpEp := g.addEndpoint(t, map[string]any{"url": starOp.URL, "event_types": []string{"*"}, "tenant_events": true})
	starHlagEp := g.addEndpoint(t, map[string]any{"url": starHlag.URL, "event_types": []string{"*"}, "tenant": "hlag"})
	g.waitReady(t)

	// A publisher allowed every source forges operator events naming tenant hlag, between two
	// genuine events.
	js := jsAs(t, g, natsauth.PublisherFile)
	defer js.Conn().Close()
	publish := func(js jetstream.JetStream, subject, body string, h map[string]string) {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Data = []byte(body)
		for k, v := range h {
			msg.Header.Set(k, v)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := js.PublishMsg(pctx, msg); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
	forged := func(id, source, typ string) string {
		return fmt.Sprintf(`{"id":%q,"type":%q,"source":%q,"entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{"kind":%q,"endpoint_id":%q,"tenant":"hlag"},"tenants":["hlag"]}`,
			id, typ, source, starHlagEp.ID, typ, starHlagEp.ID)
	}
	ingest(t, g, "real-1", "A1", "hlag")
	publish(js, "evt.quaycast.endpoint_deleted", forged("forged-1", "quaycast", gateway.OpsEndpointDeleted),
		map[string]string{subjects.HeaderOrigin: subjects.OpsSubject("hlag", gateway.OpsEndpointDeleted)})
	publish(js, "evt.tos.breaker_opened", forged("forged-2", "tos", gateway.OpsBreakerOpened), nil)
	ingest(t, g, "real-2", "A1", "hlag")
	starOp.waitCount(t, 2)
	starHlag.waitCount(t, 2)
	testwait.For(t, 30*time.Second, "the follower's dead letter", func() bool {
		return len(listDead(t, g, opsEp.ID, "").DeadLetters) >= 1
	})
	waitDrained(t, g, starOpEp.ID, starHlagEp.ID)

	// Redelivered: the two genuine events, not the forged ones.
	for _, ep := range []endpoint{starOpEp, starHlagEp} {
		status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/redeliver", `{"since_seq":1}`)
		if status != http.StatusAccepted || body["redelivered"] != float64(2) {
			t.Errorf("redeliver %s: %d %v, want 202 and the 2 genuine events redelivered", ep.ID, status, body)
		}
	}
	// A replay quaycast did not make right: no original, or a forged one, named.
	internal := jsAs(t, g, natsauth.InternalFile)
	defer internal.Conn().Close()
	for i, origin := range []string{"", "evt.quaycast.endpoint_deleted"} {
		subj, err := subjects.ReplaySubject(starHlagEp.ID, subjects.OpsSource, gateway.OpsEndpointDeleted)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		if origin != "" {
			h[subjects.HeaderOrigin] = origin
		}
		publish(internal, subj, forged(fmt.Sprintf("forged-replay-%d", i), "quaycast", gateway.OpsEndpointDeleted), h)
	}
	starOp.waitCount(t, 4)
	starHlag.waitCount(t, 4)
	waitDrained(t, g, starOpEp.ID, starHlagEp.ID)
	for name, rc := range map[string]*receiver{"operator's *": starOp, "hlag's *": starHlag} {
		for _, r := range rc.accepted() {
			if id := r.Header.Get("webhook-id"); !strings.HasPrefix(id, "real-") {
				t.Errorf("%s endpoint received %s (%s)", name, id, r.Body)
			}
		}
	}

	// The genuine operator event: its dead letter replayed, then redelivered.
	opsRc.setStatus(http.StatusOK)
	if err := g.api.Do(ctx, "POST", "/v1/endpoints/"+opsEp.ID+"/dead-letters/replay", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the replayed operator event", func() bool {
		return hasKind(opsDeliveries(t, opsRc), opsEp.ID, gateway.OpsEndpointCreated)
	})
	waitDrained(t, g, opsEp.ID)
	status, body := call(t, g, "POST", "/v1/endpoints/"+opsEp.ID+"/redeliver", `{"since_seq":1}`)
	if status != http.StatusAccepted || body["redelivered"].(float64) < 1 {
		t.Fatalf("redeliver %s: %d %v, want 202 and its operator events redelivered", opsEp.ID, status, body)
	}
	testwait.For(t, 30*time.Second, "the redelivered operator event", func() bool {
		for _, r := range opsRc.accepted() {
			var d opsDelivery
			if json.Unmarshal(r.Body, &d) == nil && d.Entity == opsEp.ID && d.Type == gateway.OpsEndpointCreated && r.Header.Get(gateway.HeaderRedelivery) == "true" {
				return true
			}
		}
		return false
	})
	for _, d := range opsDeliveries(t, opsRc) {
		verify(t, d.raw, opsEp.Secret)
	}
}

// A tenant's endpoint deleted while an event to it is in flight: the dead letter its worker
// records afterwards is the tenant's operator event still, though the endpoint is no longer
// defined when it is published.
func TestDeadLetterAfterDeleteStaysTheTenants(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	gatewaytest.AddTenant(t, g.api, "maersk", "Maersk")
	got, release := make(chan struct{}, 1), make(chan struct{})
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- struct{}{}:
		default:
		}
		<-release
		w.WriteHeader(http.StatusUnprocessableEntity) // refused for good: a dead letter
	}))
	t.Cleanup(rc.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"cargo_loaded"}, "tenant": "maersk"})
	g.waitReady(t)
	ingest(t, g, "gone-1", "A1", "maersk")
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the event did not reach the receiver")
	}
	if err := g.api.Do(ctx, "DELETE", "/v1/endpoints/"+ep.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the gateway's registry watch forgets the endpoint; its worker waits for the POST
	close(release)

	js := jsAs(t, g, natsauth.InternalFile)
	defer js.Conn().Close()
	stream, err := js.Stream(ctx, "QUAYCAST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	tenants, operators := subjects.OpsSubject("maersk", gateway.OpsDeadLetter), subjects.OpsSubject("", gateway.OpsDeadLetter)
	var stored map[string]uint64
	testwait.For(t, 30*time.Second, "the dead letter's operator event stored", func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.OpsStreamSubjects))
		if err != nil {
			return false
		}
		stored = info.State.Subjects
		return stored[tenants]+stored[operators] > 0
	})
	if stored[tenants] != 1 || stored[operators] != 0 {
		t.Errorf("dead letter stored on %v, want once on %s and never on %s", stored, tenants, operators)
	}
}
