package gateway

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/internal/testwait"
)

func TestProbeWait(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		name           string
		failed         int
		first, ceiling time.Duration
		jitter         float64
		want           time.Duration
	}{
		{"just opened: the first wait", 0, s / 2, 30 * s, 0, 500 * time.Millisecond},
		{"one failed probe: a quarter longer", 1, s / 2, 30 * s, 0, 625 * time.Millisecond},
		{"two", 2, s / 2, 30 * s, 0, 781250 * time.Microsecond},
		{"eighteen: still below the ceiling", 18, s / 2, 30 * s, 0, time.Duration(float64(s/2) * math.Pow(1.25, 18))},
		{"nineteen: at the ceiling", 19, s / 2, 30 * s, 0, 30 * s},
		{"a day of probes: the ceiling, no overflow", 1_000_000, s / 2, 30 * s, 0, 30 * s},
		{"jitter shortens by up to a fifth", 0, s / 2, 30 * s, 0.5, 450 * time.Millisecond},
		{"jitter at the ceiling shortens it", 40, s / 2, 30 * s, 0.5, 27 * s},
		{"a ceiling below the first wait caps it", 0, s, 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"another first wait", 2, 100 * time.Millisecond, time.Minute, 0, 156250 * time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := probeWait(tc.failed, tc.first, tc.ceiling, tc.jitter); got != tc.want {
				t.Errorf("probeWait(%d, %s, %s, %v) = %s, want %s", tc.failed, tc.first, tc.ceiling, tc.jitter, got, tc.want)
			}
		})
	}
	// Whatever the jitter, a wait is never longer than the ceiling nor shorter than 4/5 of the step.
	for failed := range 40 {
		for _, j := range []float64{0, 0.25, 0.5, 0.75, math.Nextafter(1, 0)} {
			step := probeWait(failed, s/2, 30*s, 0)
			got := probeWait(failed, s/2, 30*s, j)
			if got > step || got > 30*time.Second || float64(got) < 0.8*float64(step)-1 {
				t.Errorf("probeWait(%d, jitter %v) = %s: want within [0.8, 1] × %s and at most 30s", failed, j, got, step)
			}
		}
	}
}

// probesWithin counts the probes an endpoint whose receiver stays down gets within d of its breaker
// opening, every wait shortened by the same jitter.
func probesWithin(d, first, ceiling time.Duration, jitter float64) int {
	var at time.Duration
	n := 0
	for failed := 0; ; failed++ { // bounded: each wait is at least 4/5 of first
		at += probeWait(failed, first, ceiling, jitter)
		if at > d {
			return n
		}
		n++
	}
}

// The probes a receiver that stays down gets in a day, with the default schedule: the README and
// bench/PERFORMANCE.md state these figures.
func TestProbesPerDay(t *testing.T) {
	t.Parallel()
	first, ceiling := defaults.BreakerFirstProbe, defaults.BreakerCooldown
	for _, c := range []struct {
		name   string
		jitter float64
		want   int
	}{
		{"every wait at its longest", 0, 2894},
		{"every wait at its average", 0.5, 3214},
		{"every wait at its shortest", math.Nextafter(1, 0), 3614},
	} {
		if got := probesWithin(24*time.Hour, first, ceiling, c.jitter); got != c.want {
			t.Errorf("%s: %d probes in 24h, want %d (update the README and bench/PERFORMANCE.md with the schedule)", c.name, got, c.want)
		}
	}
	if fixed := int(24 * time.Hour / ceiling); fixed != 2880 {
		t.Errorf("a fixed cooldown of %s: %d probes a day, want 2880", ceiling, fixed)
	}
}

// Each failed probe opens the breaker for a longer wait, up to the cooldown; a successful probe
// closes it, and the next time it opens it waits the first wait again. The waits are read from the
// breaker's own record (opened at, next probe at), so a slow machine cannot change them.
func TestBreakerProbeWaitsGrowToTheCooldown(t *testing.T) {
	t.Parallel()
	const first, ceiling = 4 * time.Millisecond, 40 * time.Millisecond
	var log breakerLog
	b := newBreaker("ep_test", "", BreakerOptions{ConsecutiveFailures: 2, FirstProbe: first, Cooldown: ceiling}.withDefaults(), log.add)
	waitNow := func() time.Duration {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.state.String() != "open" {
			t.Fatalf("breaker %s, want open", b.state)
		}
		return b.probeAt.Sub(b.since)
	}
	wantWait := func(failed int) {
		t.Helper()
		step := probeWait(failed, first, ceiling, 0)
		if got := waitNow(); got > step || float64(got) < 0.8*float64(step)-1 {
			t.Errorf("after %d failed probes the breaker waits %s, want within [0.8, 1] × %s", failed, got, step)
		}
	}
	fail := outcome(consumer.Retry)
	for range 2 {
		b.run(fail, notCancelled)
	}
	wantWait(0)
	const probes = 14 // 4 ms × 1.25¹¹ > 40 ms: the last ones wait the ceiling
	for failed := 1; failed <= probes; failed++ {
		testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
		if out := b.run(fail, notCancelled); out.Result != consumer.Retry {
			t.Fatalf("probe %d: %v, want the attempt's Retry", failed, out.Result)
		}
		wantWait(failed)
	}
	if got := waitNow(); got < ceiling*4/5 {
		t.Errorf("after %d failed probes the wait is %s, want the ceiling %s (less jitter)", probes, got, ceiling)
	}

	testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
	if out := b.run(outcome(consumer.Delivered), notCancelled); out.Result != consumer.Delivered {
		t.Fatalf("probe: %v, want Delivered", out.Result)
	}
	if st := b.status(); st.State != "closed" || st.ConsecutiveFailures != 0 {
		t.Fatalf("after a successful probe: %+v, want closed with no failures", st)
	}
	for range 2 {
		b.run(fail, notCancelled)
	}
	wantWait(0) // the schedule starts over

	opens := 0
	for _, ev := range log.snapshot() {
		if ev.To == "open" {
			opens++
		}
	}
	if want := 1 + probes + 1; opens != want {
		t.Errorf("%d transitions to open, want %d (the trip, each failed probe, the second trip): %v", opens, want, log.path())
	}
}

// A trip of a gobreaker the breaker has replaced (an attempt let in before it closed again, failing
// after) does not open the breaker.
func TestBreakerIgnoresARetiredCounter(t *testing.T) {
	t.Parallel()
	b := newBreaker("ep_test", "", BreakerOptions{ConsecutiveFailures: 1, FirstProbe: time.Millisecond, Cooldown: time.Millisecond}.withDefaults(), nil)
	b.mu.Lock()
	old := b.counts
	b.counts = b.newCountsLocked()
	b.mu.Unlock()
	_, _ = old.Execute(func() (consumer.Outcome, error) { return consumer.Outcome{Result: consumer.Retry}, errAttemptFailed })
	if st := b.status().State; st != "closed" {
		t.Errorf("a retired counter's trip left the breaker %s, want closed", st)
	}
}

// An opening says what the last failed attempt met — the trip's, then each failed probe's — and
// other transitions say nothing of it.
func TestBreakerOpeningTellsItsCause(t *testing.T) {
	t.Parallel()
	var log breakerLog
	b := newBreaker("ep_test", "", BreakerOptions{ConsecutiveFailures: 2, FirstProbe: time.Millisecond, Cooldown: time.Millisecond}.withDefaults(), log.add)
	failWith := func(err error) func() consumer.Outcome {
		return func() consumer.Outcome { return consumer.Outcome{Result: consumer.Retry, Err: err} }
	}
	b.run(failWith(errors.New("receiver answered 503")), notCancelled)
	b.run(failWith(errors.New("timeout: context deadline exceeded")), notCancelled)
	testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
	b.run(func() consumer.Outcome { return consumer.Outcome{Result: consumer.Retry, Status: 500} }, notCancelled)
	testwait.For(t, 10*time.Second, "half-open again", func() bool { return b.status().State == "half-open" })
	b.run(outcome(consumer.Delivered), notCancelled)

	var got []string
	for _, ev := range log.snapshot() {
		got = append(got, ev.To+":"+ev.Cause)
	}
	want := []string{"open:timeout: context deadline exceeded", "half-open:", "open:HTTP 500", "half-open:", "closed:"}
	if !slices.Equal(got, want) {
		t.Errorf("transitions with their cause %q, want %q", got, want)
	}
}
