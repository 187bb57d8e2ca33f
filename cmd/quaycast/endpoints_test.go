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

// Every field of #17 through the CLI against a gateway: a custom event type added, listed and
// (once no endpoint selects it) deleted; an endpoint added with a layout preset, body fields and
// per-source selectors, then edited to a layout of its own fields.
func TestLayoutAndEventTypesCLIAgainstGateway(t *testing.T) {
	t.Parallel()
	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0")
	api := []string{"--api", p.api}
	cli := func(args ...string) string { t.Helper(); return run(t, append(args, api...)...) }

	cli("events", "add-type", "--name", "reefer_alarm", "--title", "Reefer Alarm", "--group", "reefer", "--description", "A reefer left its range.")
	listed := func() bool {
		for _, line := range strings.Split(cli("events", "types"), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "reefer_alarm" {
				if !strings.Contains(line, "Reefer Alarm") || !strings.Contains(line, "group:reefer") || !strings.Contains(line, "custom") {
					t.Errorf("events types lists %q", line)
				}
				return true
			}
		}
		return false
	}
	if !listed() {
		t.Fatal("events types does not list the type added")
	}

	out := cli("endpoints", "add", "--url", "http://127.0.0.1:9/tos", "--types", "tos-rotterdam:reefer_alarm,tos-rotterdam:group:gate",
		"--layout", "octopi", "--type-field", "event_type", "--field", "/id", "--field", "/data", "--secret", "the receiver's shared secret")
	var ep struct{ ID string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.ID == "" {
		t.Fatalf("endpoints add printed %q", out)
	}
	type view struct {
		EventTypes []string          `json:"event_types"`
		Signing    map[string]string `json:"signing"`
		Layout     map[string]any    `json:"layout"`
		Body       struct {
			TypeField string   `json:"type_field"`
			Fields    []string `json:"fields"`
		} `json:"body"`
	}
	get := func() view {
		t.Helper()
		var v view
		if err := json.Unmarshal([]byte(cli("endpoints", "get", ep.ID)), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := get()
	if strings.Join(v.EventTypes, ",") != "tos-rotterdam:reefer_alarm,tos-rotterdam:group:gate" || v.Layout["preset"] != "octopi" || v.Layout["event_header"] != "X-Octopi-Event" ||
		v.Signing["profile"] != "hex" || v.Signing["header_name"] != "X-Octopi-Signature" || v.Body.TypeField != "event_type" || strings.Join(v.Body.Fields, ",") != "/id,/data" {
		t.Errorf("after add: %+v", v)
	}

	// In use: the delete is refused (409) naming the endpoint, and the CLI exits 1.
	del := exec.Command(binary, append([]string{"events", "delete-type", "reefer_alarm"}, api...)...)
	msg, err := del.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(msg), "409") || !strings.Contains(string(msg), ep.ID) {
		t.Errorf("delete-type of a type in use: %v, %s; want exit 1 with the 409 naming the endpoint", err, msg)
	}

	cli("endpoints", "edit", ep.ID, "--types", "cargo_loaded", "--layout", "standard", "--event-header", "X-Kind", "--event-name", "title",
		"--delivery-header", "X-Id", "--delivery-id", "uuid", "--timestamp-header", "X-At", "--timestamp-format", "unix_ms", "--no-quaycast-headers",
		"--profile", "hex", "--signature-header", "X-Sig", "--clear-body")
	v = get()
	want := map[string]any{"preset": "standard", "event_header": "X-Kind", "event_name": "title", "delivery_header": "X-Id", "delivery_id": "uuid",
		"timestamp_header": "X-At", "timestamp_format": "unix_ms", "quaycast_headers": false}
	for k, w := range want {
		if v.Layout[k] != w {
			t.Errorf("after edit: layout %s = %v, want %v", k, v.Layout[k], w)
		}
	}
	if strings.Join(v.EventTypes, ",") != "cargo_loaded" || v.Signing["header_name"] != "X-Sig" || v.Body.TypeField != "" || len(v.Body.Fields) != 0 {
		t.Errorf("after edit: %+v", v)
	}

	if out := cli("events", "delete-type", "reefer_alarm"); !strings.Contains(out, "deleted reefer_alarm") {
		t.Errorf("delete-type once unused printed %q", out)
	}
	if listed() {
		t.Error("events types lists the deleted type")
	}
}
