package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `quaycast bench` with the real binary: it starts a gateway of its own as a child process,
// measures it, and prints a clean verdict as JSON.
func TestBenchStartsItsOwnGateway(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(file, []byte("preset: smoke\nevents: 200\nentities: 20\nidle: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "bench", "--scenario", file, "--endpoints", "2", "--json", "--timeout", "2m", "--verify-signatures")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("bench: %v\n%s\n%s", err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res struct {
		OK         bool   `json:"ok"`
		Target     string `json:"target"`
		GatewayPID int    `json:"gateway_pid"`
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
}

func TestBenchFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
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
	} {
		out, err := exec.Command(binary, append([]string{"bench"}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.flag) {
			t.Errorf("bench %v: exit %v, output %q; want exit 2 naming %s", tc.args, err, out, tc.flag)
		}
	}
}
