package consumer

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// pausedWithWaitingPull makes a consumer with one event, paused for an hour, and a pull request
// for it waiting at the server (an hour's expiry); what the request delivers comes on got.
func pausedWithWaitingPull(t *testing.T) (st jetstream.Stream, consumer string, got <-chan *nats.Msg) {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	ctx := t.Context()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ep", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "events.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PauseConsumer(ctx, "ep", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *nats.Msg, 4)
	inbox := nc.NewInbox()
	if _, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		if len(m.Data) > 0 { // an event, not a status
			msgs <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.EVENTS.ep", inbox, []byte(`{"batch":1,"expires":3600000000000}`)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the pull request waiting at the server", func() bool {
		info, err := c.Info(ctx)
		return err == nil && info.NumWaiting == 1
	})
	return st, "ep", msgs
}

// endPause ends a pause so that the pull request waiting on the consumer is served at once.
func TestEndPauseServesTheWaitingPull(t *testing.T) {
	t.Parallel()
	st, consumer, got := pausedWithWaitingPull(t)
	if err := endPause(t.Context(), st, consumer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second): // the request's expiry is an hour
		t.Fatal("the waiting pull request was not served after the pause ended")
	}
}

// The upstream behaviour endPause works around (nats-server 2.15.2): after ResumeConsumer the
// server leaves a waiting pull request unserved, with the consumer's event pending, until
// something else wakes the consumer. If this fails, the server serves it now, and endPause can
// be ResumeConsumer again.
func TestUpstreamResumeLeavesPullWaiting(t *testing.T) {
	t.Parallel()
	st, consumer, got := pausedWithWaitingPull(t)
	if _, err := st.ResumeConsumer(t.Context(), consumer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		t.Fatal("the server now serves a waiting pull request when its consumer is resumed: endPause can call ResumeConsumer")
	case <-time.After(2 * time.Second):
	}
}
