package bench

import (
	"testing"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		want    gatewayMetrics
		wantErr bool
	}{
		{"a clustered gateway: delivered over endpoints, retries left out, what it owns", `# HELP quaycast_delivery_attempts_total POSTs made, by endpoint and outcome (delivered, retry, permanent, gone).
# TYPE quaycast_delivery_attempts_total counter
quaycast_delivery_attempts_total{endpoint="ep_a",outcome="delivered"} 1200
quaycast_delivery_attempts_total{endpoint="ep_a",outcome="retry"} 17
quaycast_delivery_attempts_total{endpoint="ep_b",outcome="delivered"} 34.5
# HELP quaycast_cluster_endpoints_owned Endpoints this gateway delivers to.
# TYPE quaycast_cluster_endpoints_owned gauge
quaycast_cluster_endpoints_owned 4
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 77
`, gatewayMetrics{delivered: 1234.5, owned: 4, goroutines: 77}, false},
		{"a gateway on its own: nothing delivered yet, no cluster gauge", "# TYPE go_goroutines gauge\ngo_goroutines 7\n", gatewayMetrics{goroutines: 7}, false},
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
