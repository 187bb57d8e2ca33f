package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testhttp"
)

// `quaycast bench` with the real binary: it starts a gateway of its own as a child process,
// measures it, and prints a clean verdict as JSON.
func TestBenchStartsItsOwnGateway(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(file, []byte("preset: smoke\nevents: 200\nentities: 20\nidle: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	cmd := exec.Command(binary, "bench", "--scenario", file, "--endpoints", "2", "--json", "--timeout", "2m", "--verify-signatures", "--html", page)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("bench: %v\n%s\n%s", err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res struct {
		OK         bool    `json:"ok"`
		Target     string  `json:"target"`
		GatewayPID int     `json:"gateway_pid"`
		StopS      float64 `json:"gateway_stop_s"`
		Scenario   struct {
			Name   string `json:"name"`
			Events int    `json:"events"`
		} `json:"scenario"`
		Rounds []struct {
			Delivered        int                   `json:"delivered"`
			DeliveriesPerSec float64               `json:"deliveries_per_s"`
			Latency          struct{ P99 float64 } `json:"latency_ms"`
			Verdict          struct {
				Lost, Duplicates int
				OutOfOrder       int `json:"out_of_order"`
			} `json:"verdict"`
			Idle *struct {
				RSSMiB float64 `json:"rss_mib"`
			} `json:"idle"`
			Gateway *struct {
				CPUSeconds float64 `json:"cpu_s"`
				PeakRSSMiB float64 `json:"peak_rss_mib"`
			} `json:"gateway"`
			Timeline *struct {
				GatewayMeasured bool `json:"gateway_measured"`
				Points          []struct {
					GatewayRSSMiB float64 `json:"gateway_rss_mib"`
				} `json:"points"`
			} `json:"timeline"`
		} `json:"rounds"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !res.OK || res.Target != "child" || res.GatewayPID == 0 || res.Scenario.Name != "smoke" || res.Scenario.Events != 200 || len(res.Rounds) != 1 {
		t.Fatalf("result %s", out)
	}
	rd := res.Rounds[0]
	if rd.Delivered != 400 || rd.DeliveriesPerSec <= 0 || rd.Latency.P99 <= 0 || rd.Verdict.Lost+rd.Verdict.Duplicates+rd.Verdict.OutOfOrder != 0 {
		t.Errorf("round %s", out)
	}
	if rd.Gateway == nil || rd.Gateway.CPUSeconds <= 0 || rd.Gateway.PeakRSSMiB <= 0 || rd.Idle == nil || rd.Idle.RSSMiB <= 0 {
		t.Errorf("no gateway CPU or memory figures: %s", out)
	}
	if res.StopS <= 0 || res.StopS >= 30 {
		t.Errorf("gateway_stop_s %v: want the time from SIGTERM to the child's exit", res.StopS)
	}
	if tl := rd.Timeline; tl == nil || !tl.GatewayMeasured || len(tl.Points) == 0 || tl.Points[len(tl.Points)-1].GatewayRSSMiB <= 0 {
		t.Errorf("no timeline with the gateway's figures: %s", out)
	}
	checkHTMLReport(t, page, out)
}

// checkHTMLReport checks the page `bench --html` wrote, and that `bench --from-json` makes the
// same page from the result the run printed with --json.
func checkHTMLReport(t *testing.T, page string, result []byte) {
	t.Helper()
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Verdict: OK", `id="deliveries-over-time"`, `id="cpu-over-time"`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML report has no %q", want)
		}
	}
	// The round's lines (a dot when it was shorter than two samples), the gateway process's, and
	// the round's bars are drawn.
	for _, want := range []string{`data-series="gateway"><(polyline|circle)`, `data-series="gateway: gateway"><(polyline|circle)`, `data-series="gateway" fill="#[0-9a-f]{6}"><rect`} {
		if !regexp.MustCompile(want).Match(html) {
			t.Errorf("the HTML report draws nothing for %s", want)
		}
	}
	dir := t.TempDir()
	saved, again := filepath.Join(dir, "result.json"), filepath.Join(dir, "again.html")
	if err := os.WriteFile(saved, result, 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(binary, "bench", "--from-json", saved, "--html", again).CombinedOutput()
	if err != nil || !strings.Contains(string(text), "verdict: OK") {
		t.Fatalf("bench --from-json: %v\n%s", err, text)
	}
	if rebuilt, err := os.ReadFile(again); err != nil || string(rebuilt) != string(html) {
		t.Errorf("the page from the saved JSON differs from the run's (%v)", err)
	}
}

// --pprof-listen serves the harness's own profiles while it runs: its goroutines are the harness's
// (the receivers', the publisher's), not the gateway's, and the listener closes with the run.
func TestBenchServesItsOwnProfiles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bench", "--preset", "smoke", "--events", "3000", "--rate", "500",
		"--pprof-listen", "127.0.0.1:0", "--no-progress", "--json")
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var base string
	lines := bufio.NewScanner(stderr)
	for base == "" && lines.Scan() {
		if m := regexp.MustCompile(`profiles: (http://127\.0\.0\.1:\d+/debug/pprof/)$`).FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if base == "" {
		_ = cmd.Wait()
		t.Fatal("bench printed no URL of its profiles on stderr")
	}
	// The run lasts about 6 s (3,000 events at 500/s): asked at once, the harness is running.
	code, body, err := testhttp.Get(base + "goroutine?debug=2")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "quaycast/bench.") {
		t.Errorf("GET %sgoroutine?debug=2 during the run: %d, %v, %.300q; want 200 with the harness's goroutines", base, code, err, body)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	if _, _, err := testhttp.Get(base); err == nil {
		t.Error("the harness's profiles are still served after the run")
	}
}

func TestBenchFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	notResult := filepath.Join(t.TempDir(), "not-a-result.json")
	if err := os.WriteFile(notResult, []byte(`{"events": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--events", "0"}, "--events"},
		{[]string{"--preset", "nope"}, "--preset"},
		{[]string{"--types", "cargo_loaded,teleported"}, "--types"},
		{[]string{"--api", "http://127.0.0.1:8080"}, "--nats-url"},
		{[]string{"--api", "http://192.0.2.1:8080", "--nats-url", "nats://127.0.0.1:4222"}, "--api"},
		{[]string{"--timeout", "10ms"}, "--timeout"},
		{[]string{"--pprof-listen", "0.0.0.0:6061"}, "--pprof-listen"}, // profiles have no access control
		{[]string{"--pprof-listen", "127.0.0.1"}, "--pprof-listen"},
		{[]string{"--gateways", "0"}, "--gateways"},
		{[]string{"--gateways", "2,1"}, "--gateways"},
		{[]string{"--gateways", "2", "--api", "http://127.0.0.1:8080", "--nats-url", "nats://127.0.0.1:4222"}, "--gateways"},
		{[]string{"--from-json", notResult}, "--from-json"},
		{[]string{"--from-json", notResult, "--preset", "smoke"}, "--from-json"},
		{[]string{"--from-json", filepath.Join(t.TempDir(), "missing.json")}, "--from-json"},
	} {
		out, err := exec.Command(binary, append([]string{"bench"}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.flag) {
			t.Errorf("bench %v: exit %v, output %q; want exit 2 naming %s", tc.args, err, out, tc.flag)
		}
	}
}

// clusterResult is the part of `quaycast bench --json` a run on several gateways adds.
type clusterResult struct {
	OK      bool   `json:"ok"`
	Target  string `json:"target"`
	Cluster struct {
		Gateways []struct {
			Name string `json:"name"`
			URL  string `json:"url"`
			PID  int    `json:"pid"`
		} `json:"gateways"`
		NATS []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		} `json:"nats_nodes"`
		Replicas int `json:"replicas"`
	} `json:"cluster"`
	Scaling []struct {
		Gateways int     `json:"gateways"`
		VsFirst  float64 `json:"vs_first"`
	} `json:"scaling"`
	Rounds []struct {
		Name      string `json:"name"`
		Endpoints int    `json:"endpoints"`
		Delivered int    `json:"delivered"`
		Verdict   struct {
			Lost, Duplicates int
			OutOfOrder       int `json:"out_of_order"`
		} `json:"verdict"`
		Cluster *struct {
			Gateways    int     `json:"gateways"`
			JoinSeconds float64 `json:"join_s"`
			OwnedSpread int     `json:"owned_spread"`
			PerGateway  []struct {
				Name             string  `json:"name"`
				Owned            int     `json:"endpoints_owned"`
				Deliveries       int     `json:"deliveries"`
				DeliveriesPerSec float64 `json:"deliveries_per_s"`
				Process          *struct {
					CPUSeconds float64 `json:"cpu_s"`
					RSSMiB     float64 `json:"rss_mib"`
				} `json:"process"`
			} `json:"per_gateway"`
			NATSNodes []struct {
				Process *struct {
					RSSMiB float64 `json:"rss_mib"`
				} `json:"process"`
			} `json:"nats_nodes"`
		} `json:"cluster"`
	} `json:"rounds"`
}

// runBench runs `quaycast bench args...` in a process group of its own, which is killed when
// the test ends (a harness that failed half-way must not leave NATS nodes or gateways behind),
// and decodes its JSON result. Exit 1 with a result is a verdict the caller judges: on a starved
// machine a gateway may fence itself or miss an ack's confirmation and send events twice.
func runBench(t *testing.T, args ...string) clusterResult {
	t.Helper()
	var res clusterResult
	if stderr := benchJSON(t, &res, args...); !res.OK {
		t.Logf("bench verdict: %s", stderr)
	}
	return res
}

// benchJSON runs `quaycast bench --json args...` and reads its result into res; a failed verdict
// (exit status 1 with a result) is for the caller to judge. It returns what bench wrote to stderr.
func benchJSON(t *testing.T, res any, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench", "--json"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && len(out) > 0) {
		t.Fatalf("bench %v: %v\n%s\n%s", args, err, out, stderr.String())
	}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("%v: %s\n%s", err, out, stderr.String())
	}
	return stderr.String()
}

// A soak: a calibration round as fast as possible, then a round at 60 % of the event rate it
// delivered, with the gateway's RSS and goroutines over time and a verdict on them. Ten seconds
// are too short for the steadiness to mean much here: the test holds the mechanics, and the
// delivery promise, not the verdict on steadiness.
func TestBenchSoak(t *testing.T) {
	t.Parallel()
	var res struct {
		OK     bool
		Rounds []struct {
			Name           string
			Events         int
			DeliverSeconds float64 `json:"deliver_s"`
			Verdict        struct {
				Lost, Duplicates int
				OutOfOrder       int `json:"out_of_order"`
			}
			Timeline *struct {
				Points []struct {
					RSS        float64 `json:"gateway_rss_mib"`
					Goroutines int     `json:"gateway_goroutines"`
				}
			}
			Soak *struct {
				Load     float64
				Capacity float64 `json:"capacity_events_per_s"`
				Rate     float64 `json:"rate_events_per_s"`
				Judged   bool
				Stable   bool
				Reason   string
			}
		}
	}
	stderr := benchJSON(t, &res, "--preset", "soak", "--soak", "10s", "--events", "300", "--entities", "30", "--endpoints", "2")
	if len(res.Rounds) != 2 || res.Rounds[0].Name != "calibration" || res.Rounds[1].Name != "soak" {
		t.Fatalf("rounds %+v\n%s", res.Rounds, stderr)
	}
	cal, soak := res.Rounds[0], res.Rounds[1]
	for _, rd := range res.Rounds {
		if v := rd.Verdict; v.Lost+v.Duplicates+v.OutOfOrder != 0 {
			t.Errorf("%s: %+v", rd.Name, v)
		}
	}
	s := soak.Soak
	if s == nil || s.Load != 0.6 || s.Capacity <= 0 {
		t.Fatalf("soak %+v", s)
	}
	if want := float64(cal.Events) / cal.DeliverSeconds; s.Capacity < want*0.99 || s.Capacity > want*1.01 || s.Rate < 0.59*want || s.Rate > 0.61*want {
		t.Errorf("capacity %.1f and rate %.1f events/s, want %.1f and 60 %% of it", s.Capacity, s.Rate, want)
	}
	if want := int(s.Rate * 10); soak.Events < want-1 || soak.Events > want+1 {
		t.Errorf("soak events %d, want the rate for 10 s: %d", soak.Events, want)
	}
	if soak.Timeline == nil || len(soak.Timeline.Points) < 8 {
		t.Fatalf("soak timeline %+v", soak.Timeline)
	}
	for i, p := range soak.Timeline.Points {
		if p.RSS <= 0 || p.Goroutines <= 0 {
			t.Errorf("point %d has no RSS or goroutines: %+v", i, p)
		}
	}
	if !s.Judged || res.OK != s.Stable {
		t.Errorf("soak judged %v stable %v (%s), run OK %v", s.Judged, s.Stable, s.Reason, res.OK)
	}
}

// checkPerGateway holds a round of several gateways to what the receivers saw: nothing lost or
// reordered, every gateway owns some endpoints, they own every endpoint once and evenly, and
// their delivered counters rose by what the receivers counted — less, at most, the duplicates:
// a POST cancelled by a fence may have reached the receiver.
func checkPerGateway(t *testing.T, res clusterResult, round, gateways, endpoints int) {
	t.Helper()
	rd := res.Rounds[round]
	if rd.Verdict.Lost+rd.Verdict.OutOfOrder != 0 || rd.Delivered == 0 {
		t.Errorf("%s: delivered %d, verdict %+v", rd.Name, rd.Delivered, rd.Verdict)
	}
	if rd.Verdict.Duplicates > 0 {
		t.Logf("%s: %d duplicates (a fence or an unconfirmed ack on a starved machine)", rd.Name, rd.Verdict.Duplicates)
	}
	c := rd.Cluster
	if c == nil || c.Gateways != gateways || len(c.PerGateway) != gateways || c.OwnedSpread > 1 {
		t.Fatalf("%s: cluster figures %+v", rd.Name, c)
	}
	owned, delivered := 0, 0
	for _, g := range c.PerGateway {
		if g.Owned < 1 || g.Deliveries < 1 || g.DeliveriesPerSec <= 0 {
			t.Errorf("%s: gateway %+v delivered nothing of its own", rd.Name, g)
		}
		owned += g.Owned
		delivered += g.Deliveries
	}
	if owned != endpoints || delivered > rd.Delivered || delivered < rd.Delivered-rd.Verdict.Duplicates {
		t.Errorf("%s: the gateways own %d endpoints and counted %d deliveries; want %d and the receivers' %d (%d duplicates)", rd.Name, owned, delivered, endpoints, rd.Delivered, rd.Verdict.Duplicates)
	}
}

// `quaycast bench --gateways 1,2` starts a three-node NATS cluster and gateways on it, runs a
// round with one gateway, adds a second, and reports each gateway's share, each process's
// figures, and the scaling between the rounds.
func TestBenchStartsACluster(t *testing.T) {
	t.Parallel()
	res := runBench(t, "--preset", "smoke", "--events", "200", "--entities", "100", "--endpoints", "4", "--gateways", "1,2", "--timeout", "3m")
	if res.Target != "child" || len(res.Rounds) != 2 || len(res.Cluster.Gateways) != 2 || len(res.Cluster.NATS) != 3 || res.Cluster.Replicas != 3 {
		t.Fatalf("result %+v", res)
	}
	for i, g := range res.Cluster.Gateways {
		if want := "gw" + string(rune('1'+i)); g.Name != want || g.PID == 0 || !strings.HasPrefix(g.URL, "http://127.0.0.1:") {
			t.Errorf("gateway %d: %+v, want %s", i, g, want)
		}
	}
	checkPerGateway(t, res, 0, 1, 4)
	checkPerGateway(t, res, 1, 2, 4)
	if res.Rounds[1].Cluster.JoinSeconds <= 0 {
		t.Errorf("no time for the second gateway to take its share: %+v", res.Rounds[1].Cluster)
	}
	for _, rd := range res.Rounds {
		for _, g := range rd.Cluster.PerGateway {
			if g.Process == nil || g.Process.CPUSeconds <= 0 || g.Process.RSSMiB <= 0 {
				t.Errorf("%s: %s has no process figures", rd.Name, g.Name)
			}
		}
		if len(rd.Cluster.NATSNodes) != 3 || rd.Cluster.NATSNodes[0].Process == nil || rd.Cluster.NATSNodes[0].Process.RSSMiB <= 0 {
			t.Errorf("%s: NATS nodes %+v", rd.Name, rd.Cluster.NATSNodes)
		}
	}
	if len(res.Scaling) != 2 || res.Scaling[1].Gateways != 2 || res.Scaling[1].VsFirst <= 0 {
		t.Errorf("scaling %+v", res.Scaling)
	}
}

// `quaycast bench --api a,b --nats-url ...` drives two gateways of a cluster it did not start:
// it registers through the first, waits until both say every endpoint is owned, reads each
// gateway's share from its /metrics, and deletes the endpoints again.
func TestBenchDrivesGatewaysOfACluster(t *testing.T) {
	t.Parallel()
	nc := startNATSCluster(t)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	var apis []string
	for i := range 2 {
		p := serve(t, "--nats-url", nc.url(), "--replicas", "3", "--name", "member"+string(rune('A'+i)), "--secret-key", key, "--data-dir", t.TempDir())
		apis = append(apis, p.api)
	}
	res := runBench(t, "--preset", "smoke", "--events", "150", "--entities", "75", "--endpoints", "4", "--api", strings.Join(apis, ","), "--nats-url", nc.url(), "--timeout", "2m")
	if res.Target != "remote" || len(res.Rounds) != 1 || len(res.Cluster.Gateways) != 2 || len(res.Cluster.NATS) != 0 {
		t.Fatalf("result %+v", res)
	}
	for i, g := range res.Cluster.Gateways {
		if want := "member" + string(rune('A'+i)); g.Name != want || g.URL != apis[i] || g.PID != 0 {
			t.Errorf("gateway %d: %+v, want %s at %s", i, g, want, apis[i])
		}
	}
	checkPerGateway(t, res, 0, 2, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list struct{ Endpoints []json.RawMessage }
	if err := gateway.NewClient(apis[1]).Do(ctx, "GET", "/v1/endpoints", nil, &list); err != nil || len(list.Endpoints) != 0 {
		t.Errorf("after the run the cluster has %d endpoints (%v), want none", len(list.Endpoints), err)
	}
}
