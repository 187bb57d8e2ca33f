package gateway_test

import (
	"slices"
	"strings"
	"testing"
)

// Through the API: an endpoint's condition is checked when saved (400 naming the field and the
// position), sends only the events it takes, and the endpoint's detail and the metrics count the
// others; clearing it sends everything again.
func TestEndpointCondition(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	rc := newReceiver(t)

	status, body := call(t, g, "POST", "/v1/endpoints", `{"url":"`+rc.URL+`","event_types":["*"],"condition":"entity.startsWith(\"MSCU\") && entty == 1"}`)
	if status != 400 || body["field"] != "condition" || !strings.Contains(body["error"].(string), "1:30: undeclared reference to 'entty'") {
		t.Fatalf("bad condition: %d %v", status, body)
	}
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}, "condition": `entity.startsWith("MSCU") && data.n != "e3"`})
	g.waitReady(t)
	publishNATS(t, g, event("e1", "cargo_loaded", "MSCU1"), event("e2", "cargo_loaded", "TGHU1"), event("e3", "cargo_loaded", "MSCU1"), event("e4", "cargo_loaded", "MSCU2"))
	rc.waitCount(t, 2)
	waitDrained(t, g, ep.ID)
	if got := rc.ids(); !slices.Equal(got, []string{"e1", "e4"}) && !slices.Equal(got, []string{"e4", "e1"}) {
		t.Fatalf("delivered %v, want e1 and e4", got)
	}
	status, body = call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
	stats, _ := body["condition_stats"].(map[string]any)
	if status != 200 || body["condition"] != `entity.startsWith("MSCU") && data.n != "e3"` || stats["skipped"] != 2.0 || stats["errors"] != 0.0 {
		t.Errorf("GET: %d condition %v stats %v", status, body["condition"], stats)
	}
	if m := scrape(t, g); !strings.Contains(m, `quaycast_condition_skipped_total{endpoint="`+ep.ID+`",reason="no_match"} 2`) {
		t.Errorf("metrics lack the skipped count")
	}

	if status, body := call(t, g, "PATCH", "/v1/endpoints/"+ep.ID, `{"condition":""}`); status != 200 || body["condition"] != nil {
		t.Fatalf("clear the condition: %d %v", status, body)
	}
	publishNATS(t, g, event("e5", "cargo_loaded", "TGHU1"))
	rc.waitCount(t, 3)
	if status, body := call(t, g, "GET", "/v1/endpoints/"+ep.ID, ""); status != 200 || body["condition_stats"] != nil {
		t.Errorf("without a condition: %d stats %v", status, body["condition_stats"])
	}
}
