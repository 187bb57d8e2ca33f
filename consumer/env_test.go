package consumer_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/subjects"
)

// streamOptions are the events stream limits every test uses.
var streamOptions = consumer.StreamOptions{
	MaxAge:       time.Hour,
	Duplicates:   time.Minute,
	MaxConsumers: 100,
}

// env is one connection to an embedded JetStream server with quaycast's streams and bucket set
// up, as one gateway process would have it.
type env struct {
	srv    *server.Server
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	reg    *consumer.Registry
}

// newEnv starts an embedded server for the test and sets quaycast up on it.
func newEnv(t *testing.T) *env {
	t.Helper()
	return connectEnv(t, natstest.Start(t))
}

// connectEnv opens a new connection to srv, as a restarted gateway would, and runs Setup on it.
func connectEnv(t *testing.T, srv *server.Server) *env {
	t.Helper()
	return envOn(t, srv, natstest.Connect(t, srv), streamOptions)
}

// connectEnvWith is connectEnv with other stream limits.
func connectEnvWith(t *testing.T, srv *server.Server, o consumer.StreamOptions) *env {
	t.Helper()
	return envOn(t, srv, natstest.Connect(t, srv), o)
}

// envOn sets quaycast up over a connection of the test's own making.
func envOn(t *testing.T, srv *server.Server, nc *nats.Conn, o consumer.StreamOptions) *env {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	stream, kv, err := consumer.Setup(t.Context(), js, o)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return &env{srv: srv, js: js, stream: stream, kv: kv, reg: newRegistry(t, kv, stream, consumer.RegistryOptions{})}
}

// newRegistry opens a registry over the bucket.
func newRegistry(t *testing.T, kv jetstream.KeyValue, stream jetstream.Stream, o consumer.RegistryOptions) *consumer.Registry {
	t.Helper()
	reg, err := consumer.NewRegistry(kv, stream, o)
	if err != nil {
		t.Fatalf("new registry: %v", err)
	}
	return reg
}

// event is what a test publishes: an envelope of source "tos".
type event struct {
	id, typ, entity string
}

// envelope is the JSON body of ev, with the fields in the documented order (Envelope's).
func envelope(ev event) []byte {
	b, err := json.Marshal(subjects.Envelope{
		ID: ev.id, Type: ev.typ, Source: "tos", Entity: ev.entity,
		OccurredAt: time.Date(2026, 3, 1, 14, 5, 9, 0, time.UTC), Data: json.RawMessage(`{"gate":"G3"}`),
	})
	if err != nil {
		panic(err) // a fixed struct always marshals
	}
	return b
}

// publishEvent publishes ev as a TOS would: to evt.tos.<type>, with Nats-Msg-Id and
// Quaycast-Entity set. It returns the stream sequence.
func (e *env) publishEvent(t *testing.T, ev event) uint64 {
	t.Helper()
	return e.publishRaw(t, "evt.tos."+ev.typ, envelope(ev), map[string]string{
		subjects.HeaderMsgID:  ev.id,
		subjects.HeaderEntity: ev.entity,
	})
}

// publishRaw publishes any body with the given headers and returns the stream sequence.
func (e *env) publishRaw(t *testing.T, subject string, body []byte, headers map[string]string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = body
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("publish %s: dropped as a duplicate", subject)
	}
	return ack.Sequence
}

// publishAcross publishes n cargo_loaded events, evt-0 to evt-<n-1>, round robin over entities
// MSCU0 to MSCU<entities-1>, and returns their ids in publish order.
func (e *env) publishAcross(t *testing.T, n, entities int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = "evt-" + strconv.Itoa(i)
		e.publishEvent(t, event{id: ids[i], typ: "cargo_loaded", entity: "MSCU" + strconv.Itoa(i%entities)})
	}
	return ids
}

// newMarks opens the durable delivered marks, flushed every 20 ms.
func (e *env) newMarks(t *testing.T) *consumer.Marks {
	t.Helper()
	marks, err := consumer.NewMarks(t.Context(), e.js, time.Hour, 20*time.Millisecond, 1, zerolog.Nop())
	if err != nil {
		t.Fatalf("marks: %v", err)
	}
	return marks
}

// gate is a channel that open closes, or the end of the test at the latest, so that deliveries
// waiting on it never outlive the test.
func gate(t *testing.T) (released <-chan struct{}, open func()) {
	ch := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

// createEndpoint registers an enabled endpoint on a loopback URL that is never dialled: the
// tests deliver through their own Deliverer.
func (e *env) createEndpoint(t *testing.T, types ...string) *consumer.Endpoint {
	t.Helper()
	ep, err := e.reg.Create(t.Context(), consumer.Endpoint{
		URL:        "http://127.0.0.1:9/hook",
		EventTypes: types,
		Enabled:    true,
		Secret:     consumer.NewSecret("whsec_test"),
	})
	if err != nil {
		t.Fatalf("create endpoint: %v", err)
	}
	return ep
}

// deadLetters lists every dead letter of an endpoint, oldest first.
func (e *env) deadLetters(t *testing.T, endpointID string) []consumer.DeadLetter {
	t.Helper()
	dls, err := consumer.NewDeadLetters(t.Context(), e.js, e.stream)
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	list, _, err := dls.List(t.Context(), endpointID, 0, 1000)
	if err != nil {
		t.Fatalf("list dead letters: %v", err)
	}
	return list
}

// consumerInfo reads the endpoint's durable consumer.
func (e *env) consumerInfo(t *testing.T, id string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := e.stream.Consumer(ctx, id)
	if err != nil {
		t.Fatalf("consumer %s: %v", id, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", id, err)
	}
	return info
}

// consumerNames lists the events stream's consumers, but the managers' watchers.
func (e *env) consumerNames(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	l := e.stream.ConsumerNames(ctx)
	var names []string
	for n := range l.Name() {
		if !strings.HasPrefix(n, consumer.WatcherPrefix) {
			names = append(names, n)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatalf("list consumers: %v", err)
	}
	return names
}

// hasConsumer reports whether the events stream has a consumer named id.
func (e *env) hasConsumer(t *testing.T, id string) bool {
	t.Helper()
	return slices.Contains(e.consumerNames(t), id)
}

// drained reports whether the endpoint's consumer has nothing left to deliver or to ack.
func (e *env) drained(t *testing.T, id string) bool {
	t.Helper()
	info := e.consumerInfo(t, id)
	return info.NumPending == 0 && info.NumAckPending == 0
}
