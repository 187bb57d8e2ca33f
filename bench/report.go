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
	if c := res.Cluster; c != nil {
		plural := "s"
		if len(c.Gateways) == 1 {
			plural = ""
		}
		fmt.Fprintf(b, "\ntarget: %d %s gateway%s (%s)", len(c.Gateways), res.Target, plural, processes(c.Gateways))
		if len(c.NATS) > 0 {
			fmt.Fprintf(b, " on %d NATS nodes, R%d (%s)", len(c.NATS), c.Replicas, processes(c.NATS))
		}
	} else {
		fmt.Fprintf(b, "\ntarget: %s gateway", res.Target)
		if res.GatewayPID != 0 {
			fmt.Fprintf(b, " (pid %d)", res.GatewayPID)
		}
	}
	fmt.Fprintf(b, "; %d CPUs, %s; run %s took %.1fs\n\n", res.Machine.CPUs, res.Machine.GoVersion, res.Run, res.Seconds)
}

// processes lists gateways or NATS nodes by name, with their pids when they are children.
func processes(ps []Process) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
		if p.PID != 0 {
			out[i] += fmt.Sprintf(" pid %d", p.PID)
		}
	}
	return strings.Join(out, ", ")
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
	{label: "per endpoint first delivery s min/med/max", cell: func(rd *Round) string { return minMedMax("%.3f", rd.PerEndpoint.FirstDeliveryS) }},
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
	{label: "soak: events/s (share of capacity)", has: hasSoak, optional: true, cell: func(rd *Round) string {
		if rd.Soak.Load == 0 {
			return fmt.Sprintf("%.0f (--rate)", rd.Soak.RateEventsPerS)
		}
		return fmt.Sprintf("%.0f (%.0f%% of %.0f)", rd.Soak.RateEventsPerS, 100*rd.Soak.Load, rd.Soak.CapacityEventsPerS)
	}},
	{label: "soak: RSS MiB after warm-up (2nd half)", has: hasSoak, optional: true, cell: func(rd *Round) string {
		return steadinessCell("%.0f", rd.Soak.RSSMiB)
	}},
	{label: "soak: goroutines after warm-up (2nd half)", has: hasSoak, optional: true, cell: func(rd *Round) string {
		return steadinessCell("%.0f", rd.Soak.Goroutines)
	}},
	{label: "soak: steady (±10 %)", has: hasSoak, optional: true, cell: func(rd *Round) string {
		switch {
		case !rd.Soak.Judged:
			return "not judged: " + rd.Soak.Reason
		case rd.Soak.Stable:
			return "yes"
		}
		return "NO: " + rd.Soak.Reason
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
	{label: "gateway delivery-log records dropped", has: func(rd *Round) bool { return rd.DeliveryLogDropped > 0 }, cell: func(rd *Round) string {
		if rd.Pipeline != "gateway" {
			return "-" // the baseline has no delivery log
		}
		return fmt.Sprintf("%d", rd.DeliveryLogDropped)
	}},
	{label: "harness CPU s (peak open files)", has: func(rd *Round) bool { return rd.Harness != nil }, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%d)", rd.Harness.CPUSeconds, rd.Harness.PeakFDs)
	}},
	{label: "other processes' CPU, cores", has: func(rd *Round) bool { return rd.OthersCPU > 0 }, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f", rd.OthersCPU)
	}},
}

// rows are the table's lines for res: tableRows, with the rows of a cluster's gateways and NATS
// nodes before the harness's.
func (res *Result) rows() []tableRow {
	rows := slices.Clone(tableRows)
	i := slices.IndexFunc(rows, func(r tableRow) bool { return strings.HasPrefix(r.label, "harness") })
	return slices.Insert(rows, i, res.clusterRows()...)
}

// clusterRows are a row pair per gateway (its deliveries and what it owns; its process), one for
// the NATS nodes added up and one per node.
func (res *Result) clusterRows() []tableRow {
	if res.Cluster == nil {
		return nil
	}
	hasCluster := func(rd *Round) bool { return rd.Cluster != nil && rd.Cluster.Gateways > 0 }
	rows := []tableRow{
		{label: "gateways (owned max − min)", has: hasCluster, optional: true, cell: func(rd *Round) string {
			return fmt.Sprintf("%d (%d)", rd.Cluster.Gateways, rd.Cluster.OwnedSpread)
		}},
		{label: "NATS idle CPU % (RSS MiB)", has: func(rd *Round) bool { return rd.Idle != nil && rd.Idle.NATSRSSMiB > 0 }, optional: true, cell: func(rd *Round) string {
			return fmt.Sprintf("%.1f%% (%.0f)", rd.Idle.NATSCPUPercent, rd.Idle.NATSRSSMiB)
		}},
		{label: "gateways added: spread after s", has: func(rd *Round) bool { return rd.Cluster != nil && rd.Cluster.JoinSeconds > 0 }, optional: true, cell: func(rd *Round) string {
			return fmt.Sprintf("%.2f", rd.Cluster.JoinSeconds)
		}},
	}
	for _, g := range res.Cluster.Gateways {
		of := func(rd *Round) *GatewayFigures {
			if rd.Cluster == nil {
				return nil
			}
			for i := range rd.Cluster.PerGateway {
				if rd.Cluster.PerGateway[i].Name == g.Name {
					return &rd.Cluster.PerGateway[i]
				}
			}
			return nil
		}
		rows = append(rows,
			tableRow{label: g.Name + " deliveries/s (owned)", has: func(rd *Round) bool { return of(rd) != nil }, optional: true, cell: func(rd *Round) string {
				f := of(rd)
				return fmt.Sprintf("%.0f (%d)", f.DeliveriesPerSec, f.Owned)
			}},
			tableRow{label: g.Name + " CPU s (ms/1k) / RSS MiB", has: func(rd *Round) bool { f := of(rd); return f != nil && f.Process != nil }, optional: true, cell: func(rd *Round) string {
				u := of(rd).Process
				return fmt.Sprintf("%.2f (%.0f) / %.0f", u.CPUSeconds, u.CPUMsPer1k, u.RSSMiB)
			}},
		)
	}
	rows = append(rows, tableRow{label: "NATS CPU s (ms/1k deliveries)", has: func(rd *Round) bool { return rd.Cluster != nil && rd.Cluster.NATS != nil }, optional: true, cell: func(rd *Round) string {
		return fmt.Sprintf("%.2f (%.0f)", rd.Cluster.NATS.CPUSeconds, rd.Cluster.NATS.CPUMsPer1k)
	}})
	for i, n := range res.Cluster.NATS {
		node := func(rd *Round) *Usage {
			if rd.Cluster == nil || i >= len(rd.Cluster.NATSNodes) {
				return nil
			}
			return rd.Cluster.NATSNodes[i].Process
		}
		rows = append(rows, tableRow{label: "NATS " + n.Name + " CPU s / RSS / peak MiB", has: func(rd *Round) bool { return node(rd) != nil }, optional: true, cell: func(rd *Round) string {
			u := node(rd)
			return fmt.Sprintf("%.2f / %.0f / %.0f", u.CPUSeconds, u.RSSMiB, u.PeakRSSMiB)
		}})
	}
	return rows
}

func hasRegistration(rd *Round) bool { return rd.Registration != nil }
func hasDrain(rd *Round) bool        { return rd.Drain != nil }
func hasSoak(rd *Round) bool         { return rd.Soak != nil }

// steadinessCell is a figure after warm-up and its range over the soak's second half.
func steadinessCell(format string, s *Steadiness) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+", ×%.2f–%.2f)", s.AfterWarmup, s.Min, s.Max, s.MinRatio, s.MaxRatio)
}
func hasGateway(rd *Round) bool { return rd.Gateway != nil }

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
	for _, row := range res.rows() {
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
		fmt.Fprintf(b, "gateway / baseline: deliveries/s %.2f, p99 %.2f (goal: 0.85 or better of the ceiling)\n", r.DeliveriesPerSec, r.P99)
	}
	for _, st := range res.Scaling[min(1, len(res.Scaling)):] {
		first := res.Scaling[0]
		fmt.Fprintf(b, "scaling on one cluster: %s %.2fx the deliveries/s of %s (%.0f vs %.0f); CPU per 1k deliveries: gateways %.0f vs %.0f ms, NATS %.0f vs %.0f ms; other processes %.2f vs %.2f cores\n",
			st.Round, st.VsFirst, first.Round, st.DeliveriesPerSec, first.DeliveriesPerSec, st.GatewayCPUMsPer1k, first.GatewayCPUMsPer1k, st.NATSCPUMsPer1k, first.NATSCPUMsPer1k, st.OthersCPU, first.OthersCPU)
	}
	if h := res.Hanging; h != nil {
		spread := ""
		if len(h.Pairs) > 1 {
			spread = fmt.Sprintf(", the median of %d pairs (%.2f–%.2fx)", len(h.Pairs), h.RatioMin, h.RatioMax)
		}
		fmt.Fprintf(b, "healthy endpoints' p99 beside a hanging one: %.1f ms vs %.1f ms without: %.2fx%s (goal: at most 1.1x)\n", h.WithP99Ms, h.WithoutP99Ms, h.Ratio, spread)
	}
	if res.GatewayStopSeconds > 0 {
		fmt.Fprintf(b, "gateway stopped %.1f s after SIGTERM\n", res.GatewayStopSeconds)
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
		if n := rd.logDroppedNote(); n != "" {
			fmt.Fprintf(b, "note (%s): %s\n", rd.Name, n)
		}
		for _, name := range slices.Sorted(maps.Keys(rd.Verdict.Problems)) {
			e := rd.Verdict.Problems[name]
			fmt.Fprintf(b, "%s %s: expected %d, delivered %d, lost %d, duplicates %d, out of order %d %v\n", rd.Name, name, e.Expected, e.Delivered, e.Lost, e.Duplicates, e.OutOfOrder, e.Examples)
		}
	}
}

// logDroppedNote says that the round dropped delivery-log records and what that means; "" when
// it dropped none. It is not a failure: the log gives way so that delivery does not.
func (rd *Round) logDroppedNote() string {
	n := rd.DeliveryLogDropped
	if n == 0 {
		return ""
	}
	records := "records"
	if n == 1 {
		records = "record"
	}
	return fmt.Sprintf("the delivery log dropped %d %s (the gateway sheds them when NATS falls behind; deliveries are unaffected)", n, records)
}

func (res *Result) writeVerdict(b *strings.Builder) {
	if res.OK {
		b.WriteString("verdict: OK, nothing lost, duplicated or out of order\n")
	} else {
		b.WriteString("verdict: FAILED: " + res.problem() + "\n")
	}
}
