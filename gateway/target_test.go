package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/natsauth"
)

// Without an allow-list, URLs that reach the gateway's own networks are refused when saved, and —
// for a URL that got past that (here written straight into the registry, as DNS rebinding would
// make it) — at dial time.
func TestTargetSafety(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AllowTargets = nil
	g := startGateway(t, cfg)
	for _, u := range []string{
		"http://127.0.0.1:9000/hook", "http://localhost:9000/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.0.7/",
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
		"http://100.100.100.200/",
	} {
		status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"`+u+`","event_types":["*"]}`)
		if status != 400 || body["field"] != "url" || !strings.Contains(body["error"].(string), "--allow-target") {
			t.Errorf("%s: %d %v, want 400 on url naming --allow-target", u, status, body)
		}
	}
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"https://192.0.2.10/hook","event_types":["*"],"enabled":false}`); status != 201 {
		t.Errorf("a public address: %d %v", status, body)
	}

	// Dial time: an endpoint stored without the API's check.
	rc := newReceiver(t)
	nc, err := g.natsAs(natsauth.InternalFile)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, _ := js.Stream(ctx, consumer.EventsStream)
	kv, _ := js.KeyValue(ctx, consumer.EndpointsBucket)
	reg, err := consumer.NewRegistry(kv, stream, consumer.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := reg.Create(ctx, consumer.Endpoint{URL: rc.URL, EventTypes: []string{"*"}, Enabled: true, Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")})
	if err != nil {
		t.Fatal(err)
	}
	g.waitReady(t)
	publishNATS(t, g, event("sneak-1", "cargo_loaded", "C1"))
	var log struct{ Deliveries []struct{ Error string } }
	waitFor(t, 20*time.Second, "a refused attempt in the log", func() bool {
		log.Deliveries = nil
		_ = g.api.Do(ctx, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", nil, &log)
		return len(log.Deliveries) > 0
	})
	if e := log.Deliveries[0].Error; !strings.Contains(e, "target address not allowed") {
		t.Errorf("attempt error %q", e)
	}
	if n := len(rc.accepted()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
}

func TestRequireHTTPS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.RequireHTTPS = true
	g := startGateway(t, cfg)
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","event_types":["*"]}`); status != 400 || !strings.Contains(body["error"].(string), "https") {
		t.Errorf("http with --require-https: %d %v", status, body)
	}
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"https://127.0.0.1:9/","event_types":["*"]}`); status != 201 {
		t.Errorf("https: %d %v", status, body)
	}
}
