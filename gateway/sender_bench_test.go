package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/subjects"
)

// BenchmarkSenderDeliver is one delivery through the sender — state, breaker, signing, the POST
// to a loopback receiver and its reply, the attempt (delivery log off) — beside a baseline that
// makes the same POST with a bare net/http client: what the sender adds to the HTTP cost.
func BenchmarkSenderDeliver(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rcv.Close)
	body := bytes.Repeat([]byte("x"), 1024)
	sender := func(b *testing.B, o SenderOptions, header nats.Header) {
		targets, err := ParseTargetPolicy([]string{"127.0.0.0/8"}, false)
		if err != nil {
			b.Fatal(err)
		}
		o.Targets = targets
		s := NewSender(zerolog.Nop(), o)
		ep := &consumer.Endpoint{ID: "ep_bench", URL: rcv.URL, EventTypes: []string{"*"}, Enabled: true, Revision: 1,
			Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
		d := &consumer.Delivery{Endpoint: ep, Body: body, Attempt: 1, Header: header,
			Event: subjects.Envelope{ID: "ev-1", Type: "cargo_loaded", Source: "tos", Entity: "MSCU1234567", OccurredAt: time.Now().UTC()}}
		b.ReportAllocs()
		for b.Loop() {
			if out := s.Deliver(context.Background(), d); out.Result != consumer.Delivered {
				b.Fatal(out.Err)
			}
		}
	}
	b.Run("sender", func(b *testing.B) { sender(b, SenderOptions{}, nil) })
	// With spans (--otlp-endpoint): one recorded span per POST, a child of the event's context;
	// the batch processor's export is left out (spans are dropped when they end).
	b.Run("sender-spans", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		sender(b, SenderOptions{TracerProvider: tp}, nats.Header{"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	})
	b.Run("baseline-net-http", func(b *testing.B) {
		c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, rcv.URL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
}
