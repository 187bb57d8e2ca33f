package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
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

	GatewayStart *Usage `json:"gateway_at_start,omitempty"` // after it started, before any endpoint
	GatewayEnd   *Usage `json:"gateway_at_end,omitempty"`
	GatewayLog   struct {
		Warnings int            `json:"warnings"`
		Errors   int            `json:"errors"`
		Lines    map[string]int `json:"distinct,omitempty"` // "level: message: error" -> count, at most 20
	} `json:"gateway_log"`
	Strays int64 `json:"stray_deliveries"` // arrivals of an earlier round's events, or to an endpoint no longer in the round
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

	Delivered        int       `json:"delivered"` // 2xx answers, duplicates included
	DeliverSeconds   float64   `json:"deliver_s"` // first publish to last delivery
	DeliveriesPerSec float64   `json:"deliveries_per_s"`
	Latency          Latency   `json:"latency_ms"` // publish to receiver, checked endpoints
	PerEndpoint      Spread    `json:"per_endpoint"`
	Requests         int64     `json:"requests"`       // every POST the receivers got
	FailedOnPurpose  int64     `json:"failed_answers"` // 503s of flaky receivers, requests hanging endpoints held
	BadSignatures    int64     `json:"bad_signatures"`
	Drain            *Drain    `json:"drain,omitempty"`
	Verdict          Verdict   `json:"verdict"`
	Gateway          *Usage    `json:"gateway,omitempty"` // the gateway process during publish and delivery
	Harness          *Usage    `json:"harness,omitempty"` // this process (publisher, receivers, baseline)
	TimedOut         bool      `json:"timed_out"`
	Notes            []string  `json:"notes,omitempty"`
	hist             Histogram // merged, for comparisons
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
// without it.
type HangingEffect struct {
	WithoutP99Ms float64 `json:"healthy_p99_without_ms"`
	WithP99Ms    float64 `json:"healthy_p99_with_ms"`
	Ratio        float64 `json:"ratio"`
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

func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

func usage(ps ProcStats, cpu time.Duration) *Usage {
	return &Usage{CPUSeconds: cpu.Seconds(), RSSMiB: mib(ps.RSS), PeakRSSMiB: mib(ps.PeakRSS)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latency(h *Histogram) Latency {
	return Latency{Count: h.Count(), P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

func spread(v []float64) MinMedMax {
	if len(v) == 0 {
		return MinMedMax{}
	}
	slices.Sort(v)
	return MinMedMax{Min: v[0], Median: percentile(v, 50), Max: v[len(v)-1]}
}

// figures fills in the delivery figures from the round's sink.
func (rd *Round) figures(eps []*endpoint, s *sink, start, end, upAt time.Duration) {
	var rates, p99s, gaps []float64
	var last time.Duration
	drain := &Drain{FirstDeliverySecond: -1}
	var drainFirst, drainLast time.Duration
	for _, ep := range eps {
		st := s.stats[ep.index]
		if st == nil {
			continue
		}
		rd.Requests += st.requests.Load()
		rd.FailedOnPurpose += st.failed.Load()
		rd.BadSignatures += st.badSig.Load()
		if ep.behaviour == hanging {
			continue
		}
		st.mu.Lock()
		rd.hist.Merge(&st.hist)
		rd.Delivered += st.delivered
		if st.delivered > 0 {
			last = max(last, st.last)
			if d := (st.last - start).Seconds(); d > 0 {
				rates = append(rates, float64(st.delivered)/d)
			}
			p99s = append(p99s, ms(st.hist.Quantile(0.99)))
			gaps = append(gaps, ms(st.maxGap))
		} else {
			rates = append(rates, 0)
		}
		if ep.behaviour == down {
			drain.Events += st.delivered
			if st.delivered > 0 {
				if f := (st.first - upAt).Seconds(); drain.FirstDeliverySecond < 0 || f < drain.FirstDeliverySecond {
					drain.FirstDeliverySecond, drainFirst = f, st.first
				}
				drainLast = max(drainLast, st.last)
			}
		}
		st.mu.Unlock()
	}
	if last == 0 {
		last = end
	}
	rd.DeliverSeconds = (last - start).Seconds()
	if rd.DeliverSeconds > 0 {
		rd.DeliveriesPerSec = float64(rd.Delivered) / rd.DeliverSeconds
	}
	rd.Latency = latency(&rd.hist)
	rd.PerEndpoint = Spread{DeliveriesPerSec: spread(rates), P99Ms: spread(p99s), MaxGapMs: spread(gaps)}
	if upAt > 0 {
		drain.Seconds = (drainLast - upAt).Seconds()
		if drain.Seconds > 0 {
			drain.PerSec = float64(drain.Events) / drain.Seconds
		}
		if d := (drainLast - drainFirst).Seconds(); d > 0 {
			drain.DrainPerSec = float64(drain.Events) / d
		}
		rd.Drain = drain
	}
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
	base, gw := find("baseline"), find("gateway")
	if without := find("gateway, no hanging endpoint"); without != nil {
		if gw != nil && without.Latency.P99 > 0 {
			res.Hanging = &HangingEffect{WithoutP99Ms: without.Latency.P99, WithP99Ms: gw.Latency.P99, Ratio: gw.Latency.P99 / without.Latency.P99}
		}
		gw = without // the baseline has no hanging endpoint either
	}
	if base != nil && gw != nil && base.DeliveriesPerSec > 0 && base.Latency.P99 > 0 {
		res.VsBaseline = &Ratios{Gateway: gw.Name, Baseline: base.Name,
			DeliveriesPerSec: gw.DeliveriesPerSec / base.DeliveriesPerSec, P99: gw.Latency.P99 / base.Latency.P99}
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
		if rd.Pipeline == "gateway" && (rd.TimedOut || !rd.Verdict.clean() || rd.PublishFailures > 0 || rd.BadSignatures > 0) {
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
	}
	if len(out) == 0 {
		return "no gateway round ran"
	}
	return strings.Join(out, "; ")
}

// WriteText prints the result as a table, one column per round.
func (res *Result) WriteText(w io.Writer) error {
	sc := res.Scenario
	var b strings.Builder
	rate := "as fast as possible"
	if sc.Rate > 0 {
		rate = fmt.Sprintf("%g events/s", sc.Rate)
	}
	fmt.Fprintf(&b, "quaycast bench %s: %d events over %d entities, %d B, %s; %d endpoints (%s)", sc.Name, sc.Events, sc.Entities, sc.Size, rate, sc.Endpoints, sc.Subscribe)
	if sc.Hanging > 0 {
		fmt.Fprintf(&b, " + %d hanging", sc.Hanging)
	}
	if sc.Down > 0 {
		fmt.Fprintf(&b, ", %d down while publishing", sc.Down)
	}
	if sc.Latency > 0 {
		fmt.Fprintf(&b, ", receivers answer after %s", time.Duration(sc.Latency))
	}
	if sc.Failure > 0 {
		fmt.Fprintf(&b, ", %g of requests fail", sc.Failure)
	}
	fmt.Fprintf(&b, "\ntarget: %s gateway", res.Target)
	if res.GatewayPID != 0 {
		fmt.Fprintf(&b, " (pid %d)", res.GatewayPID)
	}
	fmt.Fprintf(&b, "; %d CPUs, %s; run %s took %.1fs\n\n", res.Machine.CPUs, res.Machine.GoVersion, res.Run, res.Seconds)

	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	row := func(label string, f func(rd *Round) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for i := range res.Rounds {
			fmt.Fprintf(tw, "%s\t", f(&res.Rounds[i]))
		}
		fmt.Fprintln(tw)
	}
	has := func(f func(rd *Round) bool) bool {
		return slices.ContainsFunc(res.Rounds, func(rd Round) bool { return f(&rd) })
	}
	row("", func(rd *Round) string { return rd.Name })
	row("endpoints (checked)", func(rd *Round) string { return fmt.Sprintf("%d (%d)", rd.Endpoints, rd.Checked) })
	if has(func(rd *Round) bool { return rd.Registration != nil }) {
		row("register s (ms each)", func(rd *Round) string {
			if rd.Registration == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f (%.2f)", rd.Registration.Seconds, rd.Registration.PerEndpointMs)
		})
		row("all delivering after s", func(rd *Round) string {
			if rd.Registration == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f", rd.Registration.ReadySeconds)
		})
	}
	if has(func(rd *Round) bool { return rd.Idle != nil }) {
		row("idle CPU % (RSS MiB)", func(rd *Round) string {
			if rd.Idle == nil {
				return "-"
			}
			return fmt.Sprintf("%.1f%% over %.0fs (%.0f)", rd.Idle.CPUPercent, rd.Idle.Seconds, rd.Idle.RSSMiB)
		})
	}
	row("published (events/s)", func(rd *Round) string { return fmt.Sprintf("%d (%.0f/s)", rd.Published, rd.PublishRate) })
	row("delivered / expected", func(rd *Round) string { return fmt.Sprintf("%d / %d", rd.Delivered, rd.Deliveries) })
	row("deliveries/s", func(rd *Round) string { return fmt.Sprintf("%.0f", rd.DeliveriesPerSec) })
	row("latency ms p50 / p90", func(rd *Round) string { return fmt.Sprintf("%.1f / %.1f", rd.Latency.P50, rd.Latency.P90) })
	row("latency ms p99 / max", func(rd *Round) string { return fmt.Sprintf("%.1f / %.1f", rd.Latency.P99, rd.Latency.Max) })
	row("per endpoint deliveries/s min/med/max", func(rd *Round) string {
		s := rd.PerEndpoint.DeliveriesPerSec
		return fmt.Sprintf("%.0f / %.0f / %.0f", s.Min, s.Median, s.Max)
	})
	row("per endpoint p99 ms min/med/max", func(rd *Round) string {
		s := rd.PerEndpoint.P99Ms
		return fmt.Sprintf("%.1f / %.1f / %.1f", s.Min, s.Median, s.Max)
	})
	row("per endpoint longest gap ms min/med/max", func(rd *Round) string {
		s := rd.PerEndpoint.MaxGapMs
		return fmt.Sprintf("%.0f / %.0f / %.0f", s.Min, s.Median, s.Max)
	})
	if has(func(rd *Round) bool { return rd.FailedOnPurpose > 0 }) {
		row("requests (failed on purpose)", func(rd *Round) string { return fmt.Sprintf("%d (%d)", rd.Requests, rd.FailedOnPurpose) })
	}
	if has(func(rd *Round) bool { return rd.Drain != nil }) {
		row("drain: first after up s", func(rd *Round) string {
			if rd.Drain == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f", rd.Drain.FirstDeliverySecond)
		})
		row("drain: s from up (events/s)", func(rd *Round) string {
			if rd.Drain == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f (%.0f/s)", rd.Drain.Seconds, rd.Drain.PerSec)
		})
		row("drain: events/s after first", func(rd *Round) string {
			if rd.Drain == nil {
				return "-"
			}
			return fmt.Sprintf("%.0f", rd.Drain.DrainPerSec)
		})
	}
	row("lost / dup / out of order", func(rd *Round) string {
		v := rd.Verdict
		s := fmt.Sprintf("%d / %d / %d", v.Lost, v.Duplicates, v.OutOfOrder)
		if v.Unexpected > 0 {
			s += fmt.Sprintf(" (+%d unexpected)", v.Unexpected)
		}
		if rd.TimedOut {
			s += " TIMED OUT"
		}
		return s
	})
	if has(func(rd *Round) bool { return rd.Gateway != nil }) {
		row("gateway CPU s (ms/1k deliveries)", func(rd *Round) string {
			if rd.Gateway == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f (%.0f)", rd.Gateway.CPUSeconds, rd.Gateway.CPUMsPer1k)
		})
		row("gateway RSS / peak MiB", func(rd *Round) string {
			if rd.Gateway == nil {
				return "-"
			}
			return fmt.Sprintf("%.0f / %.0f", rd.Gateway.RSSMiB, rd.Gateway.PeakRSSMiB)
		})
		row("gateway peak open files", func(rd *Round) string {
			if rd.Gateway == nil {
				return "-"
			}
			return fmt.Sprintf("%d", rd.Gateway.PeakFDs)
		})
	}
	if has(func(rd *Round) bool { return rd.Harness != nil }) {
		row("harness CPU s (peak open files)", func(rd *Round) string {
			if rd.Harness == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f (%d)", rd.Harness.CPUSeconds, rd.Harness.PeakFDs)
		})
	}
	tw.Flush()

	b.WriteString("\n")
	if r := res.VsBaseline; r != nil {
		fmt.Fprintf(&b, "gateway / baseline: deliveries/s %.2f, p99 %.2f (goal: 0.8 or better of the ceiling)\n", r.DeliveriesPerSec, r.P99)
	}
	if h := res.Hanging; h != nil {
		fmt.Fprintf(&b, "healthy endpoints' p99 beside a hanging one: %.1f ms vs %.1f ms without: %.2fx (goal: at most 1.1x)\n", h.WithP99Ms, h.WithoutP99Ms, h.Ratio)
	}
	if res.GatewayEnd != nil {
		fmt.Fprintf(&b, "gateway peak RSS %.0f MiB; log: %d warnings, %d errors\n", res.GatewayEnd.PeakRSSMiB, res.GatewayLog.Warnings, res.GatewayLog.Errors)
	}
	for _, l := range slices.Sorted(maps.Keys(res.GatewayLog.Lines)) {
		fmt.Fprintf(&b, "  gateway logged %d× %s\n", res.GatewayLog.Lines[l], l)
	}
	if res.ReceiverErrors != "" {
		fmt.Fprintf(&b, "receivers' HTTP servers logged %s\n", res.ReceiverErrors)
	}
	if res.NATSErrors != "" {
		fmt.Fprintf(&b, "the harness's NATS connections reported %s\n", res.NATSErrors)
	}
	if res.Strays > 0 {
		fmt.Fprintf(&b, "%d deliveries arrived for an earlier round or a removed endpoint\n", res.Strays)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, rd := range res.Rounds {
		for _, n := range rd.Notes {
			fmt.Fprintf(&b, "note (%s): %s\n", rd.Name, n)
		}
		for name, e := range rd.Verdict.Problems {
			fmt.Fprintf(&b, "%s %s: expected %d, delivered %d, lost %d, duplicates %d, out of order %d %v\n", rd.Name, name, e.Expected, e.Delivered, e.Lost, e.Duplicates, e.OutOfOrder, e.Examples)
		}
	}
	if res.OK {
		b.WriteString("verdict: OK, nothing lost, duplicated or out of order\n")
	} else {
		b.WriteString("verdict: FAILED: " + res.problem() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
