package bench

import (
	"math"
	"slices"
	"time"
)

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

// everyKth is at most n of all, evenly spaced: every k-th, from the first.
func everyKth[T any](all []T, n int) []T {
	if len(all) <= n {
		return all
	}
	k := (len(all) + n - 1) / n
	out := make([]T, 0, n)
	for i := 0; i < len(all); i += k {
		out = append(out, all[i])
	}
	return out
}

// maxByEndpoint bounds Round.ByEndpoint: a bar per endpoint is readable up to about a hundred.
const maxByEndpoint = 100

// figures fills in the delivery figures from the round's sink.
func (rd *Round) figures(eps []*endpoint, s *sink, start, end, upAt time.Duration) {
	var rates, p99s, gaps, firsts []float64
	var each []EndpointFigures
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
		one := EndpointFigures{Name: ep.name}
		if st.delivered > 0 {
			last = max(last, st.last)
			if d := (st.last - start).Seconds(); d > 0 {
				one.DeliveriesPerSec = float64(st.delivered) / d
				rates = append(rates, one.DeliveriesPerSec)
			}
			one.P99Ms, one.MaxGapMs = ms(st.hist.Quantile(0.99)), ms(st.maxGap)
			p99s = append(p99s, one.P99Ms)
			gaps = append(gaps, one.MaxGapMs)
			if ep.behaviour != down {
				firsts = append(firsts, (st.first - start).Seconds())
			}
		} else {
			rates = append(rates, 0)
		}
		each = append(each, one)
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
	rd.LatencyHistogram = rd.hist.Bins()
	rd.ByEndpoint = everyKth(each, maxByEndpoint)
	rd.PerEndpoint = Spread{DeliveriesPerSec: spread(rates), P99Ms: spread(p99s), MaxGapMs: spread(gaps), FirstDeliveryS: spread(firsts)}
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
