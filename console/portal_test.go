package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
)

// tenantsRig is a gateway with two tenants, maersk and hlag, an endpoint of each and one of the
// operator's.
type tenantsRig struct {
	*rig
	eps map[string]string // tenant ("" the operator) -> endpoint id
}

func startTenants(t *testing.T, edit func(*config.Config)) *tenantsRig {
	t.Helper()
	r := &tenantsRig{rig: startWith(t, adminToken, edit), eps: map[string]string{}}
	for _, id := range []string{"maersk", "hlag"} {
		gatewaytest.AddTenant(t, r.api, id, strings.ToUpper(id))
	}
	for _, tenant := range []string{"maersk", "hlag", ""} {
		body := map[string]any{"url": r.rcv.URL + "/" + tenant, "event_types": []string{"*"}, "description": "of " + tenant}
		if tenant != "" {
			body["tenant"] = tenant
		}
		r.eps[tenant] = r.addEndpoint(t, body).ID
	}
	return r
}

// link asks the API for a portal link of tenant.
func (r *tenantsRig) link(t *testing.T, tenant string, body map[string]any) (string, time.Time) {
	t.Helper()
	var l struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	var in any // none: an empty body
	if body != nil {
		in = body
	}
	if err := r.api.Do(t.Context(), "POST", "/v1/tenants/"+tenant+"/portal-link", in, &l); err != nil {
		t.Fatal(err)
	}
	return l.URL, l.ExpiresAt
}

// portalClient is a browser of the portal over plain HTTP on loopback: it keeps the cookies
// itself, since Go's cookie jar sends Secure cookies over HTTPS only (browsers send them to
// loopback too).
type portalClient struct {
	t       *testing.T
	base    string
	cookies map[string]string
}

func (c *portalClient) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = c.base + path
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return resp, string(b)
}

// A portal session over HTTP: it shows the tenant's endpoint and nothing of the other tenant or
// the operator, answers 404 for their ids and 403 for the operator's pages, lets framing only
// from the configured site, checks every post's CSRF token, and ends when the tenant is deleted.
func TestPortalSession(t *testing.T) {
	t.Parallel()
	const embedder = "https://app.example.com"
	r := startTenants(t, func(cfg *config.Config) { cfg.ConsoleFrameAncestors = embedder })
	base := r.g.APIURL()
	c := &portalClient{t: t, base: base, cookies: map[string]string{}}
	link, _ := r.link(t, "maersk", nil)

	resp, _ := c.do("GET", link, nil)
	if resp.StatusCode != http.StatusSeeOther || c.cookies["quaycast_portal"] == "" {
		t.Fatalf("opening the link: %d, cookies %v; want 303 and a portal session", resp.StatusCode, c.cookies)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+embedder+";") || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("the link's answer: CSP %q, X-Frame-Options %q; want framable by %s only", csp, resp.Header.Get("X-Frame-Options"), embedder)
	}
	resp, page := c.do("GET", "/ui/endpoints", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, r.eps["maersk"]) || strings.Contains(page, r.eps["hlag"]) || strings.Contains(page, r.eps[""]) {
		t.Fatalf("portal endpoints: %d; want maersk's endpoint %s only:\n%s", resp.StatusCode, r.eps["maersk"], page)
	}
	for _, nav := range []string{`href="/ui/tokens"`, `href="/ui/tenants"`, `href="/ui/cluster"`, `href="/ui/publishers"`} {
		if strings.Contains(page, nav) {
			t.Errorf("the portal's page links to %s", nav)
		}
	}
	if !strings.Contains(page, "Portal · maersk") {
		t.Error("the portal's page does not say whose portal it is")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+embedder+";") {
		t.Errorf("portal page CSP %q, want frame-ancestors %s", csp, embedder)
	}
	for _, path := range []string{"/ui/endpoints/" + r.eps["hlag"], "/ui/endpoints/" + r.eps[""], "/ui/endpoints/" + r.eps["hlag"] + "/deliveries",
		"/ui/endpoints/" + r.eps["hlag"] + "/edit", "/ui/endpoints/" + r.eps["hlag"] + "/test"} {
		if resp, _ := c.do("GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("portal GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/ui/tokens", "/ui/tenants", "/ui/cluster", "/ui/publishers"} {
		if resp, _ := c.do("GET", path, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("portal GET %s: %d, want 403", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/ui/endpoints/" + r.eps["maersk"], "/ui/endpoints/" + r.eps["maersk"] + "/deliveries", "/ui/endpoints/" + r.eps["maersk"] + "/test",
		"/ui/endpoints/" + r.eps["maersk"] + "/dead-letters", "/ui/endpoints/" + r.eps["maersk"] + "/redeliver", "/ui/catalogue", "/ui/live"} {
		if resp, _ := c.do("GET", path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("portal GET %s: %d, want 200", path, resp.StatusCode)
		}
	}

	// Posts: with the portal's CSRF token, on its own endpoint only.
	_, page = c.do("GET", "/ui/endpoints/"+r.eps["maersk"], nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the portal's endpoint page")
	}
	if resp, _ := c.do("POST", "/ui/endpoints/"+r.eps["maersk"]+"/enabled", url.Values{"enabled": {"false"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a post without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/ui/endpoints/"+r.eps["hlag"]+"/enabled", url.Values{"enabled": {"false"}, "csrf": {m[1]}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("disabling hlag's endpoint from maersk's portal: %d, want 404", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/ui/tenants/hlag/portal-link", url.Values{"csrf": {m[1]}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a portal asking for a portal link: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/ui/endpoints/"+r.eps["maersk"]+"/enabled", url.Values{"enabled": {"false"}, "csrf": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("disabling its own endpoint: %d, want 303", resp.StatusCode)
	}
	var ep struct{ Enabled bool }
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+r.eps["maersk"], nil, &ep); err != nil || ep.Enabled {
		t.Errorf("maersk's endpoint after the portal disabled it: enabled=%v (%v)", ep.Enabled, err)
	}

	// An operator's session cookie is no portal session, and the portal cookie no operator's.
	op := newBrowser(t, base)
	op.post("/ui/signin", url.Values{"token": {adminToken}, "csrf": {op.csrf("/ui/signin")}}, base)
	if status, _ := op.get("/ui/tokens"); status != 200 {
		t.Fatalf("operator's tokens page: %d", status)
	}
	if status, _ := op.get("/ui/endpoints"); status != 200 {
		t.Fatalf("operator's endpoints page: %d", status)
	}
	opResp, _ := (&portalClient{t: t, base: base, cookies: map[string]string{}}).do("GET", "/ui/endpoints", nil)
	if csp := opResp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || opResp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("an operator's page: CSP %q, X-Frame-Options %q; want never framed", csp, opResp.Header.Get("X-Frame-Options"))
	}
	u, _ := url.Parse(base + "/ui/")
	var opCookie string
	for _, ck := range op.client.Jar.Cookies(u) {
		if ck.Name == "quaycast_session" {
			opCookie = ck.Value
		}
	}
	forged := &portalClient{t: t, base: base, cookies: map[string]string{"quaycast_portal": opCookie}}
	if resp, _ := forged.do("GET", "/ui/endpoints", nil); resp.StatusCode != http.StatusUnauthorized || opCookie == "" {
		t.Errorf("an operator's session value as a portal cookie: %d, want 401", resp.StatusCode)
	}
	swapped := &portalClient{t: t, base: base, cookies: map[string]string{"quaycast_session": c.cookies["quaycast_portal"]}}
	if resp, _ := swapped.do("GET", "/ui/tokens", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a portal cookie as an operator's session: %d, want 303 to the sign-in page", resp.StatusCode)
	}

	// Deleting the tenant ends its sessions.
	if err := r.api.Do(t.Context(), "DELETE", "/v1/endpoints/"+r.eps["maersk"], nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.api.Do(t.Context(), "DELETE", "/v1/tenants/maersk", nil, nil); err != nil {
		t.Fatal(err)
	}
	resp, page = c.do("GET", "/ui/endpoints", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Session ended") {
		t.Errorf("after the tenant was deleted: %d, want 401 saying the session ended:\n%s", resp.StatusCode, page)
	}
}

// By default no site may frame the portal: its pages say frame-ancestors 'none'.
func TestPortalNotFramedByDefault(t *testing.T) {
	t.Parallel()
	r := startTenants(t, nil)
	c := &portalClient{t: t, base: r.g.APIURL(), cookies: map[string]string{}}
	link, _ := r.link(t, "hlag", nil)
	c.do("GET", link, nil)
	resp, page := c.do("GET", "/ui/endpoints", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, r.eps["hlag"]) {
		t.Fatalf("portal endpoints: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none';") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("portal page by default: CSP %q, X-Frame-Options %q; want framing refused", csp, resp.Header.Get("X-Frame-Options"))
	}
}

// Login CSRF: a browser signed in as an operator does not redeem a portal link (the link stays
// unused, and says to open it elsewhere), and where a portal cookie got in beside the operator's
// session anyway — a navigation from another site does not carry the operator's SameSite=Strict
// cookie — the operator's session wins and the portal cookie is cleared.
func TestPortalLinkDoesNotReplaceOperatorSession(t *testing.T) {
	t.Parallel()
	r := startTenants(t, nil)
	base := r.g.APIURL()
	op := newBrowser(t, base)
	op.post("/ui/signin", url.Values{"token": {adminToken}, "csrf": {op.csrf("/ui/signin")}}, base)
	if status, _ := op.get("/ui/tokens"); status != http.StatusOK {
		t.Fatalf("operator's tokens page: %d", status)
	}
	link, _ := r.link(t, "maersk", nil)
	status, page := op.get(strings.TrimPrefix(link, base))
	if status != http.StatusConflict || !strings.Contains(page, "another browser profile") {
		t.Errorf("a portal link opened by a signed-in operator: %d, want 409 saying to open it elsewhere:\n%s", status, page)
	}
	if status, _ := op.get("/ui/tokens"); status != http.StatusOK {
		t.Errorf("operator's tokens page after the link: %d, want 200: still the operator's session", status)
	}
	other := &portalClient{t: t, base: base, cookies: map[string]string{}}
	if resp, _ := other.do("GET", link, nil); resp.StatusCode != http.StatusSeeOther || other.cookies["quaycast_portal"] == "" {
		t.Fatalf("the link in another browser: %d, cookies %v; want it unused: 303 and a portal session", resp.StatusCode, other.cookies)
	}

	// Both cookies in one browser: the operator's session wins, the portal's is cleared.
	u, _ := url.Parse(base + "/ui/")
	both := &portalClient{t: t, base: base, cookies: map[string]string{"quaycast_portal": other.cookies["quaycast_portal"]}}
	for _, ck := range op.client.Jar.Cookies(u) {
		both.cookies[ck.Name] = ck.Value
	}
	resp, page := both.do("GET", "/ui/tokens", nil)
	if resp.StatusCode != http.StatusOK || both.cookies["quaycast_portal"] != "" {
		t.Errorf("operator's session beside a portal cookie: %d, cookies %v; want the tokens page and the portal cookie cleared:\n%s", resp.StatusCode, both.cookies, page)
	}
	if resp, page := other.do("GET", "/ui/endpoints", nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, r.eps["maersk"]) {
		t.Errorf("the portal session in its own browser: %d, want maersk's endpoints", resp.StatusCode)
	}
}
