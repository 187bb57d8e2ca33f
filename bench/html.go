package bench

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
)

//go:embed html.tmpl
var htmlSource string

var htmlPage = template.Must(template.New("report").Parse(htmlSource))

// WriteHTML writes the result as one self-contained HTML page for people who would rather look
// than read: the verdict first, then the rounds over time (deliveries/s, p50 and p99), the
// latency distribution, the endpoints one by one, and the gateway's CPU and memory, every round
// on the same axes; the text report last. The charts are inline SVG: no script, no style sheet
// or font from elsewhere, so the file opens offline. Like WriteText it reads nothing but the
// Result, so a result saved as JSON makes the same page.
func (res *Result) WriteHTML(w io.Writer) error {
	var text, heading strings.Builder
	if err := res.WriteText(&text); err != nil {
		return err
	}
	res.writeHeading(&heading)
	verdict := "Nothing lost, duplicated or out of order."
	if !res.OK {
		verdict = res.problem() + "."
	}
	page := htmlData{
		Title:    "quaycast bench " + res.Scenario.Name + ": FAILED",
		Scenario: res.Scenario.Name,
		Heading:  strings.TrimSpace(heading.String()),
		OK:       res.OK,
		Verdict:  verdict,
		Findings: res.htmlFindings(),
		Text:     text.String(),
	}
	if res.OK {
		page.Title = "quaycast bench " + res.Scenario.Name + ": OK"
	}
	for _, rd := range res.Rounds {
		v := rd.Verdict
		page.Rounds = append(page.Rounds, htmlRound{
			Name: rd.Name, Delivered: rd.Delivered, Expected: rd.Deliveries, TimedOut: rd.TimedOut,
			Lost: v.Lost, Duplicates: v.Duplicates, OutOfOrder: v.OutOfOrder, Unexpected: v.Unexpected,
			Rate: fmt.Sprintf("%.0f", rd.DeliveriesPerSec), P99: fmt.Sprintf("%.1f", rd.Latency.P99),
		})
	}
	page.Sections = []htmlSection{
		{ID: "over-time", Title: "Over time", Figures: res.timeCharts(),
			Intro: "Each round from its first publish, sampled every second (a long round's neighbouring seconds are merged, to at most 300 points)."},
		{ID: "distribution", Title: "Latency distribution", Figures: []htmlFigure{res.histogramChart()}},
		{ID: "endpoints", Title: "Per endpoint", Figures: res.endpointCharts(), Intro: res.endpointIntro()},
		{ID: "processes", Title: "CPU and memory", Figures: res.processCharts(), Intro: res.processIntro()},
	}
	return htmlPage.Execute(w, page)
}

type htmlData struct {
	Title, Scenario, Heading string
	OK                       bool
	Verdict                  string
	Rounds                   []htmlRound
	Findings                 []string
	Sections                 []htmlSection
	Text                     string
}

type htmlRound struct {
	Name                                     string
	Delivered, Expected                      int
	Lost, Duplicates, OutOfOrder, Unexpected int
	TimedOut                                 bool
	Rate, P99                                string
}

type htmlSection struct {
	ID, Title, Intro string
	Figures          []htmlFigure
}

type htmlFigure struct {
	SVG     template.HTML
	Caption string
}

// htmlFindings are the comparisons of the verdict's box: against the baseline, and with a
// hanging endpoint; and the rounds whose delivery log dropped records.
func (res *Result) htmlFindings() []string {
	var out []string
	if r := res.VsBaseline; r != nil {
		out = append(out, fmt.Sprintf("Round %q made %.2f of the deliveries per second of round %q, with %.2f× its p99 latency.", r.Gateway, r.DeliveriesPerSec, r.Baseline, r.P99))
	}
	if h := res.Hanging; h != nil {
		line := fmt.Sprintf("The healthy endpoints' p99 beside a hanging one: %.1f ms against %.1f ms without it (%.2f×).", h.WithP99Ms, h.WithoutP99Ms, h.Ratio)
		if len(h.Pairs) > 1 {
			line += fmt.Sprintf(" The median of %d pairs of rounds, alternating with and without it: %.2f× to %.2f×.", len(h.Pairs), h.RatioMin, h.RatioMax)
		}
		out = append(out, line)
	}
	for _, rd := range res.Rounds {
		if n := rd.logDroppedNote(); n != "" {
			out = append(out, fmt.Sprintf("Round %q: %s.", rd.Name, n))
		}
	}
	if len(res.Notes) > 0 || slices.ContainsFunc(res.Rounds, func(rd Round) bool { return len(rd.Notes) > 0 }) {
		out = append(out, "The run left notes: see the text report at the end.")
	}
	return out
}

// colour is a round's colour in every chart.
func colour(i int) string { return palette[i%len(palette)] }

// peak describes the highest y of each series, for a chart's description.
func peak(series []lineSeries, unit string) string {
	var parts []string
	for _, s := range series {
		_, hi := extent(ys(s.pts)...)
		if hi >= 0 {
			parts = append(parts, fmt.Sprintf("%s peaks at %s%s", s.name, compact(hi), unit))
		}
	}
	if len(parts) == 0 {
		return "No data."
	}
	return strings.Join(parts, "; ") + "."
}

func ys(pts []xy) []float64 {
	out := make([]float64, len(pts))
	for i, p := range pts {
		out[i] = p.y
	}
	return out
}

// compact writes a figure with three significant digits at most.
func compact(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// lineChart draws series over the rounds' seconds, from zero on both axes.
func lineChart(id, title, yLabel, unit string, series []lineSeries) template.HTML {
	var xs, vs []float64
	for _, s := range series {
		for _, p := range s.pts {
			xs, vs = append(xs, p.x), append(vs, p.y)
		}
	}
	xlo, xhi := extent(xs...)
	ylo, yhi := extent(vs...)
	c := svgChart{id: id, title: title, desc: title + " over time, one line per series. " + peak(series, unit),
		x: linearAxis("seconds since the round's first publish", xlo, xhi, true), y: linearAxis(yLabel, ylo, yhi, true)}
	return c.lines(series)
}

// timeCharts are deliveries/s and latency over time, a line per round.
func (res *Result) timeCharts() []htmlFigure {
	var rate, lat []lineSeries
	for i, rd := range res.Rounds {
		if rd.Timeline == nil {
			continue
		}
		r := lineSeries{name: rd.Name, colour: colour(i)}
		p99 := lineSeries{name: rd.Name + " p99", colour: colour(i)}
		p50 := lineSeries{name: rd.Name + " p50", colour: colour(i), dashed: true}
		for _, pt := range rd.Timeline.Points {
			r.pts = append(r.pts, xy{pt.Seconds, pt.DeliveriesPerSec})
			if pt.Deliveries == 0 { // no latency to show: the line breaks
				p99.pts, p50.pts = append(p99.pts, xy{pt.Seconds, math.NaN()}), append(p50.pts, xy{pt.Seconds, math.NaN()})
				continue
			}
			p99.pts, p50.pts = append(p99.pts, xy{pt.Seconds, pt.P99Ms}), append(p50.pts, xy{pt.Seconds, pt.P50Ms})
		}
		rate, lat = append(rate, r), append(lat, p99, p50)
	}
	return []htmlFigure{
		{SVG: lineChart("deliveries-over-time", "Deliveries per second", "deliveries/s", "/s", rate),
			Caption: "Deliveries per second at the receivers (2xx answers, duplicates included), per interval."},
		{SVG: lineChart("latency-over-time", "Latency p50 and p99", "latency, ms", " ms", lat),
			Caption: "Latency from publish to arrival at the receiver, of the deliveries that arrived in each interval: p99 solid, p50 dashed. A gap is an interval without deliveries."},
	}
}

// histogramChart is every round's latency distribution, as shares of its deliveries.
func (res *Result) histogramChart() htmlFigure {
	var edges [][2]float64
	for _, rd := range res.Rounds {
		for _, b := range rd.LatencyHistogram {
			e := [2]float64{b.FromMs, b.ToMs}
			if !slices.Contains(edges, e) {
				edges = append(edges, e)
			}
		}
	}
	slices.SortFunc(edges, func(a, b [2]float64) int { return compareFloat(a[0], b[0]) })
	var series []barSeries
	var desc []string
	for i, rd := range res.Rounds {
		var total uint64
		for _, b := range rd.LatencyHistogram {
			total += b.Count
		}
		if total == 0 {
			continue
		}
		s := barSeries{name: rd.Name, colour: colour(i), values: make([]float64, len(edges))}
		for _, b := range rd.LatencyHistogram {
			s.values[slices.Index(edges, [2]float64{b.FromMs, b.ToMs})] = 100 * float64(b.Count) / float64(total)
		}
		series = append(series, s)
		desc = append(desc, fmt.Sprintf("%s: p50 %s ms, p99 %s ms, max %s ms", rd.Name, compact(rd.Latency.P50), compact(rd.Latency.P99), compact(rd.Latency.Max)))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	if len(edges) > 0 {
		lo, hi = edges[0][0], edges[len(edges)-1][1]
	}
	if lo <= 0 && len(edges) > 1 { // the bin of 0 µs has no place on a log axis: from the next one
		lo = edges[1][0]
	}
	c := svgChart{id: "latency-histogram", title: "Latency distribution",
		desc: "Share of each round's deliveries per latency range, on a log scale. " + strings.Join(desc, "; ") + ".",
		x:    logAxis("latency, ms (log scale)", lo, hi)}
	var shares []float64
	for _, s := range series {
		shares = append(shares, s.values...)
	}
	c.y = linearAxis("share of deliveries, %", 0, slices.Max(append(shares, 0)), true)
	return htmlFigure{SVG: c.binBars(edges, series),
		Caption: "Latency from publish to arrival, in ranges a quarter of a doubling wide, as a share of each round's deliveries (rounds with different counts compare)."}
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// endpointCharts are the checked endpoints' deliveries/s, p99 and longest gap, a bar per round.
func (res *Result) endpointCharts() []htmlFigure {
	var names []string
	for _, rd := range res.Rounds {
		for _, e := range rd.ByEndpoint {
			if !slices.Contains(names, e.Name) {
				names = append(names, e.Name)
			}
		}
	}
	slices.Sort(names)
	figure := func(id, title, yLabel, caption string, value func(EndpointFigures) float64) htmlFigure {
		var series []barSeries
		var all []float64
		var desc []string
		for i, rd := range res.Rounds {
			if len(rd.ByEndpoint) == 0 {
				continue
			}
			s := barSeries{name: rd.Name, colour: colour(i), values: make([]float64, len(names))}
			for j := range s.values {
				s.values[j] = math.NaN()
			}
			for _, e := range rd.ByEndpoint {
				s.values[slices.Index(names, e.Name)] = value(e)
			}
			lo, hi := extent(s.values...)
			desc = append(desc, fmt.Sprintf("%s: from %s to %s", rd.Name, compact(lo), compact(hi)))
			series, all = append(series, s), append(all, s.values...)
		}
		lo, hi := extent(all...)
		c := svgChart{id: id, title: title, desc: title + ", one bar per endpoint and round. " + strings.Join(desc, "; ") + ".",
			y: linearAxis(yLabel, lo, hi, true), x: axis{label: "endpoint"}}
		return htmlFigure{SVG: c.categoryBars(names, series), Caption: caption}
	}
	return []htmlFigure{
		figure("endpoint-rate", "Deliveries per second per endpoint", "deliveries/s",
			"Each endpoint's deliveries over the time from the round's first publish to its last delivery to that endpoint.",
			func(e EndpointFigures) float64 { return e.DeliveriesPerSec }),
		figure("endpoint-p99", "Latency p99 per endpoint", "p99 latency, ms",
			"Each endpoint's p99 latency, publish to arrival.",
			func(e EndpointFigures) float64 { return e.P99Ms }),
		figure("endpoint-gap", "Longest gap per endpoint", "longest gap, ms",
			"Each endpoint's longest time between two deliveries: a stalled consumer stands out here.",
			func(e EndpointFigures) float64 { return e.MaxGapMs }),
	}
}

// endpointIntro says which endpoints the bars are.
func (res *Result) endpointIntro() string {
	checked, shown := 0, 0
	for _, rd := range res.Rounds {
		checked, shown = max(checked, rd.Checked), max(shown, len(rd.ByEndpoint))
	}
	if shown < checked {
		return fmt.Sprintf("%d of the %d checked endpoints, evenly spaced by name (the text report has the min, median and max over all).", shown, checked)
	}
	return fmt.Sprintf("Every checked endpoint (%d); hanging endpoints are not checked.", checked)
}

// processCharts are CPU and RSS over time: the gateway's process (in gateway rounds) and the
// harness's, a colour per round.
func (res *Result) processCharts() []htmlFigure {
	var cpu, rss []lineSeries
	for i, rd := range res.Rounds {
		tl := rd.Timeline
		if tl == nil {
			continue
		}
		if tl.GatewayMeasured && rd.Pipeline == "gateway" {
			c, r := lineSeries{name: rd.Name + ": gateway", colour: colour(i)}, lineSeries{name: rd.Name + ": gateway", colour: colour(i)}
			for _, pt := range tl.Points {
				c.pts, r.pts = append(c.pts, xy{pt.Seconds, pt.GatewayCPU}), append(r.pts, xy{pt.Seconds, pt.GatewayRSSMiB})
			}
			cpu, rss = append(cpu, c), append(rss, r)
		}
		if tl.HarnessMeasured {
			c, r := lineSeries{name: rd.Name + ": harness", colour: colour(i), dashed: true}, lineSeries{name: rd.Name + ": harness", colour: colour(i), dashed: true}
			for _, pt := range tl.Points {
				c.pts, r.pts = append(c.pts, xy{pt.Seconds, pt.HarnessCPU}), append(r.pts, xy{pt.Seconds, pt.HarnessRSSMiB})
			}
			cpu, rss = append(cpu, c), append(rss, r)
		}
	}
	return []htmlFigure{
		{SVG: lineChart("cpu-over-time", "CPU", "CPU, cores", " cores", cpu),
			Caption: "CPU time per interval, in cores (1 = one core busy): the gateway solid, the harness dashed."},
		{SVG: lineChart("rss-over-time", "Memory (RSS)", "RSS, MiB", " MiB", rss),
			Caption: "Resident memory, the highest sampled in each interval: the gateway solid, the harness dashed."},
	}
}

// processIntro says what the process lines hold.
func (res *Result) processIntro() string {
	s := "The baseline pipeline runs inside the harness, with the publisher and the receivers: its round's harness line is the baseline's cost; in a gateway round the harness runs only the publisher and the receivers."
	switch res.Target {
	case TargetInProcess:
		s += " The gateway ran inside the harness: its figures are in the harness's lines."
	case TargetRemote:
		s += " The gateway was not a process of the harness: it has no lines."
	}
	if res.Cluster != nil && len(res.Cluster.Gateways) > 1 {
		s += " The gateway lines add the gateways up."
	}
	return s
}
