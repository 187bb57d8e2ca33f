package rollup_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/race"
	"github.com/quaycast/quaycast/rollup"
)

// A minute's counts are published per endpoint with traffic and read back, by any reader, as
// the hour's totals and per-minute series; an endpoint idle for a minute publishes nothing.
func TestRecordFlushRead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	if err := rollup.Setup(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	rec := rollup.NewRecorder(js, "gw-a", zerolog.New(zerolog.NewTestWriter(t)))
	at := time.Now().UTC()
	for i := range 98 {
		rec.Record("ep_a", rollup.OutcomeDelivered, float64(i%10)+0.5, at) // 0.5 .. 9.5 ms
	}
	rec.Record("ep_a", rollup.OutcomeRetry, 4000, at)
	rec.Record("ep_a", rollup.OutcomePermanent, 1.5, at)
	rec.Record("ep_b", rollup.OutcomeRetry, 50, at)
	rec.Flush(ctx)
	rec.Flush(ctx) // nothing since: no records
	rec.Record("ep_b", rollup.OutcomeDelivered, 20, at)
	rec.Flush(ctx)

	recs, err := rollup.NewReader(js).Hour(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (two endpoints, then one)", len(recs))
	}
	tot := rollup.Totals(recs)
	a, b := tot["ep_a"], tot["ep_b"]
	if a == nil || b == nil {
		t.Fatalf("totals %v, want both endpoints", tot)
	}
	if a.Attempts() != 100 || a.Delivered != 98 || a.Retry != 1 || a.Permanent != 1 {
		t.Errorf("ep_a counts %+v, want 98 delivered, 1 retry, 1 permanent", a)
	}
	if got := a.SuccessRate(); got != 0.98 {
		t.Errorf("ep_a success rate %v, want 0.98", got)
	}
	if p99 := a.Quantile(0.99); p99 != 10 {
		t.Errorf("ep_a p99 %v ms, want 10 (the bucket of the 99th attempt)", p99)
	}
	if p100 := a.Quantile(1); p100 != 4000 {
		t.Errorf("ep_a slowest %v ms, want 4000", p100)
	}
	if b.Attempts() != 2 || b.Delivered != 1 || !b.LastDelivered.Equal(at) {
		t.Errorf("ep_b %+v, want 2 attempts over two records, last delivered at %v", b, at)
	}
	one, err := rollup.NewReader(js).Hour(ctx, "ep_b")
	if err != nil || len(one) != 2 {
		t.Fatalf("ep_b's records: %d (%v), want 2", len(one), err)
	}
	series := rollup.PerMinute(recs, "ep_a", time.Now().Add(time.Minute))
	if len(series) != 60 {
		t.Fatalf("%d minutes, want 60", len(series))
	}
	if last := series[59]; last.Attempts() != 100 {
		t.Errorf("the last minute counts %d attempts, want 100", last.Attempts())
	}
	if !math.IsNaN(series[0].SuccessRate()) {
		t.Errorf("an idle minute's success rate %v, want NaN", series[0].SuccessRate())
	}
}

// Counting an attempt costs no allocation once the endpoint is known.
func TestRecordAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	rec := rollup.NewRecorder(nil, "gw", zerolog.Nop())
	at := time.Now()
	rec.Record("ep_a", rollup.OutcomeDelivered, 1, at)
	if n := testing.AllocsPerRun(1000, func() { rec.Record("ep_a", rollup.OutcomeDelivered, 3.2, at) }); n != 0 {
		t.Errorf("%v allocations per Record, want 0", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	rec := rollup.NewRecorder(nil, "gw", zerolog.Nop())
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		rec.Record("ep_a", rollup.OutcomeDelivered, 3.2, at)
	}
}

// A flush asked to stop (the gateway stopping while the minute's figures go out) still publishes
// them all; figures it cannot publish are told in one line, not one per endpoint.
func TestFlushOutlivesCancel(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, js := natstest.ConnectJetStream(t, srv)
	if err := rollup.Setup(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	rec := rollup.NewRecorder(js, "gw-a", zerolog.New(&logged))
	at := time.Now().UTC()
	for _, id := range []string{"ep_a", "ep_b", "ep_c"} {
		rec.Record(id, rollup.OutcomeDelivered, 1, at)
	}
	stopped, cancel := context.WithCancel(t.Context())
	cancel()
	rec.Flush(stopped)
	recs, err := rollup.NewReader(js).Hour(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Errorf("%d records after a flush with its context cancelled, want 3", len(recs))
	}

	for _, id := range []string{"ep_a", "ep_b", "ep_c"} {
		rec.Record(id, rollup.OutcomeDelivered, 1, at)
	}
	nc.Close()
	rec.Flush(t.Context())
	if n := strings.Count(logged.String(), "\n"); n != 1 || !strings.Contains(logged.String(), `"endpoints":3`) {
		t.Errorf("log after a flush that could publish nothing:\n%s\nwant one line naming 3 endpoints", logged.String())
	}
}

// A flush of more endpoints than one window of publishes (a gateway with thousands of endpoints
// busy in the minute) publishes every endpoint's figures once.
func TestFlushManyEndpoints(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	if err := rollup.Setup(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	rec := rollup.NewRecorder(js, "gw-a", zerolog.New(zerolog.NewTestWriter(t)))
	at := time.Now().UTC()
	const endpoints = 600
	for i := range endpoints {
		rec.Record(fmt.Sprintf("ep_%03d", i), rollup.OutcomeDelivered, 1, at)
	}
	rec.Flush(t.Context())
	recs, err := rollup.NewReader(js).Hour(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	tot := rollup.Totals(recs)
	if len(recs) != endpoints || len(tot) != endpoints {
		t.Fatalf("%d records for %d endpoints, want one for each of %d", len(recs), len(tot), endpoints)
	}
	for id, m := range tot {
		if m.Delivered != 1 {
			t.Fatalf("%s: %d delivered, want 1", id, m.Delivered)
		}
	}
}
