package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/internal/testwait"
)

// Without an allow-list, URLs that reach the gateway's own networks are refused when saved, and —
// for a URL that got past that (here written straight into the registry, as DNS rebinding would
// make it) — at dial time.
func TestTargetSafety(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AllowTargets = nil
	g := startGateway(t, cfg)
	for _, u := range []string{
		"http://127.0.0.1:9000/hook", "http://localhost:9000/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.0.7/",
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
		"http://100.100.100.200/",
	} {
		status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"`+u+`","event_types":["*"]}`)
		if status != 400 || body["field"] != "url" || !strings.Contains(body["error"].(string), "--allow-target") {
			t.Errorf("%s: %d %v, want 400 on url naming --allow-target", u, status, body)
		}
	}
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"https://192.0.2.10/hook","event_types":["*"],"enabled":false}`); status != 201 {
		t.Errorf("a public address: %d %v", status, body)
	}

	// Dial time: an endpoint stored without the API's check.
	rc := newReceiver(t)
	ctx := context.Background()
	ep, err := g.registry(t, consumer.RegistryOptions{}).Create(ctx, consumer.Endpoint{URL: rc.URL, EventTypes: []string{"*"}, Enabled: true, Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")})
	if err != nil {
		t.Fatal(err)
	}
	g.waitReady(t)
	publishNATS(t, g, event("sneak-1", "cargo_loaded", "C1"))
	var log struct{ Deliveries []struct{ Error string } }
	testwait.For(t, 20*time.Second, "a refused attempt in the log", func() bool {
		log.Deliveries = nil
		_ = g.api.Do(ctx, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", nil, &log)
		return len(log.Deliveries) > 0
	})
	if e := log.Deliveries[0].Error; !strings.Contains(e, "target address not allowed") {
		t.Errorf("attempt error %q", e)
	}
	if n := len(rc.accepted()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
}

func TestRequireHTTPS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.RequireHTTPS = true
	g := startGateway(t, cfg)
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","event_types":["*"]}`); status != 400 || !strings.Contains(body["error"].(string), "https") {
		t.Errorf("http with --require-https: %d %v", status, body)
	}
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"https://127.0.0.1:9/","event_types":["*"]}`); status != 201 {
		t.Errorf("https: %d %v", status, body)
	}
}

// Every host form in testdata/refused_targets.txt is refused when an endpoint is saved — numeric
// forms inet_aton would read as a refused address, localhost names, cloud-metadata names — one
// subtest per form.
func TestCheckURLRefusesEveryForm(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/refused_targets.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p gateway.TargetPolicy
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		host, what := fields[0], strings.Join(fields[1:], " ")
		n++
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			for _, u := range []string{"http://" + host + "/hook", "https://" + host + ":8443/hook"} {
				warnings, err := p.CheckURL(t.Context(), u)
				var fe *fielderr.Error
				if !errors.As(err, &fe) || fe.Field != "url" {
					t.Errorf("%s (%s): CheckURL() = %v, warnings %v; want a field error on url", u, what, err, warnings)
				}
			}
		})
	}
	if err := sc.Err(); err != nil || n < 40 {
		t.Fatalf("read %d forms: %v", n, err)
	}
}

// Numeric forms of allowed addresses are accepted, as are the refused ones once allowed.
func TestCheckURLAcceptsAllowedForms(t *testing.T) {
	t.Parallel()
	allowLoopback, err := gateway.ParseTargetPolicy([]string{"127.0.0.0/8", "::1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		policy gateway.TargetPolicy
		url    string
	}{
		{"public dotted", gateway.TargetPolicy{}, "http://192.0.2.10/"},
		{"public hex", gateway.TargetPolicy{}, "http://0xc000020a/"},
		{"zero-padded octal 127 is 87", gateway.TargetPolicy{}, "http://00000127.0.0.1/"},
		{"loopback short form allowed", allowLoopback, "http://127.1/"},
		{"loopback decimal allowed", allowLoopback, "http://2130706433:9000/"},
		{"localhost allowed", allowLoopback, "http://localhost:9000/"},
		{"a subdomain of localhost allowed", allowLoopback, "http://foo.localhost./"},
		{"a name that merely contains metadata", gateway.TargetPolicy{}, "http://metadata.example/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tc.policy.CheckURL(t.Context(), tc.url); err != nil {
				t.Errorf("CheckURL(%s) = %v, want nil", tc.url, err)
			}
		})
	}
}

// A host that does not resolve when the endpoint is saved (CI, air-gapped sites) is accepted with
// a warning in the answer; the address is checked at every connection.
func TestUnresolvableHostSavedWithWarning(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AllowTargets = nil
	g := startGateway(t, cfg)
	status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"https://receiver.quaycast-test.invalid/hook","event_types":["*"],"enabled":false}`)
	warnings, _ := body["warnings"].([]any)
	if status != 201 || len(warnings) != 1 || !strings.Contains(fmt.Sprint(warnings[0]), "does not resolve") {
		t.Fatalf("create: %d %v, want 201 with a warning that the host does not resolve", status, body)
	}
	id, _ := body["id"].(string)
	status, body = call(t, g, "PATCH", "/v1/endpoints/"+id, `{"url":"https://other.quaycast-test.invalid/hook"}`)
	if warnings, _ := body["warnings"].([]any); status != 200 || len(warnings) != 1 {
		t.Errorf("patch: %d %v, want 200 with a warning", status, body)
	}
	if status, body := call(t, g, "GET", "/v1/endpoints/"+id, ""); status != 200 || body["warnings"] != nil {
		t.Errorf("get: %d %v, want no warnings (they answer a change)", status, body)
	}
}

// Endpoints saved before the save-time checks covered a form (here written straight into the
// registry) stay, are flagged in their view, can be edited, and are checked again when enabled.
func TestTargetSavedBeforeIsFlagged(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AllowTargets = nil
	g := startGateway(t, cfg)
	ctx := t.Context()
	reg := g.registry(t, consumer.RegistryOptions{})
	for _, u := range []string{"http://127.1:9000/hook", "http://metadata.google.internal/computeMetadata/v1/", "http://foo.localhost/"} {
		for _, enabled := range []bool{false, true} {
			ep, err := reg.Create(ctx, consumer.Endpoint{URL: u, EventTypes: []string{"*"}, Enabled: enabled, Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")})
			if err != nil {
				t.Fatal(err)
			}
			status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
			if msg, _ := body["target_error"].(string); status != 200 || !strings.Contains(msg, "--allow-target") {
				t.Errorf("%s: GET %d %v, want a target_error naming --allow-target", u, status, body)
			}
			_, list := call(t, g, "GET", "/v1/endpoints", "")
			for _, e := range list["endpoints"].([]any) {
				if e := e.(map[string]any); e["id"] == ep.ID && e["target_error"] == nil {
					t.Errorf("%s: not flagged in the listing: %v", u, e)
				}
			}
			if status, body := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"description":"kept"}`); status != 200 {
				t.Errorf("%s: an edit that leaves the url: %d %v, want 200", u, status, body)
			}
			if status, body := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"enabled":true}`); status != 400 || body["field"] != "url" {
				t.Errorf("%s (enabled %v): PATCH enabled: %d %v, want 400 naming url", u, enabled, status, body)
			}
			if got, _ := reg.Get(ctx, ep.ID); got == nil || got.Enabled != enabled {
				t.Errorf("%s: enabled is now %v, want it unchanged (%v)", u, got != nil && got.Enabled, enabled)
			}
		}
	}
	// A public endpoint is not flagged, and enables.
	ok := g.addEndpoint(t, map[string]any{"url": "https://192.0.2.10/hook", "event_types": []string{"*"}, "enabled": false})
	if status, body := call(t, g, "PATCH", "/v1/endpoints/"+ok.ID, `{"enabled":true}`); status != 200 || body["target_error"] != nil {
		t.Errorf("public endpoint: PATCH enabled: %d %v", status, body)
	}
}
