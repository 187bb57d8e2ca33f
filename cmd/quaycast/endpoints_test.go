package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// The endpoint commands against a gateway: add with every kind of flag, edit, and a test send
// whose exit status says whether the receiver took it.
func TestEndpointsCLIAgainstGateway(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusUnprocessableEntity)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer recv.Close()
	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0")

	out := run(t, "endpoints", "add", "--api", p.api, "--url", recv.URL, "--types", "cargo_loaded",
		"--header", "X-Tenant=acme;eu", "--header", "X-Flags=a,b", "--reply-format", "alerts",
		"--profile", "hex", "--signature-header", "X-Sig", "--hex-case", "upper", "--secret", "It's a Secret to Everybody")
	var ep struct{ ID string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.ID == "" {
		t.Fatalf("endpoints add printed %q", out)
	}
	type view struct {
		Headers     map[string]string `json:"headers"`
		ReplyFormat string            `json:"reply_format"`
		Enabled     bool              `json:"enabled"`
		Signing     struct {
			Profile    string `json:"profile"`
			HeaderName string `json:"header_name"`
			HexCase    string `json:"hex_case"`
		} `json:"signing"`
	}
	var got view
	get := func() {
		t.Helper()
		got = view{}
		if err := json.Unmarshal([]byte(run(t, "endpoints", "get", "--api", p.api, ep.ID)), &got); err != nil {
			t.Fatal(err)
		}
	}
	get()
	if got.Headers["X-Tenant"] != "acme;eu" || got.Headers["X-Flags"] != "a,b" || len(got.Headers) != 2 || got.ReplyFormat != "alerts" || !got.Enabled ||
		got.Signing.Profile != "hex" || got.Signing.HeaderName != "X-Sig" || got.Signing.HexCase != "upper" {
		t.Errorf("after add: %+v", got)
	}

	run(t, "endpoints", "edit", "--api", p.api, ep.ID, "--disable", "--clear-headers", "--reply-format", "")
	get()
	if len(got.Headers) != 0 || got.ReplyFormat != "" || got.Enabled {
		t.Errorf("after edit --disable --clear-headers --reply-format '': %+v", got)
	}
	run(t, "endpoints", "edit", "--api", p.api, ep.ID, "--enable")
	get()
	if !got.Enabled || got.ReplyFormat != "" {
		t.Errorf("after edit --enable: %+v", got)
	}

	// The receiver refuses the test event: the answer is printed, and the exit status is 1.
	cmd := exec.Command(binary, "endpoints", "test", "--api", p.api, ep.ID)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("endpoints test with a refusing receiver: %v, want exit status 1", err)
	}
	if !strings.Contains(stdout.String(), `"outcome": "permanent"`) || !strings.Contains(stderr.String(), "not delivered: outcome permanent, status 422") {
		t.Errorf("endpoints test with a refusing receiver printed\n%s\nand said %q", stdout.String(), stderr.String())
	}

	status.Store(http.StatusNoContent)
	if out := run(t, "endpoints", "test", "--api", p.api, ep.ID); !strings.Contains(out, `"outcome": "delivered"`) {
		t.Errorf("endpoints test with an accepting receiver printed %s", out)
	}
}
