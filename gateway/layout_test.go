package gateway_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testwait"
)

// octopiReceiver is the TOS seed's receiver: it reads X-Octopi-Event, -Delivery, -Timestamp and
// -Signature, checks the signature its own way (hex HMAC-SHA256 of the raw body with the shared
// secret, compared in constant time), and answers from a script of statuses. It keeps every
// request, failed ones too, so a retry can be compared with the first attempt.
type octopiReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	all    []octopiRequest
	script []int
}

type octopiRequest struct {
	header   http.Header
	body     []byte
	status   int
	verified bool
}

func newOctopiReceiver(t *testing.T, script ...int) *octopiReceiver {
	rc := &octopiReceiver{script: script}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		mac := hmac.New(sha256.New, []byte(rc.secret))
		mac.Write(body)
		got, err := hex.DecodeString(r.Header.Get("X-Octopi-Signature"))
		req := octopiRequest{header: r.Header.Clone(), body: body, verified: err == nil && hmac.Equal(got, mac.Sum(nil)), status: http.StatusOK}
		if !req.verified {
			req.status = http.StatusForbidden
		} else if len(rc.script) > 0 {
			req.status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.all = append(rc.all, req)
		w.WriteHeader(req.status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *octopiReceiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *octopiReceiver) requests() []octopiRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]octopiRequest(nil), rc.all...)
}

func (rc *octopiReceiver) waitAccepted(t *testing.T, n int) {
	t.Helper()
	testwait.For(t, 30*time.Second, "accepted deliveries", func() bool {
		ok := 0
		for _, r := range rc.requests() {
			if r.status/100 == 2 {
				ok++
			}
		}
		return ok >= n
	})
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The octopi preset gives the TOS receiver its four headers: the event's display name, a GUID
// that stays the same when the delivery is retried, the time, and a signature its own check
// accepts; quaycast's own headers are not sent. The body mirrors the event header in event_type,
// and the signature covers the body as sent.
func TestOctopiLayout(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newOctopiReceiver(t, http.StatusServiceUnavailable) // fails the first attempt
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"group:gate"},
		"layout": map[string]any{"preset": "octopi"}, "body": map[string]any{"type_field": "event_type"}})
	rc.setSecret(ep.Secret)
	g.waitReady(t)

	before := time.Now().Unix()
	publishNATS(t, g, event("tos-1", "cargo_gated_in", "MSCU1"))
	rc.waitAccepted(t, 1)
	after := time.Now().Unix()

	reqs := rc.requests()
	if len(reqs) != 2 || reqs[0].status != http.StatusServiceUnavailable || reqs[1].status != http.StatusOK {
		t.Fatalf("requests answered %v, want 503 then 200", statuses(reqs))
	}
	for i, r := range reqs {
		h := r.header
		if !r.verified {
			t.Errorf("attempt %d: X-Octopi-Signature %q does not verify", i+1, h.Get("X-Octopi-Signature"))
		}
		if got := h.Get("X-Octopi-Event"); got != "Cargo Gated In" {
			t.Errorf("attempt %d: X-Octopi-Event = %q, want the display name Cargo Gated In", i+1, got)
		}
		if d := h.Get("X-Octopi-Delivery"); !guid.MatchString(d) || d != gateway.DeliveryUUID(ep.ID, "tos-1", nil) {
			t.Errorf("attempt %d: X-Octopi-Delivery = %q, want the GUID %s", i+1, d, gateway.DeliveryUUID(ep.ID, "tos-1", nil))
		}
		if ts, err := strconv.ParseInt(h.Get("X-Octopi-Timestamp"), 10, 64); err != nil || ts < before || ts > after {
			t.Errorf("attempt %d: X-Octopi-Timestamp = %q, want Unix seconds from %d to %d", i+1, h.Get("X-Octopi-Timestamp"), before, after)
		}
		var body struct {
			EventType string `json:"event_type"`
			ID        string `json:"id"`
			Data      struct{ N string }
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.EventType != h.Get("X-Octopi-Event") || body.ID != "tos-1" || body.Data.N != "tos-1" {
			t.Errorf("attempt %d: body %s: want the envelope with event_type mirroring X-Octopi-Event (%v)", i+1, r.body, err)
		}
		for name := range h {
			if l := strings.ToLower(name); strings.HasPrefix(l, "webhook-") || strings.HasPrefix(l, "quaycast-") {
				t.Errorf("attempt %d: sent %s, which the octopi layout leaves out", i+1, name)
			}
		}
	}
	if a, b := reqs[0].header.Get("X-Octopi-Delivery"), reqs[1].header.Get("X-Octopi-Delivery"); a != b {
		t.Errorf("the retry carried delivery %s, the first attempt %s: want the same", b, a)
	}

	// The view spells the layout out, and the preset brought its signing.
	status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
	l, _ := body["layout"].(map[string]any)
	sg, _ := body["signing"].(map[string]any)
	if status != 200 || l["preset"] != "octopi" || l["event_header"] != "X-Octopi-Event" || l["event_name"] != "title" ||
		l["delivery_id"] != "uuid" || l["quaycast_headers"] != false || sg["profile"] != "hex" || sg["header_name"] != "X-Octopi-Signature" {
		t.Errorf("GET: %d layout %v signing %v", status, l, sg)
	}
}

func statuses(reqs []octopiRequest) []int {
	var out []int
	for _, r := range reqs {
		out = append(out, r.status)
	}
	return out
}

// A layout changed field by field: quaycast's headers kept beside the layout's, the time in RFC
// 3339, the delivery id the event id; the standard signature keeps its webhook-* headers.
func TestCustomLayout(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}, "layout": map[string]any{
		"event_header": "X-Event", "delivery_header": "X-Delivery", "timestamp_header": "X-Sent-At", "timestamp_format": "rfc3339"}})
	g.waitReady(t)
	publishNATS(t, g, event("c-1", "cargo_loaded", "MSCU1"))
	rc.waitCount(t, 1)
	r := rc.accepted()[0]
	verify(t, r, ep.Secret)
	if r.Header.Get("X-Event") != "cargo_loaded" || r.Header.Get("X-Delivery") != "c-1" || r.Header.Get("Quaycast-Event-Type") != "cargo_loaded" {
		t.Errorf("headers %v: want X-Event cargo_loaded, X-Delivery c-1 and quaycast's own", r.Header)
	}
	if _, err := time.Parse(time.RFC3339, r.Header.Get("X-Sent-At")); err != nil {
		t.Errorf("X-Sent-At %q: %v", r.Header.Get("X-Sent-At"), err)
	}

	// With quaycast's headers off, the standard profile still sends the two its signature needs.
	status, _ := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"layout":{"event_header":"X-Event","quaycast_headers":false}}`)
	if status != 200 {
		t.Fatalf("PATCH: %d", status)
	}
	publishNATS(t, g, event("c-2", "cargo_loaded", "MSCU1"))
	rc.waitCount(t, 2)
	r = rc.accepted()[1]
	verify(t, r, ep.Secret)
	if r.Header.Get("Quaycast-Event-Type") != "" || r.Header.Get("Quaycast-Attempt") != "" || r.Header.Get("X-Delivery") != "" || r.Header.Get("X-Event") != "cargo_loaded" {
		t.Errorf("headers %v: want X-Event and the signature's webhook-* only", r.Header)
	}
}

func TestLayoutValidation(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	const url = `"url":"http://192.0.2.10/","event_types":["*"]`
	tests := []struct{ name, body, field string }{
		{"unknown preset", `{` + url + `,"layout":{"preset":"svix"}}`, "layout.preset"},
		{"bad event name", `{` + url + `,"layout":{"event_header":"X-E","event_name":"label"}}`, "layout.event_name"},
		{"bad delivery id", `{` + url + `,"layout":{"delivery_id":"random"}}`, "layout.delivery_id"},
		{"bad time format", `{` + url + `,"layout":{"timestamp_format":"iso"}}`, "layout.timestamp_format"},
		{"not a header name", `{` + url + `,"layout":{"event_header":"X Event"}}`, "layout.event_header"},
		{"twice the same header", `{` + url + `,"layout":{"event_header":"X-E","delivery_header":"x-e"}}`, "layout.delivery_header"},
		{"a header quaycast writes", `{` + url + `,"layout":{"timestamp_header":"Content-Type"}}`, "layout.timestamp_header"},
		{"a reserved prefix", `{` + url + `,"layout":{"event_header":"Quaycast-Kind"}}`, "layout.event_header"},
		{"the signature header", `{` + url + `,"layout":{"preset":"octopi","delivery_header":"x-octopi-signature"}}`, "layout.delivery_header"},
		{"a custom header the layout sends", `{` + url + `,"layout":{"preset":"octopi"},"headers":{"x-octopi-event":"mine"}}`, "headers.x-octopi-event"},
		{"unknown field", `{` + url + `,"layout":{"preset":"octopi","signature":"x"}}`, "layout.signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, g, "POST", "/v1/endpoints", tc.body)
			if status != 400 || body["field"] != tc.field {
				t.Errorf("got %d %v, want 400 naming %s", status, body, tc.field)
			}
		})
	}

	// The github preset signs the GitHub way unless signing is given.
	status, body := call(t, g, "POST", "/v1/endpoints", `{`+url+`,"layout":{"preset":"github"}}`)
	sg, _ := body["signing"].(map[string]any)
	if status != 201 || sg["profile"] != "hub" || sg["header_name"] != "X-Hub-Signature-256" {
		t.Errorf("github preset: %d signing %v", status, sg)
	}
	status, body = call(t, g, "POST", "/v1/endpoints", `{`+url+`,"layout":{"preset":"octopi"},"signing":{"profile":"hub","header_name":"X-Octopi-Signature"}}`)
	sg, _ = body["signing"].(map[string]any)
	if status != 201 || sg["profile"] != "hub" {
		t.Errorf("octopi preset with signing given: %d signing %v", status, sg)
	}
}

// The delivery UUID is RFC 9562's version 5 UUID that receivers can recompute (Python's
// uuid.uuid5 gave the expected value).
func TestDeliveryUUID(t *testing.T) {
	t.Parallel()
	if got, want := gateway.DeliveryUUID("ep_abc", "evt-0001", nil), "c4e02cbc-58e3-56a9-94e8-8f703e343419"; got != want {
		t.Errorf("DeliveryUUID = %s, want %s", got, want)
	}
	if gateway.DeliveryUUID("ep_abc", "evt-0001", nil) == gateway.DeliveryUUID("ep_abd", "evt-0001", nil) {
		t.Error("two endpoints got the same delivery id for one event")
	}
}

// A field selection sends an object of the selected values, signed as sent; GET shows the option,
// and clearing it sends the publisher's bytes again.
func TestBodyFieldSelection(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"cargo_loaded"},
		"body": map[string]any{"type_field": "kind", "fields": []string{"/id", "/data/n", "/data/missing"}}})
	g.waitReady(t)
	publishNATS(t, g, event("sel-1", "cargo_loaded", "MSCU1"))
	rc.waitCount(t, 1)
	r := rc.accepted()[0]
	verify(t, r, ep.Secret) // Standard Webhooks over the body as sent
	if want := `{"kind":"cargo_loaded","id":"sel-1","n":"sel-1","missing":null}`; string(r.Body) != want {
		t.Errorf("body %s, want %s", r.Body, want)
	}

	status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
	b, _ := body["body"].(map[string]any)
	if status != 200 || b["type_field"] != "kind" || len(b["fields"].([]any)) != 3 {
		t.Errorf("GET: %d body %v", status, b)
	}
	if status, _ := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"body":{}}`); status != 200 {
		t.Fatalf("PATCH: %d", status)
	}
	publishNATS(t, g, event("sel-2", "cargo_loaded", "MSCU1"))
	rc.waitCount(t, 2)
	if r := rc.accepted()[1]; !bytes.Equal(r.Body, event("sel-2", "cargo_loaded", "MSCU1")) {
		t.Errorf("after clearing the body options: %s, want the publisher's bytes", r.Body)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"url":"http://192.0.2.10/","event_types":["*"],"body":{"fields":["data/n"]}}`, "body.fields[0]"},
		{`{"url":"http://192.0.2.10/","event_types":["*"],"body":{"fields":["/id","/data/id"]}}`, "body.fields[1]"},
		{`{"url":"http://192.0.2.10/","event_types":["*"],"body":{"pointers":["/id"]}}`, "body.pointers"},
	} {
		if status, body := call(t, g, "POST", "/v1/endpoints", tc.body); status != 400 || body["field"] != tc.field {
			t.Errorf("%s: %d %v, want 400 naming %s", tc.body, status, body, tc.field)
		}
	}
}

// A per-source selector: the endpoint gets the type from the source it names and not from another
// (the server's filter drops it), while an endpoint without a source gets both.
func TestPerSourceSelector(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rotterdam, all := newReceiver(t), newReceiver(t)
	g.addEndpoint(t, map[string]any{"url": rotterdam.URL, "event_types": []string{"tos-rotterdam:cargo_loaded", "tos-rotterdam:group:gate"}})
	g.addEndpoint(t, map[string]any{"url": all.URL, "event_types": []string{"cargo_loaded"}})
	g.waitReady(t)
	fromSource := func(id, source string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":"cargo_loaded","source":%q,"entity":"MSCU1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id, source)
	}
	// Same entity, the other source first: had its event passed the filter, it would be delivered
	// before the Rotterdam one.
	publishNATS(t, g, fromSource("hamburg-1", "tos-hamburg"), fromSource("rotterdam-1", "tos-rotterdam"))
	rotterdam.waitCount(t, 1)
	all.waitCount(t, 2)
	if got := rotterdam.ids(); !slices.Equal(got, []string{"rotterdam-1"}) {
		t.Errorf("the tos-rotterdam endpoint got %v, want only rotterdam-1", got)
	}
	if got := all.ids(); !slices.Equal(got, []string{"hamburg-1", "rotterdam-1"}) {
		t.Errorf("the endpoint of every source got %v", got)
	}
	status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["Tos:cargo_loaded"]}`)
	if status != 400 || body["field"] != "event_types[0]" {
		t.Errorf("a bad source: %d %v", status, body)
	}
}
