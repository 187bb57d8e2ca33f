package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/bench"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/testlog"
	"github.com/quaycast/quaycast/subjects"
)

// The operator's way: an external nats-server configured with exactly the accounts block that
// `quaycast nats-config` prints, quaycast connecting as its least-privileged user, an upstream
// system publishing as its own account's user. Everything quaycast does — streams, buckets,
// consumers, deliveries, replies, the delivery log, dead letters and their replay — must work
// without one permission violation by quaycast's user, and the upstream system must be able to
// do nothing but publish its own events and follow the replies to them.
func TestExternalNATSWithGeneratedAccounts(t *testing.T) {
	t.Parallel()
	const source = "tos-rotterdam"
	gwPass, pubPass := extRandomPassword(t), extRandomPassword(t)

	// 1. The operator's nats-server, configured with the printed block, unchanged.
	block := run(t, "nats-config", "--source", source)
	port, dir := freePort(t), t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\n%s", port, filepath.Join(dir, "store"), block)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	natsLog := startConfiguredNATS(t, conf, url, gwPass, pubPass)
	asQuaycast := nats.UserInfo("quaycast", gwPass)
	asPublisher := nats.UserInfo(source, pubPass)

	// 2. quaycast as the operator's NATS user "quaycast": it creates its streams, buckets and
	// consumers under the generated permissions, or does not start.
	args := []string{"--nats-url", url, "--nats-user", "quaycast", "--nats-password", gwPass, "--data-dir", t.TempDir(),
		"--retry-schedule", "50ms,100ms,200ms", "--shutdown-timeout", "3s", "--log-level", "info"}
	p := serve(t, args...)
	checkNoGatewayViolations(t, natsLog, "at start")

	// 3. Two endpoints that check signatures, one of which replies; the upstream system
	// publishes a few hundred events and follows the replies.
	r := &rig{checker: bench.NewChecker()}
	all := newExtReceiver(t, r, "all", []string{"*"}, false)
	loads := newExtReceiver(t, r, "loads", []string{"cargo_loaded"}, true)
	var refuse atomic.Bool // the dead-letter endpoint's receiver refuses until told otherwise
	refuse.Store(true)
	refused := make(chan string, 16)
	accepted := make(chan string, 16)
	deadEP := extEndpointServer(t, func(w http.ResponseWriter, req *http.Request) {
		to, status := accepted, http.StatusNoContent
		if refuse.Load() {
			to, status = refused, http.StatusBadRequest
		}
		select {
		case to <- req.Header.Get("webhook-id"):
		default: // more than the test reads: it fails on what it did read
		}
		w.WriteHeader(status)
	})

	api := gateway.NewClient(p.api)
	ctx := context.Background()
	for _, rc := range []*extReceiver{all, loads} {
		var out struct{ ID, Secret string }
		if err := api.Do(ctx, "POST", "/v1/endpoints", map[string]any{"url": "http://" + rc.ep.addr + "/hook", "event_types": rc.ep.selectors}, &out); err != nil {
			t.Fatal(err)
		}
		if out.ID == "" || out.Secret == "" {
			t.Fatalf("endpoint %s created without id or secret: %+v", rc.ep.name, out)
		}
		rc.ep.id = out.ID
		rc.secret.Store(&out.Secret)
	}
	var dead struct{ ID string }
	if err := api.Do(ctx, "POST", "/v1/endpoints", map[string]any{"url": deadEP + "/hook", "event_types": []string{"train_departed"}}, &dead); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.api)

	var (
		asyncMu   sync.Mutex
		asyncErrs []error
	)
	pub, err := nats.Connect(url, asPublisher, nats.Name("test-"+source), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		asyncMu.Lock()
		asyncErrs = append(asyncErrs, err)
		asyncMu.Unlock()
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v\n%s", source, err, natsLog.String())
	}
	defer pub.Close()
	violations := func() []error {
		asyncMu.Lock()
		defer asyncMu.Unlock()
		return append([]error(nil), asyncErrs...)
	}

	type reply struct{ subject, body string }
	var (
		repliesMu sync.Mutex
		replies   = map[string]reply{} // by delivery (event) id
	)
	if _, err := pub.Subscribe(attempts.ReplyPrefix+source+".>", func(m *nats.Msg) {
		repliesMu.Lock()
		replies[m.Header.Get("Quaycast-Delivery-Id")] = reply{m.Subject, string(m.Data)}
		repliesMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Subscribe("quaycast.sys.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}

	js, _ := jetstream.New(pub)
	entities := map[string]string{} // event id → entity
	publish := func(id, typ, entity string) {
		t.Helper()
		body := fmt.Appendf(nil, `{"id":%q,"type":%q,"source":%q,"entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{"id":%q}}`, id, typ, source, entity, id)
		r.checker.Published(id, entity)
		for _, ep := range r.endpoints {
			if subjects.Matches(ep.selectors, typ) {
				r.checker.Expect(ep.name, id)
			}
		}
		entities[id] = entity
		msg := nats.NewMsg("evt." + source + "." + typ)
		msg.Data = body
		msg.Header.Set(subjects.HeaderMsgID, id)
		msg.Header.Set(subjects.HeaderEntity, entity)
		deadline := time.Now().Add(30 * time.Second)
		for {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ack, err := js.PublishMsg(pctx, msg)
			cancel()
			if err == nil {
				if ack.Stream != consumer.EventsStream {
					t.Fatalf("event %s stored in %q, want %s", id, ack.Stream, consumer.EventsStream)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %s as %s: %v (async errors %v)", id, source, err, violations())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const events, nEntities = 300, 30
	types := []string{"cargo_loaded", "cargo_gated_in", "hold_applied", "reefer_plugged_in"}
	rnd := rand.New(rand.NewPCG(11, 13))
	for i := range events {
		publish(fmt.Sprintf("ext-%04d", i), types[rnd.IntN(len(types))], fmt.Sprintf("ENT%02d", rnd.IntN(nEntities)))
	}
	extWaitDelivered(t, r, natsLog)
	assertPromise(t, r.wait(t, url, asQuaycast), 0)
	for _, rc := range []*extReceiver{all, loads} {
		if n := rc.badSignatures.Load(); n > 0 {
			t.Errorf("%s: %d deliveries with a signature that does not verify", rc.ep.name, n)
		}
	}

	// Every delivery to the replying endpoint has its reply on
	// quaycast.reply.<source>.<endpoint>.<type>.<entity>, for the upstream system to read.
	wantReplies := r.checker.Report().Endpoints["loads"].Expected
	deadline := time.Now().Add(30 * time.Second)
	for {
		repliesMu.Lock()
		n := len(replies)
		repliesMu.Unlock()
		if n >= wantReplies {
			break
		}
		if line := gatewayViolation(natsLog.String()); line != "" {
			t.Fatalf("nats-server refused quaycast's user: %s", line)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d replies of %d within 30s (async errors %v)", source, n, wantReplies, violations())
		}
		time.Sleep(50 * time.Millisecond)
	}
	repliesMu.Lock()
	for id, rep := range replies {
		want := attempts.ReplyPrefix + source + "." + subjects.EncodeToken(loads.ep.id) + ".cargo_loaded." + subjects.EncodeToken(entities[id])
		if rep.subject != want || rep.body != fmt.Sprintf(`{"received":%q}`, id) {
			t.Errorf("reply to %q: subject %q body %s; want subject %q and the receiver's body", id, rep.subject, rep.body, want)
		}
	}
	repliesMu.Unlock()
	if errs := violations(); len(errs) > 0 {
		t.Errorf("%s's allowed work caused errors: %v", source, errs)
	}

	// 4. What the upstream system must not do: each is refused with a permission violation, and
	// leaves nothing behind.
	gw, err := nats.Connect(url, asQuaycast, nats.Name("test-as-quaycast"))
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gjs, _ := jetstream.New(gw)
	waitViolation := func(subject string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, err := range violations() {
				if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), strconv.Quote(subject)) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Errorf("%s on %q: no permission violation within 10s (async errors %v)", source, subject, violations())
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stored := func(stream, subject string) bool {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := gjs.Stream(sctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info, err := st.Info(sctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatalf("info of %s: %v", stream, err)
		}
		return len(info.State.Subjects) > 0
	}

	foreign := "evt.tms.shipment_booked"
	m := nats.NewMsg(foreign)
	m.Data = []byte(`{"id":"foreign-1","type":"shipment_booked","source":"tms","entity":"S1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`)
	m.Header.Set(subjects.HeaderMsgID, "foreign-1")
	if err := pub.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	waitViolation(foreign)

	del := "$JS.API.STREAM.DELETE." + consumer.EventsStream
	if _, err := pub.Request(del, nil, 2*time.Second); err == nil {
		t.Errorf("%s: %s answered", source, del)
	}
	waitViolation(del)

	kvKey := "$KV." + consumer.EndpointsBucket + ".x"
	if err := pub.Publish(kvKey, []byte(`{"url":"http://127.0.0.1:9/"}`)); err != nil {
		t.Fatal(err)
	}
	waitViolation(kvKey)

	replaySubj, err := subjects.ReplaySubject(loads.ep.id, source, "cargo_loaded")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(replaySubj, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	waitViolation(replaySubj)
	if _, err := pub.SubscribeSync(subjects.ReplayStreamSubjects); err != nil {
		t.Fatal(err)
	}
	waitViolation(subjects.ReplayStreamSubjects)

	if err := pub.Flush(); err != nil { // everything above has reached the server
		t.Fatal(err)
	}
	if _, err := gjs.Stream(ctx, consumer.EventsStream); err != nil {
		t.Errorf("events stream after %s's delete request: %v", source, err)
	}
	for _, s := range []string{"evt.tms.>", subjects.ReplayStreamSubjects} {
		if stored(consumer.EventsStream, s) {
			t.Errorf("the events stream holds messages on %s that %s was not allowed to publish", s, source)
		}
	}
	kv, err := gjs.KeyValue(ctx, consumer.EndpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "x"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("registry key x after %s's publish: %v, want not found", source, err)
	}

	// 5. Publisher credentials are the operator's business with an external NATS.
	var apiErr *gateway.APIError
	if err := api.Do(ctx, "POST", "/v1/publishers", map[string]any{"name": "tms", "sources": []string{"tms"}}, nil); !errors.As(err, &apiErr) ||
		apiErr.Status != http.StatusConflict || !strings.Contains(apiErr.Message, "operator's NATS") {
		t.Errorf("POST /v1/publishers: %v, want a 409 naming the operator's NATS", err)
	}

	// 6. The delivery log, dead letters and their replay, through the API.
	var log struct{ Deliveries []json.RawMessage }
	if err := api.Do(ctx, "GET", "/v1/endpoints/"+loads.ep.id+"/deliveries?limit=10", nil, &log); err != nil {
		t.Fatalf("delivery log: %v", err)
	}
	if len(log.Deliveries) == 0 {
		t.Error("delivery log of the replying endpoint is empty")
	}
	for _, raw := range log.Deliveries {
		var rec struct {
			EndpointID string `json:"endpoint_id"`
			EventID    string `json:"event_id"`
			Outcome    string
		}
		if err := json.Unmarshal(raw, &rec); err != nil || rec.EndpointID != loads.ep.id || rec.Outcome != "delivered" || entities[rec.EventID] == "" {
			t.Errorf("delivery log record %s (%v)", raw, err)
		}
	}

	publish("dl-1", "train_departed", "TRAIN1") // the refusing endpoint dead-letters it at once; "all" takes it
	select {
	case id := <-refused:
		if id != "dl-1" {
			t.Errorf("refusing receiver got %q", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dl-1 not delivered to the refusing receiver within 30s")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		var dls struct {
			DeadLetters []struct {
				EventID    string `json:"event_id"`
				LastStatus int    `json:"last_status"`
			} `json:"dead_letters"`
		}
		if err := api.Do(ctx, "GET", "/v1/endpoints/"+dead.ID+"/dead-letters", nil, &dls); err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		if len(dls.DeadLetters) == 1 && dls.DeadLetters[0].EventID == "dl-1" && dls.DeadLetters[0].LastStatus == http.StatusBadRequest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters of the refusing endpoint within 30s: %+v, want dl-1 after a 400", dls.DeadLetters)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		var failed struct{ Deliveries []json.RawMessage }
		err := api.Do(ctx, "GET", "/v1/endpoints/"+dead.ID+"/deliveries?status=400", nil, &failed)
		if err == nil && len(failed.Deliveries) == 1 {
			break
		}
		if err != nil || len(failed.Deliveries) > 1 || time.Now().After(deadline) {
			t.Fatalf("delivery log of the refused attempt: %v, %d records, want 1", err, len(failed.Deliveries))
		}
		time.Sleep(50 * time.Millisecond)
	}
	refuse.Store(false)
	var replayed struct{ Replayed int }
	if err := api.Do(ctx, "POST", "/v1/endpoints/"+dead.ID+"/dead-letters/replay", map[string]any{}, &replayed); err != nil || replayed.Replayed != 1 {
		t.Fatalf("replay: %v, replayed %d, want 1", err, replayed.Replayed)
	}
	select {
	case id := <-accepted:
		if id != "dl-1" {
			t.Errorf("replayed delivery has webhook-id %q", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replayed dl-1 not delivered within 30s")
	}
	extWaitDelivered(t, r, natsLog)
	assertPromise(t, r.wait(t, url, asQuaycast), 0) // the replay went to its endpoint only

	checkNoGatewayViolations(t, natsLog, "after the run")

	// 7. A graceful stop; and a start on what is now there, where every consumer exists and is
	// reset to its ack floor, then one more event through.
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
	checkNoGatewayViolations(t, natsLog, "after the stop")
	p = serve(t, args...)
	waitReady(t, p.api)
	publish("after-restart", "cargo_loaded", "ENT00")
	extWaitDelivered(t, r, natsLog)
	assertPromise(t, r.wait(t, url, asQuaycast), 0)
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after the second SIGTERM: %v, want 0", err)
	}
	checkNoGatewayViolations(t, natsLog, "after the restart")
}

// extReceiver is a rig endpoint whose receiver verifies signatures and, if reply is set, answers
// with a JSON body.
type extReceiver struct {
	ep            *rigEndpoint
	secret        atomic.Pointer[string]
	badSignatures atomic.Int64
}

func newExtReceiver(t *testing.T, r *rig, name string, selectors []string, reply bool) *extReceiver {
	t.Helper()
	rc := &extReceiver{ep: &rigEndpoint{name: name, selectors: selectors}}
	addr := extEndpointServer(t, func(w http.ResponseWriter, req *http.Request) {
		rc.ep.requests.Add(1)
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		id := req.Header.Get("webhook-id")
		if s := rc.secret.Load(); s == nil || (signature.Verifier{}).Verify(req.Header, body, *s) != nil {
			rc.badSignatures.Add(1)
		}
		r.checker.Received(name, id)
		if reply {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"received":%q}`, id)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	rc.ep.addr = strings.TrimPrefix(addr, "http://")
	r.endpoints = append(r.endpoints, rc.ep)
	return rc
}

// extEndpointServer serves h on a loopback port until the test ends and returns its base URL.
func extEndpointServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func extRandomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw" + hex.EncodeToString(b) // starts with a letter: nats-server reads the variable as a string
}

// extNATSLog is nats-server's stderr, written by the process and read by the test.
type extNATSLog struct {
	testlog.Buffer
	checked int // bytes checkNoGatewayViolations has read (the test's goroutine only)
}

// startConfiguredNATS runs nats-server -c conf with the two passwords in its environment and waits
// until quaycast's user can reach JetStream.
func startConfiguredNATS(t *testing.T, conf, url, gwPass, pubPass string) *extNATSLog {
	t.Helper()
	n := startNATSProcess(t, []string{"QUAYCAST_NATS_PASSWORD=" + gwPass, "TOS_ROTTERDAM_NATS_PASSWORD=" + pubPass}, "-c", conf)
	n.waitJetStream(t, url, nats.UserInfo("quaycast", gwPass))
	return n.log
}

// natsProcess is a nats-server running as a process of its own.
type natsProcess struct {
	cmd    *exec.Cmd
	log    *extNATSLog
	exited chan struct{}
}

// kill stops it with SIGKILL, as a crash would, and waits for it to exit.
func (n *natsProcess) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// startNATSProcess runs nats-server with args and this process's environment plus env; it is
// killed at the end of the test, and its log shown if the test failed.
func startNATSProcess(t *testing.T, env []string, args ...string) *natsProcess {
	t.Helper()
	cmd := exec.Command(natsServer, args...)
	n := &natsProcess{cmd: cmd, log: &extNATSLog{}, exited: make(chan struct{})}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			text := n.log.String()
			for _, line := range strings.Split(text, "\n") {
				if gatewayViolation(line) != "" {
					t.Logf("nats-server refused quaycast's user: %s", line)
				}
			}
			t.Logf("nats-server %q log:\n%s", args, text)
		}
	})
	return n
}

// waitJetStream waits until a user can reach JetStream at url: on a cluster, once it has a
// JetStream leader.
func (n *natsProcess) waitJetStream(t *testing.T, url string, user nats.Option) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-n.exited:
			t.Fatalf("nats-server exited at start:\n%s", n.log.String())
		default:
		}
		nc, err := nats.Connect(url, user, nats.Timeout(time.Second))
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server at %s not ready: %v\n%s", url, err, n.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// extWaitDelivered waits until the receivers got every expected event, and fails at once when
// nats-server refuses quaycast's user meanwhile: a missing permission then says so in seconds
// rather than as a delivery timeout minutes later.
func extWaitDelivered(t *testing.T, r *rig, log *extNATSLog) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.checker.Report().Lost > 0 {
		if line := gatewayViolation(log.String()); line != "" {
			t.Fatalf("nats-server refused quaycast's user (a permission missing from natsauth.GatewayPermissions?): %s\nchecker: %v", line, r.checker.Report())
		}
		if time.Now().After(deadline) {
			t.Fatalf("not everything delivered within 60s: %v", r.checker.Report())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gatewayViolation is the first line of nats-server's log that is a violation not by the
// upstream system (whose refusals the test provokes), or "".
func gatewayViolation(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "Violation") && !strings.Contains(line, `/user:tos-rotterdam"`) {
			return line
		}
	}
	return ""
}

// checkNoGatewayViolations fails the test for every violation in nats-server's log that is not
// the upstream system's (whose refusals the test provokes): quaycast's user, least privileged as
// it is, must never be refused.
func checkNoGatewayViolations(t *testing.T, log *extNATSLog, when string) {
	t.Helper()
	text := log.String()[log.checked:]
	text = text[:strings.LastIndex(text, "\n")+1] // whole lines only
	log.checked += len(text)
	for _, line := range strings.Split(text, "\n") {
		if gatewayViolation(line) != "" {
			t.Errorf("%s, nats-server refused quaycast's user (a permission missing from natsauth.GatewayPermissions?): %s", when, line)
		}
	}
}
