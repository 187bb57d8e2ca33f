package main

import (
	"context"
	"testing"

	"github.com/quaycast/quaycast/bench"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/subjects"
)

// A redeliver from a stream sequence while live traffic runs: every redelivered event arrives,
// in order among the redelivered events of its entity, and no other endpoint gets one (the
// checker counts it unexpected); the live events stay complete and in order.
func TestRedeliverWithLiveTraffic(t *testing.T) {
	t.Parallel()
	again := bench.NewChecker()
	r := &rig{checker: bench.NewChecker(), again: again, events: 2000, entities: faultEntities}
	r.add(t, "all", []string{"*"}, nil)
	r.add(t, "loads-and-holds", []string{"cargo_loaded", "group:hold"}, nil)
	half := r.events / 2
	n := 0
	r.published = func(id, entity, typ string) { // the first half is what is redelivered
		if n++; n > half {
			return
		}
		again.Published(id, entity)
		if subjects.Matches(r.endpoints[1].selectors, typ) {
			again.Expect(r.endpoints[1].name, id)
		}
	}
	p := serve(t, append([]string{"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0"}, faultArgs...)...)
	r.register(t, p.api)
	api := gateway.NewClient(p.api)
	var done struct {
		Redelivered int    `json:"redelivered"`
		NextSeq     uint64 `json:"next_seq"`
	}
	r.publish(t, p.nats, func(n int) {
		if n != half {
			return
		}
		// Half published: the stream holds exactly the first half, which one endpoint asks for
		// again; the rest is published while its copies are delivered.
		if err := api.Do(context.Background(), "POST", "/v1/endpoints/"+r.endpoints[1].id+"/redeliver", map[string]any{"since_seq": 1}, &done); err != nil {
			t.Fatalf("redeliver: %v", err)
		}
	}, p.as(t, natsauth.PublisherFile))
	assertPromise(t, r.wait(t, p.nats, p.as(t, natsauth.InternalFile)), 0)
	if want := again.Report().Endpoints[r.endpoints[1].name].Expected; done.Redelivered != want || done.NextSeq != 0 {
		t.Errorf("redeliver answered %+v, want %d redelivered, to the end", done, want)
	}
	rep := again.Report() // r.wait waited for the consumers to drain, copies included
	t.Logf("redelivered: %v", rep)
	if !rep.OK() || rep.Duplicates != 0 {
		t.Errorf("redelivered events: %v, want every one once, in order per entity", rep)
	}
}
