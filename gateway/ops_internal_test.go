package gateway

import (
	"context"
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

func counted(t *testing.T, c *prometheus.CounterVec, result string) float64 {
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

// An operator event whose store is under way (retrying: the stream does not take its subject yet)
// when the gateway stops is still stored within the drain window, once the stream takes it.
func TestOpsStoreUnderWayOutlivesStop(t *testing.T) {
	t.Parallel()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	cfg := jetstream.StreamConfig{Name: consumer.EventsStream, Subjects: []string{"evt.>"}}
	stream, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	result := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops_test_total"}, []string{"result"})
	var logs testlog.Buffer
	o := newOpsEvents(nc, js, zerolog.New(&logs), result)
	ctx, cancel := context.WithCancel(t.Context())
	done := runOps(ctx, o)
	o.publish(OpsEvent{Kind: OpsEndpointCreated, EndpointID: "ep_1"}, true)
	time.Sleep(50 * time.Millisecond) // its first try fails (no stream): it waits to try again
	cancel()
	cfg.Subjects = append(cfg.Subjects, subjects.OpsStreamSubjects) // one quick update: within the retries
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
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
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t)) // no stream: nothing can be stored
	result := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops_test_total"}, []string{"result"})
	var logs testlog.Buffer
	o := newOpsEvents(nc, js, zerolog.New(&logs), result)
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
