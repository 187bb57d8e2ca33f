package rollup

import (
	"math"
	"time"
)

// Outcomes counted, as the sender names them (consumer.Result's String).
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomePermanent = "permanent"
	OutcomeGone      = "gone"
)

// Bounds are the upper bounds, in milliseconds, of the latency buckets; a last bucket takes
// what is slower. Fixed, so that minutes from any gateway add up.
var Bounds = [...]float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}

// NumBuckets is the number of latency buckets: one per bound and one beyond the last.
const NumBuckets = len(Bounds) + 1

// Minute is the record of one endpoint's attempts in one minute, from one gateway.
type Minute struct {
	EndpointID string             `json:"endpoint_id"`
	Start      time.Time          `json:"minute"`  // the minute's start, UTC
	Gateway    string             `json:"gateway"` // the process that counted them
	Delivered  uint64             `json:"delivered"`
	Retry      uint64             `json:"retry"`
	Permanent  uint64             `json:"permanent"`
	Gone       uint64             `json:"gone"`
	Latency    [NumBuckets]uint64 `json:"latency_ms_buckets"` // attempts per bucket of Bounds
	SumMS      float64            `json:"sum_ms"`
	MaxMS      float64            `json:"max_ms"`
	// LastDelivered is when the last delivered attempt of the minute started; zero if none was.
	LastDelivered time.Time `json:"last_delivered,omitzero"`
}

// Attempts is how many POSTs the minute counts.
func (m *Minute) Attempts() uint64 { return m.Delivered + m.Retry + m.Permanent + m.Gone }

// add counts one attempt.
func (m *Minute) add(outcome string, ms float64, at time.Time) {
	switch outcome {
	case OutcomeDelivered:
		m.Delivered++
		if at.After(m.LastDelivered) {
			m.LastDelivered = at
		}
	case OutcomeRetry:
		m.Retry++
	case OutcomePermanent:
		m.Permanent++
	default:
		m.Gone++
	}
	m.Latency[bucket(ms)]++
	m.SumMS += ms
	m.MaxMS = max(m.MaxMS, ms)
}

// Merge adds o's counts into m.
func (m *Minute) Merge(o *Minute) {
	m.Delivered += o.Delivered
	m.Retry += o.Retry
	m.Permanent += o.Permanent
	m.Gone += o.Gone
	for i := range m.Latency {
		m.Latency[i] += o.Latency[i]
	}
	m.SumMS += o.SumMS
	m.MaxMS = max(m.MaxMS, o.MaxMS)
	if o.LastDelivered.After(m.LastDelivered) {
		m.LastDelivered = o.LastDelivered
	}
}

// bucket is the index of the latency bucket of ms.
func bucket(ms float64) int {
	for i, b := range Bounds {
		if ms <= b {
			return i
		}
	}
	return len(Bounds)
}

// Quantile is the latency, in milliseconds, below which q (0 to 1) of the minute's attempts
// fell, as the upper bound of its bucket (the slowest attempt for the last bucket); NaN without
// attempts.
func (m *Minute) Quantile(q float64) float64 {
	total := m.Attempts()
	if total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, n := range m.Latency {
		seen += n
		if seen >= rank && n > 0 {
			if i == len(Bounds) {
				return m.MaxMS
			}
			return min(Bounds[i], m.MaxMS)
		}
	}
	return m.MaxMS
}

// SuccessRate is the share of attempts delivered, 0 to 1; NaN without attempts.
func (m *Minute) SuccessRate() float64 {
	total := m.Attempts()
	if total == 0 {
		return math.NaN()
	}
	return float64(m.Delivered) / float64(total)
}
