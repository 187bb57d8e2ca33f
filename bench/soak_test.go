package bench

import (
	"strings"
	"testing"
	"time"
)

// soakTimeline is a 100 s soak sampled every second, RSS and goroutines given per second.
func soakTimeline(rss func(s int) float64, goroutines func(s int) int) *Timeline {
	tl := &Timeline{IntervalSeconds: 1, GatewayMeasured: true}
	for s := 1; s <= 110; s++ { // 10 s of drain after publishing: not judged
		tl.Points = append(tl.Points, TimePoint{Seconds: float64(s), GatewayRSSMiB: rss(s), GatewayGoroutines: goroutines(s)})
	}
	return tl
}

// A soak is steady when the second half's tenths stay within ±10 % of the value after warm-up;
// growth fails it, a single busy second and the warm-up itself do not, and a gateway whose
// figures cannot be read is not judged.
func TestSoakJudge(t *testing.T) {
	t.Parallel()
	flat := func(int) float64 { return 100 }
	lanes := func(int) int { return 500 }
	tests := []struct {
		name           string
		tl             *Timeline
		judged, stable bool
		reason         string
	}{
		{"steady after a warm-up that grew", soakTimeline(func(s int) float64 { return min(float64(s)*10, 100) }, lanes), true, true, ""},
		{"one busy second", soakTimeline(flat, func(s int) int {
			if s == 80 {
				return 900
			}
			return 500
		}), true, true, ""},
		{"RSS grows all along", soakTimeline(func(s int) float64 { return 100 + float64(s) }, lanes), true, false, "RSS"},
		{"goroutines leak in the second half", soakTimeline(flat, func(s int) int { return 500 + max(s-50, 0)*5 }), true, false, "goroutines"},
		{"growth only during the drain", soakTimeline(func(s int) float64 {
			if s > 100 {
				return 500
			}
			return 100
		}, lanes), true, true, ""},
		{"no gateway figures", &Timeline{GatewayMeasured: false}, false, false, "not a process"},
		{"no timeline", nil, false, false, "not a process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Soak{}
			s.judge(tc.tl, 100*time.Second)
			if s.Judged != tc.judged || s.Stable != tc.stable || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("judged %v stable %v reason %q; want %v %v %q (rss %+v goroutines %+v)", s.Judged, s.Stable, s.Reason, tc.judged, tc.stable, tc.reason, s.RSSMiB, s.Goroutines)
			}
		})
	}
}

// An unsteady soak fails the run and says why; an unjudged one does not.
func TestSoakVerdict(t *testing.T) {
	t.Parallel()
	res := &Result{Rounds: []Round{{Name: "soak", Pipeline: "gateway", Soak: &Soak{Judged: true, Reason: "RSS in the second half 150–160 MiB against 100 MiB after warm-up"}}}}
	res.judge()
	if res.OK || !strings.Contains(res.problem(), "soak: not steady: RSS") {
		t.Errorf("unsteady soak: OK %v, problem %q", res.OK, res.problem())
	}
	res.Rounds[0].Soak = &Soak{Judged: false, Reason: "no RSS"}
	res.judge()
	if !res.OK {
		t.Errorf("an unjudged soak failed the run: %q", res.problem())
	}
}
