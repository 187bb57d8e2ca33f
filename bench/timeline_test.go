package bench

import (
	"testing"
	"time"
)

// latencies is a histogram of n deliveries of d each.
func latencies(n int, d time.Duration) *Histogram {
	var h Histogram
	for range n {
		h.Record(d)
	}
	return &h
}

// Each second's deliveries, latency, CPU (from the growth of the processes' CPU time) and RSS
// become one point.
func TestTimelinePointPerSample(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	tl := newTimeline(start, ProcStats{CPU: 10 * time.Second}, ProcStats{CPU: 3 * time.Second})
	for s := 1; s <= 3; s++ {
		gw := ProcStats{CPU: 10*time.Second + time.Duration(s)*1500*time.Millisecond, RSS: int64(s) << 20} // 1.5 cores
		self := ProcStats{CPU: 3*time.Second + time.Duration(s)*250*time.Millisecond, RSS: 40 << 20}       // 0.25 cores
		counts := gatewayCounts{goroutines: 100 + s, connections: s, hasConnections: true}
		tl.sample(start.Add(time.Duration(s)*time.Second), latencies(100*s, time.Duration(s)*time.Millisecond), gw, true, self, true, counts)
	}
	got := tl.result()
	if got == nil || len(got.Points) != 3 || got.IntervalSeconds != 1 || !got.GatewayMeasured || !got.HarnessMeasured {
		t.Fatalf("timeline %+v", got)
	}
	for i, pt := range got.Points {
		s := float64(i + 1)
		want := TimePoint{Seconds: s, Deliveries: 100 * (i + 1), DeliveriesPerSec: 100 * s, P50Ms: s, P99Ms: s,
			GatewayCPU: 1.5, GatewayRSSMiB: s, GatewayGoroutines: 101 + i, GatewayConnections: i + 1,
			HarnessCPU: 0.25, HarnessRSSMiB: 40}
		if pt != want {
			t.Errorf("point %d: %+v, want %+v", i, pt, want)
		}
	}
}

// A long round keeps at most maxTimePoints points: neighbours merge, every delivery still counts
// once, the last point ends at the last sample, and rates are per second of the merged span.
func TestTimelineStaysBounded(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	tl := newTimeline(start, ProcStats{}, ProcStats{})
	const samples = 2*maxTimePoints + 100
	for s := 1; s <= samples; s++ {
		tl.sample(start.Add(time.Duration(s)*time.Second), latencies(10, time.Millisecond), ProcStats{CPU: time.Duration(s) * time.Second}, true, ProcStats{}, false, gatewayCounts{})
	}
	got := tl.result()
	if n := len(got.Points); n > maxTimePoints || n < maxTimePoints/2 || got.IntervalSeconds != 4 {
		t.Fatalf("%d points of %gs", n, got.IntervalSeconds)
	}
	total := 0
	for i, pt := range got.Points {
		total += pt.Deliveries
		if pt.DeliveriesPerSec != 10 || pt.GatewayCPU != 1 {
			t.Errorf("point %d: %g deliveries/s, %g cores; want 10 and 1", i, pt.DeliveriesPerSec, pt.GatewayCPU)
		}
		if i > 0 && pt.Seconds <= got.Points[i-1].Seconds {
			t.Errorf("point %d at %gs, after %gs", i, pt.Seconds, got.Points[i-1].Seconds)
		}
	}
	if total != 10*samples || got.Points[len(got.Points)-1].Seconds != samples || got.HarnessMeasured {
		t.Errorf("%d deliveries, last point at %gs, harness measured %v", total, got.Points[len(got.Points)-1].Seconds, got.HarnessMeasured)
	}
}

// The final sample, just after a periodic one, makes no point of its own: a few milliseconds
// make no rate.
func TestTimelineFoldsAShortLastSample(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	tl := newTimeline(start, ProcStats{}, ProcStats{})
	tl.sample(start.Add(time.Second), latencies(100, time.Millisecond), ProcStats{}, false, ProcStats{}, false, gatewayCounts{})
	tl.sample(start.Add(2*time.Second), latencies(100, time.Millisecond), ProcStats{}, false, ProcStats{}, false, gatewayCounts{})
	tl.sample(start.Add(2*time.Second+10*time.Millisecond), latencies(3, time.Millisecond), ProcStats{}, false, ProcStats{}, false, gatewayCounts{})
	got := tl.result()
	if len(got.Points) != 2 || got.GatewayMeasured || got.HarnessMeasured {
		t.Fatalf("timeline %+v", got)
	}
	last := got.Points[1]
	if last.Deliveries != 103 || last.Seconds != 2.01 || last.DeliveriesPerSec < 100 || last.DeliveriesPerSec > 103 {
		t.Errorf("last point %+v, want the 103 deliveries of 1.01 s", last)
	}
	if newTimeline(start, ProcStats{}, ProcStats{}).result() != nil {
		t.Error("a timeline without samples has points")
	}
}
