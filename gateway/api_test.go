package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
)

// call sends a raw request and returns the status and decoded JSON body.
func call(t *testing.T, g *running, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, g.APIURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.api.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, data)
		}
	}
	return resp.StatusCode, out
}

func TestEndpointAPIValidation(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ep := g.addEndpoint(t, map[string]any{"url": "http://127.0.0.1:9/x", "event_types": []string{"cargo_loaded"}})
	long := strings.Repeat("a", 5000)

	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantField                string
	}{
		{"url missing", "POST", "/v1/endpoints", `{"event_types":["cargo_loaded"]}`, 400, "url"},
		{"url relative", "POST", "/v1/endpoints", `{"url":"/hook","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url other scheme", "POST", "/v1/endpoints", `{"url":"ftp://example.test/x","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url with a space", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/a b","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url port above 65535", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10:65536/","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url port 0", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10:0/","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url with a fragment", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/hook#part","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url with an empty fragment", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/hook#","event_types":["cargo_loaded"]}`, 400, "url"},
		{"description not UTF-8", "POST", "/v1/endpoints", "{\"url\":\"http://192.0.2.10/\",\"event_types\":[\"*\"],\"description\":\"bad \xff byte\"}", 400, "description"},
		{"header value not UTF-8", "POST", "/v1/endpoints", "{\"url\":\"http://192.0.2.10/\",\"event_types\":[\"*\"],\"headers\":{\"X-A\":\"\xfe\"}}", 400, "headers.X-A"},
		{"patch description not UTF-8", "PATCH", "/v1/endpoints/" + ep.ID, "{\"description\":\"\xc3\"}", 400, "description"},
		{"patch url with a space", "PATCH", "/v1/endpoints/" + ep.ID, `{"url":"http://192.0.2.10/a b"}`, 400, "url"},
		{"url too long", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/` + long + `","event_types":["cargo_loaded"]}`, 400, "url"},
		{"url not a string", "POST", "/v1/endpoints", `{"url":42,"event_types":["cargo_loaded"]}`, 400, "url"},
		{"no event types", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":[]}`, 400, "event_types"},
		{"event types missing", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/"}`, 400, "event_types"},
		{"unknown event type", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["cargo_teleported"]}`, 400, "event_types[0]"},
		{"unknown group", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["group:space"]}`, 400, "event_types[0]"},
		{"description too long", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"description":"` + long + `"}`, 400, "description"},
		{"reserved header", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"headers":{"Content-Type":"text/plain"}}`, 400, "headers.Content-Type"},
		{"bad header name", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"headers":{"bad name":"x"}}`, 400, "headers.bad name"},
		{"header value not a string", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"headers":{"X-A":1}}`, 400, "headers"},
		{"bad secret", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"secret":"whsec_short"}`, 400, "secret"},
		{"unknown field", "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"colour":"red"}`, 400, "colour"},
		{"not json", "POST", "/v1/endpoints", `{"url":`, 400, "body"},
		{"not an object", "POST", "/v1/endpoints", `[1,2]`, 400, "body"},
		{"too large", "POST", "/v1/endpoints", `{"description":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body"},
		{"get unknown id", "GET", "/v1/endpoints/ep_doesnotexist", ``, 404, "id"},
		{"get malformed id", "GET", "/v1/endpoints/..%2f", ``, 404, "id"},
		{"patch unknown id", "PATCH", "/v1/endpoints/ep_doesnotexist", `{"enabled":false}`, 404, "id"},
		{"delete unknown id", "DELETE", "/v1/endpoints/ep_doesnotexist", ``, 404, "id"},
		{"patch bad url", "PATCH", "/v1/endpoints/" + ep.ID, `{"url":"nope"}`, 400, "url"},
		{"patch empty event types", "PATCH", "/v1/endpoints/" + ep.ID, `{"event_types":[]}`, 400, "event_types"},
		{"patch secret", "PATCH", "/v1/endpoints/" + ep.ID, `{"secret":"whsec_x"}`, 400, "secret"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, g, tc.method, tc.path, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %v)", status, tc.wantStatus, body)
			}
			if body["error"] == nil || body["error"] == "" {
				t.Errorf("no error message in %v", body)
			}
			if got, _ := body["field"].(string); got != tc.wantField {
				t.Errorf("field %q, want %q (body %v)", got, tc.wantField, body)
			}
		})
	}

	// Nothing invalid was stored, and the valid endpoint is unchanged.
	status, body := call(t, g, "GET", "/v1/endpoints", "")
	if n := len(body["endpoints"].([]any)); status != 200 || n != 1 {
		t.Errorf("list: status %d, %d endpoints, want 200 and 1", status, n)
	}
}

func TestEndpointCRUDNeverShowsSecret(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	var created map[string]any
	if err := g.api.Do(ctx, "POST", "/v1/endpoints", map[string]any{
		"url": "https://192.0.2.10/quay", "event_types": []string{"group:gate"}, "description": "yard app",
		"headers": map[string]string{"X-Tenant": "acme", "Authorization": "Bearer s3cr3t-token"},
	}, &created); err != nil {
		t.Fatal(err)
	}
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+32 {
		t.Fatalf("created secret %q: want whsec_ and base64 of at least 24 bytes", secret)
	}
	id := created["id"].(string)

	for _, path := range []string{"/v1/endpoints", "/v1/endpoints/" + id} {
		var raw json.RawMessage
		if err := g.api.Do(ctx, "GET", path, nil, &raw); err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{secret, strings.TrimPrefix(secret, "whsec_"), "s3cr3t-token"} {
			if bytes.Contains(raw, []byte(leak)) {
				t.Errorf("GET %s shows a secret: %s", path, raw)
			}
		}
		if !bytes.Contains(raw, []byte(`"X-Tenant": "acme"`)) {
			t.Errorf("GET %s hides a plain custom header: %s", path, raw)
		}
	}

	var patched map[string]any
	if err := g.api.Do(ctx, "PATCH", "/v1/endpoints/"+id, map[string]any{"enabled": false, "event_types": []string{"*"}}, &patched); err != nil {
		t.Fatal(err)
	}
	if patched["enabled"] != false || fmt.Sprint(patched["event_types"]) != "[*]" || patched["description"] != "yard app" {
		t.Errorf("patch: got %v", patched)
	}
	if _, ok := patched["secret"]; ok {
		t.Errorf("patch answer shows the secret")
	}
	if err := g.api.Do(ctx, "DELETE", "/v1/endpoints/"+id, nil, nil); err != nil {
		t.Fatal(err)
	}
	var ae *gateway.APIError
	if err := g.api.Do(ctx, "GET", "/v1/endpoints/"+id, nil, nil); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("get after delete: %v, want 404", err)
	}
}

func TestIngest(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ev := string(event("ing-1", "cargo_loaded", "MSCU9"))

	status, body := call(t, g, "POST", "/v1/events", ev)
	if status != 202 || body["duplicate"] != false || body["seq"] == nil || body["id"] != "ing-1" {
		t.Errorf("first publish: %d %v, want 202 with seq, duplicate false", status, body)
	}
	seq := body["seq"]
	status, body = call(t, g, "POST", "/v1/events", ev)
	if status != 200 || body["duplicate"] != true || body["seq"] != seq {
		t.Errorf("duplicate publish: %d %v, want 200, duplicate true, seq %v", status, body, seq)
	}

	batch := "[" + string(event("ing-2", "hold_applied", "MSCU9")) + "," + string(event("ing-3", "hold_lifted", "MSCU9")) + "]"
	status, body = call(t, g, "POST", "/v1/events", batch)
	if evs, _ := body["events"].([]any); status != 202 || len(evs) != 2 {
		t.Errorf("batch: %d %v, want 202 with 2 results", status, body)
	}

	tests := []struct {
		name, body string
		wantStatus int
		wantField  string
	}{
		{"not json", `{"id":`, 400, "body"},
		{"missing id", `{"type":"cargo_loaded","source":"tos","entity":"E","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, 400, "id"},
		{"unknown type", strings.Replace(ev, "cargo_loaded", "cargo_teleported", 1), 400, "type"},
		{"bad source", strings.Replace(ev, `"tos"`, `"T.O.S"`, 1), 400, "source"},
		{"no entity", strings.Replace(ev, `"MSCU9"`, `""`, 1), 400, "entity"},
		{"bad time", strings.Replace(ev, "2026-11-23T10:00:00Z", "yesterday", 1), 400, "occurred_at"},
		{"data not object", strings.Replace(ev, `{"n":"ing-1"}`, `[1]`, 1), 400, "data"},
		{"bad event in batch", "[" + string(event("ing-4", "cargo_loaded", "MSCU9")) + `,{"id":"x"}]`, 400, "[1].type"},
		{"empty batch", `[]`, 400, "body"},
		{"too large", `{"id":"big","data":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, g, "POST", "/v1/events", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tc.wantStatus, body)
			}
			if got, _ := body["field"].(string); got != tc.wantField {
				t.Errorf("field %q, want %q (%v)", got, tc.wantField, body)
			}
		})
	}
	// The invalid batch published nothing: its valid first event is new when published alone.
	status, body = call(t, g, "POST", "/v1/events", string(event("ing-4", "cargo_loaded", "MSCU9")))
	if status != 202 || body["duplicate"] != false {
		t.Errorf("publish of ing-4 after the rejected batch: %d %v, want 202 and not a duplicate", status, body)
	}
}

// An entity with spaces at either end is valid; its event is delivered like any other (NATS
// clients trim header values, so the ingest path must not put it in the entity header).
func TestIngestEntityWithOuterSpaces(t *testing.T) {
	t.Parallel()
	g, rc, _ := startWithEndpoint(t, "*")
	if status, body := call(t, g, "POST", "/v1/events", string(event("sp-1", "cargo_loaded", " MSCU1 "))); status != 202 {
		t.Fatalf("ingest: %d %v", status, body)
	}
	rc.waitCount(t, 1)
	if ids := rc.ids(); len(ids) != 1 || ids[0] != "sp-1" {
		t.Errorf("got %v, want [sp-1]", ids)
	}
}

// A test send of a type the endpoint does not subscribe to is refused, naming type: the receiver
// would never get such an event for real.
func TestTestSendRefusesUnsubscribedType(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "group:gate")
	if status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", `{"type":"cargo_loaded"}`); status != 400 || body["field"] != "type" {
		t.Errorf("test send of an unsubscribed type: %d %v, want 400 naming type", status, body)
	}
	if status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", `{"type":"cargo_gated_in"}`); status != 200 || body["outcome"] != "delivered" {
		t.Errorf("test send of a subscribed type: %d %v, want 200 delivered", status, body)
	}
	if n := len(rc.accepted()); n != 1 {
		t.Errorf("receiver got %d test events, want 1", n)
	}
}

// A batch that fills the stream half-way is stored as an in-order prefix: the answer (503) says
// which events were stored, none after the first refused one is, so publishing the rest again
// keeps the order.
func TestIngestBatchIntoAFullStreamStoresAPrefix(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StreamMaxBytes = 4 << 10 // room for some of the batch
	g := startGateway(t, cfg)
	var batch []string
	for i := range 50 {
		batch = append(batch, string(event(fmt.Sprintf("full-%02d", i), "cargo_loaded", "F1")))
	}
	req := "[" + strings.Join(batch, ",") + "]"
	resp, err := g.api.HTTP.Post(g.APIURL()+"/v1/events", "application/json", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Error  string
		Events []gateway.Published
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || len(out.Events) != 50 {
		t.Fatalf("status %d, Retry-After %q, %d results (%s): want 503 with a result per event", resp.StatusCode, resp.Header.Get("Retry-After"), len(out.Events), out.Error)
	}
	stored := 0
	for stored < len(out.Events) && out.Events[stored].Stored {
		stored++
	}
	if stored == 0 || stored == 50 {
		t.Fatalf("%d stored: the test needs a stream that fills half-way", stored)
	}
	for i, p := range out.Events[stored:] {
		if p.Stored || p.Error == "" || p.ID != fmt.Sprintf("full-%02d", stored+i) {
			t.Errorf("event %d after the first refused one: %+v, want not stored, with an error", stored+i, p)
		}
	}
	js := jsAs(t, g, natsauth.InternalFile)
	s, err := js.Stream(t.Context(), "QUAYCAST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(t.Context()); err != nil || info.State.Msgs != uint64(stored) || info.State.LastSeq != out.Events[stored-1].Seq {
		t.Errorf("stream holds %d events up to seq %d (%v), want exactly the %d stored, the last at %d", info.State.Msgs, info.State.LastSeq, err, stored, out.Events[stored-1].Seq)
	}
}
