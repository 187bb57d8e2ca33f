package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
)

// A publisher's trace context: trace id, parent span id, and a tracestate entry.
const (
	pubTraceID    = "4bf92f3577b34da6a3ce929d0e0e4736"
	pubSpanID     = "00f067aa0ba902b7"
	pubParent     = "00-" + pubTraceID + "-" + pubSpanID + "-01"
	pubTraceState = "congo=t61rcWkgMzE"
)

// startTraced runs a gateway whose delivery spans go to an in-memory exporter (nil: no spans,
// as without --otlp-endpoint), with one endpoint for cargo_loaded delivering to a receiver that
// answers from script.
func startTraced(t *testing.T, exp *tracetest.InMemoryExporter, script ...int) (*running, *receiver, endpoint) {
	t.Helper()
	var o gateway.Options
	if exp != nil {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)) // exported as each span ends
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		o.TracerProvider = tp
	}
	cfg := testConfig(t)
	g := gatewaytest.StartWithOptions(t, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel), o)
	r := &running{Gateway: g, cfg: cfg, api: gateway.NewClient(g.APIURL())}
	rc := newReceiver(t, script...)
	ep := r.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"cargo_loaded"}})
	r.waitReady(t)
	return r, rc, ep
}

// postEvent publishes ev through POST /v1/events with the given request headers.
func postEvent(t *testing.T, g *running, ev []byte, header map[string]string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", g.APIURL()+"/v1/events", bytes.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, body)
	}
}

// publishTraced publishes ev as a NATS publisher does, with extra headers written as given (NATS
// header names are case-sensitive).
func publishTraced(t *testing.T, g *running, ev []byte, typ, id string, header map[string]string) {
	t.Helper()
	js := jsAs(t, g, natsauth.PublisherFile)
	defer js.Conn().Close()
	msg := nats.NewMsg("evt.tos." + typ)
	msg.Data = ev
	msg.Header.Set("Nats-Msg-Id", id)
	for k, v := range header {
		msg.Header[k] = []string{v}
	}
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// traceparent splits a received traceparent into its trace id and parent span id, failing the
// test unless it is a well-formed version 00 value.
func traceparent(t *testing.T, v string) (traceID, parentID string) {
	t.Helper()
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		t.Fatalf("traceparent %q is not a version 00 value", v)
	}
	return parts[1], parts[2]
}

// deliverSpans are the exporter's delivery spans of one event.
func deliverSpans(exp *tracetest.InMemoryExporter, eventID string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name != gateway.SpanDeliver {
			continue
		}
		for _, a := range s.Attributes {
			if a.Key == gateway.AttrEventID && a.Value.AsString() == eventID {
				out = append(out, s)
			}
		}
	}
	return out
}

// waitSpans waits until each event has a delivery span.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, eventIDs ...string) {
	t.Helper()
	for _, id := range eventIDs {
		testwait.For(t, 10*time.Second, "delivery span of "+id, func() bool { return len(deliverSpans(exp, id)) > 0 })
	}
}

// attr is the value of a span's attribute, as text; "" when it has none.
func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// A trace context published with an event reaches the receiver — through the API and through a
// plain NATS publish — as the traceparent of the attempt's span: the publisher's trace id, the
// span's id as parent, and the span a child of the publisher's span.
func TestTraceContextReachesReceiver(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	g, rc, ep := startTraced(t, exp)

	postEvent(t, g, event("tr-api", "cargo_loaded", "MSCU1"), map[string]string{"traceparent": pubParent, "tracestate": pubTraceState})
	// A NATS client may write the header in any case: W3C names are case-insensitive.
	publishTraced(t, g, event("tr-nats", "cargo_loaded", "MSCU2"), "cargo_loaded", "tr-nats", map[string]string{"Traceparent": pubParent})
	rc.waitCount(t, 2)
	waitSpans(t, exp, "tr-api", "tr-nats") // a span ends once its reply is read: after the receiver counted it

	for _, got := range rc.accepted() {
		id := got.Header.Get("webhook-id")
		t.Run(id, func(t *testing.T) {
			traceID, parentID := traceparent(t, got.Header.Get("traceparent"))
			if traceID != pubTraceID {
				t.Errorf("receiver's trace id %s, want the publisher's %s", traceID, pubTraceID)
			}
			spans := deliverSpans(exp, id)
			if len(spans) != 1 {
				t.Fatalf("%d delivery spans, want 1", len(spans))
			}
			s := spans[0]
			if s.SpanContext.TraceID().String() != pubTraceID || s.Parent.SpanID().String() != pubSpanID || !s.Parent.IsRemote() {
				t.Errorf("span trace %s parent %s (remote %v), want a child of %s in %s", s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), pubSpanID, pubTraceID)
			}
			if parentID != s.SpanContext.SpanID().String() {
				t.Errorf("receiver's parent id %s, want the attempt span's %s", parentID, s.SpanContext.SpanID())
			}
			if s.SpanKind != trace.SpanKindClient {
				t.Errorf("span kind %v, want client", s.SpanKind)
			}
			want := map[string]string{"quaycast.endpoint.id": ep.ID, "quaycast.event.type": "cargo_loaded", "quaycast.attempt": "1",
				"http.response.status_code": "200", "quaycast.outcome": "delivered", "http.request.method": "POST"}
			for k, v := range want {
				if got := attr(s, k); got != v {
					t.Errorf("attribute %s = %q, want %q", k, got, v)
				}
			}
			if s.Status.Code == codes.Error {
				t.Errorf("span status %v, want not an error", s.Status)
			}
			if id == "tr-api" && got.Header.Get("tracestate") != pubTraceState {
				t.Errorf("tracestate %q, want the publisher's %q", got.Header.Get("tracestate"), pubTraceState)
			}
		})
	}
}

// A delivery that is retried (500, then 200) makes two attempt spans, both children of the
// publisher's span, with each POST's status and outcome.
func TestTraceRetriedDeliveryAttemptsShareParent(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	g, rc, _ := startTraced(t, exp, http.StatusInternalServerError)

	postEvent(t, g, event("tr-retry", "cargo_loaded", "MSCU3"), map[string]string{"traceparent": pubParent})
	rc.waitCount(t, 1)
	testwait.For(t, 10*time.Second, "two attempt spans", func() bool { return len(deliverSpans(exp, "tr-retry")) >= 2 })

	spans := deliverSpans(exp, "tr-retry")
	if len(spans) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(spans))
	}
	want := []struct{ attempt, status, outcome string }{{"1", "500", "retry"}, {"2", "200", "delivered"}}
	for i, s := range spans {
		if s.SpanContext.TraceID().String() != pubTraceID || s.Parent.SpanID().String() != pubSpanID {
			t.Errorf("attempt %d: trace %s parent %s, want a child of %s in %s", i+1, s.SpanContext.TraceID(), s.Parent.SpanID(), pubSpanID, pubTraceID)
		}
		if attr(s, "quaycast.attempt") != want[i].attempt || attr(s, "http.response.status_code") != want[i].status || attr(s, "quaycast.outcome") != want[i].outcome {
			t.Errorf("span %d: attempt %s status %s outcome %s, want %+v", i, attr(s, "quaycast.attempt"), attr(s, "http.response.status_code"), attr(s, "quaycast.outcome"), want[i])
		}
	}
	if spans[0].Status.Code != codes.Error || spans[1].Status.Code == codes.Error {
		t.Errorf("span statuses %v, %v: want the 500 an error and the 200 not", spans[0].Status, spans[1].Status)
	}
	if spans[0].SpanContext.SpanID() == spans[1].SpanContext.SpanID() {
		t.Error("both attempts have one span id")
	}
	_, parentID := traceparent(t, rc.accepted()[0].Header.Get("traceparent"))
	if parentID != spans[1].SpanContext.SpanID().String() {
		t.Errorf("the delivered POST's parent id %s, want the second attempt's span %s", parentID, spans[1].SpanContext.SpanID())
	}
}

// An event without trace context — or with a traceparent that does not parse, which ingest
// ignores rather than refuses or copies — is delivered in a new trace, its span a root.
func TestTraceEventWithoutContextGetsNewTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	g, rc, _ := startTraced(t, exp)

	postEvent(t, g, event("tr-none", "cargo_loaded", "MSCU4"), nil)
	postEvent(t, g, event("tr-bad", "cargo_loaded", "MSCU5"), map[string]string{"traceparent": "00-" + strings.Repeat("0", 32) + "-" + pubSpanID + "-01", "tracestate": pubTraceState})
	rc.waitCount(t, 2)
	waitSpans(t, exp, "tr-none", "tr-bad")

	stream, err := jsAs(t, g, natsauth.InternalFile).Stream(t.Context(), consumer.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), "evt.tos.cargo_loaded")
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Nats-Msg-Id") != "tr-bad" {
		t.Fatalf("last message is %q, want tr-bad", msg.Header.Get("Nats-Msg-Id"))
	}
	for k := range msg.Header {
		if strings.EqualFold(k, "traceparent") || strings.EqualFold(k, "tracestate") {
			t.Errorf("an invalid traceparent was copied: header %s = %q", k, msg.Header[k])
		}
	}

	seen := map[string]bool{}
	for _, got := range rc.accepted() {
		id := got.Header.Get("webhook-id")
		traceID, parentID := traceparent(t, got.Header.Get("traceparent"))
		spans := deliverSpans(exp, id)
		if len(spans) != 1 {
			t.Fatalf("%s: %d spans, want 1", id, len(spans))
		}
		s := spans[0]
		if s.Parent.IsValid() {
			t.Errorf("%s: span has parent %s, want a root", id, s.Parent.SpanID())
		}
		if traceID != s.SpanContext.TraceID().String() || parentID != s.SpanContext.SpanID().String() || traceID == pubTraceID {
			t.Errorf("%s: receiver got trace %s parent %s, want the span's new trace %s and id %s", id, traceID, parentID, s.SpanContext.TraceID(), s.SpanContext.SpanID())
		}
		if seen[traceID] {
			t.Errorf("%s: trace %s shared with another event", id, traceID)
		}
		seen[traceID] = true
		if got.Header.Get("tracestate") != "" {
			t.Errorf("%s: tracestate %q passed on without a valid traceparent", id, got.Header.Get("tracestate"))
		}
	}
}

// Without spans (no --otlp-endpoint) the event's trace context still reaches the receiver, as
// published; one that does not parse does not, and an event without one gets none.
func TestTraceContextPassedOnWithoutExport(t *testing.T) {
	t.Parallel()
	g, rc, _ := startTraced(t, nil)

	publishTraced(t, g, event("pt-1", "cargo_loaded", "MSCU6"), "cargo_loaded", "pt-1", map[string]string{"traceparent": pubParent, "tracestate": pubTraceState})
	publishTraced(t, g, event("pt-2", "cargo_loaded", "MSCU6"), "cargo_loaded", "pt-2", map[string]string{"traceparent": "not-a-traceparent", "tracestate": pubTraceState})
	publishTraced(t, g, event("pt-3", "cargo_loaded", "MSCU6"), "cargo_loaded", "pt-3", nil)
	rc.waitCount(t, 3)

	want := map[string][2]string{"pt-1": {pubParent, pubTraceState}, "pt-2": {"", ""}, "pt-3": {"", ""}}
	for _, got := range rc.accepted() {
		id := got.Header.Get("webhook-id")
		if tp, ts := got.Header.Get("traceparent"), got.Header.Get("tracestate"); tp != want[id][0] || ts != want[id][1] {
			t.Errorf("%s: traceparent %q tracestate %q, want %q %q", id, tp, ts, want[id][0], want[id][1])
		}
	}
}

// otlpReceiver is an OTLP/HTTP collector on loopback that keeps the spans it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans map[string]string // span name → its resource's service.name
	bad   []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	o := &otlpReceiver{spans: map[string]string{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			o.bad = append(o.bad, fmt.Sprintf("%s %s %s: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
			http.Error(w, "not an OTLP traces export", http.StatusBadRequest)
			return
		}
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					o.spans[s.GetName()+" "+hex.EncodeToString(s.GetTraceId())] = service
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(o.Close)
	return o
}

// With --otlp-endpoint a gateway exports its delivery spans over OTLP/HTTP as service
// "quaycast", and flushes the last ones when it stops.
func TestTraceExportsOverOTLP(t *testing.T) {
	t.Parallel()
	collector := newOTLPReceiver(t)
	cfg := testConfig(t)
	cfg.OTLPEndpoint = collector.URL
	g := startGateway(t, cfg)
	rc := newReceiver(t)
	g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"cargo_loaded"}})
	g.waitReady(t)

	postEvent(t, g, event("otlp-1", "cargo_loaded", "MSCU7"), map[string]string{"traceparent": pubParent})
	rc.waitCount(t, 1)
	g.Stop(t) // the batch is flushed on stop, before its interval is up

	collector.mu.Lock()
	defer collector.mu.Unlock()
	if len(collector.bad) > 0 {
		t.Errorf("requests the collector refused: %q", collector.bad)
	}
	service, ok := collector.spans[gateway.SpanDeliver+" "+pubTraceID]
	if !ok {
		t.Fatalf("no %s span of trace %s reached the collector; it got %v", gateway.SpanDeliver, pubTraceID, collector.spans)
	}
	if service != "quaycast" {
		t.Errorf("service.name %q, want quaycast", service)
	}
}
