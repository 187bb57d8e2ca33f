package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report-*.{txt,json} from the current report code")

// sampleResults are results that reach every line and column WriteText can print: a failed run
// of three rounds with every optional figure somewhere (and missing elsewhere), and a clean
// minimal one.
func sampleResults() map[string]*Result {
	sc, err := Resolve("hanging", nil, Overrides{Latency: ptr(20 * time.Millisecond), Failure: ptr(0.05)})
	if err != nil {
		panic(err)
	}
	full := &Result{
		Scenario: sc, Run: "abcdefgh", Started: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Seconds: 42.25,
		Machine: Machine{CPUs: 2, GoVersion: "go1.26.8", OS: "linux/amd64"}, Target: TargetChild, GatewayPID: 4242,
		Rounds: []Round{
			{
				Name: "baseline", Pipeline: "baseline", Endpoints: 5, Checked: 5, Events: 10_000, Deliveries: 50_000,
				Registration: &Registration{Endpoints: 5, Seconds: 0.12, PerEndpointMs: 24, ReadySeconds: 0.12},
				Published:    10_000, PublishSeconds: 20, PublishRate: 500, Delivered: 50_000, DeliverSeconds: 20.5, DeliveriesPerSec: 2439,
				Latency:     Latency{Count: 50_000, P50: 1.2, P90: 2.5, P99: 7.75, Max: 31.5, Mean: 1.6},
				PerEndpoint: Spread{DeliveriesPerSec: MinMedMax{480, 488, 495}, P99Ms: MinMedMax{6.5, 7.5, 8.25}, MaxGapMs: MinMedMax{12, 15, 40}, FirstDeliveryS: MinMedMax{0.003, 0.004, 0.006}},
				Requests:    52_000, FailedOnPurpose: 2000,
				Harness: &Usage{CPUSeconds: 9.5, PeakFDs: 310},
				Notes:   []string{"consume error ×2: nats: timeout (3s)"},
			},
			{
				Name: "gateway, no hanging endpoint", Pipeline: "gateway", Endpoints: 5, Checked: 5, Events: 10_000, Deliveries: 50_000,
				Registration: &Registration{Endpoints: 5, Seconds: 0.05, PerEndpointMs: 10, ReadySeconds: 0.4},
				Idle:         &Idle{Seconds: 2, CPUPercent: 1.25, RSSMiB: 40.5, PeakRSSMiB: 41},
				Published:    10_000, PublishSeconds: 20, PublishRate: 500, Delivered: 50_000, DeliverSeconds: 20.6, DeliveriesPerSec: 2427,
				Latency:     Latency{Count: 50_000, P50: 1.5, P90: 3, P99: 9, Max: 45, Mean: 2},
				PerEndpoint: Spread{DeliveriesPerSec: MinMedMax{470, 485, 490}, P99Ms: MinMedMax{8, 9, 10}, MaxGapMs: MinMedMax{20, 25, 60}, FirstDeliveryS: MinMedMax{0.004, 0.005, 0.009}},
				Requests:    52_500, FailedOnPurpose: 2500, DeliveryLogDropped: 1,
				Gateway: &Usage{CPUSeconds: 12.5, CPUMsPer1k: 250, RSSMiB: 60, PeakRSSMiB: 75, PeakFDs: 90},
				Harness: &Usage{CPUSeconds: 8, PeakFDs: 300},
			},
			{
				Name: "gateway", Pipeline: "gateway", Endpoints: 6, Checked: 5, Events: 10_000, Deliveries: 50_000,
				Published: 9_990, PublishSeconds: 21, PublishRate: 475.7, PublishFailures: 10, Delivered: 49_950, DeliverSeconds: 21.5, DeliveriesPerSec: 2323,
				Latency:     Latency{Count: 49_950, P50: 1.6, P90: 3.5, P99: 9.9, Max: 50, Mean: 2.1},
				PerEndpoint: Spread{DeliveriesPerSec: MinMedMax{460, 470, 480}, P99Ms: MinMedMax{9, 9.5, 11}, MaxGapMs: MinMedMax{22, 30, 70}, FirstDeliveryS: MinMedMax{0.005, 0.006, 0.011}},
				Requests:    53_000, FailedOnPurpose: 2600, BadSignatures: 3, DeliveryLogDropped: 1234,
				Drain:    &Drain{Events: 100, FirstDeliverySecond: 0.25, Seconds: 1.5, PerSec: 66.7, DrainPerSec: 80},
				Verdict:  Verdict{Lost: 50, Duplicates: 2, OutOfOrder: 1, Unexpected: 1, Problems: map[string]EndpointReport{"ep-00002": {Expected: 10_000, Delivered: 9_950, Lost: 50, Duplicates: 2, OutOfOrder: 1, Unexpected: 1, Examples: []string{"bnabcdefghg-00000007 (#3 of BENCH0000001) after #4"}}}},
				Gateway:  &Usage{CPUSeconds: 13, CPUMsPer1k: 260, RSSMiB: 62, PeakRSSMiB: 80, PeakFDs: 95},
				TimedOut: true,
				Notes:    []string{"publish: nats: timeout"},
			},
		},
		VsBaseline:     &Ratios{Gateway: "gateway, no hanging endpoint", Baseline: "baseline", DeliveriesPerSec: 0.995, P99: 1.16},
		Hanging:        &HangingEffect{WithoutP99Ms: 9, WithP99Ms: 9.9, Ratio: 1.1},
		GatewayStart:   &Usage{RSSMiB: 30, PeakRSSMiB: 30},
		GatewayEnd:     &Usage{RSSMiB: 62, PeakRSSMiB: 80},
		Strays:         7,
		ReceiverErrors: "2×, first: http: Accept error: too many open files; last: http: TLS handshake error",
		NATSErrors:     "1× disconnected: EOF",
		Notes:          []string{"open-file limit raised from 1024 to 1048576 for the harness and the gateway it starts"},
	}
	full.GatewayLog.Warnings, full.GatewayLog.Errors = 3, 1
	full.GatewayLog.Lines = map[string]int{"warn: circuit breaker": 2, "error: record dead letter: will retry: nats: timeout": 1, "warn: dead-lettered": 1}
	full.judge()

	smoke, err := Resolve("smoke", nil, Overrides{})
	if err != nil {
		panic(err)
	}
	clean := &Result{
		Scenario: smoke, Run: "ijklmnop", Started: time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC), Seconds: 3.5,
		Machine: Machine{CPUs: 2, GoVersion: "go1.26.8", OS: "linux/amd64"}, Target: TargetInProcess,
		Rounds: []Round{{
			Name: "gateway", Pipeline: "gateway", Endpoints: 3, Checked: 3, Events: 300, Deliveries: 900,
			Published: 300, PublishSeconds: 0.5, PublishRate: 600, Delivered: 900, DeliverSeconds: 0.75, DeliveriesPerSec: 1200,
			Latency:     Latency{Count: 900, P50: 2, P90: 4, P99: 8, Max: 12, Mean: 2.5},
			PerEndpoint: Spread{DeliveriesPerSec: MinMedMax{400, 400, 400}, P99Ms: MinMedMax{7, 8, 9}, MaxGapMs: MinMedMax{5, 6, 7}, FirstDeliveryS: MinMedMax{0.002, 0.003, 0.004}},
			Requests:    900,
		}},
		Notes: []string{"gateway runs inside the harness: no gateway CPU or memory figures"},
	}
	clean.judge()
	return map[string]*Result{"failed": full, "clean": clean, "cluster": clusterResult()}
}

// clusterResult is a scaling run on a cluster the harness started: 1, 2, then 3 gateways.
func clusterResult() *Result {
	sc, err := Resolve("cluster", nil, Overrides{Events: ptr(1000)})
	if err != nil {
		panic(err)
	}
	res := &Result{
		Scenario: sc, Run: "qrstuvwx", Started: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Seconds: 95.5,
		Machine: Machine{CPUs: 2, GoVersion: "go1.26.8", OS: "linux/amd64"}, Target: TargetChild,
		Cluster: &Cluster{
			Gateways: []Process{{"gw1", "http://127.0.0.1:40001", 501}, {"gw2", "http://127.0.0.1:40002", 502}, {"gw3", "http://127.0.0.1:40003", 503}},
			NATS:     []Process{{"n1", "nats://127.0.0.1:41001", 401}, {"n2", "nats://127.0.0.1:41002", 402}, {"n3", "nats://127.0.0.1:41003", 403}},
			Replicas: 3,
		},
		GatewayStart: &Usage{RSSMiB: 30, PeakRSSMiB: 30},
		GatewayEnd:   &Usage{RSSMiB: 150, PeakRSSMiB: 160},
		Notes:        []string{"the gateway rows add the gateways up (idle, CPU, memory, open files); the rows named for a gateway or NATS node are its own"},
	}
	usage := func(cpu float64, deliveries int, rss float64) *Usage {
		return &Usage{CPUSeconds: cpu, CPUMsPer1k: 1e6 * cpu / float64(deliveries), RSSMiB: rss, PeakRSSMiB: rss + 5}
	}
	owned := [][]int{{12}, {7, 5}, {4, 4, 4}} // per round, per gateway
	for i, n := range []int{1, 2, 3} {
		rd := Round{
			Name: []string{"1 gateway", "2 gateways", "3 gateways"}[i], Pipeline: "gateway", Endpoints: 12, Checked: 12, Events: 1000, Deliveries: 12_000,
			Published: 1000, PublishSeconds: 0.5, PublishRate: 2000, Delivered: 12_000, DeliverSeconds: []float64{6, 4.8, 4.4}[i],
			Latency:     Latency{Count: 12_000, P50: 900, P90: 1800, P99: 2500, Max: 2700, Mean: 1000},
			PerEndpoint: Spread{DeliveriesPerSec: MinMedMax{160, 170, 200}, P99Ms: MinMedMax{2000, 2400, 2600}, MaxGapMs: MinMedMax{50, 80, 300}, FirstDeliveryS: MinMedMax{0.01, 0.02, 1.5}},
			Requests:    12_000,
			Harness:     &Usage{CPUSeconds: 1.5, PeakFDs: 80},
			OthersCPU:   []float64{0.25, 0.5, 0}[i], // 0: nothing else ran, or unreadable
			Cluster:     &RoundCluster{Gateways: n, OwnedSpread: []int{0, 2, 0}[i]},
		}
		rd.DeliveriesPerSec = float64(rd.Delivered) / rd.DeliverSeconds
		rd.Gateway = usage(3+float64(i), rd.Delivered, 50*float64(n))
		rd.Gateway.PeakFDs = 40 * n
		rd.Cluster.NATS = usage(7.5-float64(i), rd.Delivered, 240)
		for _, name := range []string{"n1", "n2", "n3"} {
			rd.Cluster.NATSNodes = append(rd.Cluster.NATSNodes, NodeFigures{Name: name, Process: usage((7.5-float64(i))/3, rd.Delivered, 80)})
		}
		if i > 0 {
			rd.Cluster.JoinSeconds = 1.25 + float64(i)
		} else {
			rd.Registration = &Registration{Endpoints: 12, Seconds: 0.1, PerEndpointMs: 8.3, ReadySeconds: 0.6}
			rd.Idle = &Idle{Seconds: 2, CPUPercent: 3.5, RSSMiB: 45, PeakRSSMiB: 46, NATSCPUPercent: 4.25, NATSRSSMiB: 150}
		}
		for g, o := range owned[i] {
			f := GatewayFigures{Name: fmt.Sprintf("gw%d", g+1), Owned: o, Deliveries: rd.Delivered * o / 12}
			f.DeliveriesPerSec = float64(f.Deliveries) / rd.DeliverSeconds
			if n == 2 { // the 2-gateway round's delivery logs fell behind
				f.DeliveryLogDropped = 40 * (g + 1)
				rd.DeliveryLogDropped += f.DeliveryLogDropped
			}
			if g != 2 { // gw3's process unreadable: its second row is left out
				f.Process = usage((3+float64(i))/float64(n), f.Deliveries, 50)
			}
			rd.Cluster.PerGateway = append(rd.Cluster.PerGateway, f)
		}
		res.Rounds = append(res.Rounds, rd)
	}
	res.GatewayLog.Warnings = 3
	res.GatewayLog.Lines = map[string]int{"gw1: warn: NO ACCESS CONTROL": 1, "gw2: warn: NO ACCESS CONTROL": 1, "gw3: warn: NO ACCESS CONTROL": 1}
	res.compare()
	res.judge()
	return res
}

// The report's text and JSON stay as they are: operators and scripts read them. Regenerate with
// go test ./bench -run TestReportFormat -update only when a change of format is meant.
func TestReportFormat(t *testing.T) {
	t.Parallel()
	for name, res := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			var text bytes.Buffer
			if err := res.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			for file, got := range map[string][]byte{"report-" + name + ".txt": text.Bytes(), "report-" + name + ".json": append(js, '\n')} {
				path := filepath.Join("testdata", file)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from what the report code writes now:\n--- got\n%s\n--- want\n%s", path, got, want)
				}
			}
		})
	}
}
