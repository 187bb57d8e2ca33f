package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"median of odd", []float64{1, 2, 3, 4, 5}, 50, 3},
		{"median of even is the lower middle (nearest rank)", []float64{1, 2, 3, 4}, 50, 2},
		{"p0 is the minimum", []float64{1, 2, 3}, 0, 1},
		{"p100 is the maximum", []float64{1, 2, 3}, 100, 3},
		{"p99 of 100", seq(100), 99, 99},
		{"p99 of 1000", seq(1000), 99, 990},
		{"p90 of 10", seq(10), 90, 9},
		{"out of range p is clamped", []float64{1, 2, 3}, 150, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %g) = %g, want %g", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 65535, 1 << 20, 1<<20 + 12345, 1 << 40} {
		lo, hi := bucketRange(bucket(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d holding [%d, %d]", v, bucket(v), lo, hi)
		}
		if hi-lo > max(v/64, 0) {
			t.Errorf("bucket of %d is [%d, %d]: wider than 1/64 of the value", v, lo, hi)
		}
	}
	for i := 1; i < 2000; i++ { // contiguous and increasing
		lo, _ := bucketRange(i)
		_, prevHi := bucketRange(i - 1)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestHistogramQuantilesAgainstSorting(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var exact []float64
	for range 100_000 {
		// log-normal-ish: most around a few ms, a tail to seconds
		d := time.Duration(rnd.ExpFloat64()*3000+50) * time.Microsecond
		if rnd.IntN(100) == 0 {
			d *= 300
		}
		h.Record(d)
		exact = append(exact, float64(d.Microseconds()))
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := percentile(exact, q*100)
		got := float64(h.Quantile(q).Microseconds())
		if diff := (got - want) / want; diff > 0.01 || diff < -0.01 {
			t.Errorf("q%g = %gµs, exact %gµs: off by %.2f%%", q, got, want, 100*diff)
		}
	}
	if h.Max() != time.Duration(exact[len(exact)-1])*time.Microsecond {
		t.Errorf("max %v, want %gµs", h.Max(), exact[len(exact)-1])
	}
	if h.Count() != 100_000 {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	t.Parallel()
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 || empty.Max() != 0 {
		t.Error("an empty histogram should report zeros")
	}
	var a, b Histogram
	for i := range 100 {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(100+i) * time.Millisecond)
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 200 || a.Max() != 199*time.Millisecond {
		t.Errorf("merged count %d max %v", a.Count(), a.Max())
	}
	if med := a.Quantile(0.5); med < 98*time.Millisecond || med > 101*time.Millisecond {
		t.Errorf("merged median %v, want about 99ms", med)
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Max() != 0 {
		t.Errorf("a negative duration should count as 0, got max %v", neg.Max())
	}
}

// Bins count every value once, in the bin that holds it: contiguous quarters of a doubling from
// the lowest value's to the highest's.
func TestHistogramBins(t *testing.T) {
	t.Parallel()
	var empty Histogram
	if empty.Bins() != nil {
		t.Error("an empty histogram has bins")
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	var values []time.Duration
	for range 10_000 {
		d := time.Duration(rnd.ExpFloat64()*2000) * time.Microsecond
		h.Record(d)
		values = append(values, d)
	}
	h.Record(0)
	h.Record(3 * time.Microsecond)
	h.Record(7 * time.Second)
	values = append(values, 0, 3*time.Microsecond, 7*time.Second)
	bins := h.Bins()
	if bins[0].FromMs != 0 || bins[len(bins)-1].FromMs > 7000 || bins[len(bins)-1].ToMs <= 7000 {
		t.Errorf("bins from %g to %g ms, want from 0 to past 7000", bins[0].FromMs, bins[len(bins)-1].ToMs)
	}
	var total uint64
	for i, b := range bins {
		total += b.Count
		if i > 0 && b.FromMs != bins[i-1].ToMs {
			t.Fatalf("bin %d starts at %g, the one before ends at %g", i, b.FromMs, bins[i-1].ToMs)
		}
		if w := b.ToMs - b.FromMs; b.FromMs >= 0.004 && (w > b.FromMs/4+1e-9 || w < b.FromMs/8) {
			t.Errorf("bin [%g, %g) is not a quarter of a doubling", b.FromMs, b.ToMs)
		}
		var want uint64
		for _, v := range values {
			if us := float64(v.Microseconds()) / 1000; us >= b.FromMs && us < b.ToMs {
				want++
			}
		}
		if b.Count != want {
			t.Errorf("bin [%g, %g) counts %d, want %d", b.FromMs, b.ToMs, b.Count, want)
		}
	}
	if total != h.Count() {
		t.Errorf("bins count %d, the histogram %d", total, h.Count())
	}
}

func TestHistogramReset(t *testing.T) {
	t.Parallel()
	var h Histogram
	h.Record(time.Second)
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Bins() != nil {
		t.Errorf("after Reset: count %d max %v", h.Count(), h.Max())
	}
	h.Record(2 * time.Millisecond)
	if h.Count() != 1 || h.Quantile(0.5) != 2*time.Millisecond || h.Max() != 2*time.Millisecond {
		t.Errorf("after Reset and a value: count %d p50 %v max %v", h.Count(), h.Quantile(0.5), h.Max())
	}
}
