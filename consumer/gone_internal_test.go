package consumer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/testwait"
)

// A worker whose consumer does not exist ends its run as gone, so that the manager makes it
// again. Its first request, the reset, is answered by the consumer itself: with none it only
// times out, which alone says nothing.
func TestWorkerWithoutConsumerEndsAsGone(t *testing.T) {
	t.Parallel()
	w, _ := runnableWorker(t, newBareConsumer(t), "ep_missing", &idDeliverer{})
	if err := w.run(t.Context()); !errors.Is(err, errConsumerGone) {
		t.Errorf("run = %v, want %v", err, errConsumerGone)
	}
}

// A worker's run raises its progress's top to what its route passed the lanes once they have
// ended: their marks did not (addRouted), and the next worker's route, from the ack floor, must
// not take a copy of what they delivered for new.
func TestWorkerRunRaisesTheTopAsItEnds(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	d := &idDeliverer{}
	w, stream := runnableWorker(t, b, "ep_run", d)
	if _, err := stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "ep_run", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	park, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PARK", Subjects: []string{"park.>"}})
	if err != nil {
		t.Fatal(err)
	}
	w.openPark = func(context.Context) (jetstream.Stream, error) { return park, nil }
	seq := b.publish(t, "e1", "A")

	ctx, cancel := context.WithCancel(t.Context())
	ended := make(chan error, 1)
	go func() { ended <- w.run(ctx) }()
	testwait.For(t, 10*time.Second, "e1 delivered", func() bool { return slices.Contains(d.got(), "e1") })
	cancel()
	if err := <-ended; err != nil {
		t.Fatalf("run = %v", err)
	}
	if w.progress.above(seq) {
		t.Errorf("the top is %d after the run, below e1's %d: a copy of e1 would be sent again", w.progress.top.Load(), seq)
	}
}

// runnableWorker is a worker of endpoint id on b's stream whose run can be called, delivering to
// d, with the manager's settings left as they default.
func runnableWorker(t *testing.T, b *bareConsumer, id string, d Deliverer) (*worker, jetstream.Stream) {
	t.Helper()
	stream, err := b.js.Stream(t.Context(), "S")
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{js: b.js, stream: stream, opening: make(chan struct{}, 1), deliver: d, o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.New(zerolog.NewTestWriter(t))}
	return newWorker(&Endpoint{ID: id}, m, newProgress(id, nil)), stream
}
