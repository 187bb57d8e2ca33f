package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// recorder is a consumer.Deliverer for tests. It answers from answer (Delivered when nil) and
// records every call: when it started, what it was given and what it answered. It also checks
// the interface's promise that one endpoint never has two deliveries of one entity at once.
type recorder struct {
	answer func(ctx context.Context, d *consumer.Delivery) consumer.Outcome

	mu       sync.Mutex
	started  []call // in the order Deliver was entered
	calls    []call // in the order Deliver returned, with the outcome
	inFlight map[string]int
	peak     int // the most deliveries in flight at once, over all entities
	overlaps []string
}

var _ consumer.Deliverer = (*recorder)(nil)

// call is one Deliver call.
type call struct {
	endpoint   string
	revision   uint64
	types      []string
	id         string
	entity     string
	seq        uint64
	subject    string
	body       []byte
	pubTime    time.Time
	attempt    int
	previous   string // PreviousEventID
	redelivery bool
	result     consumer.Result
	start      time.Time
	end        time.Time
	ctxErr     error // the context's error when Deliver returned
}

func newRecorder(answer func(ctx context.Context, d *consumer.Delivery) consumer.Outcome) *recorder {
	return &recorder{answer: answer, inFlight: make(map[string]int)}
}

// failingWhen is a recorder that answers o to the deliveries when picks, and delivers the rest.
func failingWhen(o consumer.Outcome, when func(d *consumer.Delivery) bool) *recorder {
	return newRecorder(func(_ context.Context, d *consumer.Delivery) consumer.Outcome {
		if when(d) {
			return o
		}
		return delivered
	})
}

func (r *recorder) Deliver(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
	c := call{
		endpoint: d.Endpoint.ID, revision: d.Endpoint.Revision, types: slices.Clone(d.Endpoint.EventTypes),
		id: d.Event.ID, entity: d.Event.Entity, seq: d.Seq, subject: d.Subject, body: slices.Clone(d.Body),
		pubTime: d.Published, attempt: d.Attempt, previous: d.PreviousEventID, redelivery: d.Redelivery, start: time.Now(),
	}
	key := d.Endpoint.ID + "/" + d.Event.Entity
	r.mu.Lock()
	r.started = append(r.started, c)
	r.inFlight[key]++
	r.peak = max(r.peak, r.runningLocked())
	if n := r.inFlight[key]; n > 1 {
		r.overlaps = append(r.overlaps, fmt.Sprintf("%s: %d deliveries of entity %q in flight at once (entering %s)", d.Endpoint.ID, n, d.Event.Entity, d.Event.ID))
	}
	r.mu.Unlock()

	out := consumer.Outcome{Result: consumer.Delivered, Status: 200}
	if r.answer != nil {
		out = r.answer(ctx, d)
	}

	c.result, c.end, c.ctxErr = out.Result, time.Now(), ctx.Err()
	r.mu.Lock()
	r.inFlight[key]--
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return out
}

// snapshot returns a copy of the finished calls.
func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// startedCalls returns a copy of the calls entered so far, finished or not.
func (r *recorder) startedCalls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.started)
}

// running is the number of deliveries in flight now.
func (r *recorder) running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runningLocked()
}

// peakRunning is the most deliveries that were in flight at once.
func (r *recorder) peakRunning() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}

func (r *recorder) runningLocked() int {
	n := 0
	for _, v := range r.inFlight {
		n += v
	}
	return n
}

// delivered returns the ids the endpoint answered Delivered for, in that order.
func (r *recorder) delivered(endpoint string) []string {
	var ids []string
	for _, c := range r.snapshot() {
		if c.endpoint == endpoint && c.result == consumer.Delivered {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// hasDelivered reports whether every id was delivered to the endpoint.
func (r *recorder) hasDelivered(endpoint string, ids ...string) bool {
	got := r.delivered(endpoint)
	for _, id := range ids {
		if !slices.Contains(got, id) {
			return false
		}
	}
	return true
}

// callsFor returns the finished calls for one event id, in order.
func (r *recorder) callsFor(endpoint, id string) []call {
	var out []call
	for _, c := range r.snapshot() {
		if c.endpoint == endpoint && c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// checkNoOverlap fails the test if two deliveries of one entity were ever in flight together.
func (r *recorder) checkNoOverlap(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.overlaps {
		t.Error(o)
	}
}

// manager is a consumer.Manager running for a test.
type manager struct {
	*consumer.Manager
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	took   time.Duration // from cancel to Run's return, set by stop
}

// startManager runs a manager on e with d until the test ends or stop is called, and waits
// until it is ready.
func startManager(t *testing.T, e *env, d consumer.Deliverer, o consumer.Options) *manager {
	t.Helper()
	return newManager(t, e, d, o).start(t)
}

// newManager makes a manager on e with d that start runs, for a test that sets it up first
// (OnDeadLetter).
func newManager(t *testing.T, e *env, d consumer.Deliverer, o consumer.Options) *manager {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	return &manager{Manager: consumer.NewManager(e.js, e.stream, e.reg, d, log, o), done: make(chan error, 1)}
}

// start runs m until the test ends or stop is called, and waits until it is ready.
func (m *manager) start(t *testing.T) *manager {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	m.cancel = cancel
	go func() { m.done <- m.Run(ctx) }()
	t.Cleanup(func() { m.stop(t, 30*time.Second) })
	testwait.For(t, 10*time.Second, "manager ready", m.Ready)
	return m
}

// stop cancels Run and waits for it to return, at most within timeout.
func (m *manager) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	m.once.Do(func() {
		start := time.Now()
		m.cancel()
		select {
		case err := <-m.done:
			m.took = time.Since(start)
			if err != nil {
				t.Errorf("manager Run: %v", err)
			}
		case <-time.After(timeout):
			t.Errorf("manager Run did not return within %v of cancel", timeout)
		}
	})
}
