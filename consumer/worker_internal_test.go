package consumer

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// A message that arrives while the worker stops starts no lane: the lanes' WaitGroup is never
// added to after shutdown began waiting on it (and the event stays unacknowledged for the next
// run).
func TestRouteStartsNoLaneOnceStopping(t *testing.T) {
	t.Parallel()
	msg := newBareConsumer(t).next(t, "e1", "C1")

	w := &worker{progress: newProgress("ep_test", nil), checked: newChecked(), lanes: newLanes(64, nil), log: zerolog.Nop()}
	w.lanes.stop()
	w.ep.Store(&Endpoint{ID: "ep_test"})
	w.route(t.Context(), msg, 1, time.Now())
	done := make(chan struct{})
	go func() { w.lanes.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a lane was started after the worker began stopping")
	}
	if w.lanes.busy() {
		t.Error("an event was taken on after stopping")
	}
}

// spiedMsg is a message from the server whose InProgress calls are counted on their way to it.
type spiedMsg struct {
	jetstream.Msg
	calls atomic.Int32
	err   atomic.Value // the last InProgress error, if any
}

func (m *spiedMsg) InProgress() error {
	m.calls.Add(1)
	err := m.Msg.InProgress()
	if err != nil {
		m.err.Store(err)
	}
	return err
}

// keepAlive tells the server that every event a lane holds is still being worked on, through its
// newest handle (a redelivery replaces it), and goes on past a handle that fails.
func TestKeepAliveReachesEveryHeldEvent(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	_, w := bareWorker(t, b, &idDeliverer{})
	acked := &spiedMsg{Msg: b.next(t, "e0", "A")}
	if err := acked.Msg.DoubleAck(t.Context()); err != nil {
		t.Fatal(err)
	}
	live := &spiedMsg{Msg: b.next(t, "e1", "B")}
	stale := &spiedMsg{Msg: live.Msg}
	for _, it := range []*item{
		{seq: streamSeq(t, acked), msg: acked, env: &subjects.Envelope{Entity: "A"}},
		{seq: streamSeq(t, live), msg: stale, env: &subjects.Envelope{Entity: "B"}},
	} {
		sh := w.lanes.shard(it.env.Entity)
		sh.mu.Lock()
		sh.hold(it) // as route does, without starting its lane
		sh.mu.Unlock()
		w.routedTo(t.Context(), it.seq)
	}
	meta, err := live.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	w.received = meta.Sequence.Consumer - 1 // the delivery that follows the run's last
	w.onMessage(t.Context(), live)          // a redelivery of a held event: its handle replaces the stale one

	w.keepAlive()
	if acked.calls.Load() != 1 || acked.err.Load() == nil {
		t.Errorf("the acked event: %d InProgress calls, error %v; want 1, failed", acked.calls.Load(), acked.err.Load())
	}
	if live.calls.Load() != 1 || live.err.Load() != nil {
		t.Errorf("the held event: %d InProgress calls, error %v; want 1, none", live.calls.Load(), live.err.Load())
	}
	if stale.calls.Load() != 0 {
		t.Error("keepAlive used a replaced handle")
	}
}

// Acks that cannot be sent are logged a line a minute per endpoint, however many fail.
func TestAckFailuresLoggedOnceAMinute(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	var logged bytes.Buffer
	m := &Manager{js: b.js, o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.New(&logged)}
	w := newWorker(&Endpoint{ID: "ep_test"}, m, newProgress("ep_test", nil))
	msg := b.next(t, "e1", "A")
	if err := msg.DoubleAck(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		w.ack(msg, 1) // acked already: fails
	}
	if n := strings.Count(logged.String(), "ack not sent"); n != 1 {
		t.Errorf("5 failed acks logged %d times, want once:\n%s", n, logged.String())
	}
}

// startPulling hands every event to handle once, in delivery order, over several pull requests
// (batches of MaxAckPending).
func TestPullingHandsEveryEventInOrder(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	_, w := bareWorker(t, b, &idDeliverer{})
	w.o.MaxAckPending = 100 // 250 events take three requests at least
	for i := range 250 {
		m := nats.NewMsg("evt.tos.cargo_loaded")
		m.Data = fmt.Appendf(nil, `{"n":%d}`, i)
		if _, err := b.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var seqs []uint64
	stop, err := w.startPulling(t.Context(), "S", b.cons.CachedInfo().Name, func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		seqs = append(seqs, meta.Sequence.Stream)
		mu.Unlock()
		_ = msg.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) >= 250
	})
	stop()
	mu.Lock()
	want := make([]uint64, 250)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("handled stream sequences %v, want 1 to 250 once each, in order", seqs)
	}
	mu.Unlock()
}

// ackedMsg is a bench message that counts its acks.
type ackedMsg struct {
	benchMsg
	acks atomic.Int32
}

func (m *ackedMsg) Ack() error { m.acks.Add(1); return nil }

// A copy of a parked event (JetStream sends it again after the original left the lane for the
// park) is acked, not queued: route looks at the parks without the worker's lock only while none
// is set up, so the count it reads must follow every park.
func TestRouteAcksACopyOfAParkedEvent(t *testing.T) {
	t.Parallel()
	w := &worker{progress: newProgress("ep_test", nil), checked: newChecked(), lanes: newLanes(64, nil), stuck: make(map[string]*stuck), log: zerolog.Nop()}
	w.ep.Store(&Endpoint{ID: "ep_test"})
	env := subjects.Envelope{ID: "ev-7", Type: "cargo_loaded", Source: "tos", Entity: "MSCU0000001"}
	stored := time.Now()
	w.checked.put(7, stored.UnixNano(), verdict{env: env})

	w.mu.Lock()
	s := w.stuckLocked(env.Entity) // as park does for the first event it parks
	s.parked, s.first, s.last = true, 5, 9
	w.mu.Unlock()

	copyOf := &ackedMsg{benchMsg: benchMsg{subject: "evt.tos.cargo_loaded", hdr: nats.Header{}}}
	w.route(t.Context(), copyOf, 7, stored)
	if n := copyOf.acks.Load(); n != 1 {
		t.Errorf("the copy was acked %d times, want 1", n)
	}
	if _, held := w.lanes.lookup(env.Entity, 7); held {
		t.Error("the copy of a parked event was queued: it would be delivered twice")
	}
}

// The marks a worker's lanes set for the events route passed them leave the progress's top
// alone; the worker raises it when it ends. The next worker's route starts from the ack floor: a
// copy of an event the last one delivered (its ack lost) is acked, not sent again.
func TestNextWorkerAcksACopyOfWhatTheLastDelivered(t *testing.T) {
	t.Parallel()
	m := &Manager{o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.Nop()}
	ep := &Endpoint{ID: "ep_test"}
	env := subjects.Envelope{ID: "ev-7", Type: "cargo_loaded", Source: "tos", Entity: "MSCU0000001"}
	stored := time.Now()
	m.checked.put(7, stored.UnixNano(), verdict{env: env})
	received := newCountDeliverer(1)
	m.deliver = received
	progress := newProgress(ep.ID, nil)

	last := newWorker(ep, m, progress)
	last.routed.Store(6) // its reset restarted at 7
	original := &ackedMsg{benchMsg: benchMsg{subject: "evt.tos.cargo_loaded", hdr: nats.Header{}}}
	last.route(t.Context(), original, 7, stored)
	testwait.For(t, 10*time.Second, "the original acked", func() bool { return original.acks.Load() == 1 })
	stopParked(last)
	last.ended()

	next := newWorker(ep, m, progress)
	next.routed.Store(6) // the ack of 7 did not reach the server: the reset restarts at 7 again
	copyOf := &ackedMsg{benchMsg: benchMsg{subject: "evt.tos.cargo_loaded", hdr: nats.Header{}}}
	next.route(t.Context(), copyOf, 7, stored)
	stopParked(next) // waits for a lane that would deliver the copy
	if n := received.n.Load(); n != 1 {
		t.Errorf("the receiver got the event %d times, want 1", n)
	}
	if n := copyOf.acks.Load(); n != 1 {
		t.Errorf("the copy was acked %d times, want 1", n)
	}
}

// A lane waiting out the breaker's pause tries again as soon as the endpoint recovers (its probe
// went through), not when its wait would have ended; a stop ends the wait too.
func TestPauseWaitEndsWhenTheEndpointRecovers(t *testing.T) {
	t.Parallel()
	m := &Manager{o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.Nop()}
	w := newWorker(&Endpoint{ID: "ep_test"}, m, newProgress("ep_test", nil))
	ended := make(chan bool, 1)
	go func() { ended <- w.pauseWait(time.Hour) }()
	deadline := time.After(10 * time.Second)
	for recovered := false; !recovered; {
		w.paused.Store(true) // as pause set it; the pause's end is in the past: resume asks the server nothing
		w.resume(t.Context())
		select {
		case ok := <-ended:
			if !ok {
				t.Fatal("the wait ended as if the worker stopped")
			}
			recovered = true
		case <-time.After(10 * time.Millisecond): // the wait may not have begun: the next recovery ends it
		case <-deadline:
			t.Fatal("the pause's wait went on after the endpoint recovered")
		}
	}
	go func() { ended <- w.pauseWait(time.Hour) }()
	close(w.stop)
	select {
	case ok := <-ended:
		if ok {
			t.Error("a wait ended by the stop reports the pause over")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop did not end the pause's wait")
	}
}
