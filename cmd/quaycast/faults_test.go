package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/bench"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/subjects"
)

// These tests show the delivery promise under faults, with the real binary: thousands of events
// over many entities to several endpoints, then the checker's verdict — nothing lost, nothing out
// of order per endpoint and entity, duplicates only from the fault, counted.

const (
	faultEvents   = 2000
	faultEntities = 100
)

var faultTypes = []string{"cargo_loaded", "cargo_gated_in", "hold_applied", "reefer_plugged_in"}

// faultArgs are gateway flags that make a run of thousands of events with faults take seconds.
var faultArgs = []string{
	"--retry-schedule", "50ms,100ms,200ms", "--breaker-cooldown", "300ms", "--breaker-failures", "20",
	"--delivery-timeout", "2s", "--ack-wait", "10s", "--shutdown-timeout", "3s", "--log-level", "info",
}

// rig is a set of endpoints with their receivers and the checker that judges the run.
type rig struct {
	checker   *bench.Checker
	endpoints []*rigEndpoint
	events    int // how many publish sends, spread over entities
	entities  int
	// again, if set, judges the redelivered copies (Quaycast-Redelivery) apart from live events.
	again *bench.Checker
	// published, if set, is told of each event published, in order.
	published func(id, entity, typ string)
}

type rigEndpoint struct {
	name      string
	selectors []string
	id        string
	addr      string
	behave    func(w http.ResponseWriter) bool // false: the request failed (no 2xx)
	requests  atomic.Int64

	mu sync.Mutex
	// Every accepted arrival, copies included: a copy accepted shortly before a kill is a
	// delivery whose mark the kill may lose, as much as a first one.
	accepted []time.Time
	copies   map[string]int // event id -> accepted arrivals
	srv      *http.Server
	// With senderOf (cluster tests), every request's arrival and the process that sent it.
	senderOf func(net.Conn) int
	arrivals []arrival
}

// arrival is a request as a receiver saw it: when, and from which process (0: not tracked).
type arrival struct {
	at  time.Time
	pid int
}

type senderKey struct{}

// newRig has three endpoints behaving as behave, and publish sends faultEvents events.
func newRig(t *testing.T, behave func(w http.ResponseWriter) bool) *rig {
	r := &rig{checker: bench.NewChecker(), events: faultEvents, entities: faultEntities}
	r.add(t, "all", []string{"*"}, behave)
	r.add(t, "gate", []string{"group:gate"}, behave)
	r.add(t, "loads-and-holds", []string{"cargo_loaded", "group:hold"}, behave)
	return r
}

// add starts a receiver for one more endpoint; register creates it in the gateway.
func (r *rig) add(t *testing.T, name string, selectors []string, behave func(w http.ResponseWriter) bool) {
	t.Helper()
	ep := &rigEndpoint{name: name, selectors: selectors, behave: behave}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep.addr = ln.Addr().String()
	ep.serve(ln, r.checker, r.again)
	t.Cleanup(ep.down)
	r.endpoints = append(r.endpoints, ep)
}

func (ep *rigEndpoint) serve(ln net.Listener, c, again *bench.Checker) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ep.requests.Add(1)
		if pid, ok := req.Context().Value(senderKey{}).(int); ok {
			ep.mu.Lock()
			ep.arrivals = append(ep.arrivals, arrival{at: time.Now(), pid: pid})
			ep.mu.Unlock()
		}
		if ep.behave != nil && !ep.behave(w) {
			return
		}
		id := req.Header.Get("webhook-id")
		if again != nil && req.Header.Get(gateway.HeaderRedelivery) != "" {
			again.Received(ep.name, id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ep.mu.Lock()
		if ep.copies == nil {
			ep.copies = make(map[string]int)
		}
		ep.accepted = append(ep.accepted, time.Now())
		ep.copies[id]++
		ep.mu.Unlock()
		c.Received(ep.name, id)
		w.WriteHeader(http.StatusNoContent)
	}), ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
		ep.mu.Lock()
		senderOf := ep.senderOf
		ep.mu.Unlock()
		if senderOf == nil {
			return ctx
		}
		return context.WithValue(ctx, senderKey{}, senderOf(conn))
	}}
	ep.mu.Lock()
	ep.srv = srv
	ep.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the receiver: connections are refused until up.
func (ep *rigEndpoint) down() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.srv != nil {
		_ = ep.srv.Close()
		ep.srv = nil
	}
}

// up serves again on the same address.
func (ep *rigEndpoint) up(t *testing.T, c *bench.Checker) {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after Close
		if ln, err = net.Listen("tcp", ep.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("receiver back on %s: %v", ep.addr, err)
	}
	ep.serve(ln, c, nil)
}

// register creates the endpoints through the API.
func (r *rig) register(t *testing.T, api string) {
	t.Helper()
	c := gateway.NewClient(api)
	for _, ep := range r.endpoints {
		var out struct{ ID string }
		if err := c.Do(context.Background(), "POST", "/v1/endpoints", map[string]any{"url": "http://" + ep.addr + "/hook", "event_types": ep.selectors}, &out); err != nil {
			t.Fatal(err)
		}
		ep.id = out.ID
	}
	waitReady(t, api)
}

// publish sends r.events events over NATS as an upstream system does: each with its id as
// Nats-Msg-Id, retried until JetStream acknowledges it, also across a gateway or NATS outage.
// after is called with the number published so far, after each event.
func (r *rig) publish(t *testing.T, natsURL string, after func(n int), access ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(natsURL, append(access, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	rnd := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(3 * time.Minute)
	for i := range r.events {
		id, entity := fmt.Sprintf("ev-%05d", i), fmt.Sprintf("ENT%03d", rnd.IntN(r.entities))
		typ := faultTypes[rnd.IntN(len(faultTypes))]
		body := fmt.Appendf(nil, `{"id":%q,"type":%q,"source":"tos","entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{"i":%d}}`, id, typ, entity, i)
		r.checker.Published(id, entity)
		if r.published != nil {
			r.published(id, entity, typ)
		}
		for _, ep := range r.endpoints {
			if subjects.Matches(ep.selectors, typ) {
				r.checker.Expect(ep.name, id)
			}
		}
		msg := nats.NewMsg("evt.tos." + typ)
		msg.Data = body
		msg.Header.Set(subjects.HeaderMsgID, id)
		msg.Header.Set(subjects.HeaderEntity, entity)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := js.PublishMsg(ctx, msg)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %s: still failing at the deadline: %v", id, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if after != nil {
			after(i + 1)
		}
	}
}

// delivered is how many expected deliveries arrived so far, each counted once.
func (r *rig) delivered() int {
	rep := r.checker.Report()
	n := 0
	for _, e := range rep.Endpoints {
		n += e.Delivered
	}
	return n
}

// wait waits until every expected event arrived and every endpoint's consumer has nothing
// pending or unacknowledged, then returns the verdict.
func (r *rig) wait(t *testing.T, natsURL string, access ...nats.Option) bench.Report {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for r.checker.Report().Lost > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not everything delivered within 3 minutes: %v", r.checker.Report())
		}
		time.Sleep(100 * time.Millisecond)
	}
	nc, err := nats.Connect(natsURL, access...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, ep := range r.endpoints {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := js.Consumer(ctx, consumer.EventsStream, ep.id)
			cancel()
			if err == nil && c.CachedInfo().NumPending == 0 && c.CachedInfo().NumAckPending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer of %s not drained: %v", ep.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return r.checker.Report()
}

func (r *rig) expectedTotal() int {
	n := 0
	for _, e := range r.checker.Report().Endpoints {
		n += e.Expected
	}
	return n
}

// assertPromise fails the test unless nothing was lost, out of order or unexpected, and
// duplicates are within maxDup.
func assertPromise(t *testing.T, rep bench.Report, maxDup int) {
	t.Helper()
	t.Logf("checker: %v", rep)
	if !rep.OK() {
		t.Errorf("delivery promise broken: %v", rep)
	}
	if rep.Duplicates > maxDup {
		t.Errorf("%d duplicates, want at most %d", rep.Duplicates, maxDup)
	}
}

// flaky answers 500 to a share of requests, and resets the connection without an answer to a
// tenth of those.
func flaky(share float64, seed uint64) func(w http.ResponseWriter) bool {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	return func(w http.ResponseWriter) bool {
		mu.Lock()
		x := rnd.Float64()
		mu.Unlock()
		switch {
		case x < share/10: // reset the connection without an answer
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					conn.Close()
					return false
				}
			}
			w.WriteHeader(http.StatusInternalServerError)
			return false
		case x < share:
			w.WriteHeader(http.StatusInternalServerError)
			return false
		}
		return true
	}
}

// (a) A receiver that fails 30 % of requests with 500 and resets some connections.
func TestFaultFlakyReceivers(t *testing.T) {
	t.Parallel()
	r := newRig(t, flaky(0.30, 3))
	p := serve(t, append([]string{"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0"}, faultArgs...)...)
	r.register(t, p.api)
	r.publish(t, p.nats, nil, p.as(t, natsauth.PublisherFile))
	assertPromise(t, r.wait(t, p.nats, p.as(t, natsauth.InternalFile)), 0)
}

// (b) A receiver down (connections refused) for a while, then back.
func TestFaultReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	p := serve(t, append([]string{"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0"}, faultArgs...)...)
	r.register(t, p.api)
	gate := r.endpoints[1]
	var downAt time.Time
	r.publish(t, p.nats, func(n int) {
		switch n {
		case faultEvents / 4:
			gate.down()
			downAt = time.Now()
		case faultEvents * 3 / 4:
			time.Sleep(time.Until(downAt.Add(3 * time.Second))) // down for 3 s at least, beyond the breaker's cooldown
			gate.up(t, r.checker)
		}
	}, p.as(t, natsauth.PublisherFile))
	rep := r.wait(t, p.nats, p.as(t, natsauth.InternalFile))
	assertPromise(t, rep, 0)
	if gate.requests.Load() > int64(rep.Endpoints["gate"].Expected)*3 {
		t.Errorf("the down receiver got %d requests for %d events: the breaker did not hold traffic back", gate.requests.Load(), rep.Endpoints["gate"].Expected)
	}
}

// freePort returns a loopback port free at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback ports free at the time of the call. Each is held until
// all are picked: ports taken one call after another can repeat, and a CI run gave two nodes of
// a NATS cluster the same route port.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// (c) The gateway killed with SIGKILL in mid-stream, then restarted on the same data dir.
func TestFaultGatewayKilled(t *testing.T) {
	t.Parallel()
	r := newRig(t, flaky(0.2, 5)) // so that retries are under way at the kill
	dataDir, natsAddr := t.TempDir(), "127.0.0.1:"+strconv.Itoa(freePort(t))
	args := append([]string{"--data-dir", dataDir, "--nats-listen", natsAddr}, faultArgs...)
	p := serve(t, args...)
	r.register(t, p.api)
	total := 0
	var killAt time.Time
	restarted := make(chan *proc, 1)
	r.publish(t, p.nats, func(n int) {
		if n != faultEvents/2 {
			return
		}
		total = r.expectedTotal()
		// Kill once deliveries are well under way, mid-stream.
		for r.delivered() < total/3 {
			time.Sleep(5 * time.Millisecond)
		}
		killAt = time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		t.Logf("killed the gateway after %d of %d expected deliveries so far", r.delivered(), total)
		restarted <- serve(t, args...)
	}, p.as(t, natsauth.PublisherFile))
	p2 := <-restarted
	if logs := p2.output(); !strings.Contains(logs, "the last run did not stop (killed, or crashed)") {
		t.Errorf("the restart did not say the last run did not stop:\n%s", logs)
	}
	rep := r.wait(t, p2.nats, p2.as(t, natsauth.InternalFile))
	assertPromise(t, rep, len(r.endpoints)*(1000+64))
	// The durable delivery record bounds the duplicates per endpoint: what was in flight at the
	// kill (--max-in-flight, 64) and what was delivered since the record's last write (within
	// --marks-flush, 1 s; twice that, for a flush that runs late on a loaded machine).
	const inFlight, flush = 64, time.Second
	for _, ep := range r.endpoints {
		recent := ep.arrivedBetween(killAt.Add(-2*flush), killAt)
		dup := rep.Endpoints[ep.name].Duplicates
		t.Logf("%s: %d duplicates; %d delivered in the %s before the kill", ep.name, dup, recent, 2*flush)
		if dup > inFlight+recent {
			t.Errorf("%s: %d duplicates after one kill, want at most %d in flight + %d delivered within the last flush", ep.name, dup, inFlight, recent)
		}
	}
}

// (c') The gateway stopped with SIGTERM in mid-stream, its embedded NATS server cut short
// (--nats-stop-timeout, at scale ~10 ms an endpoint), then restarted on the same data dir: the
// server rebuilds its indexes, and nothing is lost, reordered or sent twice.
func TestFaultEmbeddedStopCutShort(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(http.ResponseWriter) bool { // slow enough that deliveries are in flight at the stop
		time.Sleep(2 * time.Millisecond)
		return true
	})
	dataDir, natsAddr := t.TempDir(), "127.0.0.1:"+strconv.Itoa(freePort(t))
	// The server takes ~10 ms a consumer to stop, and there are several: 1 ms always cuts it short.
	args := append([]string{"--data-dir", dataDir, "--nats-listen", natsAddr, "--nats-stop-timeout", "1ms"}, faultArgs...)
	p := serve(t, args...)
	r.register(t, p.api)
	restarted := make(chan *proc, 1)
	r.publish(t, p.nats, func(n int) {
		if n != faultEvents/2 {
			return
		}
		for r.delivered() < r.expectedTotal()/3 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("exit after SIGTERM: %v, want 0", err)
		}
		if logs := p.output(); !strings.Contains(logs, "embedded NATS server still stopping: not waited for") {
			t.Errorf("the stop did not say it left the embedded server stopping:\n%s", logs)
		}
		t.Logf("the gateway stopped; %d of %d expected deliveries so far", r.delivered(), r.expectedTotal())
		restarted <- serve(t, args...)
	}, p.as(t, natsauth.PublisherFile))
	p2 := <-restarted
	if logs := p2.output(); !strings.Contains(logs, "last stop was cut short (--nats-stop-timeout)") {
		t.Errorf("the restart did not say the last stop was cut short:\n%s", logs)
	}
	assertPromise(t, r.wait(t, p2.nats, p2.as(t, natsauth.InternalFile)), 0)
}

// arrivedBetween counts the deliveries accepted in [from, to], copies included.
func (ep *rigEndpoint) arrivedBetween(from, to time.Time) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	n := 0
	for _, at := range ep.accepted {
		if !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

// maxCopies is the most times one event was accepted.
func (ep *rigEndpoint) maxCopies() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	n := 0
	for _, c := range ep.copies {
		n = max(n, c)
	}
	return n
}

// (d) NATS — a nats-server process of its own, the gateway in --nats-url mode — killed and
// restarted in mid-stream.
func TestFaultNATSRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, flaky(0.2, 7))
	port, storeDir := freePort(t), t.TempDir()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	ns := startNATS(t, port, storeDir)
	p := serve(t, append([]string{"--nats-url", url}, faultArgs...)...)
	r.register(t, p.api)
	r.publish(t, url, func(n int) {
		if n != faultEvents/2 {
			return
		}
		for r.delivered() < r.expectedTotal()/3 {
			time.Sleep(5 * time.Millisecond)
		}
		ns.kill()
		t.Logf("killed nats-server after %d deliveries", r.delivered())
		time.Sleep(time.Second)
		ns = startNATS(t, port, storeDir)
	})
	assertPromise(t, r.wait(t, url), len(r.endpoints)*(1000+64))
}

// startNATS runs nats-server with JetStream on a loopback port and waits until it answers.
func startNATS(t *testing.T, port int, storeDir string) *natsProcess {
	t.Helper()
	n := startNATSProcess(t, nil, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", storeDir)
	n.waitJetStream(t, "nats://127.0.0.1:"+strconv.Itoa(port), nats.Name("test"))
	return n
}

// withFlag is a copy of args with flag's value replaced (a repeated list flag would add to it).
func withFlag(args []string, flag, value string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// (e) A crash loop (issue 10): 5,000 events over 200 entities to four endpoints, three of them
// flaky so that retries are under way and one healthy, the gateway killed with SIGKILL ten times
// while publishing and delivering go on, each time restarted on the same data dir. Every kill
// may resend what was in flight and what was delivered since the record's last write, so per
// endpoint the duplicates are bounded by the per-kill bound of TestFaultGatewayKilled, summed.
func TestFaultCrashLoop(t *testing.T) {
	t.Parallel()
	const kills, inFlight, flush = 10, 64, time.Second
	r := newRig(t, flaky(0.2, 11))
	r.add(t, "healthy", []string{"*"}, nil)
	r.events, r.entities = 5000, 200
	if testing.Short() {
		r.events = 2000
	}
	// Retries wait seconds, as real schedules do, so an entity's head being retried holds the
	// ack floor back and a restart would resend everything acknowledged above it but for the
	// record. With faultArgs' waits of milliseconds the floor keeps up and the bound could not
	// fail: --marks-flush 1m (nothing written between kills) gave as many duplicates as 1s (758
	// and 645 on "all"). With these waits, 1m gave 13,361 on "all" against a bound of 3,409.
	dataDir, natsAddr := t.TempDir(), "127.0.0.1:"+strconv.Itoa(freePort(t))
	args := append([]string{"--data-dir", dataDir, "--nats-listen", natsAddr,
		"--max-in-flight", strconv.Itoa(inFlight), "--marks-flush", flush.String()},
		withFlag(faultArgs, "--retry-schedule", "1s,2s,4s")...)
	p := serve(t, args...)
	r.register(t, p.api)

	type kill struct {
		at     time.Time
		dup    map[string]int // duplicates per endpoint so far, once the gateway had exited
		recent map[string]int // per endpoint, deliveries accepted within 2 × flush before it
	}
	var done []kill
	start := time.Now()
	expectedAt, deliveredAt := 0, 0 // at the previous kill
	r.publish(t, p.nats, func(n int) {
		if len(done) == kills || n != (len(done)+1)*r.events/(kills+1) {
			return
		}
		// Kill once at least half of what was expected since the previous kill has arrived: the
		// previous kill's resends are behind the gateway, and retries and a backlog are not.
		expected := r.expectedTotal()
		deadline := time.Now().Add(time.Minute)
		for r.delivered()-deliveredAt < (expected-expectedAt)/2 {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: %d of %d deliveries since the previous kill within a minute", len(done)+1, r.delivered()-deliveredAt, expected-expectedAt)
			}
			time.Sleep(10 * time.Millisecond)
		}
		k := kill{at: time.Now(), dup: map[string]int{}, recent: map[string]int{}}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		rep := r.checker.Report() // duplicates from here on are this kill's, for the log
		for _, ep := range r.endpoints {
			k.dup[ep.name] = rep.Endpoints[ep.name].Duplicates
			k.recent[ep.name] = ep.arrivedBetween(k.at.Add(-2*flush), k.at)
		}
		done = append(done, k)
		expectedAt, deliveredAt = expected, r.delivered()
		p = serve(t, args...)
		t.Logf("kill %d at %s: %d of %d events published, %d of %d deliveries made; up again in %s",
			len(done), k.at.Sub(start).Round(time.Millisecond), n, r.events, deliveredAt, expected, time.Since(k.at).Round(time.Millisecond))
	}, p.as(t, natsauth.PublisherFile))
	if len(done) != kills {
		t.Fatalf("%d kills, want %d", len(done), kills)
	}
	rep := r.wait(t, p.nats, p.as(t, natsauth.InternalFile))

	// Per endpoint: the duplicates against the summed bound, and per kill the duplicates that
	// arrived before the next kill (the kill's resends come first after a restart) against that
	// kill's bound, for the record.
	total := 0
	bounds := map[string]int{}
	for _, ep := range r.endpoints {
		for _, k := range done {
			bounds[ep.name] += inFlight + k.recent[ep.name]
		}
		total += bounds[ep.name]
	}
	assertPromise(t, rep, total)
	for _, ep := range r.endpoints {
		dup, perKill := rep.Endpoints[ep.name].Duplicates, ""
		for i, k := range done {
			next := dup
			if i+1 < len(done) {
				next = done[i+1].dup[ep.name]
			}
			perKill += fmt.Sprintf(" %d/%d", next-k.dup[ep.name], inFlight+k.recent[ep.name])
		}
		t.Logf("%s: %d duplicates over %d kills (%.1f per kill), bound %d, at most %d copies of one event; per kill, duplicates/bound:%s",
			ep.name, dup, kills, float64(dup)/kills, bounds[ep.name], ep.maxCopies(), perKill)
		if dup > bounds[ep.name] {
			t.Errorf("%s: %d duplicates after %d kills, want at most %d (per kill %d in flight + what was delivered within the last flush)", ep.name, dup, kills, bounds[ep.name], inFlight)
		}
	}
}
