package bench

import "time"

// A round is sampled every sampleEvery; maxTimePoints bounds its timeline: a longer round merges
// neighbouring points.
const (
	sampleEvery   = time.Second
	maxTimePoints = 300
)

// Timeline is a round over time, from the start of its traffic: a point per second of sampling,
// or per IntervalSeconds once a long round had neighbouring points merged to stay within 300.
type Timeline struct {
	IntervalSeconds float64 `json:"interval_s"`
	// GatewayMeasured says the gateway figures are its processes' (added up); false when the
	// gateway is not a process of the harness's. HarnessMeasured likewise for this process.
	GatewayMeasured bool        `json:"gateway_measured"`
	HarnessMeasured bool        `json:"harness_measured"`
	Points          []TimePoint `json:"points"`
}

// TimePoint is one interval of a round.
type TimePoint struct {
	Seconds          float64 `json:"t_s"` // the interval's end, from the start of the traffic
	Deliveries       int     `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	// P50Ms and P99Ms are the latency of the deliveries that arrived in the interval; 0 when none.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// CPU time over the interval, in cores; RSS: the highest sampled in the interval.
	GatewayCPU    float64 `json:"gateway_cpu_cores"`
	GatewayRSSMiB float64 `json:"gateway_rss_mib"`
	// GatewayGoroutines is the highest count the gateways' /metrics gave in the interval (added
	// up over gateways); 0 when it could not be read.
	GatewayGoroutines int `json:"gateway_goroutines,omitempty"`
	// GatewayConnections is the highest count of connections to receivers open in the interval;
	// 0 when the gateways do not export it.
	GatewayConnections int     `json:"gateway_receiver_connections,omitempty"`
	HarnessCPU         float64 `json:"harness_cpu_cores"`
	HarnessRSSMiB      float64 `json:"harness_rss_mib"`
}

// timeline collects a round's samples into spans; each span is one point.
type timeline struct {
	start    time.Time
	at       time.Time // of the last sample
	gw, self ProcStats // at the last sample
	perSpan  int       // samples in a span: doubles as spans merge
	spans    []span
	pending  span
	measured struct{ gw, self bool }
}

// span is the samples of one point: their deliveries' latencies and the processes' CPU time.
type span struct {
	end, dur       time.Duration
	samples        int
	hist           Histogram
	gwCPU, selfCPU time.Duration
	gwRSS, selfRSS int64
	goroutines     int
	connections    int
}

func newTimeline(start time.Time, gw, self ProcStats) *timeline {
	return &timeline{start: start, at: start, gw: gw, self: self, perSpan: 1}
}

// sample adds the interval since the last sample: lat holds its deliveries' latencies, gw and
// self the processes' figures now (ok: they could be read), c the gateways' counts (0: unknown).
func (tl *timeline) sample(now time.Time, lat *Histogram, gw ProcStats, gwOK bool, self ProcStats, selfOK bool, c gatewayCounts) {
	p := &tl.pending
	p.goroutines = max(p.goroutines, c.goroutines)
	if c.hasConnections {
		p.connections = max(p.connections, c.connections)
	}
	p.end, p.dur = now.Sub(tl.start), p.dur+now.Sub(tl.at)
	p.samples++
	p.hist.Merge(lat)
	if gwOK {
		tl.measured.gw = true
		p.gwCPU += max(gw.CPU-tl.gw.CPU, 0)
		p.gwRSS = max(p.gwRSS, gw.RSS)
		tl.gw = gw
	}
	if selfOK {
		tl.measured.self = true
		p.selfCPU += max(self.CPU-tl.self.CPU, 0)
		p.selfRSS = max(p.selfRSS, self.RSS)
		tl.self = self
	}
	tl.at = now
	if p.samples < tl.perSpan {
		return
	}
	tl.spans = append(tl.spans, tl.pending)
	tl.pending = span{}
	if len(tl.spans) == maxTimePoints {
		tl.halve()
	}
}

// halve merges neighbouring spans: the timeline keeps covering the round in half the points.
func (tl *timeline) halve() {
	out := tl.spans[:0]
	for i := 0; i < len(tl.spans); i += 2 {
		s := tl.spans[i]
		if i+1 < len(tl.spans) {
			s.add(&tl.spans[i+1])
		}
		out = append(out, s)
	}
	tl.spans = out
	tl.perSpan *= 2
}

// add extends s with the span after it.
func (s *span) add(o *span) {
	s.end, s.dur, s.samples = o.end, s.dur+o.dur, s.samples+o.samples
	s.hist.Merge(&o.hist)
	s.gwCPU, s.selfCPU = s.gwCPU+o.gwCPU, s.selfCPU+o.selfCPU
	s.gwRSS, s.selfRSS = max(s.gwRSS, o.gwRSS), max(s.selfRSS, o.selfRSS)
	s.goroutines = max(s.goroutines, o.goroutines)
	s.connections = max(s.connections, o.connections)
}

// result is the timeline's points, the samples not yet making a span as one more. A last span
// shorter than half the others (the final sample, just after a periodic one) joins the one before:
// a few milliseconds make no rate. It ends the timeline: no samples after it.
func (tl *timeline) result() *Timeline {
	spans := tl.spans
	if tl.pending.samples > 0 {
		spans = append(spans, tl.pending)
	}
	tl.spans, tl.pending = nil, span{}
	if n := len(spans); n >= 2 && spans[n-1].dur*2 < time.Duration(tl.perSpan)*sampleEvery {
		spans[n-2].add(&spans[n-1])
		spans = spans[:n-1]
	}
	if len(spans) == 0 {
		return nil
	}
	out := &Timeline{IntervalSeconds: (time.Duration(tl.perSpan) * sampleEvery).Seconds(), GatewayMeasured: tl.measured.gw, HarnessMeasured: tl.measured.self}
	for _, s := range spans {
		pt := TimePoint{Seconds: s.end.Seconds(), Deliveries: int(s.hist.Count())}
		if sec := s.dur.Seconds(); sec > 0 {
			pt.DeliveriesPerSec = float64(pt.Deliveries) / sec
			pt.GatewayCPU, pt.HarnessCPU = s.gwCPU.Seconds()/sec, s.selfCPU.Seconds()/sec
		}
		if pt.Deliveries > 0 {
			pt.P50Ms, pt.P99Ms = ms(s.hist.Quantile(0.50)), ms(s.hist.Quantile(0.99))
		}
		pt.GatewayRSSMiB, pt.HarnessRSSMiB = mib(s.gwRSS), mib(s.selfRSS)
		pt.GatewayGoroutines, pt.GatewayConnections = s.goroutines, s.connections
		out.Points = append(out.Points, pt)
	}
	return out
}
