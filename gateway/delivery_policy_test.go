package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/testwait"
)

// request is one request a policy receiver got, whatever it answered.
type request struct {
	ID      string
	Entity  string
	Attempt string // Quaycast-Attempt
	Status  int
	At      time.Time
}

// answerFunc decides a policy receiver's answer to the n-th request (from 1) for event id; it may
// set reply headers.
type answerFunc func(id string, n int, h http.Header) int

// policyReceiver is a receiver whose answer depends on the event. It records every request in
// arrival order; accepted ones also go to the embedded receiver, so ids, byEntity and waitCount
// work as for newReceiver.
type policyReceiver struct {
	*receiver
	reqMu  sync.Mutex
	all    []request
	seen   map[string]int
	answer answerFunc
}

func newPolicyReceiver(t *testing.T, answer answerFunc) *policyReceiver {
	pr := &policyReceiver{receiver: &receiver{}, seen: map[string]int{}, answer: answer}
	pr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct{ Entity string }
		_ = json.Unmarshal(body, &env)
		id := req.Header.Get("webhook-id")
		pr.reqMu.Lock()
		pr.seen[id]++
		n, i, answer := pr.seen[id], len(pr.all), pr.answer
		pr.all = append(pr.all, request{ID: id, Entity: env.Entity, Attempt: req.Header.Get(gateway.HeaderAttempt), At: time.Now()})
		pr.reqMu.Unlock()

		status := answer(id, n, w.Header())
		pr.reqMu.Lock()
		pr.all[i].Status = status
		pr.reqMu.Unlock()
		if status/100 == 2 {
			pr.receiver.mu.Lock()
			pr.got = append(pr.got, received{Header: req.Header.Clone(), Body: body})
			pr.receiver.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(pr.Close)
	return pr
}

// setAnswer replaces how the receiver answers from the next request on.
func (pr *policyReceiver) setAnswer(a answerFunc) {
	pr.reqMu.Lock()
	pr.answer = a
	pr.reqMu.Unlock()
}

// requests lists every request so far, in arrival order.
func (pr *policyReceiver) requests() []request {
	pr.reqMu.Lock()
	defer pr.reqMu.Unlock()
	return slices.Clone(pr.all)
}

// of lists the requests for one event or, with entity set, one entity, in arrival order.
func (pr *policyReceiver) of(id, entity string) []request {
	var out []request
	for _, r := range pr.requests() {
		if (id == "" || r.ID == id) && (entity == "" || r.Entity == entity) {
			out = append(out, r)
		}
	}
	return out
}

// answerAll answers every request with status.
func answerAll(status int) answerFunc { return func(string, int, http.Header) int { return status } }

// breakerWatch collects the breaker transitions the gateway publishes for one endpoint.
type breakerWatch struct {
	mu     sync.Mutex
	events []gateway.BreakerEvent
	raw    []map[string]any
}

func watchBreaker(t *testing.T, g *running, endpointID string) *breakerWatch {
	t.Helper()
	bw := &breakerWatch{}
	g.follow(t, gateway.BreakerSubject+endpointID, func(m *nats.Msg) {
		var ev gateway.BreakerEvent
		var raw map[string]any
		if json.Unmarshal(m.Data, &ev) != nil || json.Unmarshal(m.Data, &raw) != nil {
			raw = map[string]any{"unparseable": string(m.Data)}
		}
		bw.mu.Lock()
		bw.events = append(bw.events, ev)
		bw.raw = append(bw.raw, raw)
		bw.mu.Unlock()
	})
	return bw
}

func (bw *breakerWatch) transitions() ([]gateway.BreakerEvent, []map[string]any) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	return slices.Clone(bw.events), slices.Clone(bw.raw)
}

// count is how many transitions went to state.
func (bw *breakerWatch) count(to string) int {
	evs, _ := bw.transitions()
	n := 0
	for _, ev := range evs {
		if ev.To == to {
			n++
		}
	}
	return n
}

// endpointDetail is what GET /v1/endpoints/{id} shows of an endpoint's delivery state.
type endpointDetail struct {
	ID             string                 `json:"id"`
	Enabled        bool                   `json:"enabled"`
	DisabledReason string                 `json:"disabled_reason"`
	Breaker        *gateway.BreakerStatus `json:"breaker"`
	DeadLetters    *uint64                `json:"dead_letters"`
}

func getEndpoint(t *testing.T, g *running, id string) endpointDetail {
	t.Helper()
	var d endpointDetail
	if err := g.api.Do(context.Background(), "GET", "/v1/endpoints/"+id, nil, &d); err != nil {
		t.Fatalf("get endpoint %s: %v", id, err)
	}
	if d.Breaker == nil || d.DeadLetters == nil {
		t.Fatalf("get endpoint %s: no breaker or dead_letters in %+v", id, d)
	}
	return d
}

// deadLetter is one entry of GET /v1/endpoints/{id}/dead-letters: the record and the event (the
// answers are held to openapi.json, so the names are checked there).
type deadLetter struct {
	consumer.DeadLetter
	Event json.RawMessage `json:"event"`
}

type deadPage struct {
	DeadLetters []deadLetter `json:"dead_letters"`
	NextCursor  string       `json:"next_cursor"`
}

func listDead(t *testing.T, g *running, id, query string) deadPage {
	t.Helper()
	var p deadPage
	if err := g.api.Do(context.Background(), "GET", "/v1/endpoints/"+id+"/dead-letters"+query, nil, &p); err != nil {
		t.Fatalf("list dead letters of %s%s: %v", id, query, err)
	}
	return p
}

func deadIDs(p deadPage) []string {
	var out []string
	for _, dl := range p.DeadLetters {
		out = append(out, dl.EventID)
	}
	slices.Sort(out)
	return out
}

// compactJSON is b without insignificant white space, for comparing JSON that was re-indented.
func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	return buf.Bytes()
}

// checkOrder fails unless got holds, per entity, exactly the ids of want in that order.
func checkOrder(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for entity, ids := range want {
		if !slices.Equal(got[entity], ids) {
			t.Errorf("entity %s: got %v, want %v", entity, got[entity], ids)
		}
	}
	for entity, ids := range got {
		if _, ok := want[entity]; !ok {
			t.Errorf("entity %s: got %v, want nothing", entity, ids)
		}
	}
}

// An endpoint whose receiver hangs past the delivery timeout never holds up another endpoint:
// the healthy one gets every event, in order per entity, while the hanging one's breaker opens.
// Nothing here is timed: the healthy endpoint is compared by count with what was published (its
// baseline), with how few requests the hanging one was sent meanwhile, and with how many of its
// deliveries arrived while a request to the hanging one was still waiting.
func TestHangingEndpointDoesNotSlowOthers(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	// Long enough that the healthy receiver answers within it on a loaded machine: at 1 s, its
	// first replies (new connections, -race, stress-ng) came late, were retried and arrived twice.
	cfg.DeliveryTimeout = 3 * time.Second
	cfg.BreakerCooldown = time.Second

	var hangArrivals, hangWaiting atomic.Int64
	testDone := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Read the body first: only then does the server notice when the gateway gives up.
		_, _ = io.Copy(io.Discard, req.Body)
		hangArrivals.Add(1)
		hangWaiting.Add(1)
		defer hangWaiting.Add(-1)
		select { // far past the delivery timeout; give up when the gateway does or the test ends
		case <-time.After(4 * cfg.DeliveryTimeout):
		case <-req.Context().Done():
		case <-testDone:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(testDone) }) // runs before hang.Close, which waits for handlers
	var alongside atomic.Int64            // healthy deliveries made while the hanging endpoint waited
	healthy := newPolicyReceiver(t, func(string, int, http.Header) int {
		if hangWaiting.Load() > 0 {
			alongside.Add(1)
		}
		return http.StatusOK
	})

	g := startGateway(t, cfg)
	epH := g.addEndpoint(t, map[string]any{"url": hang.URL, "event_types": []string{"*"}})
	epG := g.addEndpoint(t, map[string]any{"url": healthy.URL, "event_types": []string{"*"}})
	g.waitReady(t)

	const events, entities = 200, 20
	want := map[string][]string{}
	publishNATS(t, g, spread(want, "hang-%03d", 0, events, entities)...)

	healthy.waitCount(t, events)
	hangSeen := hangArrivals.Load()
	t.Logf("healthy endpoint has all %d events, %d of them delivered while a request to the hanging one waited; the hanging one was sent %d requests",
		events, alongside.Load(), hangSeen)
	if hangSeen >= events {
		t.Errorf("the hanging endpoint was sent %d requests before the healthy one had its %d events: want far fewer", hangSeen, events)
	}
	// Both endpoints get the events at the same time, and the hanging one's first requests wait a
	// whole delivery timeout: unless the healthy endpoint waits behind them, most of its
	// deliveries happen meanwhile.
	if n := alongside.Load(); n < events/2 {
		t.Errorf("only %d of %d deliveries to the healthy endpoint were made while a request to the hanging one waited: it waited behind them", n, events)
	}
	waitDrained(t, g, epG.ID)
	checkOrder(t, healthy.byEntity(t), want)
	if n := len(healthy.requests()); n != events {
		t.Errorf("healthy endpoint got %d requests, want exactly %d", n, events)
	}
	testwait.For(t, 20*time.Second, "hanging endpoint's breaker open", func() bool {
		return getEndpoint(t, g, epH.ID).Breaker.State == "open"
	})
	if st := getEndpoint(t, g, epG.ID).Breaker; st.State != "closed" {
		t.Errorf("healthy endpoint's breaker is %+v, want closed", st)
	}
}

// While the breaker is open no POSTs are made and no attempts are spent; the transitions are
// published on NATS; when the receiver recovers everything is delivered in order.
func TestBreakerOpensAndResumesWithoutLoss(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = 300 * time.Millisecond
	recv := newPolicyReceiver(t, answerAll(http.StatusServiceUnavailable))

	g := startGateway(t, cfg)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	watch := watchBreaker(t, g, ep.ID)

	const events, entities = 30, 5
	want := map[string][]string{}
	publishNATS(t, g, spread(want, "br-%02d", 0, events, entities)...)

	testwait.For(t, 20*time.Second, "breaker open published", func() bool { return watch.count("open") >= 1 })
	testwait.For(t, 20*time.Second, "GET shows the breaker open", func() bool {
		return getEndpoint(t, g, ep.ID).Breaker.State == "open"
	})
	// Keep failing through two more probes, each of which opens the breaker again.
	testwait.For(t, 20*time.Second, "two failed probes", func() bool { return watch.count("open") >= 3 })
	recv.setAnswer(answerAll(http.StatusOK))

	recv.waitCount(t, events)
	testwait.For(t, 20*time.Second, "breaker closed published", func() bool { return watch.count("closed") >= 1 })
	waitDrained(t, g, ep.ID)
	checkOrder(t, recv.byEntity(t), want)

	evsSeen, raw := watch.transitions()
	t.Logf("breaker transitions: %v", raw)
	if first := evsSeen[0]; first.From != "closed" || first.To != "open" || first.EndpointID != ep.ID || first.At.IsZero() {
		t.Errorf("first transition %+v, want closed to open for %s, with a time", first, ep.ID)
	}
	if last := evsSeen[len(evsSeen)-1]; last.To != "closed" {
		t.Errorf("last transition %+v, want to closed", last)
	}
	for _, ev := range evsSeen { // why it opened, each time: the receiver's answer
		if want := map[bool]string{true: "receiver answered 503"}[ev.To == "open"]; ev.Cause != want {
			t.Errorf("transition %s to %s: cause %q, want %q", ev.From, ev.To, ev.Cause, want)
		}
	}
	for _, r := range raw {
		for _, k := range []string{"endpoint_id", "from", "to", "at"} {
			if _, ok := r[k]; !ok {
				t.Errorf("transition %v has no %q", r, k)
			}
		}
	}

	// While failing, POSTs were made only in the closed state before it opened (at most the
	// failures that open it, plus one in flight per entity) and as one probe per half-open.
	failed := 0
	for _, r := range recv.requests() {
		if r.Status == http.StatusServiceUnavailable {
			failed++
		}
	}
	bound := int(cfg.BreakerFailures) + entities + watch.count("half-open")
	t.Logf("%d requests answered 503; the breaker allows at most %d", failed, bound)
	if failed < int(cfg.BreakerFailures) || failed > bound {
		t.Errorf("%d requests answered 503, want from %d to %d (failures that open it + one per entity + one per probe)",
			failed, cfg.BreakerFailures, bound)
	}
	// Attempts count POSTs only: each event's attempts are numbered 1, 2, ... without gaps.
	for _, id := range recv.ids() {
		for i, r := range recv.of(id, "") {
			if r.Attempt != fmt.Sprint(i+1) {
				t.Errorf("event %s: request %d says attempt %s, want %d", id, i+1, r.Attempt, i+1)
			}
		}
	}
	if d := getEndpoint(t, g, ep.ID); d.Breaker.State != "closed" || *d.DeadLetters != 0 {
		t.Errorf("after recovery: breaker %q, %d dead letters; want closed, 0", d.Breaker.State, *d.DeadLetters)
	}
}

// Events that fail MaxAttempts times are dead-lettered and their entity moves on; dead letters are
// listed, paged, replayed and purged through the API.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxAttempts = 3
	cfg.BreakerFailures = 50 // the breaker is not under test here
	var deadAtOK2 atomic.Value
	var deadURL atomic.Value // of this endpoint's dead letters, once known
	api := checkedClient(t, nil)
	failBad := func(id string, _ int, _ http.Header) int {
		if id == "ok-2" { // what was dead-lettered when the event behind bad-1 arrived
			if u, _ := deadURL.Load().(string); u != "" {
				if resp, err := api.Get(u); err == nil {
					var p deadPage
					_ = json.NewDecoder(resp.Body).Decode(&p)
					resp.Body.Close()
					deadAtOK2.Store(deadIDs(p))
				}
			}
		}
		if strings.HasPrefix(id, "bad-") {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	recv := newPolicyReceiver(t, failBad)

	g := startGateway(t, cfg)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	deadURL.Store(g.APIURL() + "/v1/endpoints/" + ep.ID + "/dead-letters")
	ctx := context.Background()

	byID := map[string][]byte{}
	ev := func(id, entity string) []byte {
		byID[id] = event(id, "cargo_loaded", entity)
		return byID[id]
	}
	publishNATS(t, g, ev("ok-1", "DL1"), ev("bad-1", "DL1"), ev("bad-2", "DL2"), ev("ok-2", "DL1"), ev("ok-3", "DL2"))

	recv.waitCount(t, 3)
	waitDrained(t, g, ep.ID)
	checkOrder(t, recv.byEntity(t), map[string][]string{"DL1": {"ok-1", "ok-2"}, "DL2": {"ok-3"}})
	// Each entity's requests: the failing event exactly MaxAttempts times, then the next one.
	for entity, want := range map[string][]string{
		"DL1": {"ok-1", "bad-1", "bad-1", "bad-1", "ok-2"},
		"DL2": {"bad-2", "bad-2", "bad-2", "ok-3"},
	} {
		var got []string
		for _, r := range recv.of("", entity) {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("entity %s: requests %v, want %v", entity, got, want)
		}
	}
	if got, _ := deadAtOK2.Load().([]string); !slices.Contains(got, "bad-1") {
		t.Errorf("when ok-2 arrived the dead letters were %v, want bad-1 among them", got)
	}

	// The list.
	page := listDead(t, g, ep.ID, "")
	if got := deadIDs(page); !slices.Equal(got, []string{"bad-1", "bad-2"}) {
		t.Fatalf("dead letters %v, want [bad-1 bad-2]", got)
	}
	if page.NextCursor != "" {
		t.Errorf("a complete page has next_cursor %q", page.NextCursor)
	}
	for _, dl := range page.DeadLetters {
		if dl.Attempts != 3 || dl.LastStatus != 500 || dl.Reason == "" || dl.LastError == "" || dl.Type != "cargo_loaded" || dl.DeadAt.IsZero() {
			t.Errorf("dead letter %+v: want attempts 3, last_status 500, a reason and error, type cargo_loaded, dead_at", dl)
		}
		if want := map[string]string{"bad-1": "DL1", "bad-2": "DL2"}[dl.EventID]; dl.Entity != want {
			t.Errorf("dead letter %s: entity %q, want %q", dl.EventID, dl.Entity, want)
		}
		if !bytes.Equal(compactJSON(t, dl.Event), byID[dl.EventID]) {
			t.Errorf("dead letter %s: event %s, published %s", dl.EventID, dl.Event, byID[dl.EventID])
		}
	}
	if n := *getEndpoint(t, g, ep.ID).DeadLetters; n != 2 {
		t.Errorf("endpoint shows %d dead letters, want 2", n)
	}

	// Paging.
	first := listDead(t, g, ep.ID, "?limit=1")
	if len(first.DeadLetters) != 1 || first.NextCursor == "" {
		t.Fatalf("first page of 1: %+v, want one entry and a next_cursor", first)
	}
	second := listDead(t, g, ep.ID, "?limit=1&after="+first.NextCursor)
	if len(second.DeadLetters) != 1 || second.NextCursor != "" {
		t.Fatalf("second page of 1: %+v, want one entry and no next_cursor", second)
	}
	if got := []string{first.DeadLetters[0].EventID, second.DeadLetters[0].EventID}; !slices.Equal(got, []string{page.DeadLetters[0].EventID, page.DeadLetters[1].EventID}) {
		t.Errorf("pages hold %v, want the full list's %v in its order", got, deadIDs(page))
	}

	// Bad requests and unknown endpoints.
	base := "/v1/endpoints/" + ep.ID + "/dead-letters"
	for _, tc := range []struct {
		name, method, path, body string
		wantStatus               int
		wantField                string
	}{
		{"limit zero", "GET", base + "?limit=0", "", 400, "limit"},
		{"limit not a number", "GET", base + "?limit=abc", "", 400, "limit"},
		{"limit too large", "GET", base + "?limit=1001", "", 400, "limit"},
		{"after not a cursor", "GET", base + "?after=x", "", 400, "after"},
		{"after negative", "GET", base + "?after=-1", "", 400, "after"},
		{"replay unknown field", "POST", base + "/replay", `{"ids":["bad-1"]}`, 400, "ids"},
		{"replay ids not a list", "POST", base + "/replay", `{"event_ids":"bad-1"}`, 400, "event_ids"},
		{"replay since not a time", "POST", base + "/replay", `{"since":"yesterday"}`, 400, "since"},
		{"replay until before since", "POST", base + "/replay", `{"since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}`, 400, "until"},
		{"replay entities not a list", "POST", base + "/replay", `{"entities":"DL1"}`, 400, "entities"},
		{"list unknown endpoint", "GET", "/v1/endpoints/ep_doesnotexist/dead-letters", "", 404, "id"},
		{"replay unknown endpoint", "POST", "/v1/endpoints/ep_doesnotexist/dead-letters/replay", `{}`, 404, "id"},
		{"purge unknown endpoint", "DELETE", "/v1/endpoints/ep_doesnotexist/dead-letters", "", 404, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, g, tc.method, tc.path, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tc.wantStatus, body)
			}
			if got, _ := body["field"].(string); got != tc.wantField {
				t.Errorf("field %q, want %q (%v)", got, tc.wantField, body)
			}
		})
	}
	if got := deadIDs(listDead(t, g, ep.ID, "")); !slices.Equal(got, []string{"bad-1", "bad-2"}) {
		t.Fatalf("after the refused requests the dead letters are %v, want [bad-1 bad-2]", got)
	}

	// Replay one, then the rest, to a receiver that now takes everything.
	recv.setAnswer(answerAll(http.StatusOK))
	checkReplayed := func(id string) {
		t.Helper()
		testwait.For(t, 20*time.Second, id+" replayed", func() bool { return slices.Contains(recv.ids(), id) })
		for _, r := range recv.accepted() {
			if r.Header.Get("webhook-id") != id {
				continue
			}
			if !bytes.Equal(r.Body, byID[id]) {
				t.Errorf("replayed %s: body %q, published %q", id, r.Body, byID[id])
			}
			verify(t, r, ep.Secret)
		}
	}
	for _, pick := range []string{
		`{"since":"2999-01-01T00:00:00Z"}`,           // dead-lettered later: none
		`{"until":"2000-01-01T00:00:00Z"}`,           // earlier: none
		`{"entities":["DL3"]}`,                       // another entity: none
		`{"event_ids":["bad-1"],"entities":["DL2"]}`, // each part must pass: none
	} {
		if status, body := call(t, g, "POST", base+"/replay", pick); status != http.StatusAccepted || body["replayed"] != float64(0) {
			t.Fatalf("replay %s: %d %v, want 202, replayed 0", pick, status, body)
		}
	}
	status, body := call(t, g, "POST", base+"/replay", `{"event_ids":["bad-1","bad-2"],"entities":["DL2"],"since":"2000-01-01T00:00:00Z","until":"2999-01-01T00:00:00Z"}`)
	if status != http.StatusAccepted || body["replayed"] != float64(1) {
		t.Fatalf("replay entity DL2: %d %v, want 202, replayed 1", status, body)
	}
	checkReplayed("bad-2")
	if got := deadIDs(listDead(t, g, ep.ID, "")); !slices.Equal(got, []string{"bad-1"}) {
		t.Errorf("after replaying bad-2 the dead letters are %v, want [bad-1]", got)
	}
	status, body = call(t, g, "POST", base+"/replay", "")
	if status != http.StatusAccepted || body["replayed"] != float64(1) {
		t.Fatalf("replay all: %d %v, want 202, replayed 1", status, body)
	}
	checkReplayed("bad-1")
	waitDrained(t, g, ep.ID)
	if got := listDead(t, g, ep.ID, ""); len(got.DeadLetters) != 0 {
		t.Errorf("after replaying all the dead letters are %v, want none", deadIDs(got))
	}
	if n := *getEndpoint(t, g, ep.ID).DeadLetters; n != 0 {
		t.Errorf("endpoint shows %d dead letters after replaying all, want 0", n)
	}
	if got, want := slices.Sorted(slices.Values(recv.ids())), []string{"bad-1", "bad-2", "ok-1", "ok-2", "ok-3"}; !slices.Equal(got, want) {
		t.Errorf("accepted %v, want each of %v once", got, want)
	}

	// Purge.
	recv.setAnswer(failBad)
	publishNATS(t, g, ev("bad-3", "DL3"))
	testwait.For(t, 20*time.Second, "bad-3 dead-lettered", func() bool {
		return slices.Equal(deadIDs(listDead(t, g, ep.ID, "")), []string{"bad-3"})
	})
	if status, body := call(t, g, "DELETE", base, ""); status != http.StatusNoContent {
		t.Fatalf("purge: %d %v, want 204", status, body)
	}
	if got := listDead(t, g, ep.ID, ""); len(got.DeadLetters) != 0 {
		t.Errorf("after purge the dead letters are %v, want none", deadIDs(got))
	}
	if n := *getEndpoint(t, g, ep.ID).DeadLetters; n != 0 {
		t.Errorf("endpoint shows %d dead letters after purge, want 0", n)
	}
	status, body = call(t, g, "POST", base+"/replay", "")
	if status != http.StatusAccepted || body["replayed"] != float64(0) {
		t.Errorf("replay after purge: %d %v, want 202, replayed 0", status, body)
	}
	if err := g.api.Do(ctx, "GET", "/v1/endpoints/"+ep.ID, nil, nil); err != nil {
		t.Errorf("endpoint after purge: %v", err)
	}
}

// A 4xx refusal dead-letters the event after its one attempt; the entity moves on.
func TestRefusedEventIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	recv := newPolicyReceiver(t, func(id string, _ int, _ http.Header) int {
		if strings.HasPrefix(id, "refuse-") {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	})
	g := startGateway(t, testConfig(t))
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	refused := event("refuse-1", "cargo_loaded", "R1")
	publishNATS(t, g, event("a-1", "cargo_loaded", "R1"), refused, event("a-2", "cargo_loaded", "R1"))

	recv.waitCount(t, 2)
	waitDrained(t, g, ep.ID)
	checkOrder(t, recv.byEntity(t), map[string][]string{"R1": {"a-1", "a-2"}})
	var got []string
	for _, r := range recv.requests() {
		got = append(got, r.ID)
	}
	if want := []string{"a-1", "refuse-1", "a-2"}; !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v: one attempt of the refused event", got, want)
	}
	page := listDead(t, g, ep.ID, "")
	if len(page.DeadLetters) != 1 {
		t.Fatalf("dead letters %v, want [refuse-1]", deadIDs(page))
	}
	dl := page.DeadLetters[0]
	if dl.EventID != "refuse-1" || dl.Attempts != 1 || dl.LastStatus != 422 || !strings.Contains(dl.Reason, "422") {
		t.Errorf("dead letter %+v: want refuse-1, attempts 1, last_status 422, a reason naming 422", dl)
	}
	if !bytes.Equal(compactJSON(t, dl.Event), refused) {
		t.Errorf("dead letter event %s, published %s", dl.Event, refused)
	}
}

// A 410 Gone disables the endpoint and holds the event (not a dead letter); nothing is delivered
// while it is disabled; enabling it delivers the held event and the later ones in order.
func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	var status atomic.Int64
	status.Store(http.StatusGone)
	gone := newPolicyReceiver(t, func(string, int, http.Header) int { return int(status.Load()) })
	clock := newReceiver(t) // a healthy endpoint on the same events: shows they were routed

	g, logs := startGatewayLogged(t, testConfig(t))
	ep := g.addEndpoint(t, map[string]any{"url": gone.URL, "event_types": []string{"*"}})
	epClock := g.addEndpoint(t, map[string]any{"url": clock.URL, "event_types": []string{"*"}})
	g.waitReady(t)

	publishNATS(t, g, event("g-1", "cargo_loaded", "E1"))
	testwait.For(t, 20*time.Second, "endpoint disabled", func() bool { return !getEndpoint(t, g, ep.ID).Enabled })
	d := getEndpoint(t, g, ep.ID)
	if !strings.Contains(d.DisabledReason, "410") {
		t.Errorf("disabled_reason %q, want it to mention 410", d.DisabledReason)
	}
	// The manager logs this once the endpoint's worker has stopped.
	testwait.For(t, 20*time.Second, "worker stopped", func() bool {
		return strings.Contains(logs.String(), "endpoint disabled: delivery paused")
	})

	publishNATS(t, g, event("g-2", "cargo_loaded", "E1"), event("g-3", "cargo_loaded", "E1"), event("h-1", "cargo_loaded", "E2"))
	clock.waitCount(t, 4)
	waitDrained(t, g, epClock.ID)
	if got := gone.requests(); len(got) != 1 || got[0].ID != "g-1" || got[0].Status != http.StatusGone {
		t.Errorf("requests to the disabled endpoint %+v, want only g-1 answered 410", got)
	}
	if d := getEndpoint(t, g, ep.ID); *d.DeadLetters != 0 {
		t.Errorf("%d dead letters, want 0: a Gone event is held, not dead-lettered", *d.DeadLetters)
	}

	status.Store(http.StatusOK)
	code, body := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"enabled": true}`)
	if code != http.StatusOK || body["enabled"] != true || body["disabled_reason"] != nil {
		t.Errorf("enable: %d %v, want 200, enabled, no disabled_reason", code, body)
	}
	if d := getEndpoint(t, g, ep.ID); !d.Enabled || d.DisabledReason != "" {
		t.Errorf("after enabling: %+v, want enabled without disabled_reason", d)
	}
	gone.waitCount(t, 4)
	waitDrained(t, g, ep.ID)
	checkOrder(t, gone.byEntity(t), map[string][]string{"E1": {"g-1", "g-2", "g-3"}, "E2": {"h-1"}})
}

// A Retry-After on 429 and 503 is waited out before the next attempt.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	recv := newPolicyReceiver(t, func(id string, n int, h http.Header) int {
		if n > 1 {
			return http.StatusOK
		}
		h.Set("Retry-After", "1")
		if id == "ra-429" {
			return http.StatusTooManyRequests
		}
		return http.StatusServiceUnavailable
	})
	g := startGateway(t, testConfig(t))
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	publishNATS(t, g, event("ra-429", "cargo_loaded", "RA1"), event("ra-503", "cargo_loaded", "RA2"))

	recv.waitCount(t, 2)
	waitDrained(t, g, ep.ID)
	for _, id := range []string{"ra-429", "ra-503"} {
		reqs := recv.of(id, "")
		if len(reqs) != 2 {
			t.Errorf("%s: %d requests, want 2", id, len(reqs))
			continue
		}
		// The schedule alone would retry after 50ms ± 20 %.
		if gap := reqs[1].At.Sub(reqs[0].At); gap < 990*time.Millisecond {
			t.Errorf("%s: second attempt %s after the first, want at least the 1s of Retry-After", id, gap)
		}
		if reqs[1].Attempt != "2" {
			t.Errorf("%s: second request says attempt %s, want 2", id, reqs[1].Attempt)
		}
	}
}

// No log line, at any level, shows an endpoint's secret or its custom header values, through
// deliveries, failures, transport errors, an open breaker, dead letters, a 410 and API calls.
func TestLogsNeverShowSecretsOrHeaders(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxAttempts = 2
	cfg.BreakerFailures = 2
	cfg.BreakerCooldown = 200 * time.Millisecond

	mark := func(what string) string { return what + "-" + rand.Text() }
	token, apiKey, tenant, token2 := mark("tok"), mark("key"), mark("tenant"), mark("tok2")
	headers := map[string]string{"Authorization": "Bearer " + token, "X-Api-Key": apiKey, "X-Tenant": tenant}
	ownSecret, err := signature.NewSecret(signature.Standard)
	if err != nil {
		t.Fatal(err)
	}

	ok := newPolicyReceiver(t, func(id string, _ int, _ http.Header) int {
		switch {
		case strings.HasPrefix(id, "bad-"):
			return http.StatusInternalServerError
		case strings.HasPrefix(id, "refuse-"):
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	})
	gone := newReceiver(t)
	gone.setStatus(http.StatusGone)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // connections to it are refused

	g, logs := startGatewayLogged(t, cfg)
	epOK := g.addEndpoint(t, map[string]any{"url": ok.URL, "event_types": []string{"*"}, "headers": headers})
	epGone := g.addEndpoint(t, map[string]any{"url": gone.URL, "event_types": []string{"*"}, "headers": headers})
	epDown := g.addEndpoint(t, map[string]any{"url": closed.URL + "/hook", "event_types": []string{"*"}, "headers": headers, "secret": ownSecret})
	g.waitReady(t)

	publishNATS(t, g,
		event("ok-1", "cargo_loaded", "L1"), event("bad-1", "cargo_loaded", "L2"),
		event("refuse-1", "cargo_loaded", "L3"), event("ok-2", "cargo_loaded", "L1"))
	ok.waitCount(t, 2)
	testwait.For(t, 20*time.Second, "dead letters of the failing and the down endpoint", func() bool {
		return *getEndpoint(t, g, epOK.ID).DeadLetters == 2 && *getEndpoint(t, g, epDown.ID).DeadLetters == 4
	})
	testwait.For(t, 20*time.Second, "gone endpoint disabled", func() bool { return !getEndpoint(t, g, epGone.ID).Enabled })
	if code, body := call(t, g, "PATCH", "/v1/endpoints/"+epOK.ID, `{"headers":{"Authorization":"Bearer `+token2+`"}}`); code != 200 {
		t.Errorf("patch headers: %d %v", code, body)
	}
	publishNATS(t, g, event("ok-3", "cargo_loaded", "L1"))
	ok.waitCount(t, 3)
	if code, body := call(t, g, "DELETE", "/v1/endpoints/"+epDown.ID, ""); code != http.StatusNoContent {
		t.Errorf("delete: %d %v", code, body)
	}
	g.Stop(t)

	out := logs.String()
	for _, want := range []string{"delivery failed", "dead-lettered", "circuit breaker", "endpoint disabled", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs have no %q: the run did not cover what it should", want)
		}
	}
	for name, leak := range map[string]string{
		"generated secret": epOK.Secret, "its key": strings.TrimPrefix(epOK.Secret, "whsec_"),
		"given secret": ownSecret, "given key": strings.TrimPrefix(ownSecret, "whsec_"),
		"authorization value": "Bearer " + token, "token": token, "patched token": token2,
		"api key": apiKey, "tenant header": tenant,
	} {
		for i, line := range strings.Split(out, "\n") {
			if strings.Contains(line, leak) {
				t.Errorf("log line %d shows the %s: %s", i+1, name, line)
			}
		}
	}
}
