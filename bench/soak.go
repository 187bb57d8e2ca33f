package bench

import (
	"context"
	"fmt"
	"time"
)

// A soak asks whether the gateway holds steady over a long run at a load it can carry. A first
// round, "calibration", publishes the scenario's events as fast as the gateway takes them; the
// second, "soak", publishes at Load of the event rate the first delivered (or at Rate, when
// given) for Soak, while the timeline samples the gateway's RSS and goroutines every second.
// It is stable when, in the second half of the soak, both stay within ±soakTolerance of their
// value after warm-up: the mean over the tenth of the soak that follows its first fifth. The
// second half is judged by the mean of each of its tenths of the soak, so that growth shows and
// a single busy second (a burst of lanes, each a goroutine) does not.
const soakTolerance = 0.10

// Soak is a soak round's verdict on RSS and goroutines.
type Soak struct {
	Seconds            float64     `json:"seconds"`
	Load               float64     `json:"load,omitempty"`                  // share of the capacity; 0 when Rate was given
	CapacityEventsPerS float64     `json:"capacity_events_per_s,omitempty"` // from the calibration round
	RateEventsPerS     float64     `json:"rate_events_per_s"`
	WarmupSeconds      float64     `json:"warmup_s"`
	RSSMiB             *Steadiness `json:"rss_mib,omitempty"`
	Goroutines         *Steadiness `json:"goroutines,omitempty"`
	// Judged is false when the figures could not be read (a gateway that is not a process of
	// the harness's, a timeline too short); Stable then says nothing.
	Judged bool   `json:"judged"`
	Stable bool   `json:"stable"`
	Reason string `json:"reason,omitempty"` // why it is not stable, or not judged
}

// Steadiness is one figure after warm-up and over the soak's second half.
type Steadiness struct {
	AfterWarmup float64 `json:"after_warmup"`
	Min         float64 `json:"second_half_min"` // the lowest and highest mean of a tenth of the soak
	Max         float64 `json:"second_half_max"`
	MinRatio    float64 `json:"min_ratio"`
	MaxRatio    float64 `json:"max_ratio"`
}

func (s *Steadiness) steady() bool {
	return s.MinRatio >= 1-soakTolerance && s.MaxRatio <= 1+soakTolerance
}

// soakRounds runs the calibration round (unless the scenario has a rate) and the soak round.
func (r *runner) soakRounds(ctx context.Context, add func(Round, error) error) error {
	soak := time.Duration(r.sc.Soak)
	s := &Soak{Seconds: soak.Seconds(), RateEventsPerS: r.sc.Rate}
	if r.sc.Rate == 0 {
		rd, err := r.gatewayRound(ctx, "calibration", "c", r.rec.eps, true)
		if err := add(rd, err); err != nil || ctx.Err() != nil {
			return err
		}
		if rd.TimedOut || rd.DeliverSeconds <= 0 {
			return fmt.Errorf("%w: the calibration round did not finish: no capacity to soak at", ErrVerdict)
		}
		s.Load, s.CapacityEventsPerS = r.sc.Load, float64(rd.Events)/rd.DeliverSeconds
		s.RateEventsPerS = s.Load * s.CapacityEventsPerS
	}
	sc := r.sc
	sc.Rate = s.RateEventsPerS
	sc.Events = min(max(int(s.RateEventsPerS*soak.Seconds()), 1), MaxEvents)
	sc.Entities = min(sc.Entities, sc.Events)
	r.sc, r.ev = sc, newEvents(sc)
	rd, err := r.gatewayRound(ctx, "soak", "s", r.rec.eps, r.tgt.kind == TargetRemote)
	s.judge(rd.Timeline, soak)
	rd.Soak = s
	return add(rd, err)
}

// judge reads the soak's steadiness from its timeline.
func (s *Soak) judge(tl *Timeline, soak time.Duration) {
	warm, ref, half := 0.2*soak.Seconds(), 0.3*soak.Seconds(), 0.5*soak.Seconds()
	s.WarmupSeconds = warm
	if tl == nil || !tl.GatewayMeasured {
		s.Reason = "the gateway is not a process of the harness: no RSS to judge"
		return
	}
	tenth := 0.1 * soak.Seconds()
	steadiness := func(v func(TimePoint) float64) *Steadiness {
		// Means per tenth of the soak: [0] is the reference after warm-up, then the second half's.
		var sums, counts [6]float64
		for _, p := range tl.Points {
			x := v(p)
			switch {
			case x <= 0 || p.Seconds > soak.Seconds(): // unread; or the drain after publishing
			case p.Seconds > warm && p.Seconds <= ref:
				sums[0], counts[0] = sums[0]+x, counts[0]+1
			case p.Seconds > half:
				i := min(1+int((p.Seconds-half)/tenth), 5)
				sums[i], counts[i] = sums[i]+x, counts[i]+1
			}
		}
		if counts[0] == 0 {
			return nil
		}
		st := &Steadiness{AfterWarmup: sums[0] / counts[0]}
		seen := false
		for i := 1; i < len(sums); i++ {
			if counts[i] == 0 {
				continue
			}
			m := sums[i] / counts[i]
			if !seen {
				st.Min, st.Max, seen = m, m, true
			}
			st.Min, st.Max = min(st.Min, m), max(st.Max, m)
		}
		if !seen {
			return nil
		}
		st.MinRatio, st.MaxRatio = st.Min/st.AfterWarmup, st.Max/st.AfterWarmup
		return st
	}
	s.RSSMiB = steadiness(func(p TimePoint) float64 { return p.GatewayRSSMiB })
	s.Goroutines = steadiness(func(p TimePoint) float64 { return float64(p.GatewayGoroutines) })
	if s.RSSMiB == nil {
		s.Reason = "the timeline has no points after warm-up or in the second half"
		return
	}
	s.Judged, s.Stable = true, true
	if !s.RSSMiB.steady() {
		s.Stable = false
		s.Reason = fmt.Sprintf("RSS in the second half %.0f–%.0f MiB against %.0f MiB after warm-up", s.RSSMiB.Min, s.RSSMiB.Max, s.RSSMiB.AfterWarmup)
	}
	if s.Goroutines != nil && !s.Goroutines.steady() {
		s.Stable = false
		s.Reason = join(s.Reason, fmt.Sprintf("goroutines in the second half %.0f–%.0f against %.0f after warm-up", s.Goroutines.Min, s.Goroutines.Max, s.Goroutines.AfterWarmup))
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
