package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/testlog"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/seal"
)

// testConfig is a gateway config on free ports and a temp data dir, with fast retries.
func testConfig(t *testing.T) config.Config {
	cfg := gatewaytest.Config(t)
	cfg.RetrySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogLevel = "debug"
	return cfg
}

// running is a gateway started for a test.
type running struct {
	*gatewaytest.Gateway
	cfg config.Config
	api *gateway.Client
}

// startGateway runs a gateway until the test ends (or Stop is called), logging to the test.
func startGateway(t *testing.T, cfg config.Config) *running {
	t.Helper()
	return startGatewayWriting(t, cfg, zerolog.NewTestWriter(t))
}

// startGatewayWriting is startGateway with the logs, at every level, written to w.
func startGatewayWriting(t *testing.T, cfg config.Config, w io.Writer) *running {
	t.Helper()
	g := gatewaytest.Start(t, cfg, zerolog.New(w).Level(zerolog.TraceLevel).With().Timestamp().Logger())
	r := &running{Gateway: g, cfg: cfg, api: gateway.NewClient(g.APIURL())}
	r.api.HTTP.Transport = checkedTransport{t: t, next: http.DefaultTransport} // answers held to openapi.json
	return r
}

// startGatewayLogged is startGateway with every log line, at every level, also kept in a sink.
func startGatewayLogged(t *testing.T, cfg config.Config) (*running, *testlog.Buffer) {
	t.Helper()
	sink := &testlog.Buffer{}
	return startGatewayWriting(t, cfg, io.MultiWriter(zerolog.NewTestWriter(t), sink)), sink
}

// waitReady waits until the gateway's consumers are running.
func (r *running) waitReady(t *testing.T) {
	t.Helper()
	testwait.For(t, 20*time.Second, "readyz", func() bool {
		return r.api.Do(context.Background(), "GET", "/readyz", nil, nil) == nil
	})
}

type endpoint = gatewaytest.Endpoint

func (r *running) addEndpoint(t *testing.T, body map[string]any) endpoint {
	t.Helper()
	return gatewaytest.AddEndpoint(t, r.api, body)
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
	at     time.Time // when it arrived
}

// receiver is a webhook receiver on loopback that records requests in arrival order and answers
// from a script of statuses (200 once the script is used up).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	script []int
	reply  string // body of 2xx answers, if any
}

// replyWith makes the receiver answer 2xx with a JSON body (a two-way reply).
func (rc *receiver) replyWith(body string) {
	rc.mu.Lock()
	rc.reply = body
	rc.mu.Unlock()
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rc := &receiver{script: script}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		if status/100 == 2 {
			rc.got = append(rc.got, received{Header: req.Header.Clone(), Body: body, at: time.Now()})
		}
		reply := rc.reply
		rc.mu.Unlock()
		if reply != "" && status/100 == 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, reply)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// setStatus makes every following request answer status.
func (rc *receiver) setStatus(status int) {
	rc.mu.Lock()
	rc.script = slices.Repeat([]int{status}, 1<<20)
	rc.mu.Unlock()
}

func (rc *receiver) accepted() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// ids lists the webhook-id of every accepted request, in arrival order.
func (rc *receiver) ids() []string {
	var out []string
	for _, r := range rc.accepted() {
		out = append(out, r.Header.Get("webhook-id"))
	}
	return out
}

// byEntity groups the webhook-ids of accepted requests by the entity in their body, each group
// in arrival order.
func (rc *receiver) byEntity(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range rc.accepted() {
		var env struct{ Entity string }
		if err := json.Unmarshal(r.Body, &env); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		out[env.Entity] = append(out[env.Entity], r.Header.Get("webhook-id"))
	}
	return out
}

// startWithEndpoint runs a gateway with one endpoint, subscribed to types and delivering to a new
// receiver, and waits until it is ready.
func startWithEndpoint(t *testing.T, types ...string) (*running, *receiver, endpoint) {
	t.Helper()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": types})
	g.waitReady(t)
	return g, rc, ep
}

// startOnExternalNATS is startWithEndpoint (every event) on a nats-server of the test's own: ns to
// publish and look at, cfg to start another gateway on it.
func startOnExternalNATS(t *testing.T) (ns *server.Server, cfg config.Config, g *running, rc *receiver, ep endpoint) {
	t.Helper()
	ns = natstest.Start(t)
	cfg = testConfig(t)
	cfg.NATSURL = ns.ClientURL()
	rc = newReceiver(t)
	g = startGateway(t, cfg)
	ep = g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	return ns, cfg, g, rc, ep
}

// waitCount waits until the receiver accepted at least n requests.
func (rc *receiver) waitCount(t *testing.T, n int) {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("%d deliveries", n), func() bool { return len(rc.accepted()) >= n })
}

// event builds an envelope's bytes.
func event(id, typ, entity string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"source":"tos","entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{"n":%q}}`, id, typ, entity, id)
}

// spread makes the cargo_loaded events from to to (ids by idFormat), round robin over entities
// MSCU0, MSCU1, ...; it appends each id to want[entity], so want holds each entity's ids in
// publish order.
func spread(want map[string][]string, idFormat string, from, to, entities int) [][]byte {
	var evs [][]byte
	for i := from; i < to; i++ {
		id, entity := fmt.Sprintf(idFormat, i), fmt.Sprintf("MSCU%d", i%entities)
		want[entity] = append(want[entity], id)
		evs = append(evs, event(id, "cargo_loaded", entity))
	}
	return evs
}

// natsAs connects to the gateway's embedded NATS with a credential file of its data dir:
// natsauth.InternalFile (quaycast's own) or natsauth.PublisherFile (the local publisher).
func (r *running) natsAs(file string) (*nats.Conn, error) {
	if r.cfg.NATSURL != "" {
		return externalNATS(r.cfg.NATSURL).natsAs(file)
	}
	b, err := os.ReadFile(natsauth.Path(r.cfg.DataDir, file))
	if err != nil {
		return nil, err
	}
	return nats.Connect(r.NATSURL(), nats.Token(strings.TrimSpace(string(b))))
}

// secretKey is the key the gateway generated in its data dir.
func (r *running) secretKey(t *testing.T) *seal.Key {
	t.Helper()
	b, err := os.ReadFile(natsauth.Path(r.cfg.DataDir, natsauth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.Decode(string(b))
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// natsConnector gives a connection as quaycast (natsauth.InternalFile) or as a publisher
// (natsauth.PublisherFile): a running gateway, or an external NATS with no authorization.
type natsConnector interface {
	natsAs(file string) (*nats.Conn, error)
}

// externalNATS is the URL of a test's own NATS server, which needs no credentials.
type externalNATS string

func (u externalNATS) natsAs(string) (*nats.Conn, error) { return nats.Connect(string(u)) }

// jsAs is JetStream over a connection made as natsAs makes it; the connection is closed when the
// test ends, or before by js.Conn().Close().
func jsAs(t *testing.T, g natsConnector, file string) jetstream.JetStream {
	t.Helper()
	nc, err := g.natsAs(file)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// endpointsKV is the endpoint registry's bucket, read as quaycast over a connection of its own.
func (r *running) endpointsKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv, err := jsAs(t, r, natsauth.InternalFile).KeyValue(t.Context(), consumer.EndpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// registry opens the endpoint registry straight from its bucket, as another process would.
func (r *running) registry(t *testing.T, o consumer.RegistryOptions) *consumer.Registry {
	t.Helper()
	stream, err := jsAs(t, r, natsauth.InternalFile).Stream(t.Context(), consumer.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := consumer.NewRegistry(r.endpointsKV(t), stream, o)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// publisherConn creates a publisher credential through the API and connects with it.
func (r *running) publisherConn(t *testing.T, sources []string, replies bool) (*nats.Conn, error) {
	t.Helper()
	var p struct{ Credential string }
	if err := r.api.Do(context.Background(), "POST", "/v1/publishers", map[string]any{"name": t.Name(), "sources": sources, "replies": replies}, &p); err != nil {
		t.Fatalf("create publisher: %v", err)
	}
	return nats.Connect(r.NATSURL(), nats.Token(p.Credential))
}

// follow subscribes to subject as a publisher of every source that may follow replies and
// quaycast.sys.>, and returns once the server holds the subscription: handle then gets each
// message, on the subscription's goroutine.
func (r *running) follow(t *testing.T, subject string, handle nats.MsgHandler) {
	t.Helper()
	nc, err := r.publisherConn(t, []string{"*"}, true)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe(subject, handle); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// publishNATS publishes events the way an upstream NATS client does, with the local publisher
// credential.
func publishNATS(t *testing.T, g natsConnector, events ...[]byte) {
	t.Helper()
	js := jsAs(t, g, natsauth.PublisherFile)
	defer js.Conn().Close()
	for _, ev := range events {
		var env struct{ ID, Type, Source, Entity string }
		if err := json.Unmarshal(ev, &env); err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("evt." + env.Source + "." + env.Type)
		msg.Data = ev
		msg.Header.Set("Nats-Msg-Id", env.ID)
		// A deadline per event, not for all: 200 of them took more than 10 s on a starved machine.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := js.PublishMsg(ctx, msg)
		cancel()
		if err != nil {
			t.Fatalf("publish %s: %v", env.ID, err)
		}
	}
}

// waitDrained waits until the endpoints' consumers have nothing pending or unacknowledged. The
// server counts a new publish into NumPending asynchronously, so call it only after the last
// expected delivery arrived: it then proves that nothing more is on its way.
func waitDrained(t *testing.T, g natsConnector, ids ...string) {
	t.Helper()
	js := jsAs(t, g, natsauth.InternalFile)
	defer js.Conn().Close()
	for _, id := range ids {
		testwait.For(t, 30*time.Second, "consumer "+id+" drained", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			info, err := js.Consumer(ctx, "QUAYCAST_EVENTS", id)
			if err != nil {
				return false
			}
			ci := info.CachedInfo()
			return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0
		})
	}
}

func verify(t *testing.T, r received, secret string) {
	t.Helper()
	if err := (signature.Verifier{Profile: signature.Standard}).Verify(r.Header, r.Body, secret); err != nil {
		t.Errorf("signature of %s does not verify: %v", r.Header.Get("webhook-id"), err)
	}
}

func TestDeliversEachEndpointExactlyItsEvents(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	recvA, recvB := newReceiver(t), newReceiver(t)
	epA := g.addEndpoint(t, map[string]any{
		"url": recvA.URL + "/hook", "event_types": []string{"cargo_gated_in", "group:hold"},
		"headers": map[string]string{"X-Tenant": "acme"},
	})
	epB := g.addEndpoint(t, map[string]any{"url": recvB.URL, "event_types": []string{"cargo_loaded", "voyage_created"}})
	g.waitReady(t)

	byID := map[string][]byte{}
	var wantA, wantB []string
	add := func(id, typ, entity string, a, b bool) []byte {
		ev := event(id, typ, entity)
		byID[id] = ev
		if a {
			wantA = append(wantA, id)
		}
		if b {
			wantB = append(wantB, id)
		}
		return ev
	}
	// Over NATS, as an upstream TOS would.
	publishNATS(t, g,
		add("n1", "cargo_gated_in", "MSCU1", true, false),
		add("n2", "cargo_loaded", "MSCU1", false, true),
		add("n3", "hold_applied", "MSCU2", true, false),
		add("n4", "reefer_plugged_in", "MSCU3", false, false),
	)
	// Over the ingest API: one event, then a batch.
	ctx := context.Background()
	if err := g.api.Do(ctx, "POST", "/v1/events", add("h1", "voyage_created", "V-77", false, true), nil); err != nil {
		t.Fatal(err)
	}
	batch := [][]byte{add("h2", "hold_lifted", "MSCU2", true, false), add("h3", "cargo_gated_out", "MSCU1", false, false), add("h4", "cargo_loaded", "MSCU4", false, true)}
	if err := g.api.Do(ctx, "POST", "/v1/events", append(append([]byte("["), bytes.Join(batch, []byte(", "))...), ']'), nil); err != nil {
		t.Fatal(err)
	}

	testwait.For(t, 20*time.Second, "deliveries", func() bool {
		return len(recvA.accepted()) >= len(wantA) && len(recvB.accepted()) >= len(wantB)
	})
	waitDrained(t, g, epA.ID, epB.ID)
	for _, tc := range []struct {
		name   string
		recv   *receiver
		ep     endpoint
		want   []string
		header string
	}{{"A", recvA, epA, wantA, "acme"}, {"B", recvB, epB, wantB, ""}} {
		got := tc.recv.ids()
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("endpoint %s got %v, want %v", tc.name, got, want)
		}
		last := make(map[string]string) // per entity, the id received before
		for _, r := range tc.recv.accepted() {
			id := r.Header.Get("webhook-id")
			var ent struct{ Entity string }
			_ = json.Unmarshal(r.Body, &ent)
			if prev, ok := r.Header[gateway.HeaderPreviousEventID]; !ok || prev[0] != last[ent.Entity] {
				t.Errorf("endpoint %s event %s: %s %q, want %q (sent empty for the first)", tc.name, id, gateway.HeaderPreviousEventID, prev, last[ent.Entity])
			}
			last[ent.Entity] = id
			if !bytes.Equal(r.Body, byID[id]) {
				t.Errorf("endpoint %s event %s: body %q, published %q", tc.name, id, r.Body, byID[id])
			}
			verify(t, r, tc.ep.Secret)
			var env struct{ Type string }
			_ = json.Unmarshal(r.Body, &env)
			if h := r.Header.Get(gateway.HeaderEventType); h != env.Type {
				t.Errorf("event type header %q, body type %q", h, env.Type)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if h := r.Header.Get("X-Tenant"); h != tc.header {
				t.Errorf("endpoint %s custom header X-Tenant = %q, want %q", tc.name, h, tc.header)
			}
		}
	}
}
