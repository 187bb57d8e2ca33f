package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
)

// metrics are what /metrics shows, on a registry of the gateway's own.
type metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	breaker    *prometheus.GaugeVec
	backlog    *prometheus.GaugeVec
	dead       *prometheus.CounterVec
	invalid    prometheus.Counter
	skipped    *prometheus.CounterVec
	ingested   *prometheus.CounterVec
	stored     prometheus.Gauge
	logDropped prometheus.Counter
	copies     prometheus.Counter
	unknown    prometheus.Counter
	// operatorEvents counts the operator events stored in the events stream, by result.
	operatorEvents *prometheus.CounterVec
	listed         map[string]bool // endpoints with series, as of the last listing (watchStreams only)
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quaycast_delivery_attempts_total", Help: "POSTs made, by endpoint and outcome (delivered, retry, permanent, gone).",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quaycast_delivery_attempt_duration_seconds", Help: "Time of one POST, connect to the reply read, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quaycast_breaker_state", Help: "Circuit breaker of each endpoint: 0 closed, 1 half-open, 2 open.",
		}, []string{"endpoint"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quaycast_endpoint_backlog", Help: "Events of each endpoint not yet acknowledged: pending in the stream and held by the gateway.",
		}, []string{"endpoint"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quaycast_dead_letters_total", Help: "Events dead-lettered, by endpoint.",
		}, []string{"endpoint"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quaycast_invalid_events_total", Help: "Messages on the events stream set aside as invalid (each counted once per endpoint that saw it).",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quaycast_condition_skipped_total", Help: "Events an endpoint's condition did not take, acknowledged without a POST, by endpoint and reason (no_match, error: the evaluation failed).",
		}, []string{"endpoint", "reason"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quaycast_ingested_events_total", Help: "Events taken by the ingest API, by result (stored, duplicate).",
		}, []string{"result"}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quaycast_delivery_log_dropped_total", Help: "Delivery-log records dropped because the server fell behind (delivery goes first).",
		}),
		copies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quaycast_tenant_copies_total", Help: "Copies of events the router stored for the tenants they name (one per event and tenant).",
		}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quaycast_tenant_unknown_total", Help: "Tenants named by events that the tenant registry does not know: those events reach none of their endpoints (one per event and tenant).",
		}),
		operatorEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quaycast_operator_events_total", Help: "Operator events this gateway stored in the events stream for endpoints to receive, by result (stored, duplicate, failed: refused or unanswered after retries, dropped: its queue was full or the gateway stopping).",
		}, []string{"result"}),
		stored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quaycast_stream_last_sequence", Help: "Last sequence of the events stream: its rate is the ingest rate from every publisher.",
		}),
	}
	m.reg.MustRegister(m.deliveries, m.latency, m.breaker, m.backlog, m.dead, m.invalid, m.skipped, m.ingested, m.stored, m.logDropped, m.copies, m.unknown, m.operatorEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"stored", "duplicate", "failed", "dropped"} {
		m.operatorEvents.WithLabelValues(r) // shown at 0 before the first
	}
	return m
}

func (m *metrics) attempt(a *Attempt) {
	m.deliveries.WithLabelValues(a.EndpointID, a.Outcome).Inc()
	m.latency.WithLabelValues(a.Outcome).Observe(a.DurationMS / 1000)
}

func (m *metrics) breakerChanged(ev BreakerEvent) {
	state := map[string]float64{"closed": 0, "half-open": 1, "open": 2}[ev.To]
	m.breaker.WithLabelValues(ev.EndpointID).Set(state)
}

// watchStreams refreshes the backlog per endpoint and the stream's last sequence every interval,
// from one paged listing of the consumers (not one request per endpoint), until ctx ends.
func (m *metrics) watchStreams(ctx context.Context, events jetstream.Stream, every time.Duration, log zerolog.Logger) {
	for {
		lctx, cancel := context.WithTimeout(ctx, every)
		if info, err := events.Info(lctx); err == nil {
			m.stored.Set(float64(info.State.LastSeq))
		}
		seen := map[string]bool{}
		list := events.ListConsumers(lctx)
		for ci := range list.Info() {
			if strings.HasPrefix(ci.Name, "ep_") {
				seen[ci.Name] = true
				m.backlog.WithLabelValues(ci.Name).Set(float64(ci.NumPending) + float64(ci.NumAckPending))
			}
		}
		if err := list.Err(); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("metrics: list consumers")
		} else {
			m.forgetGone(seen)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(listEvery(every, len(seen))):
		}
	}
}

// listEvery is the wait before the next listing of n consumers: every, stretched by 10 ms per
// consumer, so that the backlog gauges of 10,000 endpoints — read by the server from each
// consumer's state — cost about a tenth of the idle CPU they did at a listing every 15 s.
func listEvery(every time.Duration, n int) time.Duration {
	return max(every, time.Duration(n)*10*time.Millisecond)
}

// forgetGone drops the series of endpoints that no longer exist.
func (m *metrics) forgetGone(seen map[string]bool) {
	for id := range m.listed {
		if !seen[id] {
			m.backlog.DeleteLabelValues(id)
			m.breaker.DeleteLabelValues(id)
			m.deliveries.DeletePartialMatch(prometheus.Labels{"endpoint": id})
			m.dead.DeleteLabelValues(id)
			m.skipped.DeletePartialMatch(prometheus.Labels{"endpoint": id})
		}
	}
	m.listed = seen
}

// countStuck exports, per endpoint delivering on this gateway, its stuck entities, read at each
// scrape (an endpoint that stops delivering here has no series).
func (m *metrics) countStuck(stuck func() map[string]consumer.Stuck) {
	m.reg.MustRegister(&stuckCollector{stuck: stuck})
}

var (
	blockedDesc = prometheus.NewDesc("quaycast_entities_blocked",
		"Entities of each endpoint whose head event failed and waits for its next attempt, on this gateway.", []string{"endpoint"}, nil)
	parkedDesc = prometheus.NewDesc("quaycast_entities_parked",
		"Entities of each endpoint with events parked behind their failing head, on this gateway.", []string{"endpoint"}, nil)
	parkedEventsDesc = prometheus.NewDesc("quaycast_parked_events",
		"Events parked behind a failing head, per endpoint, on this gateway.", []string{"endpoint"}, nil)
)

type stuckCollector struct {
	stuck func() map[string]consumer.Stuck
}

func (c *stuckCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- blockedDesc
	ch <- parkedDesc
	ch <- parkedEventsDesc
}

func (c *stuckCollector) Collect(ch chan<- prometheus.Metric) {
	for id, s := range c.stuck() {
		ch <- prometheus.MustNewConstMetric(blockedDesc, prometheus.GaugeValue, float64(s.Blocked), id)
		ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(s.Parked), id)
		ch <- prometheus.MustNewConstMetric(parkedEventsDesc, prometheus.GaugeValue, float64(s.ParkedEvents), id)
	}
}

// countConnections exports the connections to receivers open: the sockets, and the pool's size.
func (m *metrics) countConnections(open func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quaycast_receiver_connections", Help: "Connections to receivers open, in use or idle in the pool (idle ones close after 90 s; one a receiver closed counts until it is next taken).",
	}, func() float64 { return float64(open()) }))
}

// countDegraded exports how many endpoints' consumers could not be set up on this gateway.
func (m *metrics) countDegraded(degraded func() []string) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quaycast_endpoints_degraded", Help: "Endpoints whose consumer could not be created or updated on this gateway (retried until they converge; listed by /readyz).",
	}, func() float64 { return float64(len(degraded())) }))
}

// countCluster exports this gateway's membership: what it owns, how many members it sees, whether
// its lease is held, and how often it lost it.
func (m *metrics) countCluster(s *cluster.Supervisor) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quaycast_cluster_endpoints_owned", Help: "Endpoints this gateway delivers to.",
		}, func() float64 { return float64(s.Owned()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quaycast_cluster_members", Help: "Live gateways this one sees in the cluster, itself included.",
		}, func() float64 { return float64(len(s.Members())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quaycast_cluster_lease_held", Help: "1 while this gateway's lease is valid (it may post), 0 otherwise.",
		}, func() float64 {
			if s.Held() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quaycast_cluster_fences_total", Help: "Times this gateway lost its lease and stopped every endpoint.",
		}, func() float64 { return float64(s.Fences()) }),
	)
}
