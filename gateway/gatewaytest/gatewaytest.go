package gatewaytest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
)

// Config is the default configuration with the embedded NATS and the API on free loopback ports,
// the data dir in t.TempDir(), loopback receivers allowed (httptest's servers), and a stop that
// waits for the embedded server however long it takes.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowTargets = []string{"127.0.0.0/8", "::1"}
	cfg.NATSStopTimeout = 0 // in-process, a test may start again on the data dir: the server must be gone
	return cfg
}

// Gateway is a gateway running for a test.
type Gateway struct {
	*gateway.Gateway
	stop    func() error
	stopped sync.Once
}

// Start runs a gateway for cfg, logging to log, until the test ends or Stop is called, and
// returns it once it is ready; it fails the test if it is not ready within a minute.
func Start(t testing.TB, cfg config.Config, log zerolog.Logger) *Gateway {
	t.Helper()
	return StartWithOptions(t, cfg, log, gateway.Options{})
}

// StartWithOptions is Start for a gateway with options (gateway.NewWithOptions).
func StartWithOptions(t testing.TB, cfg config.Config, log zerolog.Logger, o gateway.Options) *Gateway {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := gateway.NewWithOptions(cfg, log, o)
	stop, err := g.Start(ctx)
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	r := &Gateway{Gateway: g, stop: stop}
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Stop shuts the gateway down and waits for it (once; later calls do nothing). The test fails if
// the gateway's Run ended with an error or did not end within 30 s.
func (g *Gateway) Stop(t testing.TB) {
	t.Helper()
	g.stopped.Do(func() {
		done := make(chan error, 1)
		go func() { done <- g.stop() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("gateway did not stop within 30s")
		}
	})
}

// Endpoint is an endpoint as created through the API, with its secret (shown only then).
type Endpoint struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// AddEndpoint creates an endpoint through api, failing t if the API refuses it.
func AddEndpoint(t testing.TB, api *gateway.Client, body map[string]any) Endpoint {
	t.Helper()
	var ep Endpoint
	if err := api.Do(context.Background(), "POST", "/v1/endpoints", body, &ep); err != nil {
		t.Fatalf("create endpoint: %v", err)
	}
	return ep
}

// AddTenant creates the tenant id, named name, through api (the admin's), failing t if the API
// refuses it.
func AddTenant(t testing.TB, api *gateway.Client, id, name string) {
	t.Helper()
	if err := api.Do(context.Background(), "POST", "/v1/tenants", map[string]any{"id": id, "name": name}, nil); err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
}
