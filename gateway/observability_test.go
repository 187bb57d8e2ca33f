package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
)

func scrape(t *testing.T, g *running) string {
	t.Helper()
	resp, err := g.api.HTTP.Get(g.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetricsHealthAndRequestIDs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxAttempts = 1
	g := startGateway(t, cfg)
	ok, refusing := newReceiver(t), newReceiver(t)
	refusing.setStatus(http.StatusUnprocessableEntity)
	epOK := g.addEndpoint(t, map[string]any{"url": ok.URL, "event_types": []string{"*"}})
	epNo := g.addEndpoint(t, map[string]any{"url": refusing.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	if status, _ := call(t, g, "POST", "/v1/events", string(event("m-1", "cargo_loaded", "C1"))); status != 202 {
		t.Fatalf("ingest: %d", status)
	}
	call(t, g, "POST", "/v1/events", string(event("m-1", "cargo_loaded", "C1"))) // a duplicate
	js := jsAs(t, g, natsauth.PublisherFile)
	if _, err := js.Publish(context.Background(), "evt.tos.cargo_loaded", []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	ok.waitCount(t, 1)

	want := []string{
		fmt.Sprintf(`quaycast_delivery_attempts_total{endpoint=%q,outcome="delivered"} 1`, epOK.ID),
		fmt.Sprintf(`quaycast_delivery_attempts_total{endpoint=%q,outcome="permanent"} 1`, epNo.ID),
		fmt.Sprintf(`quaycast_dead_letters_total{endpoint=%q} 1`, epNo.ID),
		`quaycast_ingested_events_total{result="stored"} 1`,
		`quaycast_ingested_events_total{result="duplicate"} 1`,
		`quaycast_delivery_attempt_duration_seconds_count{outcome="delivered"} 1`,
		`quaycast_invalid_events_total 2`, // seen by both endpoints' consumers
	}
	testwait.For(t, 20*time.Second, "metrics", func() bool {
		m := scrape(t, g)
		for _, w := range want {
			if !strings.Contains(m, w) {
				return false
			}
		}
		return true
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := call(t, g, "GET", path, ""); status != 200 {
			t.Errorf("%s: %d %v", path, status, body)
		}
	}
	req, _ := http.NewRequest("GET", g.APIURL()+"/v1/endpoints", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	resp, err := g.api.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); id != "trace-42" {
		t.Errorf("X-Request-Id echoed as %q", id)
	}
	resp, err = g.api.HTTP.Get(g.APIURL() + "/v1/endpoints")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("generated request id %q", id)
	}
}

// Readiness lists the endpoints that have not converged (none here), each endpoint's view says
// whether this gateway delivers to it, and the count is a metric.
func TestReadinessAndDeliveryState(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
	off := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}, "enabled": false})
	g.waitReady(t)
	status, body := call(t, g, "GET", "/readyz", "")
	if d, ok := body["degraded"].([]any); status != 200 || !ok || len(d) != 0 {
		t.Errorf("readyz: %d %v, want 200 with an empty degraded list", status, body)
	}
	testwait.For(t, 10*time.Second, "the enabled endpoint delivering", func() bool {
		_, b := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
		return b["delivery_state"] == "delivering"
	})
	if _, b := call(t, g, "GET", "/v1/endpoints/"+off.ID, ""); b["delivery_state"] != "stopped" {
		t.Errorf("disabled endpoint: delivery_state %v, want stopped", b["delivery_state"])
	}
	text := scrape(t, g)
	if !strings.Contains(text, "quaycast_endpoints_degraded 0") {
		t.Error("no quaycast_endpoints_degraded metric")
	}
	if !strings.Contains(text, "\nquaycast_receiver_connections ") {
		t.Error("no quaycast_receiver_connections metric")
	}
}
