package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/quaycast/quaycast/gateway"
)

// A redeliver through the API sends the endpoint's events again, each with the redelivery
// header, which live events never carry; a bad request names its field.
func TestRedeliverThroughAPI(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "cargo_loaded")
	var ids []string
	var evs [][]byte
	for i := range 6 {
		id := fmt.Sprintf("rd-%d", i)
		ids = append(ids, id)
		evs = append(evs, event(id, "cargo_loaded", fmt.Sprintf("RD%d", i%2)))
	}
	publishNATS(t, g, evs...)
	rc.waitCount(t, 6)
	waitDrained(t, g, ep.ID)

	status, body := call(t, g, "POST", "/v1/endpoints/"+ep.ID+"/redeliver", `{"since_seq":1,"entities":["RD1"]}`)
	if status != http.StatusAccepted || body["redelivered"] != float64(3) || body["scanned"] != float64(6) || body["next_seq"] != float64(0) {
		t.Fatalf("redeliver RD1: %d %v, want 202, 3 redelivered of 6 scanned, to the end", status, body)
	}
	rc.waitCount(t, 9)
	var live, again []string
	for _, r := range rc.accepted() {
		id := r.Header.Get("webhook-id")
		switch r.Header.Get(gateway.HeaderRedelivery) {
		case "":
			live = append(live, id)
		case "true":
			again = append(again, id)
		default:
			t.Errorf("%s: %s %q", id, gateway.HeaderRedelivery, r.Header.Get(gateway.HeaderRedelivery))
		}
	}
	slices.Sort(live) // entities go out side by side
	if !slices.Equal(live, ids) || !slices.Equal(again, []string{"rd-1", "rd-3", "rd-5"}) {
		t.Errorf("live %v and redelivered %v, want %v and [rd-1 rd-3 rd-5]", live, again, ids)
	}

	base := "/v1/endpoints/" + ep.ID + "/redeliver"
	for _, tc := range []struct{ name, body, field string }{
		{"no body", "", "body"},
		{"neither start", `{}`, "since_seq"},
		{"both starts", `{"since_seq":1,"since":"2026-01-01T00:00:00Z"}`, "since_seq"},
		{"since not a time", `{"since":"yesterday"}`, "since"},
		{"empty entity", `{"since_seq":1,"entities":[""]}`, "entities"},
		{"limit too large", `{"since_seq":1,"limit":100001}`, "limit"},
		{"unknown field", `{"from":1}`, "from"},
	} {
		if status, body := call(t, g, "POST", base, tc.body); status != http.StatusBadRequest || body["field"] != tc.field {
			t.Errorf("%s: %d %v, want 400 naming %s", tc.name, status, body, tc.field)
		}
	}
	if status, body := call(t, g, "POST", "/v1/endpoints/ep_doesnotexist/redeliver", `{"since_seq":1}`); status != http.StatusNotFound || body["field"] != "id" {
		t.Errorf("unknown endpoint: %d %v, want 404 naming id", status, body)
	}
}
