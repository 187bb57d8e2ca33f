package consumer

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// An event stored while an endpoint goes to sleep wakes it, at whichever point of going to sleep
// it is stored: before the endpoint is registered with the watcher (and seen by the watcher
// first: only the consumer's pending count can tell), between the registration and the read of
// the pending count, or after that read.
func TestEventStoredWhileFallingAsleepWakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stage int
	}{
		{"before registration, seen by the watcher first", sleepRegistering},
		{"after registration", sleepRegistered},
		{"after the pending check", sleepChecked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, js, stream, reg := streamsAndRegistry(t)
			createEndpoint(t, reg, "cargo_loaded")
			publish := func(id string) uint64 {
				msg := nats.NewMsg("evt.tos.cargo_loaded")
				msg.Data = fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":"tos","entity":"A","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id)
				msg.Header.Set(subjects.HeaderMsgID, id)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ack, err := js.PublishMsg(ctx, msg)
				if err != nil {
					t.Errorf("publish %s: %v", id, err)
					return 0
				}
				return ack.Sequence
			}

			d := &idDeliverer{}
			m := NewManager(js, stream, reg, d, zerolog.New(zerolog.NewTestWriter(t)), Options{PullExpiry: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second})
			var armed, fired atomic.Bool
			m.onSleep = func(stage int) {
				if stage != tc.stage || !armed.Load() || !fired.CompareAndSwap(false, true) {
					return
				}
				seq := publish("racer")
				if tc.stage == sleepRegistering { // the watcher has passed it before the endpoint registers
					for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
						m.watch.mu.Lock()
						pos := m.watch.pos
						m.watch.mu.Unlock()
						if pos >= seq {
							return
						}
					}
					t.Error("the watcher did not see the racer")
				}
			}
			runManager(t, m)
			testwait.For(t, 10*time.Second, "asleep from the start", func() bool { return m.Ready() && m.Sleeping() == 1 })

			armed.Store(true)
			publish("first") // wakes it; once delivered it falls asleep, and the racer comes
			testwait.For(t, 10*time.Second, "the racer delivered", func() bool { return slices.Contains(d.got(), "racer") })
			if !fired.Load() {
				t.Fatal("the hook did not run")
			}
			testwait.For(t, 10*time.Second, "asleep again", func() bool { return m.Sleeping() == 1 })
			if got := d.got(); !slices.Equal(got, []string{"first", "racer"}) {
				t.Errorf("delivered %v, want [first racer]", got)
			}
		})
	}
}

// The wake keys of every filter the manager makes match the subjects of its events: an endpoint
// of any catalogue type, of a group, of every type, and its replays can sleep, and is woken by
// exactly its events.
func TestWakeKeysMatchFilters(t *testing.T) {
	t.Parallel()
	keys := func(subject string) []string {
		var out []string
		forKeys(subject, func(k string) { out = append(out, k) })
		return out
	}
	for _, tc := range []struct {
		name    string
		sel     []string
		tenant  string
		subject string
		want    bool
		all     bool // tenant_events
	}{
		{"operator events", []string{"quaycast:*"}, "", "quaycast.ops.breaker_opened", true, false},
		{"operator events, a tenant's", []string{"quaycast:*"}, "", "quaycast.ops.maersk.breaker_opened", false, false},
		{"operator events, every tenant's", []string{"quaycast:*"}, "", "quaycast.ops.maersk.breaker_opened", true, true},
		{"one operator event, every tenant's", []string{"quaycast:breaker_opened"}, "", "quaycast.ops.maersk.breaker_opened", true, true},
		{"one operator event, another", []string{"quaycast:breaker_opened"}, "", "quaycast.ops.maersk.breaker_closed", false, true},
		{"one operator event", []string{"quaycast:breaker_opened"}, "", "quaycast.ops.breaker_opened", true, false},
		{"a tenant's operator events", []string{"quaycast:*"}, "maersk", "quaycast.ops.maersk.endpoint_disabled", true, false},
		{"a tenant's operator event", []string{"quaycast:endpoint_disabled"}, "maersk", "quaycast.ops.maersk.endpoint_disabled", true, false},
		{"another tenant's operator events", []string{"quaycast:*"}, "maersk", "quaycast.ops.hlag.endpoint_disabled", false, false},
		{"the operator's events, to a tenant", []string{"quaycast:*"}, "maersk", "quaycast.ops.endpoint_disabled", false, false},
		{"every type is not operator events", []string{"*"}, "", "quaycast.ops.breaker_opened", false, true},
		{"a tenant's type", []string{"cargo_loaded"}, "maersk", "tnt.maersk.tos.cargo_loaded", true, false},
		{"a tenant's other type", []string{"cargo_loaded"}, "maersk", "tnt.maersk.tos.cargo_gated_in", false, false},
		{"a tenant, every type", []string{"*"}, "maersk", "tnt.maersk.tos.cargo_gated_in", true, false},
		{"another tenant's type", []string{"cargo_loaded"}, "maersk", "tnt.hlag.tos.cargo_loaded", false, false},
		{"another tenant, every type", []string{"*"}, "maersk", "tnt.hlag.tos.cargo_loaded", false, false},
		{"a tenant's endpoint, the original", []string{"*"}, "maersk", "evt.tos.cargo_loaded", false, false},
		{"an operator's endpoint, a tenant copy", []string{"*"}, "", "tnt.maersk.tos.cargo_loaded", false, false},
		{"a tenant's replay", []string{"cargo_loaded"}, "maersk", "replay." + subjects.EncodeToken("ep_1") + ".tos.cargo_gated_in", true, false},
		{"its type", []string{"cargo_loaded"}, "", "evt.tos.cargo_loaded", true, false},
		{"another type", []string{"cargo_loaded"}, "", "evt.tos.cargo_gated_in", false, false},
		{"every type", []string{"*"}, "", "evt.tos.cargo_gated_in", true, false},
		{"every type, odd subject", []string{"*"}, "", "evt.tos.x.y", true, false},
		{"its replay", []string{"cargo_loaded"}, "", "replay." + subjects.EncodeToken("ep_1") + ".tos.cargo_gated_in", true, false},
		{"another endpoint's replay", []string{"cargo_loaded"}, "", "replay." + subjects.EncodeToken("ep_2") + ".tos.cargo_loaded", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filters, err := endpointFilters(subjects.Builtin(), &Endpoint{ID: "ep_1", EventTypes: tc.sel, Tenant: tc.tenant, TenantEvents: tc.all})
			if err != nil {
				t.Fatal(err)
			}
			if !sleepable(filters) {
				t.Fatalf("filters %v cannot sleep", filters)
			}
			got := false
			for _, k := range keys(tc.subject) {
				got = got || slices.Contains(filters, k)
			}
			if got != tc.want {
				t.Errorf("subject %s wakes %v: %v, want %v (keys %v)", tc.subject, filters, got, tc.want, keys(tc.subject))
			}
		})
	}
	for _, f := range []string{"evt.*.*", "evt.tos.>", "quaycast.>", "replay.*.>", "tnt.*.>", "tnt.>", "tnt.maersk.tos.>", "tnt.maersk.*.*",
		"quaycast.ops.*.*", "quaycast.ops.*.>", "quaycast.ops.a.b.c", "quaycast.ops.", "quaycast.ops.a*"} {
		if sleepable([]string{f}) {
			t.Errorf("filter %s: sleepable, want not (the watcher cannot match it)", f)
		}
	}
}

// The create response of a consumer recovered at a server restart, the first after it, misses
// the events stored since the restart (nats-server answers with a snapshot taken at recovery):
// an endpoint deciding on it slept through a new event, never woken (TestUpgradeFromRelease2582dc1
// failed so about one run in ten). pendingInfo reads the consumer afresh.
func TestCreateResponseUndercountsAfterRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"evt.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{Durable: "c", FilterSubjects: []string{"evt.*.a"}, AckPolicy: jetstream.AckExplicitPolicy}
	if _, err := stream.CreateOrUpdateConsumer(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	srv = natstest.Restart(t, srv)
	_, js = natstest.ConnectJetStream(t, srv)
	if _, err := js.Publish(ctx, "evt.x.a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	stream, err = js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := cons.CachedInfo().NumPending; n != 0 {
		t.Logf("the create response counts %d pending: nats-server no longer answers with its recovery snapshot", n)
	}
	if info := pendingInfo(ctx, cons); info == nil || info.NumPending != 1 {
		t.Errorf("pendingInfo: %+v, want NumPending 1", info)
	}
}

// An event the watcher has passed keeps an endpoint from sleeping although its consumer's info
// counts nothing: on a cluster that info comes from the consumer's leader, whose copy of the
// stream may not hold the event yet, and the watcher, past it, would never wake the endpoint.
func TestWatcherSeenEventKeepsAwake(t *testing.T) {
	t.Parallel()
	wt := newWatcher(func(string) {}, zerolog.Nop())
	filters, err := endpointFilters(subjects.Builtin(), &Endpoint{ID: "ep_1", EventTypes: []string{"cargo_loaded"}})
	if err != nil {
		t.Fatal(err)
	}
	info := &jetstream.ConsumerInfo{Delivered: jetstream.SequenceInfo{Stream: 41}} // a new consumer from 42
	for _, step := range []struct {
		name      string
		subject   string // stored at seq, unless empty
		seq       uint64
		delivered uint64
		pending   uint64
		want      bool // nothing for it: it may sleep
	}{
		{name: "nothing seen", delivered: 41, want: true},
		{name: "another type seen", subject: "evt.tos.cargo_gated_in", seq: 42, delivered: 41, want: true},
		{name: "its type seen, the info counting none", subject: "evt.tos.cargo_loaded", seq: 43, delivered: 41, want: false},
		{name: "its type seen and delivered", delivered: 43, want: true},
		{name: "delivered, one more pending", delivered: 43, pending: 1, want: false},
		{name: "a replay for it seen", subject: "replay." + subjects.EncodeToken("ep_1") + ".tos.cargo_gated_in", seq: 44, delivered: 43, want: false},
	} {
		if step.subject != "" {
			wt.sawStored(step.subject, step.seq)
		}
		info.Delivered.Stream, info.NumPending = step.delivered, step.pending
		if got := wt.nothingFor(filters, info); got != step.want {
			t.Errorf("%s: nothing for it %v, want %v", step.name, got, step.want)
		}
	}
	if wt.nothingFor(filters, nil) {
		t.Error("no info: nothing for it, want unknown (stay awake)")
	}
}

// A sleeping endpoint keeps its definition and no worker (nor its lanes, channels or logger),
// whether it started asleep or fell asleep after a delivery, and is not counted awake; woken, it
// delivers again.
func TestSleepingEndpointHoldsNoWorker(t *testing.T) {
	t.Parallel()
	_, _, js, stream, reg := streamsAndRegistry(t)
	ep := createEndpoint(t, reg, "cargo_loaded")
	publish := func(id string) {
		msg := nats.NewMsg("evt.tos.cargo_loaded")
		msg.Data = fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":"tos","entity":"A","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id)
		msg.Header.Set(subjects.HeaderMsgID, id)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	d := &idDeliverer{}
	m := NewManager(js, stream, reg, d, zerolog.New(zerolog.NewTestWriter(t)), Options{PullExpiry: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second})
	runManager(t, m)
	asleepHere := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		rw := m.running[ep.ID]
		return rw != nil && rw.state == asleep
	}
	holdsNoWorker := func(when string) {
		t.Helper()
		m.mu.Lock()
		defer m.mu.Unlock()
		rw := m.running[ep.ID]
		if rw == nil || rw.state != asleep {
			t.Fatalf("%s: not asleep", when)
		}
		if rw.w != nil {
			t.Errorf("%s: the sleeping endpoint holds a worker", when)
		}
		if got := rw.endpoint(); got == nil || got.ID != ep.ID {
			t.Errorf("%s: the sleeping endpoint's definition is %v", when, got)
		}
	}
	testwait.For(t, 10*time.Second, "asleep from the start", func() bool { return m.Ready() && asleepHere() })
	holdsNoWorker("started asleep")

	publish("first")
	testwait.For(t, 10*time.Second, "first delivered", func() bool { return slices.Contains(d.got(), "first") })
	testwait.For(t, 10*time.Second, "asleep again", asleepHere)
	holdsNoWorker("fell asleep")
	// Counted awake from its wake to its worker's end (the pull budget's share): none now.
	testwait.For(t, 10*time.Second, "no endpoint counted awake", func() bool { return m.pulls.awake.Load() == 0 })
	if s := m.Stuck(ep.ID); s.Blocked != 0 || s.Parked != 0 {
		t.Errorf("Stuck of a sleeping endpoint = %+v, want nothing", s)
	}

	publish("second")
	testwait.For(t, 10*time.Second, "second delivered", func() bool { return slices.Contains(d.got(), "second") })
	if got := d.got(); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("delivered %v, want [first second]", got)
	}
}

// streamsAndRegistry is an embedded server with quaycast's streams and bucket, and a registry
// over them, for the package's own tests of a manager.
func streamsAndRegistry(t *testing.T) (*server.Server, *nats.Conn, jetstream.JetStream, jetstream.Stream, *Registry) {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := natstest.ConnectJetStream(t, srv)
	stream, kv, err := Setup(t.Context(), js, StreamOptions{MaxAge: time.Hour, Duplicates: time.Minute, MaxConsumers: 10})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(kv, stream, RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, nc, js, stream, reg
}

// createEndpoint registers an enabled endpoint of types at a loopback URL nothing answers on.
func createEndpoint(t *testing.T, reg *Registry, types ...string) *Endpoint {
	t.Helper()
	ep, err := reg.Create(t.Context(), Endpoint{URL: "http://127.0.0.1:9/hook", EventTypes: types, Enabled: true, Secret: NewSecret("whsec_test")})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// runManager runs m until the test ends, and fails the test if Run returns an error.
func runManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("manager Run: %v", err)
		}
	})
}
