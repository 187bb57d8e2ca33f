package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		want    gatewayMetrics
		wantErr bool
	}{
		{"a clustered gateway: delivered over endpoints, retries left out, log records dropped, what it owns", `# HELP quaycast_delivery_attempts_total POSTs made, by endpoint and outcome (delivered, retry, permanent, gone).
# TYPE quaycast_delivery_attempts_total counter
quaycast_delivery_attempts_total{endpoint="ep_a",outcome="delivered"} 1200
quaycast_delivery_attempts_total{endpoint="ep_a",outcome="retry"} 17
quaycast_delivery_attempts_total{endpoint="ep_b",outcome="delivered"} 34.5
# HELP quaycast_delivery_log_dropped_total Delivery-log records dropped because the server fell behind (delivery goes first).
# TYPE quaycast_delivery_log_dropped_total counter
quaycast_delivery_log_dropped_total 512
# HELP quaycast_cluster_endpoints_owned Endpoints this gateway delivers to.
# TYPE quaycast_cluster_endpoints_owned gauge
quaycast_cluster_endpoints_owned 4
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 77
# TYPE quaycast_receiver_connections gauge
quaycast_receiver_connections 12
`, gatewayMetrics{delivered: 1234.5, logDropped: 512, owned: 4, goroutines: 77, connections: 12, hasConnections: true}, false},
		{"a gateway on its own: nothing delivered or dropped yet, no cluster gauge", "# TYPE quaycast_delivery_log_dropped_total counter\nquaycast_delivery_log_dropped_total 0\n# TYPE go_goroutines gauge\ngo_goroutines 7\n", gatewayMetrics{goroutines: 7}, false},
		{"not the text format", "quaycast_delivery_attempts_total{endpoint=\"ep_a\" 3\n", gatewayMetrics{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMetrics([]byte(tc.text))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// A real gateway's /metrics reads, and has the delivery-log counter under the name the harness
// reads (a family it shows from the start, at 0): renamed on one side only, the harness would
// report no records dropped, ever.
func TestScrapeGateway(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Config(t), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	c := gateway.NewClient(g.APIURL())
	gm, err := scrape(t.Context(), c)
	if err != nil || gm.goroutines <= 0 || gm.logDropped != 0 || !gm.hasConnections || gm.connections != 0 {
		t.Fatalf("scrape: %+v, %v; want goroutines, nothing dropped and no connection yet (read)", gm, err)
	}
	var raw json.RawMessage
	if err := c.Do(t.Context(), "GET", "/metrics", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\nquaycast_delivery_log_dropped_total 0\n")) {
		t.Errorf("/metrics has no quaycast_delivery_log_dropped_total at 0:\n%s", raw)
	}
}
