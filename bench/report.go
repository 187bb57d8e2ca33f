package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints the result as a table, one column per round.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	res.writeHeading(&b)
	res.writeTable(&b)
	b.WriteString("\n")
	res.writeFindings(&b)
	res.writeVerdict(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHeading says what was run, against what, on what.
func (res *Result) writeHeading(b *strings.Builder) {
	sc := res.Scenario
	rate := "as fast as possible"
	if sc.Rate > 0 {
		rate = fmt.Sprintf("%g events/s", sc.Rate)
	}
	fmt.Fprintf(b, "quaycast bench %s: %d events over %d entities, %d B, %s; %d endpoints (%s)", sc.Name, sc.Events, sc.Entities, sc.Size, rate, sc.Endpoints, sc.Subscribe)
	if sc.Hanging > 0 {
		fmt.Fprintf(b, " + %d hanging", sc.Hanging)
	}
	if sc.Down > 0 {
		fmt.Fprintf(b, ", %d down while publishing", sc.Down)
	}
	if sc.Latency > 0 {
		fmt.Fprintf(b, ", receivers answer after %s", time.Duration(sc.Latency))
	}
	if sc.Failure > 0 {
		fmt.Fprintf(b, ", %g of requests fail", sc.Failure)
	}
	fmt.Fprintf(b, "\ntarget: %s gateway", res.Target)
	if res.GatewayPID != 0 {
		fmt.Fprintf(b, " (pid %d)", res.GatewayPID)
	}
	fmt.Fprintf(b, "; %d CPUs, %s; run %s took %.1fs\n\n", res.Machine.CPUs, res.Machine.GoVersion, res.Run, res.Seconds)
}

// tableRow is one line of the table: a label and a cell per round. A row with a has is printed
// only when some round has the figure; with optional, a round without it shows "-".
type tableRow struct {
	label    string
	cell     func(rd *Round) string
	has      func(rd *Round) bool
	optional bool
}

// tableRows are the table's lines, in order.
var tableRows = []tableRow{
	{label: "", cell: func(rd *Round) string { return rd.Name }},
	{label: "endpoints (checked)", cell: func(rd *Round) string { return fmt.Sprintf("%d (%d)", rd.Endpoints, rd.Checked) }},
	{label: "register s (ms each)", has: hasRegistration, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%.2f)", rd.Registration.Seconds, rd.Registration.PerEndpointMs)
	}},
	{label: "all delivering after s", has: hasRegistration, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f", rd.Registration.ReadySeconds)
	}},
	{label: "idle CPU % (RSS MiB)", has: func(rd *Round) bool { return rd.Idle != nil }, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.1f%% over %.0fs (%.0f)", rd.Idle.CPUPercent, rd.Idle.Seconds, rd.Idle.RSSMiB)
	}},
	{label: "published (events/s)", cell: func(rd *Round) string { return fmt.Sprintf("%d (%.0f/s)", rd.Published, rd.PublishRate) }},
	{label: "delivered / expected", cell: func(rd *Round) string { return fmt.Sprintf("%d / %d", rd.Delivered, rd.Deliveries) }},
	{label: "deliveries/s", cell: func(rd *Round) string { return fmt.Sprintf("%.0f", rd.DeliveriesPerSec) }},
	{label: "latency ms p50 / p90", cell: func(rd *Round) string { return fmt.Sprintf("%.1f / %.1f", rd.Latency.P50, rd.Latency.P90) }},
	{label: "latency ms p99 / max", cell: func(rd *Round) string { return fmt.Sprintf("%.1f / %.1f", rd.Latency.P99, rd.Latency.Max) }},
	{label: "per endpoint deliveries/s min/med/max", cell: func(rd *Round) string { return minMedMax("%.0f", rd.PerEndpoint.DeliveriesPerSec) }},
	{label: "per endpoint p99 ms min/med/max", cell: func(rd *Round) string { return minMedMax("%.1f", rd.PerEndpoint.P99Ms) }},
	{label: "per endpoint longest gap ms min/med/max", cell: func(rd *Round) string { return minMedMax("%.0f", rd.PerEndpoint.MaxGapMs) }},
	{label: "requests (failed on purpose)", has: func(rd *Round) bool { return rd.FailedOnPurpose > 0 }, cell: func(rd *Round) string {
		return fmt.Sprintf("%d (%d)", rd.Requests, rd.FailedOnPurpose)
	}},
	{label: "drain: first after up s", has: hasDrain, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f", rd.Drain.FirstDeliverySecond)
	}},
	{label: "drain: s from up (events/s)", has: hasDrain, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%.0f/s)", rd.Drain.Seconds, rd.Drain.PerSec)
	}},
	{label: "drain: events/s after first", has: hasDrain, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.0f", rd.Drain.DrainPerSec)
	}},
	{label: "lost / dup / out of order", cell: verdictCell},
	{label: "gateway CPU s (ms/1k deliveries)", has: hasGateway, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%.0f)", rd.Gateway.CPUSeconds, rd.Gateway.CPUMsPer1k)
	}},
	{label: "gateway RSS / peak MiB", has: hasGateway, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.0f / %.0f", rd.Gateway.RSSMiB, rd.Gateway.PeakRSSMiB)
	}},
	{label: "gateway peak open files", has: hasGateway, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%d", rd.Gateway.PeakFDs)
	}},
	{label: "harness CPU s (peak open files)", has: func(rd *Round) bool { return rd.Harness != nil }, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%d)", rd.Harness.CPUSeconds, rd.Harness.PeakFDs)
	}},
}

func hasRegistration(rd *Round) bool { return rd.Registration != nil }
func hasDrain(rd *Round) bool        { return rd.Drain != nil }
func hasGateway(rd *Round) bool      { return rd.Gateway != nil }

func minMedMax(format string, s MinMedMax) string {
	return fmt.Sprintf(format+" / "+format+" / "+format, s.Min, s.Median, s.Max)
}

func verdictCell(rd *Round) string {
	v := rd.Verdict
	s := fmt.Sprintf("%d / %d / %d", v.Lost, v.Duplicates, v.OutOfOrder)
	if v.Unexpected > 0 {
		s += fmt.Sprintf(" (+%d unexpected)", v.Unexpected)
	}
	if rd.TimedOut {
		s += " TIMED OUT"
	}
	return s
}

// writeTable writes the figures, one column per round.
func (res *Result) writeTable(b *strings.Builder) {
	tw := tabwriter.NewWriter(b, 0, 0, 3, ' ', 0)
	for _, row := range tableRows {
		if row.has != nil && !slices.ContainsFunc(res.Rounds, func(rd Round) bool { return row.has(&rd) }) {
			continue
		}
		fmt.Fprintf(tw, "%s\t", row.label)
		for i := range res.Rounds {
			rd := &res.Rounds[i]
			cell := "-"
			if !row.optional || row.has(rd) {
				cell = row.cell(rd)
			}
			fmt.Fprintf(tw, "%s\t", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// writeFindings writes the ratios against the baseline and the hanging endpoint's effect, what
// the gateway, the receivers and NATS complained about, and the notes.
func (res *Result) writeFindings(b *strings.Builder) {
	if r := res.VsBaseline; r != nil {
		fmt.Fprintf(b, "gateway / baseline: deliveries/s %.2f, p99 %.2f (goal: 0.8 or better of the ceiling)\n", r.DeliveriesPerSec, r.P99)
	}
	if h := res.Hanging; h != nil {
		fmt.Fprintf(b, "healthy endpoints' p99 beside a hanging one: %.1f ms vs %.1f ms without: %.2fx (goal: at most 1.1x)\n", h.WithP99Ms, h.WithoutP99Ms, h.Ratio)
	}
	if res.GatewayEnd != nil {
		fmt.Fprintf(b, "gateway peak RSS %.0f MiB; log: %d warnings, %d errors\n", res.GatewayEnd.PeakRSSMiB, res.GatewayLog.Warnings, res.GatewayLog.Errors)
	}
	for _, l := range slices.Sorted(maps.Keys(res.GatewayLog.Lines)) {
		fmt.Fprintf(b, "  gateway logged %d× %s\n", res.GatewayLog.Lines[l], l)
	}
	if res.ReceiverErrors != "" {
		fmt.Fprintf(b, "receivers' HTTP servers logged %s\n", res.ReceiverErrors)
	}
	if res.NATSErrors != "" {
		fmt.Fprintf(b, "the harness's NATS connections reported %s\n", res.NATSErrors)
	}
	if res.Strays > 0 {
		fmt.Fprintf(b, "%d deliveries arrived for an earlier round or a removed endpoint\n", res.Strays)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
	for _, rd := range res.Rounds {
		for _, n := range rd.Notes {
			fmt.Fprintf(b, "note (%s): %s\n", rd.Name, n)
		}
		for _, name := range slices.Sorted(maps.Keys(rd.Verdict.Problems)) {
			e := rd.Verdict.Problems[name]
			fmt.Fprintf(b, "%s %s: expected %d, delivered %d, lost %d, duplicates %d, out of order %d %v\n", rd.Name, name, e.Expected, e.Delivered, e.Lost, e.Duplicates, e.OutOfOrder, e.Examples)
		}
	}
}

func (res *Result) writeVerdict(b *strings.Builder) {
	if res.OK {
		b.WriteString("verdict: OK, nothing lost, duplicated or out of order\n")
	} else {
		b.WriteString("verdict: FAILED: " + res.problem() + "\n")
	}
}
