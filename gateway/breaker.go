package gateway

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/service"
)

// BreakerOptions tune the circuit breaker each endpoint has. The zero value of each field takes
// the default of package defaults named beside it, which the --breaker-* flags show.
type BreakerOptions struct {
	ConsecutiveFailures uint32        // failures in a row that open it: defaults.BreakerFailures
	FailureRatio        float64       // or this share of failures in the window ...: defaults.BreakerRatio
	MinRequests         uint32        // ... over at least this many requests: defaults.BreakerMinRequests
	Window              time.Duration // rolling window of the ratio: defaults.BreakerWindow
	Cooldown            time.Duration // the longest wait between probes of an open breaker: defaults.BreakerCooldown
	FirstProbe          time.Duration // the wait before the first probe, growing from there (probeWait): defaults.BreakerFirstProbe
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	defaults.Fill(&o.ConsecutiveFailures, defaults.BreakerFailures)
	defaults.Fill(&o.FailureRatio, defaults.BreakerRatio)
	defaults.Fill(&o.MinRequests, defaults.BreakerMinRequests)
	defaults.Fill(&o.Window, defaults.BreakerWindow)
	defaults.Fill(&o.Cooldown, defaults.BreakerCooldown)
	defaults.Fill(&o.FirstProbe, defaults.BreakerFirstProbe)
	return o
}

// The waits between probes of an open breaker grow by probeGrowth per failed probe, from
// FirstProbe up to Cooldown. A wait is then a quarter of the time the breaker has been open so
// far, plus FirstProbe (the waits before it add up to 4 × FirstProbe × (1.25ⁿ − 1)), so a receiver
// back after an outage of D gets its first delivery within about D/4 + FirstProbe — 1 s after a
// 2 s outage, 2 s after 6 s, 3 s after 10 s — and one that stays down is probed every Cooldown
// once 19 probes have failed (about 2¼ min with the defaults). Growing slowly costs little: those
// first probes are a handful beside the 2,880 a day at the ceiling. Each wait is shortened at
// random by up to probeJitter, never lengthened, so that endpoints that failed together probe
// apart and Cooldown stays the longest wait.
const (
	probeGrowth = 1.25
	probeJitter = 0.2
)

// probeWait is how long an open breaker waits before its next probe, failed probes in a row after
// it opened (0: it just opened), for jitter in [0, 1): first × 1.25^failed, at most ceiling,
// shortened by up to a fifth.
func probeWait(failed int, first, ceiling time.Duration, jitter float64) time.Duration {
	d := min(float64(first)*math.Pow(probeGrowth, float64(failed)), float64(ceiling))
	return time.Duration(d * (1 - probeJitter*jitter))
}

// probeOutWait is what an open breaker tells a lane while another lane's probe is out: short, as
// the probe's answer usually comes within it and the lanes should follow a success at once.
const probeOutWait = 250 * time.Millisecond

// BreakerEvent is a breaker's change of state, logged and published for operators.
type BreakerEvent struct {
	EndpointID string    `json:"endpoint_id"`
	Tenant     string    `json:"-"` // the endpoint's, for its operator event: not published on BreakerSubject
	From       string    `json:"from"`
	To         string    `json:"to"`
	At         time.Time `json:"at"`
	Failures   uint32    `json:"consecutive_failures"`
	// Cause is what the last failed attempt met (an HTTP status, a timeout, a refused
	// connection), told when it opens: what an operator reads first.
	Cause string `json:"cause,omitempty"`
}

// BreakerStatus is a breaker's state as the API shows it: the service's, which reads it.
type BreakerStatus = service.BreakerStatus

// errAttemptFailed marks, for the breaker, an attempt that counts as a failure.
var errAttemptFailed = errors.New("attempt failed")

// errCancelled marks an attempt cut short by shutdown: excluded from the breaker's counts.
var errCancelled = errors.New("attempt cancelled")

// breaker is one endpoint's circuit breaker. While it is closed a gobreaker counts the attempts
// (failures in a row, the ratio over the rolling window) and decides when it opens. The open and
// half-open states are the breaker's own: gobreaker's open state lasts a fixed Timeout, and its
// wait must grow here (probeWait). A gate in front of gobreaker's own half-open state would race:
// an attempt let in just as it opened would meet an expired timeout and become the probe at once.
// So each closing starts a fresh gobreaker, and a tripped one is only read for its (cleared) counts.
type breaker struct {
	name     string
	tenant   string // the endpoint's, told with each change
	o        BreakerOptions
	onChange func(BreakerEvent)

	mu          sync.Mutex
	counts      *gobreaker.CircuitBreaker[consumer.Outcome] // closed: counts attempts and trips
	generation  uint64                                      // of counts: a retired one's trip is ignored
	state       gobreaker.State
	since       time.Time
	probeAt     time.Time        // open: when the next probe may go
	failed      int              // probes failed in a row since it opened
	probing     bool             // half-open: the probe is out
	consecutive uint32           // failed attempts in a row, for the transition events
	lastFailure consumer.Outcome // the last failed attempt's: its cause is told when it opens
}

func newBreaker(endpointID, tenant string, o BreakerOptions, onChange func(BreakerEvent)) *breaker {
	b := &breaker{name: endpointID, tenant: tenant, o: o, onChange: onChange, since: time.Now()}
	b.counts = b.newCountsLocked()
	return b
}

// newCountsLocked returns a closed gobreaker whose trip opens b. Its own open state is never left:
// b stops asking it once it has tripped, and replaces it when b closes again.
func (b *breaker) newCountsLocked() *gobreaker.CircuitBreaker[consumer.Outcome] {
	b.generation++
	gen := b.generation
	return gobreaker.NewCircuitBreaker[consumer.Outcome](gobreaker.Settings{
		Name:         b.name,
		Interval:     b.o.Window,
		BucketPeriod: b.o.Window / 6,
		Timeout:      100 * 365 * 24 * time.Hour, // never: b times the open state
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= b.o.ConsecutiveFailures ||
				c.Requests >= b.o.MinRequests && float64(c.TotalFailures) >= b.o.FailureRatio*float64(c.Requests)
		},
		// A cancelled attempt (shutdown) says nothing about the receiver.
		IsExcluded: func(err error) bool { return err != nil && !errors.Is(err, errAttemptFailed) },
		// Called under gobreaker's lock; b never calls gobreaker under b.mu, so the order is fixed.
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to != gobreaker.StateOpen {
				return
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if gen == b.generation && b.state == gobreaker.StateClosed {
				b.openLocked(time.Now())
			}
		},
	})
}

// run makes an attempt through the breaker. An open breaker makes none and says how long to wait;
// once that wait is over, one attempt goes through as the probe.
func (b *breaker) run(attempt func() consumer.Outcome, cancelled func() bool) consumer.Outcome {
	b.mu.Lock()
	b.dueLocked(time.Now())
	switch b.state {
	case gobreaker.StateOpen:
		wait := time.Until(b.probeAt)
		b.mu.Unlock()
		return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: max(wait, time.Millisecond), Err: gobreaker.ErrOpenState}
	case gobreaker.StateHalfOpen:
		if b.probing {
			b.mu.Unlock()
			return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: probeOutWait, Err: gobreaker.ErrTooManyRequests}
		}
		b.probing = true
		b.mu.Unlock()
		return b.probe(attempt, cancelled)
	}
	counts := b.counts
	b.mu.Unlock()

	out, err := counts.Execute(func() (consumer.Outcome, error) {
		out := attempt()
		if out.Result == consumer.Retry && cancelled() {
			return out, errCancelled
		}
		b.mu.Lock()
		if out.Result == consumer.Retry {
			b.consecutive++
			b.lastFailure = out
		} else {
			b.consecutive = 0
		}
		b.mu.Unlock()
		if out.Result == consumer.Retry {
			return out, errAttemptFailed
		}
		return out, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) { // it opened after we looked
		return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: max(b.untilProbe(), time.Millisecond), Err: err}
	}
	return out
}

// probe makes the half-open breaker's one attempt: a failure opens it again for a longer wait,
// an answer closes it, and a cancelled attempt leaves the probe to another lane.
func (b *breaker) probe(attempt func() consumer.Outcome, cancelled func() bool) consumer.Outcome {
	answered := false
	defer func() {
		if !answered { // attempt panicked: do not leave the breaker waiting for a probe forever
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
		}
	}()
	out := attempt()
	answered = true
	failed := out.Result == consumer.Retry
	aborted := failed && cancelled()
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch {
	case aborted:
	case failed:
		b.consecutive++
		b.lastFailure = out
		b.failed++
		b.openLocked(now)
	default:
		b.consecutive = 0
		b.counts = b.newCountsLocked()
		b.failed = 0
		b.setLocked(gobreaker.StateClosed, now)
	}
	return out
}

// openLocked opens the breaker until its next probe.
func (b *breaker) openLocked(now time.Time) {
	b.probeAt = now.Add(probeWait(b.failed, b.o.FirstProbe, b.o.Cooldown, rand.Float64()))
	b.setLocked(gobreaker.StateOpen, now)
}

// dueLocked moves an open breaker whose wait is over to half-open, as gobreaker does: when it is
// next asked.
func (b *breaker) dueLocked(now time.Time) {
	if b.state == gobreaker.StateOpen && !now.Before(b.probeAt) {
		b.setLocked(gobreaker.StateHalfOpen, now)
	}
}

// setLocked changes the state and tells onChange, under b.mu so that transitions are told in order.
func (b *breaker) setLocked(to gobreaker.State, now time.Time) {
	from := b.state
	b.state, b.since = to, now
	if b.onChange != nil {
		ev := BreakerEvent{EndpointID: b.name, Tenant: b.tenant, From: from.String(), To: to.String(), At: now.UTC(), Failures: b.consecutive}
		if to == gobreaker.StateOpen {
			ev.Cause = failureCause(b.lastFailure)
		}
		b.onChange(ev)
	}
}

// failureCause says what a failed attempt met: its error, or the status the receiver answered.
func failureCause(out consumer.Outcome) string {
	if out.Err != nil {
		return out.Err.Error()
	}
	return fmt.Sprintf("HTTP %d", out.Status)
}

// untilProbe is how long an open breaker stays open.
func (b *breaker) untilProbe() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(time.Until(b.probeAt), 0)
}

func (b *breaker) status() BreakerStatus {
	b.mu.Lock()
	b.dueLocked(time.Now())
	st := BreakerStatus{State: b.state.String(), Since: b.since.UTC()}
	counts := b.counts
	b.mu.Unlock()
	c := counts.Counts() // a tripped gobreaker's are cleared, as they were when it opened
	st.ConsecutiveFailures, st.Requests, st.Failures = c.ConsecutiveFailures, c.Requests, c.TotalFailures
	return st
}
