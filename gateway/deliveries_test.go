package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/internal/testwait"
)

// The delivery log shows what was sent and what came back for every attempt, per endpoint and
// per event, with filters and pagination — and never a secret.
func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "busy, try later")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.Repeat("x", 5000)) // longer than the 4 KiB kept
	}))
	t.Cleanup(recv.Close)
	ep := g.addEndpoint(t, map[string]any{"url": recv.URL, "event_types": []string{"*"},
		"headers": map[string]string{"Authorization": "Bearer tok-123", "X-Tenant": "acme"}})
	g.waitReady(t)
	publishNATS(t, g, event("log-1", "cargo_loaded", "C1"), event("log-2", "cargo_loaded", "C1"))

	type rec struct {
		Event      string `json:"event_id"`
		Out        string `json:"outcome"`
		Attempt    int
		DurationMS float64
		Request    struct {
			URL     string
			Headers map[string]string
		}
		Response struct {
			Status    int
			Body      string
			Truncated bool
		}
	}
	var page struct {
		Deliveries []rec
		NextCursor string `json:"next_cursor"`
	}
	testwait.For(t, 20*time.Second, "3 attempts in the log", func() bool {
		page.Deliveries = nil
		_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+ep.ID+"/deliveries", nil, &page)
		return len(page.Deliveries) >= 3
	})
	first := page.Deliveries[0]
	if first.Event != "log-1" || first.Attempt != 1 || first.Out != "retry" || first.Response.Status != 503 || first.Response.Body != "busy, try later" {
		t.Errorf("first attempt: %+v", first)
	}
	second := page.Deliveries[1]
	if second.Event != "log-1" || second.Attempt != 2 || second.Out != "delivered" || len(second.Response.Body) != 4096 || !second.Response.Truncated {
		t.Errorf("second attempt: event %s attempt %d outcome %s body %d bytes truncated %v", second.Event, second.Attempt, second.Out, len(second.Response.Body), second.Response.Truncated)
	}
	h := second.Request.Headers
	if h["Authorization"] != "[redacted]" || h["X-Tenant"] != "acme" || !strings.HasPrefix(h["webhook-signature"], "v1,") || h["webhook-id"] != "log-1" {
		t.Errorf("logged request headers: %v", h)
	}
	raw, _ := json.Marshal(page)
	if strings.Contains(string(raw), strings.TrimPrefix(ep.Secret, "whsec_")) || strings.Contains(string(raw), "tok-123") {
		t.Errorf("the log shows a secret: %s", raw)
	}

	// Filters and pagination.
	count := func(query string) (int, string) {
		var p struct {
			Deliveries []json.RawMessage
			NextCursor string `json:"next_cursor"`
		}
		if err := g.api.Do(context.Background(), "GET", query, nil, &p); err != nil {
			t.Fatalf("GET %s: %v", query, err)
		}
		return len(p.Deliveries), p.NextCursor
	}
	if n, _ := count("/v1/endpoints/" + ep.ID + "/deliveries?status=failed"); n != 1 {
		t.Errorf("status=failed: %d records, want 1", n)
	}
	if n, _ := count("/v1/endpoints/" + ep.ID + "/deliveries?status=503"); n != 1 {
		t.Errorf("status=503: %d records, want 1", n)
	}
	if n, _ := count("/v1/events/log-2/deliveries"); n != 1 {
		t.Errorf("events/log-2: %d records, want 1", n)
	}
	if n, _ := count("/v1/endpoints/" + ep.ID + "/deliveries?until=2000-01-01T00:00:00Z"); n != 0 {
		t.Errorf("until 2000: %d records", n)
	}
	n, cursor := count("/v1/endpoints/" + ep.ID + "/deliveries?limit=2")
	if n != 2 || cursor == "" {
		t.Fatalf("limit=2: %d records, cursor %q", n, cursor)
	}
	if n, _ := count("/v1/endpoints/" + ep.ID + "/deliveries?limit=2&after=" + cursor); n != 1 {
		t.Errorf("second page: %d records, want 1", n)
	}
	for _, bad := range []struct{ query, field string }{
		{"?status=sideways", "status"}, {"?since=yesterday", "since"}, {"?limit=0", "limit"}, {"?after=x", "after"},
	} {
		if status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID+"/deliveries"+bad.query, ""); status != 400 || body["field"] != bad.field {
			t.Errorf("%s: %d %v", bad.query, status, body)
		}
	}
	if status, _ := call(t, g, "GET", "/v1/endpoints/ep_nope/deliveries", ""); status != 404 {
		t.Errorf("unknown endpoint: %d", status)
	}
}

// A test send goes through the normal signing path now and answers with the attempt.
func TestTestSend(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "group:gate")
	status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", `{"type":"truck_gated_out"}`)
	resp, _ := body["response"].(map[string]any)
	if status != 200 || body["outcome"] != "delivered" || resp["status"] != float64(200) || body["test"] != true {
		t.Fatalf("test send: %d %v", status, body)
	}
	got := rc.accepted()
	if len(got) != 1 || got[0].Header.Get("Quaycast-Event-Type") != "truck_gated_out" {
		t.Fatalf("receiver got %v", got)
	}
	verify(t, got[0], ep.Secret)

	status, body = call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", "")
	if status != 200 || body["type"] != "cargo_gated_in" {
		t.Errorf("test send with defaults: %d %v, want the first subscribed type", status, body)
	}
	if status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", `{"type":"nope"}`); status != 400 || body["field"] != "type" {
		t.Errorf("unknown type: %d %v", status, body)
	}
	if status, _ := call(t, g, "POST", "/v1/endpoints/ep_nope/test", ""); status != 404 {
		t.Errorf("unknown endpoint: %d", status)
	}
}

// A receiver's 2xx JSON reply is passed on to upstream systems on quaycast.reply.<endpoint>.<type>.<entity>;
// in the alerts format it is validated and its alerts go into the delivery log.
func TestReceiverReplies(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	reply := func(body string) string { return answering(t, "application/json", body) }
	alerts := `[{"message":"Draft exceeds berth limit","level":"warning","id":"5f0c","mutation":{"cargo":{"qty":900}},"displayFields":[{"label":"Max draft","value":"12.5 m"}],"link":"https://planner.example/v/77"}]`
	good := g.addEndpoint(t, map[string]any{"url": reply(alerts), "event_types": []string{"*"}, "reply_format": "alerts"})
	bad := g.addEndpoint(t, map[string]any{"url": reply(`[{"level":"info"}]`), "event_types": []string{"*"}, "reply_format": "alerts"})
	raw := g.addEndpoint(t, map[string]any{"url": reply(`{"ok":true}`), "event_types": []string{"*"}})
	if status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"http://192.0.2.10/","event_types":["*"],"reply_format":"xml"}`); status != 400 || body["field"] != "reply_format" {
		t.Errorf("bad reply_format: %d %v", status, body)
	}

	replies := g.followReplies(t)
	g.waitReady(t)
	publishNATS(t, g, event("rp-1", "voyage_updated", "V 77"))

	got := map[string]*nats.Msg{}
	deadline := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case m := <-replies:
			got[m.Header.Get("Quaycast-Endpoint")] = m
		case <-deadline:
			t.Fatalf("replies: got %d, want 2 (good and raw)", len(got))
		}
	}
	if m := got[good.ID]; m == nil || m.Subject != fmt.Sprintf("quaycast.reply.tos.%s.voyage_updated.V~2077", good.ID) || string(m.Data) != alerts || m.Header.Get("Quaycast-Delivery-Id") != "rp-1" {
		t.Errorf("alerts reply: %+v", m)
	}
	if m := got[raw.ID]; m == nil || string(m.Data) != `{"ok":true}` {
		t.Errorf("raw reply: %+v", m)
	}

	var log struct {
		Deliveries []struct {
			Alerts     []map[string]any
			ReplyError string `json:"reply_error"`
		}
	}
	testwait.For(t, 10*time.Second, "logs", func() bool {
		log.Deliveries = nil
		_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+good.ID+"/deliveries", nil, &log)
		return len(log.Deliveries) == 1
	})
	if a := log.Deliveries[0].Alerts; len(a) != 1 || a[0]["message"] != "Draft exceeds berth limit" || a[0]["link"] != "https://planner.example/v/77" {
		t.Errorf("logged alerts: %v", a)
	}
	testwait.For(t, 10*time.Second, "logs", func() bool {
		log.Deliveries = nil
		_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+bad.ID+"/deliveries", nil, &log)
		return len(log.Deliveries) == 1
	})
	if e := log.Deliveries[0].ReplyError; !strings.Contains(e, "message is required") {
		t.Errorf("invalid alerts reply: reply_error %q", e)
	}
	select {
	case m := <-replies:
		t.Errorf("an invalid alerts reply was passed on: %s", m.Data)
	default:
	}
}

// --delivery-log failures keeps only what did not go through (and test sends); off keeps nothing.
func TestDeliveryLogLevels(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"failures", "off"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.DeliveryLog = level
			g := startGateway(t, cfg)
			rc := newReceiver(t, http.StatusInternalServerError) // the first attempt fails
			ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
			g.waitReady(t)
			publishNATS(t, g, event("lv-1", "cargo_loaded", "C1"))
			rc.waitCount(t, 1)
			waitDrained(t, g, ep.ID)
			var page struct{ Deliveries []map[string]any }
			want := map[string]int{"failures": 1, "off": 0}[level]
			// The log is written without waiting: allow it a moment to land before counting.
			testwait.For(t, 5*time.Second, "the log", func() bool {
				page.Deliveries = nil
				_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+ep.ID+"/deliveries", nil, &page)
				return len(page.Deliveries) >= want
			})
			if len(page.Deliveries) != want || want == 1 && page.Deliveries[0]["outcome"] != "retry" {
				t.Errorf("%s: logged %v, want %d failed attempt(s)", level, page.Deliveries, want)
			}
		})
	}
}

// One redaction rule everywhere a delivery's headers are shown — the endpoint's view, the delivery
// log and a test send's answer: custom headers whose names suggest a credential are redacted, other
// custom headers are shown, and the signatures quaycast computed are shown.
func TestCredentialHeadersRedactedEverywhere(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)
	custom := map[string]string{
		"X-Signature-Secret": "sig-secret-1", "Authorization": "Bearer auth-2", "Cookie": "sid=cookie-3",
		"X-Api-Token": "token-4", "X-Client-Key": "key-5", "X-Password": "password-6", "X-Auth-User": "auth-7",
		"X-Credential-Id": "credential-8", "X-Tenant": "acme", "X-Config-Flag": "CFGEnableX",
	}
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}, "headers": custom, "signing": map[string]string{"profile": "hub"}})
	secrets := []string{"sig-secret-1", "auth-2", "cookie-3", "token-4", "key-5", "password-6", "auth-7", "credential-8"}
	check := func(where string, h map[string]any) {
		t.Helper()
		for name, value := range custom {
			want := "[redacted]"
			if name == "X-Tenant" || name == "X-Config-Flag" {
				want = value
			}
			if h[name] != want {
				t.Errorf("%s: %s = %v, want %q", where, name, h[name], want)
			}
		}
	}
	noSecret := func(where string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s shows %q: %s", where, s, b)
			}
		}
	}

	status, sent := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/test", "")
	if status != 200 || sent["outcome"] != "delivered" {
		t.Fatalf("test send: %d %v", status, sent)
	}
	req, _ := sent["request"].(map[string]any)
	testHeaders, _ := req["headers"].(map[string]any)
	check("test send answer", testHeaders)
	if sig, _ := testHeaders["X-Hub-Signature-256"].(string); !strings.HasPrefix(sig, "sha256=") {
		t.Errorf("test send answer: the computed signature is not shown: %v", testHeaders)
	}
	noSecret("test send answer", sent)

	_, got := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
	viewHeaders, _ := got["headers"].(map[string]any)
	check("endpoint view", viewHeaders)
	noSecret("endpoint view", got)
	_, list := call(t, g, "GET", "/v1/endpoints", "")
	noSecret("endpoint list", list)

	var page struct{ Deliveries []map[string]any }
	testwait.For(t, 10*time.Second, "the test send in the log", func() bool {
		page.Deliveries = nil
		_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+ep.ID+"/deliveries", nil, &page)
		return len(page.Deliveries) == 1
	})
	logReq, _ := page.Deliveries[0]["request"].(map[string]any)
	logHeaders, _ := logReq["headers"].(map[string]any)
	check("delivery log", logHeaders)
	if logHeaders["X-Hub-Signature-256"] != testHeaders["X-Hub-Signature-256"] {
		t.Errorf("delivery log: signature %v, want the one sent, %v", logHeaders["X-Hub-Signature-256"], testHeaders["X-Hub-Signature-256"])
	}
	noSecret("delivery log", page)
}

// An alerts endpoint's 2xx reply that is not JSON is recorded with reply_error and not passed on;
// the receiver's bytes of a valid reply are passed on as they are (display fields as the seed's
// label/value object included), and the log shows the alerts normalised.
func TestAlertsReplies(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	answer := func(body string) string { return answering(t, "", body) }
	objectForm := "\n  [{\"message\":\"Draft exceeds berth limit\", \"displayFields\":{\"label\":\"Max draft\",\"value\":\"12.5 m\"}}]  \n"
	notJSON := g.addEndpoint(t, map[string]any{"url": answer("OK, thanks"), "event_types": []string{"*"}, "reply_format": "alerts"})
	object := g.addEndpoint(t, map[string]any{"url": answer(objectForm), "event_types": []string{"*"}, "reply_format": "alerts"})
	plain := g.addEndpoint(t, map[string]any{"url": answer("OK, thanks"), "event_types": []string{"*"}})

	replies := g.followReplies(t)
	g.waitReady(t)
	publishNATS(t, g, event("ar-1", "voyage_updated", "V77"))

	select {
	case m := <-replies:
		if m.Header.Get("Quaycast-Endpoint") != object.ID || string(m.Data) != objectForm {
			t.Errorf("passed on %q from %s, want the receiver's bytes %q from %s", m.Data, m.Header.Get("Quaycast-Endpoint"), objectForm, object.ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply passed on within 20 s")
	}

	type logged struct {
		Outcome    string
		Alerts     []map[string]any
		ReplyError string `json:"reply_error"`
	}
	record := func(id string) logged {
		var page struct{ Deliveries []logged }
		testwait.For(t, 10*time.Second, "the log of "+id, func() bool {
			page.Deliveries = nil
			_ = g.api.Do(context.Background(), "GET", "/v1/endpoints/"+id+"/deliveries", nil, &page)
			return len(page.Deliveries) == 1
		})
		return page.Deliveries[0]
	}
	if r := record(notJSON.ID); r.Outcome != "delivered" || !strings.Contains(r.ReplyError, "not JSON") {
		t.Errorf("alerts endpoint answering text: %+v, want delivered with a reply_error saying it is not JSON", r)
	}
	r := record(object.ID)
	if df, _ := r.Alerts[0]["displayFields"].([]any); r.ReplyError != "" || len(df) != 1 || fmt.Sprint(df[0]) != "map[label:Max draft value:12.5 m]" {
		t.Errorf("logged alerts %v (reply_error %q), want displayFields as an array of one label/value", r.Alerts, r.ReplyError)
	}
	if r := record(plain.ID); r.Outcome != "delivered" || r.ReplyError != "" {
		t.Errorf("a plain endpoint answering text: %+v, want delivered, no reply_error (a text reply is not a reply to pass on)", r)
	}
	select {
	case m := <-replies:
		t.Errorf("passed on %q from %s: only the valid alerts reply should be", m.Data, m.Header.Get("Quaycast-Endpoint"))
	default:
	}
}

// answering is the URL of a receiver that answers every request 200 with body, of contentType
// unless that is "".
func answering(t *testing.T, contentType, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// followReplies subscribes, as a publisher granted the replies, to every receiver reply the
// gateway passes on.
func (r *running) followReplies(t *testing.T) <-chan *nats.Msg {
	t.Helper()
	nc, err := r.publisherConn(t, []string{"*"}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	replies := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe("quaycast.reply.>", replies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return replies
}
