package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer"
)

// SpanDeliver is the name of a delivery attempt's span.
const SpanDeliver = "quaycast.deliver"

// The attributes of a delivery attempt's span beside the HTTP ones of OpenTelemetry's semantic
// conventions.
const (
	AttrEndpointID = attribute.Key("quaycast.endpoint.id")
	AttrEventID    = attribute.Key("quaycast.event.id")
	AttrEventType  = attribute.Key("quaycast.event.type")
	AttrEntity     = attribute.Key("quaycast.event.entity")
	AttrAttempt    = attribute.Key("quaycast.attempt")
	AttrOutcome    = attribute.Key("quaycast.outcome")
	AttrTest       = attribute.Key("quaycast.test")
)

// tracerName is the instrumentation scope of quaycast's spans.
const tracerName = "github.com/quaycast/quaycast/gateway"

// traceparentHeader is W3C Trace Context's header: without it a message carries no trace context.
const traceparentHeader = "traceparent"

// traceContext is the W3C Trace Context propagator (traceparent, tracestate). It is stateless.
var traceContext propagation.TraceContext

// natsCarrier lets the propagator read and write a NATS message's headers. NATS header names are
// case-sensitive and W3C's are not: a publisher may have written "traceparent" or "Traceparent".
type natsCarrier nats.Header

var _ propagation.TextMapCarrier = natsCarrier(nil)

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

func (c natsCarrier) Set(key, value string) { c[key] = []string{value} }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// startAttempt starts the span of one POST: a child of the event's trace context when its
// message carried a valid one, else the root of a new trace.
func (s *Sender) startAttempt(ctx context.Context, d *consumer.Delivery, test bool) (context.Context, trace.Span) {
	if len(d.Header) > 0 {
		ctx = traceContext.Extract(ctx, natsCarrier(d.Header))
	}
	attrs := []attribute.KeyValue{
		AttrEndpointID.String(d.Endpoint.ID), AttrEventID.String(d.Event.ID), AttrEventType.String(d.Event.Type),
		AttrEntity.String(d.Event.Entity), AttrAttempt.Int(d.Attempt), semconv.HTTPRequestMethodPost,
	}
	if test {
		attrs = append(attrs, AttrTest.Bool(true))
	}
	return s.tracer.Start(ctx, SpanDeliver, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endAttempt records what the POST came to on its span and ends it.
func endAttempt(span trace.Span, a *Attempt, out consumer.Outcome) {
	if out.Status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(out.Status))
	}
	span.SetAttributes(AttrOutcome.String(a.Outcome))
	if out.Result != consumer.Delivered {
		span.SetStatus(codes.Error, a.Error)
	}
	span.End()
}

// traceHeaders writes the trace context the receiver gets: that of the attempt's span when spans
// are made; otherwise the event's own, passed on as it came (once it parses), so that the
// receiver's spans still join the publisher's trace. An event without one gets none.
func (s *Sender) traceHeaders(ctx context.Context, d *consumer.Delivery, h http.Header) {
	if s.tracer == nil {
		// Only a publisher's trace context is passed on: none, nothing to write (and no walk of
		// the context chain for a span that is not there).
		carrier := natsCarrier(d.Header)
		if carrier.Get(traceparentHeader) == "" {
			return
		}
		ctx = traceContext.Extract(ctx, carrier)
	}
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}

// tracerProvider is the provider of delivery spans: the one given in Options, else one exporting
// over OTLP/HTTP when --otlp-endpoint is set, flushed and shut down when Run returns; nil when
// neither, and then no span is made.
func (g *Gateway) tracerProvider(closers *undo) (trace.TracerProvider, error) {
	if g.o.TracerProvider != nil {
		return g.o.TracerProvider, nil
	}
	if g.cfg.OTLPEndpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(config.OTLPTracesURL(g.cfg.OTLPEndpoint)))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// The defaults (host, SDK, OTEL_RESOURCE_ATTRIBUTES) with quaycast's name over them.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("quaycast")))
	if err != nil {
		res = resource.NewSchemaless(semconv.ServiceName("quaycast"))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	closers.push(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			g.log.Warn().Err(err).Msg("flush spans to the OTLP collector")
		}
	})
	g.log.Info().Str("otlp_endpoint", config.OTLPTracesURL(g.cfg.OTLPEndpoint)).Msg("exporting delivery spans")
	return tp, nil
}
