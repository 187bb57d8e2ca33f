package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/tokens"
)

const adminToken = "admin-0123456789abcdef"

func asToken(g *running, token string) *gateway.Client {
	c := gateway.NewClient(g.APIURL())
	c.Token = token
	c.HTTP = g.api.HTTP // answers held to openapi.json
	return c
}

func status(err error) int {
	var ae *gateway.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	if err == nil {
		return 200
	}
	return -1
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = adminToken
	g := startGateway(t, cfg)
	ctx := context.Background()
	admin := asToken(g, adminToken)

	// Without a token, or with a wrong one: 401, as JSON.
	for _, c := range []*gateway.Client{asToken(g, ""), asToken(g, "qct_nope"), asToken(g, "qct_0123456789abcdef0123_xxxx"), asToken(g, adminToken+"x")} {
		err := c.Do(ctx, "GET", "/v1/endpoints", nil, nil)
		if status(err) != 401 {
			t.Errorf("token %q: %v, want 401", c.Token, err)
		}
	}
	// Open routes need none.
	g.waitReady(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/event-types"} {
		resp, err := g.api.HTTP.Get(g.APIURL() + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s without a token: %v %v", p, resp.Status, err)
		}
		resp.Body.Close()
	}

	// Tokens are made by the admin, per scope.
	mk := func(name string, scopes ...string) string {
		var out struct{ ID, Token string }
		if err := admin.Do(ctx, "POST", "/v1/tokens", map[string]any{"name": name, "scopes": scopes}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.Token, "qct_") {
			t.Fatalf("token %q", out.Token)
		}
		return out.Token
	}
	reader := asToken(g, mk("dashboard", "endpoints:read"))
	writer := asToken(g, mk("ops", "endpoints:read", "endpoints:write"))
	publisher := asToken(g, mk("tos-rotterdam", "events:publish"))

	var ep struct{ ID string }
	if err := writer.Do(ctx, "POST", "/v1/endpoints", map[string]any{"url": "http://127.0.0.1:9/", "event_types": []string{"*"}, "enabled": false}, &ep); err != nil {
		t.Fatalf("writer creates an endpoint: %v", err)
	}
	checks := []struct {
		name   string
		c      *gateway.Client
		method string
		path   string
		body   any
		want   int
	}{
		{"reader reads", reader, "GET", "/v1/endpoints/" + ep.ID, nil, 200},
		{"reader cannot write", reader, "PATCH", "/v1/endpoints/" + ep.ID, map[string]any{"description": "x"}, 403},
		{"writer cannot delete", writer, "DELETE", "/v1/endpoints/" + ep.ID, nil, 403},
		{"reader cannot read the delivery log", reader, "GET", "/v1/endpoints/" + ep.ID + "/deliveries", nil, 403},
		{"publisher publishes", publisher, "POST", "/v1/events", json.RawMessage(event("auth-1", "cargo_loaded", "C1")), 200},
		{"publisher cannot list endpoints", publisher, "GET", "/v1/endpoints", nil, 403},
		{"tokens are the admin's", writer, "GET", "/v1/tokens", nil, 403},
		{"admin deletes", admin, "DELETE", "/v1/endpoints/" + ep.ID, nil, 200},
	}
	for _, c := range checks {
		body := c.body
		if raw, ok := body.(json.RawMessage); ok {
			body = []byte(raw)
		}
		if got := status(c.c.Do(ctx, c.method, c.path, body, nil)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	// The listing never shows a token's secret; the bucket holds only its hash.
	var list struct{ Tokens []map[string]any }
	if err := admin.Do(ctx, "GET", "/v1/tokens", nil, &list); err != nil || len(list.Tokens) != 3 {
		t.Fatalf("tokens: %v %v", list, err)
	}
	raw, _ := json.Marshal(list)
	// qct_<id>_<secret>: the secret is base64url and may hold "_" itself, so cut after the id (the
	// part after the last "_" was sometimes a few characters that the record held by chance).
	secretPart := strings.SplitN(reader.Token, "_", 3)[2]
	if strings.Contains(string(raw), secretPart) || strings.Contains(string(raw), "hash") {
		t.Errorf("token listing shows secrets: %s", raw)
	}
	js := jsAs(t, g, natsauth.InternalFile)
	kv, _ := js.KeyValue(ctx, tokens.Bucket)
	id := list.Tokens[0]["id"].(string)
	if e, err := kv.Get(ctx, id); err != nil || strings.Contains(string(e.Value()), secretPart) {
		t.Errorf("stored token %s: %v", id, err)
	}

	// Revoked: refused.
	if err := admin.Do(ctx, "DELETE", "/v1/tokens/"+id, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := status(reader.Do(ctx, "GET", "/v1/endpoints", nil, nil)); got != 401 {
		t.Errorf("revoked token: %d, want 401", got)
	}
	if got := status(admin.Do(ctx, "DELETE", "/v1/tokens/"+id, nil, nil)); got != 404 {
		t.Errorf("revoke twice: %d, want 404", got)
	}
	for _, bad := range []map[string]any{{"name": "x", "scopes": []string{"root"}}, {"name": "", "scopes": []string{"endpoints:read"}}, {"name": "x"}} {
		if got := status(admin.Do(ctx, "POST", "/v1/tokens", bad, nil)); got != 400 {
			t.Errorf("create %v: %d, want 400", bad, got)
		}
	}
}
