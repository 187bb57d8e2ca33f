package consumer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// idDeliverer records the ids of the events delivered to it, and delivers them all.
type idDeliverer struct {
	mu  sync.Mutex
	ids []string
}

func (d *idDeliverer) Deliver(_ context.Context, dl *Delivery) Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = append(d.ids, dl.Event.ID)
	return Outcome{Result: Delivered, Status: 204}
}

func (d *idDeliverer) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ids)
}

// bareConsumer is a stream of events and a pull consumer on it, on an embedded server, with no
// manager: the test hands what it fetches to a worker's onMessage itself.
type bareConsumer struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func newBareConsumer(t *testing.T) *bareConsumer {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"evt.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return &bareConsumer{nc: nc, js: js, cons: cons}
}

// publish publishes an event of entity and returns its stream sequence.
func (b *bareConsumer) publish(t *testing.T, id, entity string) uint64 {
	t.Helper()
	m := nats.NewMsg("evt.tos.cargo_loaded")
	m.Data = fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":"tos","entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id, entity)
	m.Header.Set(subjects.HeaderEntity, entity)
	ack, err := b.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return ack.Sequence
}

// next publishes an event of entity and fetches it (the oldest unfetched) through the consumer.
func (b *bareConsumer) next(t *testing.T, id, entity string) jetstream.Msg {
	t.Helper()
	b.publish(t, id, entity)
	batch, err := b.cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatalf("%s not fetched: %v", id, batch.Error())
	}
	return msg
}

// bareWorker is a worker of a manager that runs nothing, watching the connection as run does
// before it resets its consumer.
func bareWorker(t *testing.T, b *bareConsumer, d Deliverer) (*Manager, *worker) {
	t.Helper()
	m := &Manager{js: b.js, deliver: d, o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.New(zerolog.NewTestWriter(t))}
	w := newWorker(&Endpoint{ID: "ep_test"}, m, newProgress("ep_test", nil))
	t.Cleanup(w.watchConnection())
	return m, w
}

// stopLanes stops w's lanes as run does, and waits for them.
func stopLanes(w *worker) {
	w.lanes.stop()
	close(w.stop)
	w.lanes.wg.Wait()
}

// taken reports whether w's lanes, stopped, took the event at seq on: it is still held (its lane
// was stopped before it) or was delivered.
func taken(w *worker, d *idDeliverer, entity string, seq uint64, id string) bool {
	_, held := w.lanes.lookup(entity, seq)
	return held || slices.Contains(d.got(), id)
}

func streamSeq(t *testing.T, msg jetstream.Msg) uint64 {
	t.Helper()
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return meta.Sequence.Stream
}

// Once the manager's Reconnected has run, a worker that reset its consumer before it routes
// nothing more: what JetStream sends it may have overtaken events lost with the old connection.
// This fails if Reconnected does not move the epoch.
func TestWorkerRoutesNothingAfterReconnected(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	d := &idDeliverer{}
	m, w := bareWorker(t, b, d)

	w.onMessage(t.Context(), b.next(t, "e1", "A"))
	testwait.For(t, 10*time.Second, "e1 delivered before the reconnect", func() bool { return slices.Equal(d.got(), []string{"e1"}) })

	m.Reconnected()
	e2 := b.next(t, "e2", "B")
	w.onMessage(t.Context(), e2)
	stopLanes(w)
	if taken(w, d, "B", streamSeq(t, e2), "e2") {
		t.Errorf("e2 was routed after Reconnected (delivered %v): the epoch did not move", d.got())
	}
}

// A message that arrives on the new connection before Reconnected has run is not routed either:
// nats.go calls Reconnected on its own goroutine, after the new connection already reads
// messages. This fails if the worker relied on the manager's epoch alone.
func TestWorkerRoutesNothingOfANewConnection(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	d := &idDeliverer{}
	_, w := bareWorker(t, b, d) // no reconnect handler: Reconnected never runs

	w.onMessage(t.Context(), b.next(t, "e1", "A"))
	testwait.For(t, 10*time.Second, "e1 delivered before the reconnect", func() bool { return slices.Equal(d.got(), []string{"e1"}) })

	before := b.nc.Stats().Reconnects
	if err := b.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the connection back", func() bool { return b.nc.IsConnected() && b.nc.Stats().Reconnects > before })
	e2 := b.next(t, "e2", "B") // fetched over the new connection
	w.onMessage(t.Context(), e2)
	e3 := b.next(t, "e3", "C") // and one more: the break is remembered
	w.onMessage(t.Context(), e3)
	stopLanes(w)
	if taken(w, d, "B", streamSeq(t, e2), "e2") || taken(w, d, "C", streamSeq(t, e3), "e3") {
		t.Errorf("fetched over the new connection, e2 or e3 was routed before Reconnected (delivered %v)", d.got())
	}
}

// A worker that watches the connection from after a reconnect routes what comes, as a restarted
// worker does.
func TestWorkerRoutesAfterItsOwnReset(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	d := &idDeliverer{}
	m, _ := bareWorker(t, b, d)
	if err := b.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the connection back", func() bool { return b.nc.IsConnected() && b.nc.Stats().Reconnects > 0 })
	m.Reconnected()

	w := newWorker(&Endpoint{ID: "ep_test"}, m, newProgress("ep_test", nil)) // the restarted worker
	t.Cleanup(w.watchConnection())
	e1 := b.next(t, "e1", "A")
	w.onMessage(t.Context(), e1)
	testwait.For(t, 10*time.Second, "e1 delivered", func() bool { return slices.Equal(d.got(), []string{"e1"}) })
	stopLanes(w)
}

// After the NATS server restarts, the connection's reconnect handler (Reconnected, as the gateway
// sets it) moves the epoch and every endpoint gets a new worker, which delivers what comes next;
// nothing is delivered twice.
func TestManagerRestartsWorkersWhenNATSComesBack(t *testing.T) {
	t.Parallel()
	srv, nc, js, stream, reg := streamsAndRegistry(t)
	ep := createEndpoint(t, reg, "*")
	d := &idDeliverer{}
	m := NewManager(js, stream, reg, d, zerolog.New(zerolog.NewTestWriter(t)), Options{ShutdownTimeout: 2 * time.Second})
	nc.SetReconnectHandler(func(*nats.Conn) { m.Reconnected() })
	runManager(t, m)
	testwait.For(t, 10*time.Second, "the manager ready", m.Ready)

	publish := func(id string) {
		msg := nats.NewMsg("evt.tos.cargo_loaded")
		msg.Data = fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":"tos","entity":"A","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id)
		msg.Header.Set(subjects.HeaderMsgID, id)
		testwait.For(t, 30*time.Second, "publish "+id, func() bool { // JetStream may still be recovering
			pctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, err := js.PublishMsg(pctx, msg)
			return err == nil
		})
	}
	publish("e1")
	testwait.For(t, 10*time.Second, "e1 delivered", func() bool { return slices.Equal(d.got(), []string{"e1"}) })
	before := m.worker(ep.ID)

	natstest.Restart(t, srv)
	testwait.For(t, 30*time.Second, "Reconnected run and the worker replaced", func() bool {
		w := m.worker(ep.ID)
		return m.reconnects.Load() == 1 && w != nil && w != before
	})
	publish("e2")
	testwait.For(t, 30*time.Second, "e2 delivered after the reconnect", func() bool { return slices.Contains(d.got(), "e2") })
	if got := d.got(); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("delivered %v, want [e1 e2]: each once, in order", got)
	}
}
