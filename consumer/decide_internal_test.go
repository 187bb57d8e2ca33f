package consumer

import (
	"errors"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	const s = time.Second
	policy := Options{RetrySchedule: []time.Duration{5 * s, 30 * s, 2 * time.Minute}, MaxRetryAge: time.Hour}
	capped := policy
	capped.MaxAttempts = 3
	t0 := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	// tried is an attempt made n-th, its first `age` before it ended; jitter 0.5 is the schedule's
	// step exactly.
	tried := func(out Outcome, n int, age time.Duration) attempt {
		return attempt{out: out, attempts: n, first: t0, start: t0.Add(age - s), now: t0.Add(age), jitter: 0.5}
	}
	failed := Outcome{Result: Retry, Status: 503, Err: errors.New("503 Service Unavailable")}

	tests := []struct {
		name string
		a    attempt
		o    Options
		want decision
	}{
		{"delivered: ack", tried(Outcome{Result: Delivered, Status: 204}, 1, 0), policy, decision{act: actAck}},
		{"delivered after retries: ack", tried(Outcome{Result: Delivered, Status: 200}, 7, 50*time.Minute), capped, decision{act: actAck}},

		{"first failure: wait the first step, nothing parked", tried(failed, 1, 0), policy, decision{act: actRetry, wait: 5 * s}},
		{"second failure: the second step, and park what queues behind", tried(failed, 2, 5*s), policy, decision{act: actRetry, wait: 30 * s, park: true}},
		{"past the schedule: its last step repeats", tried(failed, 9, 20*time.Minute), policy, decision{act: actRetry, wait: 2 * time.Minute, park: true}},
		{"Retry-After replaces the schedule", tried(Outcome{Result: Retry, Status: 429, RetryAfter: 7 * s}, 1, 0), policy, decision{act: actRetry, wait: 7 * s}},
		{"Retry-After at most a day", tried(Outcome{Result: Retry, Status: 503, RetryAfter: 72 * time.Hour}, 2, 0), policy, decision{act: actRetry, wait: 24 * time.Hour, park: true}},
		{"an unknown result is retried", tried(Outcome{Result: Result(99)}, 1, 0), policy, decision{act: actRetry, wait: 5 * s}},

		{"attempts exhausted: dead letter", tried(failed, 3, time.Minute), capped, decision{act: actDeadLetter, reason: "no success in 3 attempts"}},
		{"one attempt left: retry", tried(failed, 2, time.Minute), capped, decision{act: actRetry, wait: 30 * s, park: true}},
		{"no attempt limit: the age decides", tried(failed, 1000, 59*time.Minute), policy, decision{act: actRetry, wait: 2 * time.Minute, park: true}},
		{"retry age reached: dead letter", tried(failed, 4, time.Hour), policy, decision{act: actDeadLetter, reason: "no success within 1h0m0s of the first attempt"}},
		{"the attempt limit is checked before the age", tried(failed, 3, 2*time.Hour), capped, decision{act: actDeadLetter, reason: "no success in 3 attempts"}},

		{"permanent: dead letter at once", tried(Outcome{Result: Permanent, Status: 422}, 1, 0), policy, decision{act: actDeadLetter, reason: "receiver refused the event (status 422)"}},
		{"permanent is not retried whatever the budget", tried(Outcome{Result: Permanent, Status: 400}, 1, 0), capped, decision{act: actDeadLetter, reason: "receiver refused the event (status 400)"}},

		{"gone: disable, the schedule's wait should that fail", tried(Outcome{Result: Gone, Status: 410}, 2, 5*s), policy,
			decision{act: actDisable, wait: 30 * s, reason: "receiver answered 410 Gone at 2026-03-01T14:00:04Z"}},
		{"gone ignores Retry-After", tried(Outcome{Result: Gone, Status: 410, RetryAfter: time.Hour}, 1, s), policy,
			decision{act: actDisable, wait: 5 * s, reason: "receiver answered 410 Gone at 2026-03-01T14:00:00Z"}},

		{"breaker open: pause until it lets a probe through", tried(Outcome{Result: BreakerOpen, RetryAfter: 20 * s}, 0, 0), policy, decision{act: actPause, wait: 20 * s}},
		{"breaker open: at least 100ms", tried(Outcome{Result: BreakerOpen}, 0, 0), policy, decision{act: actPause, wait: 100 * time.Millisecond}},
		{"breaker open spends nothing: no dead letter past the budget", tried(Outcome{Result: BreakerOpen, RetryAfter: s}, 3, 2*time.Hour), capped, decision{act: actPause, wait: s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := decide(tc.a, &tc.o); got != tc.want {
				t.Errorf("decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The schedule's step is spread ±20 % by the jitter draw, so that endpoints failing together do
// not retry in step.
func TestRetryWaitJitter(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{10 * time.Second}
	tests := []struct {
		jitter float64
		want   time.Duration
	}{
		{0, 8 * time.Second},
		{0.25, 9 * time.Second},
		{0.5, 10 * time.Second},
		{0.75, 11 * time.Second},
		{0.999999, 11999996 * time.Microsecond},
	}
	for _, tc := range tests {
		if got := retryWait(schedule, 1, 0, tc.jitter); got != tc.want {
			t.Errorf("retryWait with jitter %v = %s, want %s", tc.jitter, got, tc.want)
		}
	}
	if got := retryWait(schedule, 0, 0, 0.5); got != 10*time.Second {
		t.Errorf("retryWait before any attempt = %s, want the first step", got)
	}
}
