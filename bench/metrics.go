package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quaycast/quaycast/gateway"
)

// gatewayMetrics are what the harness reads from a gateway's /metrics.
type gatewayMetrics struct {
	delivered  float64 // POSTs answered 2xx, over every endpoint: quaycast_delivery_attempts_total{outcome="delivered"}
	logDropped float64 // delivery-log records shed: quaycast_delivery_log_dropped_total
	owned      float64 // endpoints it delivers to: quaycast_cluster_endpoints_owned
	goroutines float64 // go_goroutines
	// connections to receivers open: quaycast_receiver_connections (hasConnections: the gateway
	// exports it; older ones do not)
	connections    float64
	hasConnections bool
}

// scrape reads a gateway's /metrics.
func scrape(ctx context.Context, c *gateway.Client) (gatewayMetrics, error) {
	var raw json.RawMessage // the text exposition format, kept as it came
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Do(sctx, "GET", "/metrics", nil, &raw); err != nil {
		return gatewayMetrics{}, err
	}
	return parseMetrics(raw)
}

func parseMetrics(text []byte) (gatewayMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return gatewayMetrics{}, fmt.Errorf("read /metrics: %w", err)
	}
	var m gatewayMetrics
	if f := fams["quaycast_delivery_attempts_total"]; f != nil {
		for _, s := range f.GetMetric() {
			if label(s, "outcome") == "delivered" {
				m.delivered += s.GetCounter().GetValue()
			}
		}
	}
	if f := fams["quaycast_delivery_log_dropped_total"]; f != nil {
		for _, s := range f.GetMetric() { // one series today; added up should it gain labels
			m.logDropped += s.GetCounter().GetValue()
		}
	}
	if f := fams["go_goroutines"]; f != nil {
		for _, s := range f.GetMetric() {
			m.goroutines += s.GetGauge().GetValue()
		}
	}
	if f := fams["quaycast_receiver_connections"]; f != nil {
		m.hasConnections = true
		for _, s := range f.GetMetric() {
			m.connections += s.GetGauge().GetValue()
		}
	}
	if f := fams["quaycast_cluster_endpoints_owned"]; f != nil {
		for _, s := range f.GetMetric() {
			m.owned += s.GetGauge().GetValue()
		}
	}
	return m, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
