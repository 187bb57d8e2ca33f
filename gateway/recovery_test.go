package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// An endpoint with a backlog whose receiver fails for a while, then comes back, is probed at
// growing intervals that start at 0.5 s, not at the fixed --breaker-cooldown (30 s): the receiver
// fails the first five probes and takes the sixth, which closes the breaker; then the backlog
// is delivered in order, and no POST was made while the breaker was open but the probes.
//
// One entity, so that every request is the one before it retried and the receiver sees them one
// at a time: the first BreakerFailures open the breaker, each one after it is a probe. Nothing is
// timed from above: the gaps between probes are held to the schedule's shortest waits (load only
// lengthens them), and with a fixed 30 s cooldown the six probes would not come within the
// test's minute.
func TestBackloggedEndpointProbedSoonAfterAnOutage(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t) // retries after 50 ms, 100 ms: the lane is never what waits
	if cfg.BreakerCooldown != 30*time.Second {
		t.Fatalf("--breaker-cooldown defaults to %s: this test is about the 30 s one", cfg.BreakerCooldown)
	}
	// The documented waits before the first probes (README: 0.5 s, growing ×1.25), each shortened
	// by jitter to no less than 4/5.
	schedule := []time.Duration{500 * time.Millisecond, 625 * time.Millisecond, 781 * time.Millisecond,
		976 * time.Millisecond, 1220 * time.Millisecond, 1525 * time.Millisecond}
	const failedProbes = 5
	failing := int(cfg.BreakerFailures) + failedProbes
	var n atomic.Int64 // requests so far: one at a time, as there is one entity
	recv := newPolicyReceiver(t, func(string, int, http.Header) int {
		if n.Add(1) <= int64(failing) {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})

	g := startGateway(t, cfg)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	watch := watchBreaker(t, g, ep.ID)

	const events = 20
	want := map[string][]string{}
	publishNATS(t, g, spread(want, "rec-%02d", 0, events, 1)...)

	testwait.For(t, time.Minute, "the backlog delivered after the receiver came back", func() bool {
		return len(recv.requests()) >= failing+events
	})
	testwait.For(t, 20*time.Second, "breaker closed published", func() bool { return watch.count("closed") >= 1 })
	waitDrained(t, g, ep.ID)
	checkOrder(t, recv.byEntity(t), want)

	reqs := recv.requests()
	if len(reqs) != failing+events {
		t.Errorf("%d requests, want %d: %d failures that open the breaker, %d failed probes, %d deliveries",
			len(reqs), failing+events, cfg.BreakerFailures, failedProbes, events)
	}
	// The last probe, the first request after the receiver came back, was a delivery.
	if r := reqs[failing]; r.Status != http.StatusOK || r.ID != want["MSCU0"][0] {
		t.Errorf("first request after the receiver came back: %s answered %d, want the head %s delivered", r.ID, r.Status, want["MSCU0"][0])
	}
	trip := int(cfg.BreakerFailures) - 1 // the request whose failure opened the breaker
	for k := range failedProbes + 1 {
		gap := reqs[trip+k+1].At.Sub(reqs[trip+k].At)
		t.Logf("probe %d came %s after the request before it (schedule: %s)", k+1, gap.Round(time.Millisecond), schedule[k])
		if shortest := schedule[k] * 4 / 5; gap < shortest {
			t.Errorf("probe %d came %s after the request before it: sooner than the schedule's %s", k+1, gap, shortest)
		}
	}

	path := []string{"closed", "open"}
	for range failedProbes {
		path = append(path, "half-open", "open")
	}
	path = append(path, "half-open", "closed")
	var got []string
	evs, _ := watch.transitions()
	for i, ev := range evs {
		if i == 0 {
			got = append(got, ev.From)
		}
		got = append(got, ev.To)
	}
	if !slices.Equal(got, path) {
		t.Errorf("breaker transitions %v, want %v", got, path)
	}
	for i, r := range recv.of("", "MSCU0")[:failing+1] {
		if r.ID != want["MSCU0"][0] || r.Attempt != fmt.Sprint(i+1) {
			t.Errorf("request %d: %s attempt %s, want the head %s attempt %d", i+1, r.ID, r.Attempt, want["MSCU0"][0], i+1)
		}
	}
}
