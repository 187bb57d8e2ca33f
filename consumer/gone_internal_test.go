package consumer

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"
)

// A worker whose consumer does not exist ends its run as gone, so that the manager makes it
// again. Its first request, the reset, is answered by the consumer itself: with none it only
// times out, which alone says nothing.
func TestWorkerWithoutConsumerEndsAsGone(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	stream, err := b.js.Stream(t.Context(), "S")
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{js: b.js, stream: stream, opening: make(chan struct{}, 1), deliver: &idDeliverer{}, o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.New(zerolog.NewTestWriter(t))}
	w := newWorker(&Endpoint{ID: "ep_missing"}, m, newProgress("ep_missing", nil))
	if err := w.run(t.Context()); !errors.Is(err, errConsumerGone) {
		t.Errorf("run = %v, want %v", err, errConsumerGone)
	}
}
