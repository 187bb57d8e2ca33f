package bench

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Result is what a run measured: one Round per pipeline run over the same events and receivers,
// and the ratios between them.
type Result struct {
	Scenario   Scenario  `json:"scenario"`
	Run        string    `json:"run"` // random id in event ids and names
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	Machine    Machine   `json:"machine"`
	Target     string    `json:"target"` // child, remote or in-process
	GatewayPID int       `json:"gateway_pid,omitempty"`
	Rounds     []Round   `json:"rounds"`

	// VsBaseline compares the gateway with the baseline of the same run.
	VsBaseline *Ratios `json:"vs_baseline,omitempty"`
	// Hanging compares the healthy endpoints' latency with and without a hanging endpoint.
	Hanging *HangingEffect `json:"hanging_effect,omitempty"`

	// Cluster is set when several gateways share the endpoints: who they are, and the NATS nodes
	// the harness started for them. The gateway figures of the rounds (and GatewayStart and
	// GatewayEnd) are then summed over the gateways; each round's Cluster has them one by one.
	Cluster *Cluster `json:"cluster,omitempty"`
	// Scaling compares the rounds of a run with several Scenario.Gateways values.
	Scaling []ScaleStep `json:"scaling,omitempty"`

	GatewayStart *Usage `json:"gateway_at_start,omitempty"` // after it started, before any endpoint
	GatewayEnd   *Usage `json:"gateway_at_end,omitempty"`
	GatewayLog   struct {
		Warnings int            `json:"warnings"`
		Errors   int            `json:"errors"`
		Lines    map[string]int `json:"distinct,omitempty"` // "level: message: error" -> count, at most 20
	} `json:"gateway_log"`
	// GatewayStopSeconds is how long the slowest of the harness's child gateways took from
	// SIGTERM to its exit (0 for gateways it did not start as children).
	GatewayStopSeconds float64 `json:"gateway_stop_s,omitempty"`
	Strays             int64   `json:"stray_deliveries"` // arrivals of an earlier round's events, or to an endpoint no longer in the round
	// ReceiverErrors and NATSErrors are what the harness's receivers and NATS connections
	// complained about, e.g. "too many open files" when the box runs out of sockets.
	ReceiverErrors string   `json:"receiver_errors,omitempty"`
	NATSErrors     string   `json:"nats_errors,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	OK             bool     `json:"ok"`
}

// Machine is where the run ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Round is one pipeline's run over the round's events.
type Round struct {
	Name       string `json:"name"`
	Pipeline   string `json:"pipeline"` // gateway or baseline
	Endpoints  int    `json:"endpoints"`
	Checked    int    `json:"checked_endpoints"` // whose deliveries are checked: all but hanging ones
	Events     int    `json:"events"`
	Deliveries int    `json:"deliveries_expected"`

	Registration *Registration `json:"registration,omitempty"`
	Idle         *Idle         `json:"idle,omitempty"`

	Published       int     `json:"published"`
	PublishSeconds  float64 `json:"publish_s"`
	PublishRate     float64 `json:"publish_per_s"`
	PublishRetries  int     `json:"publish_retries"`
	PublishFailures int     `json:"publish_failures"`

	Delivered        int     `json:"delivered"` // 2xx answers, duplicates included
	DeliverSeconds   float64 `json:"deliver_s"` // first publish to last delivery
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	Latency          Latency `json:"latency_ms"` // publish to receiver, checked endpoints
	PerEndpoint      Spread  `json:"per_endpoint"`
	Requests         int64   `json:"requests"`       // every POST the receivers got
	FailedOnPurpose  int64   `json:"failed_answers"` // 503s of flaky receivers, requests hanging endpoints held
	BadSignatures    int64   `json:"bad_signatures"`
	Drain            *Drain  `json:"drain,omitempty"`
	Soak             *Soak   `json:"soak,omitempty"`
	Verdict          Verdict `json:"verdict"`
	Gateway          *Usage  `json:"gateway,omitempty"` // the gateway process (or processes, added up) during publish and delivery
	Harness          *Usage  `json:"harness,omitempty"` // this process (publisher, receivers, baseline)
	// DeliveryLogDropped is how much the gateways' quaycast_delivery_log_dropped_total rose over
	// the round, added up: records the delivery log shed while NATS fell behind. Deliveries are
	// unaffected; records dropped after the round's last delivery may be counted in no round.
	DeliveryLogDropped int `json:"delivery_log_dropped"`
	// OthersCPU is how many cores the machine's other processes kept busy during the round, on
	// average: what the run's figures shared the machine with.
	OthersCPU float64       `json:"others_cpu_cores,omitempty"`
	Cluster   *RoundCluster `json:"cluster,omitempty"` // several gateways: figures per gateway and NATS node
	TimedOut  bool          `json:"timed_out"`
	Notes     []string      `json:"notes,omitempty"`

	// For the pictures of the HTML report: the round over time, its latency distribution, and
	// the checked endpoints one by one.
	Timeline         *Timeline `json:"timeline,omitempty"`
	LatencyHistogram []Bin     `json:"latency_histogram,omitempty"`
	// ByEndpoint is every checked endpoint's figures, or with more than maxByEndpoint of them
	// those of every k-th (by name, the same in every round), at most maxByEndpoint.
	ByEndpoint []EndpointFigures `json:"by_endpoint,omitempty"`

	hist Histogram // merged, for comparisons
}

// EndpointFigures are one endpoint's deliveries in a round.
type EndpointFigures struct {
	Name             string  `json:"name"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	P99Ms            float64 `json:"p99_ms"`
	MaxGapMs         float64 `json:"max_gap_ms"` // longest time between two deliveries
}

// Cluster is the gateways of a run and the NATS nodes the harness started for them.
type Cluster struct {
	Gateways []Process `json:"gateways"`
	NATS     []Process `json:"nats_nodes,omitempty"` // none for gateways at --api
	Replicas int       `json:"replicas,omitempty"`   // of every stream and bucket on the harness's NATS nodes
}

// Process is a gateway or NATS node: its name (a gateway's --name, as GET /v1/cluster shows it),
// where it answers, and its pid when it is a child of the harness.
type Process struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	PID  int    `json:"pid,omitempty"`
}

// RoundCluster is a round of several gateways, one by one.
type RoundCluster struct {
	Gateways int `json:"gateways"` // running during the round; 0 in the baseline's round
	// JoinSeconds is, when gateways were added before the round, the time from starting them
	// until the endpoints were spread over every gateway and each delivered to what it owned.
	JoinSeconds float64          `json:"join_s,omitempty"`
	OwnedSpread int              `json:"owned_spread"` // max − min endpoints owned by a gateway, at the round's end
	PerGateway  []GatewayFigures `json:"per_gateway"`
	NATS        *Usage           `json:"nats,omitempty"` // the NATS nodes added up
	NATSNodes   []NodeFigures    `json:"nats_nodes,omitempty"`
}

// GatewayFigures are one gateway's share of a round, from its /metrics and its process.
type GatewayFigures struct {
	Name  string `json:"name"`
	Owned int    `json:"endpoints_owned"` // at the round's end
	// Deliveries is how much its counter of POSTs answered 2xx rose over the round; per second
	// over the round's delivery time (first publish to last delivery).
	Deliveries         int     `json:"deliveries"`
	DeliveriesPerSec   float64 `json:"deliveries_per_s"`
	DeliveryLogDropped int     `json:"delivery_log_dropped"` // how much its quaycast_delivery_log_dropped_total rose
	Process            *Usage  `json:"process,omitempty"`    // CPU per 1,000 of its own deliveries
}

// NodeFigures are one NATS node's process over a round.
type NodeFigures struct {
	Name    string `json:"name"`
	Process *Usage `json:"process,omitempty"` // CPU per 1,000 of the round's deliveries
}

// ScaleStep is one round of a run with several Scenario.Gateways values.
type ScaleStep struct {
	Round            string  `json:"round"`
	Gateways         int     `json:"gateways"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	VsFirst          float64 `json:"vs_first"` // deliveries/s over the first step's
	// CPU of the gateways and of the NATS nodes, added up, per 1,000 deliveries.
	GatewayCPUMsPer1k float64 `json:"gateway_cpu_ms_per_1k,omitempty"`
	NATSCPUMsPer1k    float64 `json:"nats_cpu_ms_per_1k,omitempty"`
	// OthersCPU is the round's Round.OthersCPU: a ratio between rounds whose machines differed
	// this much says little.
	OthersCPU float64 `json:"others_cpu_cores,omitempty"`
}

// Registration is how long endpoints took to register and to have their consumer running.
type Registration struct {
	Endpoints     int     `json:"endpoints"`
	Seconds       float64 `json:"seconds"` // every create answered
	PerEndpointMs float64 `json:"per_endpoint_ms"`
	ReadySeconds  float64 `json:"ready_seconds"` // until the gateway delivered to all of them
}

// Idle is the gateway after registration, before any traffic.
type Idle struct {
	Seconds    float64 `json:"seconds"`
	CPUPercent float64 `json:"cpu_percent"` // of one core
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// The NATS nodes of a cluster of the harness's own, added up: consumers cost the server
	// even when nothing is published.
	NATSCPUPercent float64 `json:"nats_cpu_percent,omitempty"`
	NATSRSSMiB     float64 `json:"nats_rss_mib,omitempty"`
}

// Usage is a process's CPU time over a span and its memory at its end.
type Usage struct {
	CPUSeconds float64 `json:"cpu_s"`
	CPUMsPer1k float64 `json:"cpu_ms_per_1k_deliveries,omitempty"`
	RSSMiB     float64 `json:"rss_mib,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`    // high-water mark since the process started
	PeakFDs    int     `json:"peak_open_files,omitempty"` // sampled every second
}

// Latency is a distribution in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Spread is how endpoints differ: min, median and max over the checked endpoints.
type Spread struct {
	DeliveriesPerSec MinMedMax `json:"deliveries_per_s"`
	P99Ms            MinMedMax `json:"p99_ms"`
	// MaxGapMs is each endpoint's longest time between two deliveries: a stall shows here.
	MaxGapMs MinMedMax `json:"max_gap_ms"`
	// FirstDeliveryS is the time from the round's first publish to each endpoint's first
	// delivery (endpoints taken down are the drain's): how long the last one waits to hear
	// anything, e.g. thousands of sleeping endpoints woken at once.
	FirstDeliveryS MinMedMax `json:"first_delivery_s"`
}

// MinMedMax summarises one figure over endpoints.
type MinMedMax struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Drain is how endpoints that were down during publishing caught up once back.
type Drain struct {
	Events              int     `json:"events"`                    // expected at the down endpoints
	FirstDeliverySecond float64 `json:"first_delivery_after_up_s"` // from up to the first delivery
	Seconds             float64 `json:"seconds"`                   // from up to the last delivery
	PerSec              float64 `json:"per_s"`                     // events / seconds
	// DrainPerSec is the rate once deliveries started again: events / (last - first delivery).
	DrainPerSec float64 `json:"per_s_after_first"`
}

// Verdict is the checker's verdict, with at most 10 endpoints' details.
type Verdict struct {
	Lost       int                       `json:"lost"`
	Duplicates int                       `json:"duplicates"`
	OutOfOrder int                       `json:"out_of_order"`
	Unexpected int                       `json:"unexpected"`
	Problems   map[string]EndpointReport `json:"problems,omitempty"`
}

// Ratios compare a gateway round with the baseline round.
type Ratios struct {
	Gateway          string  `json:"gateway_round"`
	Baseline         string  `json:"baseline_round"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"` // gateway / baseline: 1 = as fast as the ceiling
	P99              float64 `json:"p99"`              // gateway / baseline: 1 = as quick as the ceiling
}

// HangingEffect is the healthy endpoints' p99 with a hanging endpoint beside them, against a run
// without it; with several pairs of rounds, the pair of the median ratio, and the spread.
type HangingEffect struct {
	WithoutP99Ms float64       `json:"healthy_p99_without_ms"`
	WithP99Ms    float64       `json:"healthy_p99_with_ms"`
	Ratio        float64       `json:"ratio"`
	Pairs        []HangingPair `json:"pairs,omitempty"` // every pair, in the order run (with Repeat)
	RatioMin     float64       `json:"ratio_min,omitempty"`
	RatioMax     float64       `json:"ratio_max,omitempty"`
}

// HangingPair is one pair of rounds, with and without the hanging endpoints.
type HangingPair struct {
	With    string  `json:"with"` // round names
	Without string  `json:"without"`
	Ratio   float64 `json:"ratio"`
}

// hangingEffect pairs the rounds with and without the hanging endpoints by their number ("gateway
// #2" with withoutHanging+" #2"), in the order run; a round that timed out pairs with nothing.
func (res *Result) hangingEffect() *HangingEffect {
	var with []*Round
	without := map[string]*Round{}
	for i := range res.Rounds {
		rd := &res.Rounds[i]
		_, number, _ := strings.Cut(rd.Name, " #")
		switch {
		case rd.Pipeline != "gateway" || rd.TimedOut || rd.Latency.P99 <= 0:
		case strings.HasPrefix(rd.Name, withoutHanging):
			without[number] = rd
		default:
			with = append(with, rd)
		}
	}
	var pairs []HangingPair
	var withP99, withoutP99 []float64
	for _, w := range with {
		_, number, _ := strings.Cut(w.Name, " #")
		if wo := without[number]; wo != nil {
			pairs = append(pairs, HangingPair{With: w.Name, Without: wo.Name, Ratio: w.Latency.P99 / wo.Latency.P99})
			withP99, withoutP99 = append(withP99, w.Latency.P99), append(withoutP99, wo.Latency.P99)
		}
	}
	n := len(pairs)
	if n == 0 {
		return nil
	}
	byRatio := slices.Clone(pairs)
	slices.SortFunc(byRatio, func(a, b HangingPair) int { return cmp.Compare(a.Ratio, b.Ratio) })
	mid := byRatio[(n-1)/2] // the lower median: an even count does not invent a pair
	i := slices.IndexFunc(pairs, func(p HangingPair) bool { return p == mid })
	h := &HangingEffect{WithoutP99Ms: withoutP99[i], WithP99Ms: withP99[i], Ratio: mid.Ratio}
	if n > 1 {
		h.Pairs, h.RatioMin, h.RatioMax = pairs, byRatio[0].Ratio, byRatio[n-1].Ratio
	}
	return h
}

func newVerdict(r Report) Verdict {
	v := Verdict{Lost: r.Lost, Duplicates: r.Duplicates, OutOfOrder: r.OutOfOrder, Unexpected: r.Unexpected}
	names := make([]string, 0)
	for n, e := range r.Endpoints {
		if e.Lost+e.Duplicates+e.OutOfOrder+e.Unexpected > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names[:min(len(names), 10)] {
		if v.Problems == nil {
			v.Problems = map[string]EndpointReport{}
		}
		v.Problems[n] = r.Endpoints[n]
	}
	return v
}

func (v Verdict) clean() bool {
	return v.Lost == 0 && v.Duplicates == 0 && v.OutOfOrder == 0 && v.Unexpected == 0
}

// compare fills in the ratios between rounds.
func (res *Result) compare() {
	find := func(name string) *Round {
		for i := range res.Rounds {
			if res.Rounds[i].Name == name && !res.Rounds[i].TimedOut {
				return &res.Rounds[i]
			}
		}
		return nil
	}
	// The gateway round with every endpoint: the last, with the most gateways of a scaling run.
	var gw *Round
	for i := range res.Rounds {
		if rd := &res.Rounds[i]; rd.Pipeline == "gateway" && !strings.HasPrefix(rd.Name, withoutHanging) && !rd.TimedOut {
			gw = rd
		}
	}
	base := find("baseline")
	res.Hanging = res.hangingEffect()
	for i := range res.Rounds { // the baseline has no hanging endpoint either: compare without
		if rd := &res.Rounds[i]; strings.HasPrefix(rd.Name, withoutHanging) && !rd.TimedOut {
			gw = rd
		}
	}
	if base != nil && gw != nil && base.DeliveriesPerSec > 0 && base.Latency.P99 > 0 {
		res.VsBaseline = &Ratios{Gateway: gw.Name, Baseline: base.Name,
			DeliveriesPerSec: gw.DeliveriesPerSec / base.DeliveriesPerSec, P99: gw.Latency.P99 / base.Latency.P99}
	}
	res.scaling()
}

// scaling compares the rounds of a run with several Scenario.Gateways values with the first.
func (res *Result) scaling() {
	if len(res.Scenario.Gateways) < 2 {
		return
	}
	res.Scaling = nil
	for _, rd := range res.Rounds {
		if rd.Pipeline != "gateway" || rd.Cluster == nil || rd.TimedOut || rd.DeliveriesPerSec <= 0 {
			continue
		}
		st := ScaleStep{Round: rd.Name, Gateways: rd.Cluster.Gateways, DeliveriesPerSec: rd.DeliveriesPerSec, OthersCPU: rd.OthersCPU}
		if rd.Gateway != nil {
			st.GatewayCPUMsPer1k = rd.Gateway.CPUMsPer1k
		}
		if rd.Cluster.NATS != nil {
			st.NATSCPUMsPer1k = rd.Cluster.NATS.CPUMsPer1k
		}
		res.Scaling = append(res.Scaling, st)
	}
	if len(res.Scaling) < 2 {
		res.Scaling = nil
		return
	}
	for i := range res.Scaling {
		res.Scaling[i].VsFirst = res.Scaling[i].DeliveriesPerSec / res.Scaling[0].DeliveriesPerSec
	}
}

// judge sets OK: every gateway round finished with nothing lost, duplicated, reordered or
// unexpected, every event stored, every signature good. The baseline is a ceiling, not the
// product: its verdict is reported, and a note says so when it is not clean.
func (res *Result) judge() {
	res.OK = false
	for _, rd := range res.Rounds {
		if rd.Pipeline == "baseline" {
			if !rd.Verdict.clean() || rd.TimedOut {
				res.Notes = append(res.Notes, "the baseline did not keep the delivery promise in this run (it has no reconnect handling or ack retries): its figures are a ceiling without that guarantee")
			}
			continue
		}
		res.OK = true
	}
	for _, rd := range res.Rounds {
		unsteady := rd.Soak != nil && rd.Soak.Judged && !rd.Soak.Stable
		if rd.Pipeline == "gateway" && (rd.TimedOut || !rd.Verdict.clean() || rd.PublishFailures > 0 || rd.BadSignatures > 0 || unsteady) {
			res.OK = false
		}
	}
}

// problem says in one line why the result is not OK.
func (res *Result) problem() string {
	var out []string
	for _, rd := range res.Rounds {
		if rd.Pipeline == "baseline" {
			continue
		}
		v := rd.Verdict
		switch {
		case rd.TimedOut:
			out = append(out, fmt.Sprintf("%s: timed out with %d of %d deliveries", rd.Name, rd.Delivered, rd.Deliveries))
		case !v.clean():
			out = append(out, fmt.Sprintf("%s: lost %d, duplicates %d, out of order %d, unexpected %d", rd.Name, v.Lost, v.Duplicates, v.OutOfOrder, v.Unexpected))
		}
		if rd.PublishFailures > 0 {
			out = append(out, fmt.Sprintf("%s: %d events not stored", rd.Name, rd.PublishFailures))
		}
		if rd.BadSignatures > 0 {
			out = append(out, fmt.Sprintf("%s: %d bad signatures", rd.Name, rd.BadSignatures))
		}
		if rd.Soak != nil && rd.Soak.Judged && !rd.Soak.Stable {
			out = append(out, fmt.Sprintf("%s: not steady: %s", rd.Name, rd.Soak.Reason))
		}
	}
	if len(out) == 0 {
		return "no gateway round ran"
	}
	return strings.Join(out, "; ")
}
