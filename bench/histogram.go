package bench

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Histogram counts durations in log-linear buckets, as HDR histograms do: exact below 128 µs,
// then 64 buckets per power of two, so a quantile is off by at most 1/128 of its value (the
// bucket's midpoint is reported). Its size grows with the largest value, not the count: a few KiB
// for latencies up to minutes. The zero value is empty and ready; it is not safe for concurrent
// use.
type Histogram struct {
	counts []uint32
	n      uint64
	sum    float64 // µs
	min    uint64  // µs
	max    uint64  // µs
}

const subBits = 7 // 2^7 exact buckets, then 2^6 per power of two

// bucket is the bucket index of v µs.
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	top := v >> shift                // in [64, 127]
	return 1<<subBits + (shift-1)<<(subBits-1) + int(top-1<<(subBits-1))
}

// bucketRange is the lowest and highest value, in µs, bucket i holds.
func bucketRange(i int) (lo, hi uint64) {
	if i < 1<<subBits {
		return uint64(i), uint64(i)
	}
	j := i - 1<<subBits
	shift := j>>(subBits-1) + 1
	top := uint64(j&(1<<(subBits-1)-1)) + 1<<(subBits-1)
	return top << shift, (top+1)<<shift - 1
}

// Record adds one duration (negative counts as 0).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0) / time.Microsecond)
	i := bucket(v)
	if i >= len(h.counts) {
		h.counts = slices.Grow(h.counts, i+1-len(h.counts))[:i+1]
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += float64(v)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = slices.Grow(h.counts, len(o.counts)-len(h.counts))[:len(o.counts)]
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h, keeping its buckets' memory for the next values.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, 0, 0
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Mean is the average of the values recorded.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

// Quantile returns the value below or at which a share q (0..1) of the values lie, by nearest
// rank: the midpoint of the bucket holding the ceil(q·n)-th smallest value, kept within the exact
// min and max. It is 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(min(max(q, 0), 1) * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := min(max(lo+(hi-lo)/2, h.min), h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// percentile returns the nearest-rank percentile p (0..100) of sorted values; 0 if there are none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(min(max(p, 0), 100) / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Bin is a range of a latency distribution, [FromMs, ToMs), and how many values fell in it.
type Bin struct {
	FromMs float64 `json:"from_ms"`
	ToMs   float64 `json:"to_ms"`
	Count  uint64  `json:"count"`
}

// Bins is the distribution in bins of a quarter of a doubling (1 µs wide below 4 µs), from the
// lowest value's bin to the highest's, the empty ones between included: coarse enough to draw,
// and each holds whole buckets of h, so the counts are exact.
func (h *Histogram) Bins() []Bin {
	if h.n == 0 {
		return nil
	}
	var out []Bin
	var next uint64 // where the last bin ends, µs
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, _ := bucketRange(i)
		if len(out) == 0 {
			next, _ = quarter(lo)
		}
		for next <= lo { // this bucket's bin and the empty ones before it
			from, to := quarter(next)
			out = append(out, Bin{FromMs: float64(from) / 1000, ToMs: float64(to) / 1000})
			next = to
		}
		out[len(out)-1].Count += uint64(c)
	}
	return out
}

// quarter is the bin of v µs: [v, v+1) below 4 µs, above that the quarter of the doubling v lies
// in ([8, 10), [10, 12), [12, 14), [14, 16), [16, 20), ...).
func quarter(v uint64) (from, to uint64) {
	if v < 4 {
		return v, v + 1
	}
	shift := bits.Len64(v) - 3 // v>>shift is in [4, 7]
	top := v >> shift
	return top << shift, (top + 1) << shift
}
