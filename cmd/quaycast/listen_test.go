package main

import (
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A second `serve` while one runs fails at once — not after the embedded server's 30 s readiness
// wait — naming the port that is taken and the flag that chooses another: the NATS port
// (--nats-listen) or the API's (--listen).
func TestSecondServeFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--nats-listen", "--listen"} {
		t.Run(flag, func(t *testing.T) {
			t.Parallel()
			first := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0")
			addr := strings.TrimPrefix(first.api, "http://")
			if flag == "--nats-listen" {
				addr = strings.TrimPrefix(first.nats, "nats://")
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("first gateway's address %q: %v", addr, err)
			}
			// The flag given last wins over the free ports given before it.
			out, code := serveUntilExit(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", flag, addr)
			if code != 2 || !strings.Contains(out, flag+": ") || !strings.Contains(out, ":"+port) || !strings.Contains(out, "address already in use") {
				t.Errorf("second serve on the port %s: exit %d, stderr\n%s\nwant exit 2 naming %s, the port and why", port, code, out, flag)
			}
			checkJSONLines(t, out)
		})
	}
}

// serveUntilExit runs `quaycast serve` with args on a free API port and JSON logs, and returns its
// stderr and exit code once it exited.
func serveUntilExit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runUntilExit(t, nil, append([]string{"serve", "--log-format", "json", "--listen", "127.0.0.1:0"}, args...)...)
}

// runUntilExit runs quaycast with args and the environment env (nil: this process's), and returns
// its stderr and exit code once it failed (within a minute: one that runs on is a failure).
func runUntilExit(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("quaycast %q: %v, want it to fail\n%s", args, err, stderr.String())
		}
		return stderr.String(), ee.ExitCode()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("quaycast %q still running after a minute\n%s", args, stderr.String())
		return "", 0
	}
}

// checkJSONLines fails the test for every line of out that is not a JSON object.
func checkJSONLines(t *testing.T, out string) {
	t.Helper()
	for line := range strings.Lines(out) {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

// A second `serve` on the data dir of a running one — a second JetStream server on the same store —
// fails at once naming --data-dir, whatever its ports.
func TestSecondServeFailsOnDataDirInUse(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	out, code := serveUntilExit(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(out, "--data-dir: ") || !strings.Contains(out, "in use by another quaycast") {
		t.Errorf("second serve on the same data dir: exit %d, stderr\n%s\nwant exit 2 naming --data-dir", code, out)
	}
	checkJSONLines(t, out)
}
