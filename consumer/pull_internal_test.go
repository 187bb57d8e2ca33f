package consumer

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/testwait"
)

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
