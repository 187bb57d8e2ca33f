package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// After a restart, events acknowledged above the ack floor come again (ResetConsumer restarts
// there): with the durable delivery record they are recognised and not POSTed again; without it
// they are (the duplicates a crash used to amplify).
func TestDurableMarksStopResendsAfterRestart(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{true, false} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ep := e.createEndpoint(t, "*")
			var marks *consumer.Marks
			if durable {
				marks = e.newMarks(t)
			}
			// B-1 fails while the first gateway runs, so the ack floor stays below A's events.
			var healthy atomic.Bool
			rec := failingWhen(retry, func(d *consumer.Delivery) bool { return d.Event.Entity == "B" && !healthy.Load() })
			o := consumer.Options{Marks: marks, RetrySchedule: []time.Duration{20 * time.Millisecond}, ShutdownTimeout: time.Second}
			m1 := startManager(t, e, rec, o)
			e.publishEvent(t, event{id: "B-1", typ: "cargo_loaded", entity: "B"})
			var as []string
			for i := range 5 {
				id := fmt.Sprintf("A-%d", i)
				as = append(as, id)
				e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "A"})
			}
			testwait.For(t, 10*time.Second, "A's events delivered", func() bool { return rec.hasDelivered(ep.ID, as...) })
			m1.stop(t, 10*time.Second)

			healthy.Store(true)
			startManager(t, e, rec, o) // a new gateway: nothing of the first one's memory
			testwait.For(t, 10*time.Second, "B-1 delivered", func() bool { return rec.hasDelivered(ep.ID, "B-1") })
			testwait.For(t, 10*time.Second, "consumer drained", func() bool { return e.drained(t, ep.ID) })
			resent := 0
			for _, id := range as {
				resent += len(deliveredCalls(rec, ep.ID, id)) - 1
			}
			switch {
			case durable && resent != 0:
				t.Errorf("with the durable record, %d of A's events were POSTed again after the restart", resent)
			case !durable && resent == 0:
				t.Errorf("without it, no event was POSTed again: the test does not exercise a reset")
			}
		})
	}
}

func deliveredCalls(r *recorder, endpoint, id string) []call {
	var out []call
	for _, c := range r.callsFor(endpoint, id) {
		if c.result == consumer.Delivered {
			out = append(out, c)
		}
	}
	return out
}

// The retry budget is counted across worker restarts (a reconnect restarts every worker) and,
// through the durable record, across a gateway restart: with --max-attempts 3 the attempts are
// 1, 2, 3 and then a dead letter — not 1 2 1 2 ... for ever.
func TestRetryBudgetSurvivesRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	marks := e.newMarks(t)
	var m1 atomic.Pointer[manager]
	var seen []int
	var mu sync.Mutex
	rec := newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		mu.Lock()
		seen = append(seen, d.Attempt)
		mu.Unlock()
		if m := m1.Load(); d.Attempt == 1 && m != nil {
			go m.Reconnected() // every worker restarts, as after a NATS reconnect
		}
		return retry
	})
	o := consumer.Options{Marks: marks, MaxAttempts: 3, RetrySchedule: []time.Duration{50 * time.Millisecond}, ShutdownTimeout: time.Second}
	m1.Store(startManager(t, e, rec, o))
	e.publishEvent(t, event{id: "poison", typ: "cargo_loaded", entity: "P"})
	testwait.For(t, 10*time.Second, "two attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 2 })
	m1.Load().stop(t, 10*time.Second)

	startManager(t, e, rec, o) // a new gateway: the budget comes from the durable record
	testwait.For(t, 10*time.Second, "the event dead-lettered", func() bool {
		dls, err := consumer.NewDeadLetters(t.Context(), e.js, e.stream)
		if err != nil {
			return false
		}
		list, _, err := dls.List(t.Context(), ep.ID, 0, 10)
		return err == nil && len(list) == 1 && list[0].Attempts == 3
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("attempts seen %v, want [1 2 3]", seen)
	}
}

// Each delivery names the entity's event sent (or dead-lettered) before it, empty for the first —
// also across a gateway restart, through the durable record — so that a receiver sees a gap.
func TestPreviousEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "*")
	marks := e.newMarks(t)
	rec := failingWhen(consumer.Outcome{Result: consumer.Permanent, Status: 422}, func(d *consumer.Delivery) bool { return d.Event.ID == "A-3" })
	o := consumer.Options{Marks: marks, ShutdownTimeout: time.Second}
	m1 := startManager(t, e, rec, o)
	for _, ev := range []event{{id: "A-1", entity: "A"}, {id: "B-1", entity: "B"}, {id: "A-2", entity: "A"}, {id: "A-3", entity: "A"}} {
		ev.typ = "cargo_loaded"
		e.publishEvent(t, ev)
	}
	testwait.For(t, 10*time.Second, "the first events done", func() bool { return e.drained(t, ep.ID) && len(rec.callsFor(ep.ID, "A-3")) == 1 })
	m1.stop(t, 10*time.Second)

	startManager(t, e, rec, o) // a new gateway: the previous ids come from the durable record
	e.publishEvent(t, event{id: "A-4", typ: "cargo_loaded", entity: "A"})
	testwait.For(t, 10*time.Second, "A-4 delivered", func() bool { return rec.hasDelivered(ep.ID, "A-4") })
	for id, want := range map[string]string{"A-1": "", "B-1": "", "A-2": "A-1", "A-3": "A-2", "A-4": "A-3"} {
		calls := rec.callsFor(ep.ID, id)
		if len(calls) != 1 {
			t.Errorf("%s: %d calls, want 1", id, len(calls))
			continue
		}
		if calls[0].previous != want {
			t.Errorf("%s: previous event id %q, want %q", id, calls[0].previous, want)
		}
	}
}
