package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/natsauth"
)

// fast makes an in-process gateway retry and recover within a test's patience.
func fast(c *config.Config) {
	c.RetrySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	c.BreakerCooldown = 200 * time.Millisecond
	c.BreakerFailures = 3
	c.DeliveryTimeout = 5 * time.Second
	c.AckWait = 15 * time.Second
	c.ShutdownTimeout = 2 * time.Second
	c.LogLevel = "warn"
}

func scenario(t *testing.T, preset string, o Overrides) Scenario {
	t.Helper()
	if o.Idle == nil {
		o.Idle = ptr(time.Duration(0))
	}
	sc, err := Resolve(preset, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func run(t *testing.T, o Options) *Result {
	t.Helper()
	o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	if o.Configure == nil {
		o.Configure = fast
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	res, err := Run(t.Context(), o)
	if res != nil {
		var b bytes.Buffer
		if err := res.WriteText(&b); err != nil {
			t.Error(err)
		}
		t.Logf("\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkRound asserts the verdict is clean and the figures make sense.
func checkRound(t *testing.T, rd Round, wantDeliveries int) {
	t.Helper()
	if rd.TimedOut || !rd.Verdict.clean() {
		t.Errorf("%s: verdict %+v, timed out %v", rd.Name, rd.Verdict, rd.TimedOut)
	}
	if rd.Deliveries != wantDeliveries || rd.Delivered != wantDeliveries || rd.Latency.Count != uint64(wantDeliveries) {
		t.Errorf("%s: expected %d, delivered %d, latencies %d; want %d", rd.Name, rd.Deliveries, rd.Delivered, rd.Latency.Count, wantDeliveries)
	}
	l := rd.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Max < 60_000) {
		t.Errorf("%s: latency %+v", rd.Name, l)
	}
	if rd.DeliveriesPerSec <= 0 || rd.PublishRate <= 0 || rd.Published != rd.Events || rd.PublishFailures != 0 {
		t.Errorf("%s: %.0f deliveries/s, %.0f published/s, %d of %d published, %d failed", rd.Name, rd.DeliveriesPerSec, rd.PublishRate, rd.Published, rd.Events, rd.PublishFailures)
	}
	s := rd.PerEndpoint.DeliveriesPerSec
	if !(s.Min > 0 && s.Min <= s.Median && s.Median <= s.Max) {
		t.Errorf("%s: per-endpoint spread %+v", rd.Name, s)
	}
	// The gateway's /metrics was read at the round's start and end, for the delivery-log records
	// it dropped (how many depends on the machine: not asserted).
	for _, n := range rd.Notes {
		if strings.Contains(n, "/metrics could not be read") {
			t.Errorf("%s: %s", rd.Name, n)
		}
	}
	// Each endpoint's first delivery comes after the first publish and by the round's last.
	if f := rd.PerEndpoint.FirstDeliveryS; !(f.Min > 0 && f.Min <= f.Median && f.Median <= f.Max && f.Max <= rd.DeliverSeconds) {
		t.Errorf("%s: first delivery per endpoint %+v s, the round delivered for %.3f s", rd.Name, f, rd.DeliverSeconds)
	}
}

// checkPictures asserts the round kept what the HTML report draws: a timeline holding every
// delivery, the latency distribution of all of them, and each checked endpoint's figures.
func checkPictures(t *testing.T, rd Round) {
	t.Helper()
	tl := rd.Timeline
	if tl == nil || len(tl.Points) == 0 || !tl.HarnessMeasured {
		t.Fatalf("%s: timeline %+v", rd.Name, tl)
	}
	sum := 0
	for _, pt := range tl.Points {
		sum += pt.Deliveries
		if pt.Deliveries > 0 && !(pt.P50Ms > 0 && pt.P50Ms <= pt.P99Ms && pt.DeliveriesPerSec > 0) {
			t.Errorf("%s: point %+v", rd.Name, pt)
		}
	}
	if sum < rd.Deliveries || sum > rd.Delivered {
		t.Errorf("%s: the timeline holds %d deliveries; expected %d, delivered %d", rd.Name, sum, rd.Deliveries, rd.Delivered)
	}
	var binned uint64
	for _, b := range rd.LatencyHistogram {
		binned += b.Count
	}
	if binned != rd.Latency.Count {
		t.Errorf("%s: the latency bins hold %d, the latency %d", rd.Name, binned, rd.Latency.Count)
	}
	if len(rd.ByEndpoint) != rd.Checked {
		t.Errorf("%s: %d endpoints' figures, %d checked", rd.Name, len(rd.ByEndpoint), rd.Checked)
	}
	for _, e := range rd.ByEndpoint {
		if e.DeliveriesPerSec <= 0 || e.P99Ms <= 0 {
			t.Errorf("%s: endpoint %+v", rd.Name, e)
		}
	}
}

// The whole harness, in process: 3 endpoints, 300 events over 10 entities, the baseline first,
// every signature verified; nothing lost, duplicated or out of order in either round.
func TestRunSmokeWithBaseline(t *testing.T) {
	t.Parallel()
	sc := scenario(t, "smoke", Overrides{})
	res := run(t, Options{Scenario: sc, Baseline: true, Verify: true})
	if !res.OK || res.Target != TargetInProcess || len(res.Rounds) != 2 {
		t.Fatalf("ok %v, target %s, %d rounds", res.OK, res.Target, len(res.Rounds))
	}
	for _, rd := range res.Rounds {
		checkRound(t, rd, 900)
		checkPictures(t, rd)
		if rd.BadSignatures != 0 || rd.Requests != 900 {
			t.Errorf("%s: %d bad signatures, %d requests", rd.Name, rd.BadSignatures, rd.Requests)
		}
	}
	for id, c := range charts(t, renderHTML(t, res)) {
		if marks(c) == 0 {
			t.Errorf("the report's chart %s of this run draws nothing", id)
		}
	}
	if res.Rounds[0].Pipeline != "baseline" || res.Rounds[1].Pipeline != "gateway" || res.Rounds[1].Registration == nil {
		t.Errorf("rounds %s, %s", res.Rounds[0].Pipeline, res.Rounds[1].Pipeline)
	}
	if r := res.VsBaseline; r == nil || r.DeliveriesPerSec <= 0 || r.P99 <= 0 {
		t.Errorf("ratios %+v", r)
	}
	if res.Strays != 0 {
		t.Errorf("%d stray deliveries", res.Strays)
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"deliveries_per_s"`) || !strings.Contains(string(b), `"receiver_latency":"0s"`) {
		t.Errorf("JSON %s: %v", b, err)
	}
}

// The baseline POSTs with fasthttp's client when asked (--baseline-client fasthttp), the same
// signed requests, every one verified, and says so in its round's notes.
func TestRunBaselineWithFastHTTP(t *testing.T) {
	t.Parallel()
	sc := scenario(t, "smoke", Overrides{})
	res := run(t, Options{Scenario: sc, Baseline: true, BaselineClient: "fasthttp", Verify: true})
	rd := res.Rounds[0]
	if rd.Pipeline != "baseline" {
		t.Fatalf("first round %s, want the baseline", rd.Pipeline)
	}
	checkRound(t, rd, 900)
	if rd.BadSignatures != 0 || rd.Requests != 900 || !slices.ContainsFunc(rd.Notes, func(n string) bool { return strings.Contains(n, "fasthttp") }) {
		t.Errorf("baseline: %d bad signatures, %d requests, notes %q; want 0, 900 and a note naming fasthttp", rd.BadSignatures, rd.Requests, rd.Notes)
	}
}

// An endpoint down while 200 events are published: its breaker opens; once it is back, the
// backlog drains and the drain is timed. Receivers fail 5 % of requests with 503 meanwhile.
func TestRunDownEndpointDrainsAndFlakyRetries(t *testing.T) {
	t.Parallel()
	sc := scenario(t, "smoke", Overrides{Events: ptr(200), Endpoints: ptr(2), Down: ptr(1), Failure: ptr(0.05)})
	res := run(t, Options{Scenario: sc})
	rd := res.Rounds[0]
	checkRound(t, rd, 400)
	if rd.Drain == nil || rd.Drain.Events != 200 || rd.Drain.Seconds <= 0 || rd.Drain.FirstDeliverySecond < 0 {
		t.Errorf("drain %+v", rd.Drain)
	}
	if rd.FailedOnPurpose == 0 || rd.Requests <= 400 {
		t.Errorf("%d requests, %d failed on purpose: the flaky receivers failed nothing", rd.Requests, rd.FailedOnPurpose)
	}
}

// One endpoint hangs past the delivery timeout beside two healthy ones: the run is made with it,
// then without it, twice, and the healthy ones' p99 are compared pair by pair.
func TestRunHangingEndpoint(t *testing.T) {
	t.Parallel()
	sc := scenario(t, "smoke", Overrides{Events: ptr(200), Endpoints: ptr(2), Hanging: ptr(1), Rate: ptr(400.0), Repeat: ptr(2)})
	res := run(t, Options{Scenario: sc})
	want := []string{warmUp, "gateway #1", withoutHanging + " #1", "gateway #2", withoutHanging + " #2"}
	if len(res.Rounds) != len(want) || !res.OK {
		t.Fatalf("%d rounds, ok %v", len(res.Rounds), res.OK)
	}
	for i, rd := range res.Rounds {
		checkRound(t, rd, 400)
		with := i%2 == 1 // after the warm-up: with, without, with, without
		if rd.Name != want[i] || with && (rd.Endpoints != 3 || rd.Checked != 2 || rd.FailedOnPurpose == 0) || !with && rd.Endpoints != 2 {
			t.Errorf("round %d: %s, %d endpoints (%d checked), %d failed on purpose", i, rd.Name, rd.Endpoints, rd.Checked, rd.FailedOnPurpose)
		}
	}
	h := res.Hanging
	if h == nil || len(h.Pairs) != 2 || h.Ratio < h.RatioMin || h.Ratio > h.RatioMax || h.Pairs[1].With != "gateway #2" || h.Pairs[1].Without != withoutHanging+" #2" {
		t.Errorf("hanging effect %+v", h)
	}
	if res.VsBaseline != nil {
		t.Errorf("no baseline ran, but a ratio against one: %+v", res.VsBaseline)
	}
}

// The effect of a hanging endpoint is the pair of rounds with the median ratio, paired in the
// order run; a timed-out round pairs with nothing.
func TestHangingEffectMedianPair(t *testing.T) {
	t.Parallel()
	round := func(name string, p99 float64) Round {
		return Round{Name: name, Pipeline: "gateway", Latency: Latency{P99: p99}}
	}
	res := &Result{Rounds: []Round{
		{Name: "baseline", Pipeline: "baseline", Latency: Latency{P99: 1}},
		round(warmUp, 50),                                        // pairs with nothing
		round("gateway #1", 30), round(withoutHanging+" #1", 10), // 3.0: a warm-up the first round did not absorb
		round("gateway #2", 11), round(withoutHanging+" #2", 10), // 1.1
		round("gateway #3", 12), round(withoutHanging+" #3", 12), // 1.0
	}}
	h := res.hangingEffect()
	if h == nil || h.Ratio != 1.1 || h.WithP99Ms != 11 || h.WithoutP99Ms != 10 || h.RatioMin != 1 || h.RatioMax != 3 || len(h.Pairs) != 3 {
		t.Fatalf("%+v", h)
	}
	res.Rounds[3].TimedOut = true
	if h := res.hangingEffect(); h == nil || len(h.Pairs) != 2 || h.Pairs[1].With != "gateway #3" || h.Pairs[1].Without != withoutHanging+" #3" {
		t.Errorf("with a timed-out round: %+v", h)
	}
}

// A gateway already running, reached by its URLs: the harness registers its endpoints, runs, and
// removes them again.
func TestRunAgainstExistingGateway(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t)
	fast(&cfg)
	g := gatewaytest.Start(t, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	sc := scenario(t, "smoke", Overrides{Events: ptr(100), Endpoints: ptr(2)})
	cred, err := os.ReadFile(natsauth.Path(cfg.DataDir, natsauth.PublisherFile))
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, Options{Scenario: sc, APIURL: g.APIURL(), NATSURL: g.NATSURL(), NATS: gateway.NATSAccess{Token: strings.TrimSpace(string(cred))}})
	if res.Target != TargetRemote || res.GatewayEnd != nil || len(res.Notes) == 0 {
		t.Errorf("target %s, gateway figures %+v, notes %v", res.Target, res.GatewayEnd, res.Notes)
	}
	checkRound(t, res.Rounds[0], 200)
	var list struct{ Endpoints []json.RawMessage }
	if err := gateway.NewClient(g.APIURL()).Do(t.Context(), "GET", "/v1/endpoints", nil, &list); err != nil || len(list.Endpoints) != 0 {
		t.Errorf("after the run the gateway has %d endpoints (%v), want none", len(list.Endpoints), err)
	}
}

func TestOptionsErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	sc := scenario(t, "smoke", Overrides{})
	tests := []struct {
		name  string
		o     Options
		field string
	}{
		{"api without nats-url", Options{Scenario: sc, APIURL: "http://127.0.0.1:8080"}, "nats-url"},
		{"nats-url without api or the binary to start a gateway on it", Options{Scenario: sc, NATSURL: "nats://127.0.0.1:4222"}, "nats-url"},
		{"nats-url without api not on loopback", Options{Scenario: sc, NATSURL: "nats://example.com:4222", Executable: "quaycast"}, "nats-url"},
		{"nats-url without api with a cluster of the harness's own", Options{Scenario: func() Scenario { s := sc; s.Gateways = []int{2}; return s }(), NATSURL: "nats://127.0.0.1:4222", Executable: "quaycast"}, "gateways"},
		{"api not on loopback", Options{Scenario: sc, APIURL: "http://10.1.2.3:8080", NATSURL: "nats://127.0.0.1:4222"}, "api"},
		{"nats not on loopback", Options{Scenario: sc, APIURL: "http://localhost:8080", NATSURL: "nats://127.0.0.1:4222,nats://example.com:4222"}, "nats-url"},
		{"gateway args with an existing gateway", Options{Scenario: func() Scenario { s := sc; s.GatewayArgs = []string{"--max-in-flight=8"}; return s }(), APIURL: "http://127.0.0.1:8080", NATSURL: "nats://127.0.0.1:4222"}, "gateway-arg"},
		{"bad scenario", Options{Scenario: func() Scenario { s := sc; s.Events = 0; return s }()}, "events"},
		{"gateways with an existing gateway", Options{Scenario: func() Scenario { s := sc; s.Gateways = []int{2}; return s }(), APIURL: "http://127.0.0.1:8080", NATSURL: "nats://127.0.0.1:4222", Executable: "quaycast"}, "gateways"},
		{"gateways without the binary to start them", Options{Scenario: func() Scenario { s := sc; s.Gateways = []int{2}; return s }()}, "gateways"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(t.Context(), tc.o)
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %v, want one naming --%s", err, tc.field)
			}
		})
	}
}
