package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// A custom type added through one gateway is usable at once through another on the same NATS —
// in an endpoint's selectors, in the ingest API and in events published straight to NATS — before
// that gateway's watch has necessarily seen it: it reads the catalogue again before refusing.
// Built-in types cannot be changed or deleted, nor a custom type an endpoint selects.
func TestCustomEventTypeAcrossGateways(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	gws := startCluster(t, ns.ClientURL(), 2, nil)
	a, b := gws[0], gws[1]
	a.waitReady(t)
	b.waitReady(t)

	status, body := call(t, a, "POST", "/v1/event-types", `{"name":"reefer_alarm","title":"Reefer Alarm","group":"reefer","description":"A reefer's temperature left its range."}`)
	if status != 201 || body["system"] != "custom" {
		t.Fatalf("create through a: %d %v", status, body)
	}
	rc := newOctopiReceiver(t)
	var ep endpoint
	status, body = call(t, b, "POST", "/v1/endpoints", `{"url":"`+rc.URL+`","event_types":["reefer_alarm"],"layout":{"preset":"octopi"},"body":{"type_field":"event_type"}}`)
	if status != 201 {
		t.Fatalf("an endpoint of the new type through b: %d %v", status, body)
	}
	ep.ID, ep.Secret = body["id"].(string), body["secret"].(string)
	rc.setSecret(ep.Secret)
	const envelope = `{"id":%q,"type":%q,"source":"tos","entity":"MSCU7","occurred_at":"2026-11-23T10:00:00Z","data":{}}`
	if status, body := call(t, b, "POST", "/v1/events", fmt.Sprintf(envelope, "alarm-1", "reefer_alarm")); status != 202 {
		t.Fatalf("an event of the new type through b's ingest: %d %v", status, body)
	}

	// A second type, selected right away through b, published straight to NATS.
	if status, body := call(t, a, "POST", "/v1/event-types", `{"name":"reefer_alarm_cleared","title":"Reefer Alarm Cleared","group":"reefer"}`); status != 201 {
		t.Fatalf("second type: %d %v", status, body)
	}
	if status, body := call(t, b, "PATCH", "/v1/endpoints/"+ep.ID, `{"event_types":["reefer_alarm","reefer_alarm_cleared"]}`); status != 200 {
		t.Fatalf("select the second type through b: %d %v", status, body)
	}
	publishNATS(t, externalNATS(ns.ClientURL()), []byte(fmt.Sprintf(envelope, "alarm-2", "reefer_alarm_cleared")))
	rc.waitAccepted(t, 2)
	for i, want := range []string{"Reefer Alarm", "Reefer Alarm Cleared"} {
		r := rc.requests()[i]
		var env struct {
			EventType string `json:"event_type"`
		}
		_ = json.Unmarshal(r.body, &env)
		if r.header.Get("X-Octopi-Event") != want || env.EventType != want || !r.verified {
			t.Errorf("delivery %d: X-Octopi-Event %q, event_type %q, verified %v; want %q", i+1, r.header.Get("X-Octopi-Event"), env.EventType, r.verified, want)
		}
	}

	for _, tc := range []struct {
		gw           *running
		method, path string
		body         string
		want         int
	}{
		{a, "POST", "/v1/event-types", `{"name":"cargo_loaded","title":"Mine","group":"cargo"}`, http.StatusConflict},
		{a, "POST", "/v1/event-types", `{"name":"reefer_alarm","title":"Again","group":"reefer"}`, http.StatusConflict},
		{a, "POST", "/v1/event-types", `{"name":"Reefer Alarm","title":"x","group":"reefer"}`, http.StatusBadRequest},
		{a, "DELETE", "/v1/event-types/cargo_loaded", "", http.StatusConflict},
		{a, "DELETE", "/v1/event-types/reefer_alarm", "", http.StatusConflict}, // the endpoint selects it
		{a, "DELETE", "/v1/event-types/no_such_type", "", http.StatusNotFound},
	} {
		if status, body := call(t, tc.gw, tc.method, tc.path, tc.body); status != tc.want {
			t.Errorf("%s %s %s: %d %v, want %d", tc.method, tc.path, tc.body, status, body, tc.want)
		}
	}
	if status, body := call(t, b, "PATCH", "/v1/endpoints/"+ep.ID, `{"event_types":["reefer_alarm_cleared"]}`); status != 200 {
		t.Fatalf("patch: %d %v", status, body)
	}
	if status, body := call(t, a, "DELETE", "/v1/event-types/reefer_alarm", ""); status != 204 {
		t.Fatalf("delete an unused custom type: %d %v", status, body)
	}
	testwait.For(t, 10*time.Second, "b's catalogue without the deleted type", func() bool {
		_, body := call(t, b, "GET", "/v1/event-types", "")
		var names []string
		for _, et := range body["event_types"].([]any) {
			names = append(names, et.(map[string]any)["name"].(string))
		}
		return !slices.Contains(names, "reefer_alarm") && slices.Contains(names, "reefer_alarm_cleared")
	})
	if status, body := call(t, b, "POST", "/v1/events", fmt.Sprintf(envelope, "alarm-3", "reefer_alarm")); status != 400 || body["field"] != "type" {
		t.Errorf("an event of the deleted type: %d %v, want 400 naming type", status, body)
	}
}
