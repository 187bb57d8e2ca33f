package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// portalLink is the answer of POST /v1/tenants/{id}/portal-link.
type portalLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// openLink GETs a portal link as a browser would, without following the redirect: the status,
// the redirect target, the session cookie set (if any) and the page.
func openLink(t *testing.T, link string) (status int, location string, session *http.Cookie, body string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "quaycast_portal" && ck.Value != "" {
			session = ck
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), session, string(b)
}

// The operator gets a portal link; a tenant's token, a token without every scope the session
// would have, an unknown tenant and bad durations are refused as the document says; the link
// opens once, with a Secure, SameSite=None, partitioned session cookie, then answers 410; an
// expired link answers 410 too; and the code is never in the gateway's log, at any level.
func TestPortalLinkAPI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = adminToken
	g, logs := startGatewayLogged(t, cfg)
	ctx := context.Background()
	admin := asToken(g, adminToken)
	for _, id := range []string{"maersk", "hlag"} {
		gatewaytest.AddTenant(t, admin, id, id)
	}
	token := func(tenant string, scopes ...string) *gateway.Client {
		var out struct{ Token string }
		body := map[string]any{"name": "t", "scopes": scopes}
		if tenant != "" {
			body["tenant"] = tenant
		}
		if err := admin.Do(ctx, "POST", "/v1/tokens", body, &out); err != nil {
			t.Fatal(err)
		}
		return asToken(g, out.Token)
	}
	portalScopes := []string{"endpoints:read", "endpoints:write", "endpoints:delete", "deliveries:read"}
	operator := token("", portalScopes...)

	var l portalLink
	if err := operator.Do(ctx, "POST", "/v1/tenants/maersk/portal-link", nil, &l); err != nil {
		t.Fatalf("operator's token asks for a link: %v", err)
	}
	if !strings.HasPrefix(l.URL, g.APIURL()+"/ui/portal/qpl_") || time.Until(l.ExpiresAt) > 5*time.Minute || time.Until(l.ExpiresAt) < time.Minute {
		t.Errorf("link %s until %s: want one under this gateway's URL, for 5 minutes", l.URL, l.ExpiresAt)
	}
	for _, c := range []struct {
		name   string
		client *gateway.Client
		path   string
		body   any
		want   int
		field  string
	}{
		{"a tenant's token, its own tenant", token("maersk", portalScopes...), "/v1/tenants/maersk/portal-link", nil, 403, ""},
		{"a tenant's token, another tenant", token("maersk", portalScopes...), "/v1/tenants/hlag/portal-link", nil, 403, ""},
		{"a token that may not delete", token("", "endpoints:read", "endpoints:write", "deliveries:read"), "/v1/tenants/maersk/portal-link", nil, 403, ""},
		{"an unknown tenant", admin, "/v1/tenants/nobody/portal-link", nil, 404, "id"},
		{"a ttl over an hour", admin, "/v1/tenants/maersk/portal-link", map[string]any{"ttl": "2h"}, 400, "ttl"},
		{"a session of two days", admin, "/v1/tenants/maersk/portal-link", map[string]any{"session_ttl": "48h"}, 400, "session_ttl"},
		{"a session longer than --portal-session-ttl", admin, "/v1/tenants/maersk/portal-link", map[string]any{"session_ttl": "2h"}, 400, "session_ttl"},
		{"an unknown field", admin, "/v1/tenants/maersk/portal-link", map[string]any{"return": "x"}, 400, "return"},
	} {
		err := c.client.Do(ctx, "POST", c.path, c.body, nil)
		var ae *gateway.APIError
		if got := status(err); got != c.want || c.field != "" && (!errors.As(err, &ae) || ae.Field != c.field) {
			t.Errorf("%s: %v (status %d), want %d naming %q", c.name, err, got, c.want, c.field)
		}
	}

	if resp, err := http.Head(l.URL); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD of the link: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	st, loc, ck, _ := openLink(t, l.URL) // the HEAD did not use it up
	if st != http.StatusSeeOther || loc != "/ui/endpoints" || ck == nil {
		t.Fatalf("first opening: %d to %q, cookie %v; want 303 to /ui/endpoints with the session", st, loc, ck)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteNoneMode || !ck.Partitioned || ck.Path != "/ui/" {
		t.Errorf("portal cookie %s: want Secure, HttpOnly, SameSite=None, Partitioned, Path=/ui/", ck.String())
	}
	if st, _, ck, body := openLink(t, l.URL); st != http.StatusGone || ck != nil || !strings.Contains(body, "used already") {
		t.Errorf("second opening: %d, cookie %v, want 410 saying the link was used:\n%s", st, ck, body)
	}

	var short portalLink
	if err := admin.Do(ctx, "POST", "/v1/tenants/hlag/portal-link", map[string]any{"ttl": "1s", "session_ttl": "10m"}, &short); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the short link's time to pass", func() bool { return time.Now().After(short.ExpiresAt) })
	if st, _, ck, body := openLink(t, short.URL); st != http.StatusGone || ck != nil || !strings.Contains(body, "expired") {
		t.Errorf("expired link: %d, cookie %v, want 410 saying it expired:\n%s", st, ck, body)
	}

	for _, u := range []string{l.URL, short.URL} {
		code := u[strings.LastIndex(u, "/")+1:]
		if strings.Contains(logs.String(), code) {
			t.Errorf("the gateway's log holds a link's code %s", code)
		}
	}
	if !strings.Contains(logs.String(), "/ui/portal/[redacted]") {
		t.Error("the request log does not show the redeemed path redacted: is the test looking at the right log?")
	}
}

// Without access control there is no session to limit: no link.
func TestPortalLinkNeedsAccessControl(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	ctx := context.Background()
	gatewaytest.AddTenant(t, g.api, "maersk", "Maersk")
	if got := status(g.api.Do(ctx, "POST", "/v1/tenants/maersk/portal-link", nil, nil)); got != http.StatusConflict {
		t.Errorf("a link without --admin-token: %d, want 409", got)
	}
}

// Two gateways on one NATS: a link made on one is opened at the same moment through both, many
// times; exactly one opening starts a session.
func TestPortalLinkOnceAcrossGateways(t *testing.T) {
	t.Parallel()
	gws := startCluster(t, natstest.Start(t).ClientURL(), 2, func(cfg *config.Config) { cfg.AdminToken = adminToken })
	ctx := context.Background()
	admin := asToken(gws[0], adminToken)
	gatewaytest.AddTenant(t, admin, "maersk", "Maersk")
	for round := range 3 {
		var l portalLink
		if err := admin.Do(ctx, "POST", "/v1/tenants/maersk/portal-link", nil, &l); err != nil {
			t.Fatal(err)
		}
		code := l.URL[strings.LastIndex(l.URL, "/")+1:]
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			statuses = map[int]int{}
		)
		start := make(chan struct{})
		for i := range 8 {
			wg.Go(func() {
				<-start
				st, _, _, _ := openLink(t, gws[i%2].APIURL()+"/ui/portal/"+code)
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if statuses[http.StatusSeeOther] != 1 || statuses[http.StatusGone] != 7 {
			t.Errorf("round %d: openings answered %v, want one 303 and seven 410", round, statuses)
		}
	}
}

// A portal link's code stays out of the request log whatever shape the path has: "/ui//portal/"
// and "/ui/./portal/" answer a redirect to the clean path (the code unused), and a code in any
// other segment or case is redacted too.
func TestPortalCodeNotLoggedInAnyPath(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = adminToken
	g, logs := startGatewayLogged(t, cfg)
	ctx := context.Background()
	admin := asToken(g, adminToken)
	gatewaytest.AddTenant(t, admin, "maersk", "Maersk")
	var l portalLink
	if err := admin.Do(ctx, "POST", "/v1/tenants/maersk/portal-link", nil, &l); err != nil {
		t.Fatal(err)
	}
	code := l.URL[strings.LastIndex(l.URL, "/")+1:]
	rest := strings.TrimPrefix(code, "qpl_")
	logged := func() int { return strings.Count(logs.String(), `"message":"api"`) }
	before := logged()
	for _, p := range []string{"/ui//portal/" + code, "/ui/./portal/" + code, "/ui/portal/" + code + "/x", "/v1/" + code, "/ui/portal/QPL_" + rest} {
		openLink(t, g.APIURL()+p)
	}
	testwait.For(t, 10*time.Second, "the requests logged", func() bool { return logged() >= before+5 })
	if strings.Contains(logs.String(), rest) {
		t.Errorf("the gateway's log holds the link's code:\n%s", logs.String())
	}
	if st, loc, ck, _ := openLink(t, l.URL); st != http.StatusSeeOther || loc != "/ui/endpoints" || ck == nil {
		t.Errorf("the link after those requests: %d to %q, cookie %v; want it unused (303 to /ui/endpoints with a session)", st, loc, ck)
	}
}
