package gateway

import (
	"context"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/race"
)

// Without a tracer (no --otlp-endpoint) an event without trace context costs the hot path no
// allocation: its headers are looked at, nothing is made.
func TestTraceHeadersWithoutExportAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	s := NewSender(zerolog.Nop(), SenderOptions{})
	d := &consumer.Delivery{Header: nats.Header{"Nats-Msg-Id": {"ev-1"}, "Quaycast-Entity": {"MSCU1"}}}
	h := http.Header{}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { s.traceHeaders(ctx, d, h) }); n != 0 {
		t.Errorf("traceHeaders allocates %v times per untraced attempt, want 0", n)
	}
	if len(h) != 0 {
		t.Errorf("trace headers %v written for an event without trace context", h)
	}
}

// A NATS message's header names are case-sensitive; the carrier finds W3C's in any case.
func TestNATSCarrierIgnoresCase(t *testing.T) {
	for _, name := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		if got := natsCarrier(nats.Header{name: {"v"}}).Get("traceparent"); got != "v" {
			t.Errorf("header %s: Get = %q, want v", name, got)
		}
	}
	if got := natsCarrier(nats.Header{"Nats-Msg-Id": {"x"}}).Get("traceparent"); got != "" {
		t.Errorf("Get = %q without the header, want empty", got)
	}
}
