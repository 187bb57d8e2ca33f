package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// Each endpoint is signed the way its receiver verifies: Standard Webhooks, GitHub-style hub, or
// bare hex in a header of its choosing.
func TestSigningProfiles(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	std, hub, hex := newReceiver(t), newReceiver(t), newReceiver(t)
	epStd := g.addEndpoint(t, map[string]any{"url": std.URL, "event_types": []string{"*"}})
	epHub := g.addEndpoint(t, map[string]any{"url": hub.URL, "event_types": []string{"*"}, "secret": "It's a Secret to Everybody",
		"signing": map[string]string{"profile": "hub", "header_name": "X-Hub-Signature"}})
	epHex := g.addEndpoint(t, map[string]any{"url": hex.URL, "event_types": []string{"*"},
		"signing": map[string]string{"profile": "hex", "header_name": "Veson-Webhook-Signature", "hex_case": "upper"}})
	if epHub.Secret != "It's a Secret to Everybody" {
		t.Errorf("hub endpoint answered secret %q, want the one given", epHub.Secret)
	}
	g.waitReady(t)
	publishNATS(t, g, event("p1", "cargo_loaded", "C1"))
	for _, rc := range []*receiver{std, hub, hex} {
		rc.waitCount(t, 1)
	}

	checks := []struct {
		name   string
		rc     *receiver
		secret string
		v      signature.Verifier
		header string
	}{
		{"standard", std, epStd.Secret, signature.Verifier{Profile: signature.Standard}, "webhook-signature"},
		{"hub", hub, epHub.Secret, signature.Verifier{Profile: signature.Hub, Options: signature.Options{HeaderName: "X-Hub-Signature"}}, "X-Hub-Signature"},
		{"hex", hex, epHex.Secret, signature.Verifier{Profile: signature.Hex, Options: signature.Options{HeaderName: "Veson-Webhook-Signature", HexUpper: true}}, "Veson-Webhook-Signature"},
	}
	for _, c := range checks {
		r := c.rc.accepted()[0]
		if err := c.v.Verify(r.Header, r.Body, c.secret); err != nil {
			t.Errorf("%s: %v (headers %v)", c.name, err, r.Header)
		}
		sig := r.Header.Get(c.header)
		switch c.name {
		case "hub":
			if !strings.HasPrefix(sig, "sha256=") || strings.ToLower(sig) != sig {
				t.Errorf("hub signature %q: want sha256=<lower hex>", sig)
			}
		case "hex":
			if len(sig) != 64 || strings.ToUpper(sig) != sig {
				t.Errorf("hex signature %q: want 64 upper-case hex digits", sig)
			}
		}
		// Every profile names the event, the delivery and the time.
		for _, h := range []string{"webhook-id", "webhook-timestamp", "Quaycast-Event-Type"} {
			if r.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", c.name, h)
			}
		}
	}

	// The view says how each endpoint signs, never with what.
	status, body := call(t, g, "GET", "/v1/endpoints/"+epHex.ID, "")
	sg, _ := body["signing"].(map[string]any)
	if status != 200 || sg["profile"] != "hex" || sg["header_name"] != "Veson-Webhook-Signature" || sg["hex_case"] != "upper" {
		t.Errorf("GET hex endpoint: %d %v", status, body)
	}
}

func TestSigningValidation(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	tests := []struct{ name, body, field string }{
		{"unknown profile", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"md5"}}`, "signing.profile"},
		{"hex without header", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"hex"}}`, "signing.header_name"},
		{"bad hex case", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"hex","header_name":"X-Sig","hex_case":"mixed"}}`, "signing.hex_case"},
		{"bad header name", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"hub","header_name":"X Sig"}}`, "signing.header_name"},
		{"standard secret not base64", `{"url":"http://192.0.2.10/","event_types":["*"],"secret":"whsec_not*base64!!"}`, "secret"},
		{"standard secret too short", `{"url":"http://192.0.2.10/","event_types":["*"],"secret":"whsec_lgztJI0Zrcng/EoDRMlHUQ=="}`, "secret"},
		{"empty hex secret", `{"url":"http://192.0.2.10/","event_types":["*"],"secret":"","signing":{"profile":"hex","header_name":"X-Sig"}}`, "secret"},
		{"unknown signing field", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"standard","algo":"md5"}}`, "signing.algo"},
		{"unknown signing field beside valid ones", `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"hex","header_name":"X-Sig","hex_case":"upper","HexUpper":true}}`, "signing.HexUpper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, g, "POST", "/v1/endpoints", tc.body)
			if status != 400 || body["field"] != tc.field {
				t.Errorf("got %d %v, want 400 naming %s", status, body, tc.field)
			}
			if strings.Contains(body["error"].(string), "base64!!") || strings.Contains(body["error"].(string), "lgztJI0") {
				t.Errorf("the error repeats the secret: %v", body["error"])
			}
		})
	}
}

// During a rotation the old secret keeps signing beside the new one (Standard Webhooks carries
// both signatures); with no grace the old one stops at once.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "*")

	var rotated endpoint
	if err := g.api.Do(context.Background(), "POST", "/v1/endpoints/"+ep.ID+"/secret/rotate", map[string]any{"grace": "1h"}, &rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == "" || rotated.Secret == ep.Secret {
		t.Fatalf("rotate answered secret %q", rotated.Secret)
	}
	publishNATS(t, g, event("r1", "cargo_loaded", "C1"))
	rc.waitCount(t, 1)
	r := rc.accepted()[0]
	if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
		t.Errorf("during the grace period: %d signatures, want 2", n)
	}
	for _, s := range []string{ep.Secret, rotated.Secret} {
		verify(t, r, s) // a receiver holding either secret accepts
	}
	status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
	if prev, _ := body["previous_secrets"].([]any); status != 200 || len(prev) != 1 {
		t.Errorf("GET after rotation: previous_secrets %v", body["previous_secrets"])
	}

	var again endpoint
	if err := g.api.Do(context.Background(), "POST", "/v1/endpoints/"+ep.ID+"/secret/rotate", map[string]any{"grace": "0s"}, &again); err != nil {
		t.Fatal(err)
	}
	publishNATS(t, g, event("r2", "cargo_loaded", "C1"))
	rc.waitCount(t, 2)
	r = rc.accepted()[1]
	verify(t, r, again.Secret)
	// The previous grace period (of the first secret) is still running: two signatures, and the
	// one rotated out with no grace is not among them.
	if err := (signature.Verifier{}).Verify(r.Header, r.Body, rotated.Secret); err == nil {
		t.Error("the secret rotated out with grace 0s still signs")
	}
	if status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/secret/rotate", `{"grace":"forever"}`); status != 400 || body["field"] != "grace" {
		t.Errorf("bad grace: %d %v", status, body)
	}
}

// With a secret key the registry bucket holds only ciphertext; with another key the gateway
// refuses to start, naming the flag; with it again, deliveries are signed as before.
func TestSecretsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SecretKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	rc := newReceiver(t)
	g := startGateway(t, cfg)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})

	entry, err := g.endpointsKV(t).Get(context.Background(), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(entry.Value())
	if strings.Contains(raw, strings.TrimPrefix(ep.Secret, "whsec_")) || !strings.Contains(raw, "aesgcm:") {
		t.Errorf("stored endpoint holds the secret in the clear: %s", raw)
	}
	g.Stop(t)

	// Started with another key (here the one it generates in the data dir when none is given),
	// the gateway refuses to start rather than run with endpoints it cannot sign for.
	noKey := cfg
	noKey.SecretKey = ""
	err = gateway.New(noKey, zerolog.New(zerolog.NewTestWriter(t))).Run(t.Context())
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "secret-key" {
		t.Errorf("start with another key: %v, want an error naming --secret-key", err)
	}

	g3 := startGateway(t, cfg)
	g3.waitReady(t)
	publishNATS(t, g3, event("k1", "cargo_loaded", "C1"))
	rc.waitCount(t, 1)
	verify(t, rc.accepted()[0], ep.Secret)
	if ids := rc.ids(); !slices.Equal(ids, []string{"k1"}) {
		t.Errorf("got %v", ids)
	}
}

// A signature header may not be a header quaycast or net/http writes itself (it would be
// overwritten, or overwrite it), nor a custom header of the endpoint in any case (the receiver
// would get two values and read the static one); names compare without regard to case.
func TestSignatureHeaderNameReserved(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	for _, name := range []string{
		"Quaycast-Event-Type", "quaycast-attempt", "QUAYCAST-EVENT-SOURCE", "User-Agent", "user-agent",
		"Authorization", "webhook-id", "Webhook-Timestamp", "webhook-signature", "Accept-Encoding", "Content-Type", "Host",
	} {
		for _, profile := range []string{"hub", "hex"} {
			body := `{"url":"http://192.0.2.10/","event_types":["*"],"signing":{"profile":"` + profile + `","header_name":"` + name + `"}}`
			if status, got := call(t, g, "POST", "/v1/endpoints", body); status != 400 || got["field"] != "signing.header_name" {
				t.Errorf("%s header_name %q: %d %v, want 400 naming signing.header_name", profile, name, status, got)
			}
		}
	}

	// A custom header that is the signature header in another case.
	collide := `{"url":"http://192.0.2.10/","event_types":["*"],"headers":{"X-Sig":"static"},"signing":{"profile":"hex","header_name":"x-sig"}}`
	if status, got := call(t, g, "POST", "/v1/endpoints", collide); status != 400 || got["field"] != "headers.X-Sig" {
		t.Errorf("custom X-Sig beside signature header x-sig: %d %v, want 400 naming headers.X-Sig", status, got)
	}
	// The same collision made by an edit, from either side.
	ep := g.addEndpoint(t, map[string]any{"url": "http://192.0.2.10/", "event_types": []string{"*"}, "enabled": false,
		"signing": map[string]string{"profile": "hub"}, "headers": map[string]string{"X-Sig": "static"}})
	if status, got := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"headers":{"x-hub-signature-256":"static"}}`); status != 400 || got["field"] != "headers.x-hub-signature-256" {
		t.Errorf("PATCH a custom header onto the signature header: %d %v", status, got)
	}
	if status, got := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"signing":{"profile":"hub","header_name":"X-SIG"}}`); status != 400 || got["field"] != "headers.X-Sig" {
		t.Errorf("PATCH the signature header onto a custom header: %d %v", status, got)
	}
}

// The reserved names are what the sender writes: every header a receiver gets from quaycast, but
// the endpoint's custom ones, is refused as a custom header and as a signature header (but for
// the signature header itself) — so a header the sender starts writing later is refused too.
func TestReservedHeadersAreWhatTheSenderWrites(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	for _, signing := range []map[string]string{{"profile": "standard"}, {"profile": "hub"}, {"profile": "hex", "header_name": "Veson-Webhook-Signature"}} {
		t.Run(signing["profile"], func(t *testing.T) {
			rc := newReceiver(t)
			ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}, "signing": signing, "headers": map[string]string{"X-Tenant": "acme"}})
			if status, got := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", ""); status != 200 || got["outcome"] != "delivered" {
				t.Fatalf("test send: %d %v", status, got)
			}
			sent := rc.accepted()[0].Header
			sigHeader := map[string]string{"standard": "Webhook-Signature", "hub": "X-Hub-Signature-256", "hex": "Veson-Webhook-Signature"}[signing["profile"]]
			for name := range sent {
				if name == "X-Tenant" {
					continue
				}
				for _, spelled := range []string{name, strings.ToLower(name)} {
					body, _ := json.Marshal(map[string]any{"url": "http://192.0.2.10/", "event_types": []string{"*"}, "signing": signing, "headers": map[string]string{spelled: "x"}})
					if status, got := call(t, g, "POST", "/v1/endpoints", string(body)); status != 400 || got["field"] != "headers."+spelled {
						t.Errorf("custom header %q (the receiver got %s from quaycast): %d %v, want 400 naming headers.%s", spelled, name, status, got, spelled)
					}
					if name == sigHeader {
						continue
					}
					body, _ = json.Marshal(map[string]any{"url": "http://192.0.2.10/", "event_types": []string{"*"}, "signing": map[string]string{"profile": "hex", "header_name": spelled}})
					if status, got := call(t, g, "POST", "/v1/endpoints", string(body)); status != 400 || got["field"] != "signing.header_name" {
						t.Errorf("signature header %q (the receiver got %s from quaycast): %d %v, want 400 naming signing.header_name", spelled, name, status, got)
					}
				}
			}
		})
	}
}
