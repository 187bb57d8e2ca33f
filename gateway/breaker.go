package gateway

import (
	"errors"
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
	Cooldown            time.Duration // open time before one probe is let through: defaults.BreakerCooldown
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	defaults.Fill(&o.ConsecutiveFailures, defaults.BreakerFailures)
	defaults.Fill(&o.FailureRatio, defaults.BreakerRatio)
	defaults.Fill(&o.MinRequests, defaults.BreakerMinRequests)
	defaults.Fill(&o.Window, defaults.BreakerWindow)
	defaults.Fill(&o.Cooldown, defaults.BreakerCooldown)
	return o
}

// BreakerEvent is a breaker's change of state, logged and published for operators.
type BreakerEvent struct {
	EndpointID string    `json:"endpoint_id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	At         time.Time `json:"at"`
	Failures   uint32    `json:"consecutive_failures"`
}

// BreakerStatus is a breaker's state as the API shows it: the service's, which reads it.
type BreakerStatus = service.BreakerStatus

// errAttemptFailed marks, for the breaker, an attempt that counts as a failure.
var errAttemptFailed = errors.New("attempt failed")

// breaker wraps one endpoint's gobreaker and remembers when it last changed state.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[consumer.Outcome]
	cooldown time.Duration

	mu          sync.Mutex
	since       time.Time
	consecutive uint32 // failed attempts in a row, for the transition events (gobreaker resets its counts first)
}

func newBreaker(endpointID string, o BreakerOptions, onChange func(BreakerEvent)) *breaker {
	b := &breaker{cooldown: o.Cooldown, since: time.Now()}
	b.cb = gobreaker.NewCircuitBreaker[consumer.Outcome](gobreaker.Settings{
		Name:         endpointID,
		MaxRequests:  1, // half-open: one probe
		Interval:     o.Window,
		BucketPeriod: o.Window / 6,
		Timeout:      o.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= o.ConsecutiveFailures ||
				c.Requests >= o.MinRequests && float64(c.TotalFailures) >= o.FailureRatio*float64(c.Requests)
		},
		// A cancelled attempt (shutdown) says nothing about the receiver.
		IsExcluded: func(err error) bool { return err != nil && !errors.Is(err, errAttemptFailed) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			now := time.Now()
			b.mu.Lock()
			b.since = now
			b.mu.Unlock()
			b.mu.Lock()
			failures := b.consecutive
			b.mu.Unlock()
			if onChange != nil {
				onChange(BreakerEvent{EndpointID: name, From: from.String(), To: to.String(), At: now.UTC(), Failures: failures})
			}
		},
	})
	return b
}

// run makes an attempt through the breaker. An open breaker makes none and says how long to wait.
func (b *breaker) run(attempt func() consumer.Outcome, cancelled func() bool) consumer.Outcome {
	out, err := b.cb.Execute(func() (consumer.Outcome, error) {
		out := attempt()
		if out.Result == consumer.Retry && cancelled() {
			return out, errCancelled
		}
		b.mu.Lock()
		if out.Result == consumer.Retry {
			b.consecutive++
		} else {
			b.consecutive = 0
		}
		b.mu.Unlock()
		if out.Result == consumer.Retry {
			return out, errAttemptFailed
		}
		return out, nil
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: b.untilProbe(), Err: err}
	case errors.Is(err, gobreaker.ErrTooManyRequests): // half-open, the probe is out
		return consumer.Outcome{Result: consumer.BreakerOpen, RetryAfter: time.Second, Err: err}
	}
	return out
}

// errCancelled marks an attempt cut short by shutdown: excluded from the breaker's counts.
var errCancelled = errors.New("attempt cancelled")

// untilProbe is how long an open breaker stays open.
func (b *breaker) untilProbe() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.cooldown-time.Since(b.since), 0)
}

func (b *breaker) status() BreakerStatus {
	state := b.cb.State() // may move open -> half-open, which calls OnStateChange: read since after
	c := b.cb.Counts()
	b.mu.Lock()
	defer b.mu.Unlock()
	return BreakerStatus{State: state.String(), Since: b.since.UTC(), ConsecutiveFailures: c.ConsecutiveFailures, Requests: c.Requests, Failures: c.TotalFailures}
}
