package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// probe runs `quaycast healthcheck args...` and returns its output and exit code.
func probe(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, append([]string{"healthcheck"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("quaycast healthcheck %q: %v\n%s", args, err, out)
	return "", 0
}

// The probe a container's health check runs: exit 0 on 200 only, 1 (Docker's unhealthy) on any
// other answer, a redirect, no answer in time or nothing listening — saying why.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /joining", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"not a member of the cluster: joining"}`))
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("GET /target", func(http.ResponseWriter, *http.Request) { followed.Store(true) })
	mux.HandleFunc("GET /hang", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/readyz"
	l.Close()

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"200 is healthy", []string{"--url", srv.URL + "/ok"}, 0, nil},
		{"503 is unhealthy, with the API's reason", []string{"--url", srv.URL + "/joining"}, 1, []string{"503", "not a member of the cluster: joining"}},
		{"a redirect is not followed", []string{"--url", srv.URL + "/moved"}, 1, []string{"302"}},
		{"no answer in time", []string{"--url", srv.URL + "/hang", "--timeout", "200ms"}, 1, []string{"deadline exceeded"}},
		{"nothing listening", []string{"--url", closed}, 1, []string{"connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := probe(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tc.wantCode, out)
			}
			if tc.wantCode == 0 && out != "" {
				t.Errorf("a healthy probe printed %q", out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not say %q", out, w)
				}
			}
		})
	}
	if followed.Load() {
		t.Error("the probe followed the redirect")
	}
}

// Against a real gateway with access control on: /readyz is open, so the probe needs no token,
// and it passes once the gateway is ready.
func TestHealthcheckOfAGateway(t *testing.T) {
	t.Parallel()
	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--admin-token", sampleAdminToken)
	waitReady(t, p.api)
	if out, code := probe(t, "--url", p.api+"/readyz"); code != 0 {
		t.Errorf("healthcheck of a ready gateway: exit %d\n%s", code, out)
	}
}
