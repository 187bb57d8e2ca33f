package consumer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
	"github.com/quaycast/quaycast/tenants"
)

// runRouter runs a router until it has passed seq, then stops it and waits.
func runRouter(t *testing.T, e *env, ts *tenants.Store, seq uint64, unknown *atomic.Int64) {
	t.Helper()
	r := consumer.NewRouter(e.js, e.stream, ts.KV(), ts, zerolog.New(zerolog.NewTestWriter(t)), consumer.RouterOptions{OnUnknown: func() { unknown.Add(1) }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testwait.For(t, 20*time.Second, "router past the last event", func() bool {
		_, err := ts.KV().Get(t.Context(), consumer.RouterID) // it has read its position
		return err == nil && r.Position() >= seq
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("router: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("router did not stop")
	}
}

// openTenants opens the tenants bucket and makes the router's position, as a gateway does when
// it opens.
func openTenants(t *testing.T, e *env) *tenants.Store {
	t.Helper()
	ts, err := tenants.Open(t.Context(), e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	begin(t, e, ts)
	return ts
}

// begin makes the router's position unless it exists.
func begin(t *testing.T, e *env, ts *tenants.Store) {
	t.Helper()
	if err := consumer.NewRouter(e.js, e.stream, ts.KV(), ts, zerolog.Nop(), consumer.RouterOptions{}).Begin(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// publishNaming publishes an event that names tenant in its envelope only, and returns its
// sequence.
func publishNaming(t *testing.T, e *env, id, tenant string) uint64 {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "type": "cargo_loaded", "source": "tos", "entity": "C1",
		"occurred_at": "2026-11-23T10:00:00Z", "data": map[string]any{}, "tenants": []string{tenant}})
	return e.publishRaw(t, "evt.tos.cargo_loaded", b, map[string]string{subjects.HeaderMsgID: id})
}

// copiesOf reads tenant's copies in stream order: their source sequences.
func copiesOf(t *testing.T, e *env, tenant string) []uint64 {
	t.Helper()
	cons, err := e.stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"tnt." + tenant + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seq, _ := strconv.ParseUint(m.Headers().Get(consumer.HeaderSourceSeq), 10, 64)
			out = append(out, seq)
		}
		if n == 0 {
			return out
		}
	}
}

// The router copies each event once per known tenant it names, in stream order; an unknown
// tenant is counted and not routed; a router that starts again from an older position (a crash
// before its position was written) makes no second copy: the duplicate window drops them.
func TestRouterCopiesInOrderOnceAcrossARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := openTenants(t, e)
	for _, id := range []string{"maersk", "hlag"} {
		if _, err := ts.Create(t.Context(), tenants.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	var unknown atomic.Int64
	kinds := [][]string{nil, {"maersk"}, {"hlag"}, {"maersk", "hlag"}, {"zim"}}
	want := map[string][]uint64{}
	var last uint64
	for i := range 20 {
		var env map[string]any
		_ = json.Unmarshal(envelope(event{id: "r-" + strconv.Itoa(i), typ: "cargo_loaded", entity: "C" + strconv.Itoa(i%3)}), &env)
		headers := map[string]string{subjects.HeaderMsgID: "r-" + strconv.Itoa(i)}
		if ts := kinds[i%len(kinds)]; ts != nil {
			env["tenants"] = ts
			if i%2 == 0 { // half name them in the header too
				headers[subjects.HeaderTenants] = subjects.TenantsHeader(ts)
			}
		}
		b, _ := json.Marshal(env)
		last = e.publishRaw(t, "evt.tos.cargo_loaded", b, headers)
		for _, tn := range kinds[i%len(kinds)] {
			if tn != "zim" {
				want[tn] = append(want[tn], last)
			}
		}
	}
	runRouter(t, e, ts, last, &unknown)
	check := func(when string) {
		for _, tn := range []string{"maersk", "hlag"} {
			got := copiesOf(t, e, tn)
			if len(got) != len(want[tn]) {
				t.Fatalf("%s: %s has copies of %v, want %v", when, tn, got, want[tn])
			}
			for i := range got {
				if got[i] != want[tn][i] {
					t.Fatalf("%s: %s has copies of %v, want %v (in stream order)", when, tn, got, want[tn])
				}
			}
		}
	}
	check("first run")
	if n := unknown.Load(); n != 4 {
		t.Errorf("unknown tenants counted %d, want 4", n)
	}

	// A crash before any position was written: start again from the beginning of this batch.
	if _, err := ts.KV().Put(t.Context(), consumer.RouterID, []byte(strconv.FormatUint(want["maersk"][0]-2, 10))); err != nil {
		t.Fatal(err)
	}
	runRouter(t, e, ts, last, &unknown)
	check("after starting again from an older position")
}

// Without tenants the router reads no event: its position follows the stream's end (an event
// naming a tenant is not even counted as unknown). Once a tenant exists it routes what comes
// after.
func TestRouterIdlesWithoutTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := openTenants(t, e)
	var unknown atomic.Int64
	r := consumer.NewRouter(e.js, e.stream, ts.KV(), ts, zerolog.New(zerolog.NewTestWriter(t)), consumer.RouterOptions{OnUnknown: func() { unknown.Add(1) }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	before := publishNaming(t, e, "before", "maersk")
	testwait.For(t, 20*time.Second, "the idle router's position at the stream's end", func() bool { return r.Position() >= before })
	if n := unknown.Load(); n != 0 {
		t.Errorf("an idle router read events: %d unknown tenants counted", n)
	}
	if _, err := ts.Create(t.Context(), tenants.Tenant{ID: "maersk", Name: "Maersk"}); err != nil {
		t.Fatal(err)
	}
	after := publishNaming(t, e, "after", "maersk")
	testwait.For(t, 20*time.Second, "the event after the tenant copied", func() bool { return len(copiesOf(t, e, "maersk")) == 1 })
	if got := copiesOf(t, e, "maersk"); got[0] != after {
		t.Errorf("copied %v, want only the event stored after the tenant (%d)", got, after)
	}
}

// The router's first run can come long after the tenants were created: the gateway's cluster
// hands it over, or no gateway delivers for a while. The events stored meanwhile are routed all
// the same, from the position made when the gateway opened (once its first run made it at the
// stream's end, and a single gateway on a busy machine lost the copies of its first events).
func TestRouterRoutesWhatCameBeforeItsFirstRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := openTenants(t, e)
	begin(t, e, ts) // a second gateway opening leaves the position as it is
	if _, err := ts.Create(t.Context(), tenants.Tenant{ID: "maersk", Name: "Maersk"}); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 5 {
		want = append(want, publishNaming(t, e, "early-"+strconv.Itoa(i), "maersk"))
	}
	var unknown atomic.Int64
	runRouter(t, e, ts, want[len(want)-1], &unknown)
	if got := copiesOf(t, e, "maersk"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("copies of %v, want every event stored before the router first ran: %v", got, want)
	}
}
