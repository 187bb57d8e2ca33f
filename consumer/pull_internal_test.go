package consumer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/testwait"
)

// A request asks for one awake endpoint's share of the budget, in events of the size seen so
// far: the most a request may ask at 10 endpoints, a bounded share at 1,000, never below the
// floor.
func TestPullShareOfTheBudget(t *testing.T) {
	t.Parallel()
	var p pulls
	for _, tc := range []struct {
		awake, size int64
		want        int
	}{
		{awake: 0, size: 1 << 10, want: 256},     // none counted yet: as if alone, capped
		{awake: 10, size: 1200, want: 256},       // 1,398 each: capped
		{awake: 1000, size: 1 << 10, want: 16},   // 16 MiB over 1,000
		{awake: 500, size: 1 << 10, want: 32},    // half as many, twice the share (32.8)
		{awake: 128, size: 2 << 10, want: 64},    // 16 MiB / 128 / 2 KiB
		{awake: 1000, size: 16 << 10, want: 8},   // the floor
		{awake: 10_000, size: 700, want: 8},      // endpoints-10k's wake: the floor, not 4
		{awake: 1 << 40, size: 1 << 40, want: 8}, // no overflow
		{awake: 1000, size: 0, want: 256},        // no size: one byte, capped
	} {
		p.awake.Store(tc.awake)
		if got := p.share(tc.size, 256); got != tc.want {
			t.Errorf("%d awake, events of %d bytes: a request asks %d, want %d", tc.awake, tc.size, got, tc.want)
		}
	}
	if got := p.share(1<<10, 4); got != 4 { // --max-ack-pending below the floor wins
		t.Errorf("with at most 4 a request asks %d", got)
	}
}

// A worker's pull requests ask for its share: with 500 endpoints awake, 32 events each, and
// every event still comes.
func TestPullRequestsAskForTheirShare(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	m, w := bareWorker(t, b, &idDeliverer{})
	m.pulls.awake.Store(500) // with the budget and 1 KiB assumed: 32 events a request
	var mu sync.Mutex
	var asked []int
	spy, err := b.nc.Subscribe("$JS.API.CONSUMER.MSG.NEXT.>", func(msg *nats.Msg) {
		var req struct{ Batch int }
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			t.Error(err)
		}
		mu.Lock()
		asked = append(asked, req.Batch)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spy.Unsubscribe() })
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1<<10) // events of about 1 KiB, as assumed: the share stays near 32
	for i := range 100 {
		msg := nats.NewMsg("evt.tos.cargo_loaded")
		msg.Data = fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad)
		if _, err := b.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	var handled atomic.Int64
	stop, err := w.startPulling(t.Context(), "S", b.cons.CachedInfo().Name, func(msg jetstream.Msg) {
		_ = msg.Ack()
		handled.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	testwait.For(t, 20*time.Second, "every event handled", func() bool { return handled.Load() == 100 })
	mu.Lock()
	defer mu.Unlock()
	if len(asked) < 4 || asked[0] != 32 || slices.ContainsFunc(asked, func(n int) bool { return n < minBatch || n > 32 }) {
		t.Errorf("requests asked for %v events, want 32 first, then from %d to 32, and four requests at least for 100 events", asked, minBatch)
	}
}
