package consumer

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// A message that arrives while the worker stops starts no lane: the lanes' WaitGroup is never
// added to after shutdown began waiting on it (and the event stays unacknowledged for the next
// run).
func TestRouteStartsNoLaneOnceStopping(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.Start(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"evt.>"}})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("evt.tos.cargo_loaded")
	m.Data = []byte(`{"id":"e1","type":"cargo_loaded","source":"tos","entity":"C1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`)
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no message fetched")
	}

	w := &worker{progress: newProgress("ep_test", nil), checked: newChecked(), lanes: newLanes(), log: zerolog.Nop()}
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
	if len(w.lanes.held) != 0 || len(w.lanes.queues) != 0 {
		t.Errorf("held %d, queued %d after stopping: want nothing taken on", len(w.lanes.held), len(w.lanes.queues))
	}
}
