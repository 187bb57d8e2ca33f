package consumer

import (
	"fmt"
	"time"
)

// action is what a lane does with its head after an attempt.
type action int

const (
	// actAck: the receiver took the event; acknowledge it, and lift a breaker's pause.
	actAck action = iota + 1
	// actDeadLetter: record the event with its reason, then acknowledge it so its entity moves on.
	actDeadLetter
	// actDisable: the receiver is gone; switch the endpoint off, leaving the event unacknowledged
	// for when it is enabled again. If that fails, wait and try the event again.
	actDisable
	// actPause: the breaker is open; pause the endpoint's consumer and wait, spending no attempt.
	actPause
	// actRetry: wait, the entity blocked behind its head (parked from parkFrom on), then try again.
	actRetry
)

// attempt is what a lane knows of its head after trying it: what decide reads.
type attempt struct {
	out      Outcome
	attempts int       // POSTs of the event so far, this one included (an open breaker made none)
	first    time.Time // when the first of them started
	start    time.Time // when this one started
	now      time.Time // when it ended
	jitter   float64   // a draw in [0, 1): spreads the retries of endpoints that fail together
}

// decision is what decide chose.
type decision struct {
	act    action
	wait   time.Duration // actRetry, actPause, and actDisable should it fail: before the next attempt
	park   bool          // actRetry: park the events queued behind the head while it waits
	reason string        // actDeadLetter: why; actDisable: the endpoint's disabled reason
}

// parkFrom is the failed attempt of a head from which the events behind it are parked. Not the
// first: when a whole endpoint fails, its breaker opens within the first attempts of its entities
// (then its consumer is paused and parking would only double the writes); one entity failing on
// its own fails its second attempt too.
const parkFrom = 2

// decide is the one place that turns an attempt's outcome into what the lane does next, under the
// retry policy in o (RetrySchedule, MaxAttempts, MaxRetryAge). It only chooses; the worker acts.
func decide(a attempt, o *Options) decision {
	switch a.out.Result {
	case Delivered:
		return decision{act: actAck}
	case Permanent:
		return decision{act: actDeadLetter, reason: fmt.Sprintf("receiver refused the event (status %d)", a.out.Status)}
	case Gone:
		return decision{act: actDisable, wait: retryWait(o.RetrySchedule, a.attempts, 0, a.jitter),
			reason: fmt.Sprintf("receiver answered %d Gone at %s", a.out.Status, a.start.UTC().Format(time.RFC3339))}
	case BreakerOpen:
		return decision{act: actPause, wait: max(a.out.RetryAfter, 100*time.Millisecond)}
	}
	// Retry, and whatever a Deliverer answers that is none of the above.
	if o.MaxAttempts > 0 && a.attempts >= o.MaxAttempts {
		return decision{act: actDeadLetter, reason: fmt.Sprintf("no success in %d attempts", a.attempts)}
	}
	if a.now.Sub(a.first) >= o.MaxRetryAge {
		return decision{act: actDeadLetter, reason: fmt.Sprintf("no success within %s of the first attempt", o.MaxRetryAge)}
	}
	return decision{act: actRetry, wait: retryWait(o.RetrySchedule, a.attempts, a.out.RetryAfter, a.jitter), park: a.attempts >= parkFrom}
}

// retryWait is the wait before the attempt after `attempts`: the receiver's Retry-After (at most a
// day), or the schedule's step with ±20 % jitter (jitter in [0, 1)), the last step repeating.
func retryWait(schedule []time.Duration, attempts int, retryAfter time.Duration, jitter float64) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, 24*time.Hour)
	}
	base := schedule[max(min(attempts-1, len(schedule)-1), 0)]
	return time.Duration(float64(base) * (0.8 + 0.4*jitter))
}
