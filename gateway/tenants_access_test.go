package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testwait"
)

// endpointRoutes are the operations on one endpoint that openapi.json documents (and
// TestOpenAPIMatchesRoutes holds to the route table): a route added later joins the matrix.
func endpointRoutes(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for p, ops := range doc.Paths {
		if !strings.HasPrefix(p, "/v1/endpoints/{id}") {
			continue
		}
		for m := range ops {
			out = append(out, [2]string{strings.ToUpper(m), p})
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[1]+a[0], b[1]+b[0]) })
	if len(out) < 8 {
		t.Fatalf("endpoint routes in openapi.json: %v", out)
	}
	return out
}

// routeBody is a valid request body for an endpoint route, nil for none.
func routeBody(method, path string) any {
	switch {
	case method == "PATCH":
		return map[string]any{"description": "changed"}
	case strings.HasSuffix(path, "/test"), strings.HasSuffix(path, "/replay"), strings.HasSuffix(path, "/rotate"):
		return map[string]any{}
	case strings.HasSuffix(path, "/redeliver"):
		return map[string]any{"since_seq": 1}
	}
	return nil
}

// The route × token matrix for two tenants and the operator: a tenant's token does everything
// on its tenant's endpoints and gets 404 — as for an id that does not exist — for any other
// endpoint on every endpoint route; it lists only its own endpoints, tenant and deliveries, and
// the operator's operations are refused (403). The operator's token sees everything.
func TestTenantTokenMatrix(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = adminToken
	cfg.LogLevel = "info"
	g := startGateway(t, cfg)
	ctx := context.Background()
	admin := asToken(g, adminToken)
	for _, id := range []string{"maersk", "hlag"} {
		if err := admin.Do(ctx, "POST", "/v1/tenants", map[string]any{"id": id, "name": id, "external_id": strings.ToUpper(id)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"endpoints:read", "endpoints:write", "endpoints:delete", "events:publish", "deliveries:read"}
	token := func(tenant string) *gateway.Client {
		var out struct{ Token, Tenant string }
		body := map[string]any{"name": "t-" + tenant, "scopes": all}
		if tenant != "" {
			body["tenant"] = tenant
		}
		if err := admin.Do(ctx, "POST", "/v1/tokens", body, &out); err != nil || out.Tenant != tenant {
			t.Fatalf("token for %q: %v (tenant %q)", tenant, err, out.Tenant)
		}
		return asToken(g, out.Token)
	}
	clients := map[string]*gateway.Client{"maersk": token("maersk"), "hlag": token("hlag"), "": token("")}
	recvs := map[string]*receiver{}
	eps := map[string]string{} // tenant ("" operator) -> endpoint id
	for _, tenant := range []string{"maersk", "hlag", ""} {
		recvs[tenant] = newReceiver(t)
		var ep struct{ ID, Tenant string }
		// Each creates its own: a tenant's token gives its tenant without saying so.
		if err := clients[tenant].Do(ctx, "POST", "/v1/endpoints", map[string]any{"url": recvs[tenant].URL, "event_types": []string{"*"}}, &ep); err != nil || ep.Tenant != tenant {
			t.Fatalf("create %q's endpoint: %v (tenant %q)", tenant, err, ep.Tenant)
		}
		eps[tenant] = ep.ID
	}
	g.waitReady(t)

	sees := func(caller, owner string) bool { return caller == "" || caller == owner }
	routes := endpointRoutes(t)
	for _, caller := range []string{"maersk", "hlag", ""} {
		for _, owner := range []string{"maersk", "hlag", ""} {
			for _, rt := range routes {
				if rt[0] == "DELETE" && rt[1] == "/v1/endpoints/{id}" {
					continue // below, once the rest is done
				}
				path := strings.Replace(rt[1], "{id}", eps[owner], 1)
				got := status(clients[caller].Do(ctx, rt[0], path, routeBody(rt[0], rt[1]), nil))
				ok := got >= 200 && got < 300
				if sees(caller, owner) && !ok || !sees(caller, owner) && got != 404 {
					t.Errorf("token of %q, %s %s of %q's endpoint: %d, want %s", caller, rt[0], rt[1], owner, got,
						map[bool]string{true: "2xx", false: "404"}[sees(caller, owner)])
				}
			}
		}
	}

	// Lists: a tenant's own only.
	for caller, want := range map[string][]string{"maersk": {eps["maersk"]}, "hlag": {eps["hlag"]}, "": {eps["maersk"], eps["hlag"], eps[""]}} {
		var list struct{ Endpoints []struct{ ID string } }
		if err := clients[caller].Do(ctx, "GET", "/v1/endpoints", nil, &list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range list.Endpoints {
			got = append(got, e.ID)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("token of %q lists %v, want %v", caller, got, want)
		}
		var tl struct{ Tenants []struct{ ID string } }
		if err := clients[caller].Do(ctx, "GET", "/v1/tenants", nil, &tl); err != nil {
			t.Fatal(err)
		}
		if caller != "" && (len(tl.Tenants) != 1 || tl.Tenants[0].ID != caller) || caller == "" && len(tl.Tenants) != 2 {
			t.Errorf("token of %q lists tenants %v", caller, tl.Tenants)
		}
	}
	for _, c := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"another tenant's record", "GET", "/v1/tenants/hlag", nil, 404},
		{"its own record", "GET", "/v1/tenants/maersk", nil, 200},
		{"an endpoint for another tenant", "POST", "/v1/endpoints", map[string]any{"url": recvs["maersk"].URL, "event_types": []string{"*"}, "tenant": "hlag"}, 400},
		{"publishing is the operator's", "POST", "/v1/events", json.RawMessage(event("m-1", "cargo_loaded", "C1")), 403},
		{"the cluster is the operator's", "GET", "/v1/cluster", nil, 403},
		{"tenants are the admin's to make", "POST", "/v1/tenants", map[string]any{"id": "x", "name": "x"}, 403},
		{"tokens are the admin's", "GET", "/v1/tokens", nil, 403},
		{"portal links are the operator's, also its own", "POST", "/v1/tenants/maersk/portal-link", nil, 403},
		{"portal links are the operator's, another tenant's", "POST", "/v1/tenants/hlag/portal-link", nil, 403},
		{"the catalogue is open", "GET", "/v1/event-types", nil, 200},
	} {
		body := c.body
		if raw, ok := body.(json.RawMessage); ok {
			body = []byte(raw)
		}
		if got := status(clients["maersk"].Do(ctx, c.method, c.path, body, nil)); got != c.want {
			t.Errorf("maersk's token, %s: %d, want %d", c.name, got, c.want)
		}
	}

	// One event of both tenants: the delivery log of that event shows a tenant its own record.
	if err := admin.Do(ctx, "POST", "/v1/events", []byte(`{"id":"both-1","type":"cargo_loaded","source":"tos","entity":"C9","occurred_at":"2026-11-23T10:00:00Z","data":{},"tenants":["maersk","hlag"]}`), nil); err != nil {
		t.Fatal(err)
	}
	records := func(c *gateway.Client) []string {
		var page struct {
			Deliveries []struct {
				EndpointID string `json:"endpoint_id"`
			}
		}
		if err := c.Do(ctx, "GET", "/v1/events/both-1/deliveries", nil, &page); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range page.Deliveries {
			out = append(out, d.EndpointID)
		}
		slices.Sort(out)
		return out
	}
	testwait.For(t, 30*time.Second, "both tenants' deliveries logged", func() bool { return len(records(clients[""])) == 2 })
	if got := records(clients["maersk"]); !slices.Equal(got, []string{eps["maersk"]}) {
		t.Errorf("maersk's token sees the event's deliveries %v, want only %s", got, eps["maersk"])
	}
	if n := len(recvs[""].ids()); n != 1 { // the test send only: the operator's endpoint did not opt in
		t.Errorf("operator's endpoint got %d requests, want 1 (the test send)", n)
	}

	if got := status(clients["maersk"].Do(ctx, "DELETE", "/v1/endpoints/"+eps["hlag"], nil, nil)); got != 404 {
		t.Errorf("maersk deletes hlag's endpoint: %d, want 404", got)
	}
	if got := status(clients["maersk"].Do(ctx, "DELETE", "/v1/endpoints/"+eps["maersk"], nil, nil)); got != 200 {
		t.Errorf("maersk deletes its endpoint: %d, want 204", got)
	}
}
