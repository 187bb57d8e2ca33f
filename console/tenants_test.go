package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The operator's tenants page: create (a taken or bad id beside the field), a portal link shown
// once, deleting refused while the tenant has endpoints; the endpoint form makes a tenant's
// endpoint or an operator's one with tenant_events, and shows the owner after.
func TestTenantViews(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	b := r.signedIn(t)

	csrf := b.csrf("/ui/tenants")
	if status, loc, body := b.post("/ui/tenants", url.Values{"csrf": {csrf}, "id": {"maersk"}, "name": {"Maersk Line"}, "external_id": {"MAEU"}}, base); status != http.StatusSeeOther || !strings.Contains(loc, "done=tenant-added") {
		t.Fatalf("create tenant: %d to %q:\n%s", status, loc, body)
	}
	if status, _, body := b.post("/ui/tenants", url.Values{"csrf": {csrf}, "id": {"maersk"}, "name": {"again"}}, base); status != http.StatusConflict || !strings.Contains(body, `id="id-error"`) {
		t.Errorf("a taken id: %d, want 409 with the error beside the id", status)
	}
	if status, _, body := b.post("/ui/tenants", url.Values{"csrf": {csrf}, "id": {"Not An Id"}, "name": {"x"}}, base); status != http.StatusBadRequest || !strings.Contains(body, `id="id-error"`) {
		t.Errorf("a bad id: %d, want 400 with the error beside the id", status)
	}
	status, page := b.get("/ui/tenants")
	if status != 200 || !strings.Contains(page, "Maersk Line") || !strings.Contains(page, "MAEU") || !strings.Contains(page, `action="/ui/tenants/maersk/portal-link"`) {
		t.Fatalf("tenants page: %d\n%s", status, page)
	}

	status, _, page = b.post("/ui/tenants/maersk/portal-link", url.Values{"csrf": {csrf}}, base)
	link := regexp.MustCompile(`id="link" type="text" readonly value="([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusCreated || link == nil || !strings.HasPrefix(link[1], base+"/ui/portal/qpl_") {
		t.Fatalf("portal link button: %d, link %v", status, link)
	}
	if _, again := b.get("/ui/tenants"); strings.Contains(again, link[1]) {
		t.Error("the tenants page shows the portal link again")
	}
	if st, _ := (&portalClient{t: t, base: base, cookies: map[string]string{}}).do("GET", link[1], nil); st.StatusCode != http.StatusSeeOther {
		t.Errorf("the console's link opens with %d, want 303", st.StatusCode)
	}

	// Endpoints: a tenant's, and an operator's that gets tenants' events too.
	csrf = b.csrf("/ui/endpoints/new")
	create := func(extra url.Values) string {
		t.Helper()
		form := url.Values{"csrf": {csrf}, "url": {r.rcv.URL + "/hook"}, "event_types": {"*"}, "signing_profile": {"preset"}, "layout_preset": {"standard"}}
		for k, v := range extra {
			form[k] = v
		}
		status, _, body := b.post("/ui/endpoints/new", form, base)
		m := regexp.MustCompile(`/ui/endpoints/(ep_[a-z0-9]+)`).FindStringSubmatch(body)
		if status != http.StatusCreated || m == nil {
			t.Fatalf("create endpoint %v: %d\n%s", extra, status, body)
		}
		return m[1]
	}
	mine := create(url.Values{"tenant": {"maersk"}})
	ours := create(url.Values{"tenant_events": {"true"}})
	var got struct {
		Tenant       string `json:"tenant"`
		TenantEvents bool   `json:"tenant_events"`
	}
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+mine, nil, &got); err != nil || got.Tenant != "maersk" || got.TenantEvents {
		t.Errorf("the tenant's endpoint: %+v (%v)", got, err)
	}
	got.Tenant, got.TenantEvents = "", false
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+ours, nil, &got); err != nil || got.Tenant != "" || !got.TenantEvents {
		t.Errorf("the operator's endpoint: %+v (%v)", got, err)
	}
	if _, body := b.get("/ui/endpoints/" + mine); !strings.Contains(body, `tenant <a href="/ui/tenants">maersk</a>`) {
		t.Error("the endpoint page does not show its tenant")
	}
	if _, body := b.get("/ui/endpoints/" + ours); !strings.Contains(body, "also gets events that name tenants") {
		t.Error("the endpoint page does not show that it gets tenants' events")
	}
	if _, body := b.get("/ui/endpoints/" + ours + "/edit"); !regexp.MustCompile(`id="tenant_events" name="tenant_events" value="true"[^>]* checked>`).MatchString(body) {
		t.Error("the edit form lacks the tenant_events option, checked")
	}
	if status, _, body := b.post("/ui/endpoints/new", url.Values{"csrf": {csrf}, "url": {r.rcv.URL + "/hook"}, "event_types": {"*"}, "tenant": {"nobody"}}, base); status != http.StatusBadRequest || !strings.Contains(body, `id="tenant-error"`) {
		t.Errorf("an endpoint for an unknown tenant: %d, want 400 with the error beside the tenant", status)
	}

	// A tenant with endpoints is not deleted; without, it is.
	if status, _, body := b.post("/ui/tenants/maersk/delete", url.Values{"csrf": {csrf}}, base); status != http.StatusConflict || !strings.Contains(body, "delete them first") {
		t.Errorf("deleting a tenant with endpoints: %d, want 409 saying why", status)
	}
	if err := r.api.Do(t.Context(), "DELETE", "/v1/endpoints/"+mine, nil, nil); err != nil {
		t.Fatal(err)
	}
	if status, loc, _ := b.post("/ui/tenants/maersk/delete", url.Values{"csrf": {csrf}}, base); status != http.StatusSeeOther || !strings.Contains(loc, "done=tenant-deleted") {
		t.Errorf("deleting an empty tenant: %d to %q", status, loc)
	}
}

// A new API token or publisher credential is shown once, in a read-only field with its copy
// button; a form refused shows the error beside the field, with what was typed kept.
func TestCredentialShownOnce(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	b := r.signedIn(t)
	shown := regexp.MustCompile(`<label for="secret">([^<]*)</label>\s*<div class="copy"><input id="secret" type="text" readonly value="([^"]+)"[^>]*><button type="button" data-copy="secret" hidden>Copy</button>`)
	for _, tc := range []struct {
		page, prefix, label string
		form                url.Values
	}{
		{"/ui/tokens", "qct_", "Token for reader — shown this once", url.Values{"name": {"reader"}, "scopes": {"endpoints:read"}}},
		{"/ui/publishers", "qcp_", "NATS credential for tos — shown this once", url.Values{"name": {"tos"}, "sources": {"tos"}}},
	} {
		tc.form.Set("csrf", b.csrf(tc.page))
		status, _, body := b.post(tc.page, tc.form, base)
		m := shown.FindStringSubmatch(body)
		if status != http.StatusCreated || m == nil || m[1] != tc.label || !strings.HasPrefix(m[2], tc.prefix) {
			t.Errorf("create on %s: %d, want 201 with the new credential in its copy field labelled %q:\n%s", tc.page, status, tc.label, body)
		}
		// No name: refused beside the name, the sources or scopes typed kept.
		tc.form.Set("name", "")
		status, _, body = b.post(tc.page, tc.form, base)
		if got, ok := fieldErrorText(body, "name"); status != http.StatusBadRequest || !ok || got == "" ||
			!strings.Contains(body, `aria-describedby="name-error"`) || !strings.Contains(body, `aria-invalid="true"`) || strings.Contains(body, `id="secret"`) {
			t.Errorf("no name on %s: %d, %q beside the name; want 400 with the error there and no credential", tc.page, status, got)
		}
	}
}
