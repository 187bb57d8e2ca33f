package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testlog"
	"github.com/quaycast/quaycast/subjects"
)

func counted(t testing.TB, c *prometheus.CounterVec, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// runOps runs o until ctx ends and its drain is over; the channel closes when Run returned.
func runOps(ctx context.Context, o *opsEvents) <-chan struct{} {
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	return done
}

func waitClosed(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("%s: not within %s", what, within)
	}
}

// opsRig is an opsEvents on an embedded server whose events stream takes streamSubjects (none:
// no stream), with its results counted and its log kept.
func opsRig(t testing.TB, streamSubjects ...string) (*opsEvents, jetstream.Stream, *prometheus.CounterVec, *testlog.Buffer) {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	var stream jetstream.Stream
	if len(streamSubjects) > 0 {
		var err error
		if stream, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: consumer.EventsStream, Subjects: streamSubjects}); err != nil {
			t.Fatal(err)
		}
	}
	result := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops_test_total"}, []string{"result"})
	logs := &testlog.Buffer{}
	return newOpsEvents(nc, js, zerolog.New(logs), result), stream, result, logs
}

// An operator event whose store is under way (retrying: the stream does not take its subject yet)
// when the gateway stops is still stored within the drain window, once the stream takes it.
func TestOpsStoreUnderWayOutlivesStop(t *testing.T) {
	t.Parallel()
	o, stream, result, logs := opsRig(t, "evt.>")
	ctx, cancel := context.WithCancel(t.Context())
	done := runOps(ctx, o)
	o.publish(OpsEvent{Kind: OpsEndpointCreated, EndpointID: "ep_1"}, true)
	time.Sleep(50 * time.Millisecond) // its first try fails (no stream): it waits to try again
	cancel()
	cfg := jetstream.StreamConfig{Name: consumer.EventsStream, Subjects: []string{"evt.>", subjects.OpsStreamSubjects}}
	if _, err := o.js.UpdateStream(t.Context(), cfg); err != nil { // one quick update: within the retries
		t.Fatal(err)
	}
	waitClosed(t, done, 10*time.Second, "Run returns")
	if got := counted(t, result, "stored"); got != 1 {
		t.Errorf("%v stored, want the event stored after the stop (failed %v, dropped %v):\n%s",
			got, counted(t, result, "failed"), counted(t, result, "dropped"), logs.String())
	}
	if _, err := stream.GetLastMsgForSubject(t.Context(), subjects.OpsSubject("", OpsEndpointCreated)); err != nil {
		t.Errorf("the event in the stream: %v", err)
	}
}

// What the drain window leaves unstored is dropped, counted, and said once with the count — not
// a warning per event.
func TestOpsDroppedAfterDrainSaidOnce(t *testing.T) {
	t.Parallel()
	o, _, result, logs := opsRig(t) // no stream: nothing can be stored
	o.drain = 300 * time.Millisecond
	for i := range 3 {
		o.publish(OpsEvent{Kind: OpsEndpointUpdated, EndpointID: "ep_" + string(rune('a'+i))}, true)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	waitClosed(t, runOps(ctx, o), 10*time.Second, "Run returns after its drain window")
	out := logs.String()
	if n := strings.Count(out, "operator events not stored"); n != 1 || !strings.Contains(out, `"dropped":3`) {
		t.Errorf("said %d times, want once with dropped 3:\n%s", n, out)
	}
	if strings.Contains(out, "store operator event") {
		t.Errorf("a warning per event:\n%s", out)
	}
	if got := counted(t, result, "dropped"); got != 3 {
		t.Errorf("%v counted dropped, want 3 (failed %v)", got, counted(t, result, "failed"))
	}
}

// A burst of operator events, as 3,000 endpoint creates make, is stored whole and in order: the
// store publishes them in batches and awaits the acks after.
func TestOpsBurstStoredInOrder(t *testing.T) {
	t.Parallel()
	const n = 3000 // under opsQueue: what is dropped is not what this checks
	o, stream, result, logs := opsRig(t, subjects.OpsStreamSubjects)
	ctx, cancel := context.WithCancel(t.Context())
	done := runOps(ctx, o)
	for i := range n {
		o.publish(OpsEvent{Kind: OpsEndpointCreated, EndpointID: fmt.Sprintf("ep_%05d", i)}, true)
	}
	for deadline := time.Now().Add(60 * time.Second); counted(t, result, "stored") < n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	waitClosed(t, done, 10*time.Second, "Run returns")
	if got := counted(t, result, "stored"); got != n {
		t.Fatalf("%v stored, want %d (dropped %v, failed %v):\n%s", got, n, counted(t, result, "dropped"), counted(t, result, "failed"), logs.String())
	}
	c, err := stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			var ev OpsEvent
			env, err := subjects.ParseEnvelope(msg.Data())
			if err == nil {
				err = json.Unmarshal(env.Data, &ev)
			}
			if want := fmt.Sprintf("ep_%05d", i); err != nil || ev.EndpointID != want {
				t.Fatalf("event %d in the stream: %q (%v), want %s", i, ev.EndpointID, err, want)
			}
			i, got = i+1, got+1
		}
		if got == 0 {
			t.Fatalf("the stream ends after %d events: %v", i, batch.Error())
		}
	}
}

// BenchmarkOpsStore is the store's pace over a burst of operator events: the time from the first
// publish until all are stored.
func BenchmarkOpsStore(b *testing.B) {
	o, _, result, _ := opsRig(b, subjects.OpsStreamSubjects)
	ctx, cancel := context.WithCancel(b.Context())
	done := runOps(ctx, o)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o.publish(OpsEvent{Kind: OpsEndpointCreated, EndpointID: fmt.Sprintf("ep_%d", i)}, true)
		if len(o.queue) == cap(o.queue) { // one event at a time beyond the queue: never drop here
			for len(o.queue) > cap(o.queue)/2 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	cancel()
	<-done
	b.StopTimer()
	if got := counted(b, result, "stored"); got != float64(b.N) {
		b.Fatalf("%v stored of %d (dropped %v)", got, b.N, counted(b, result, "dropped"))
	}
}
