package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// signIn signs b in with token.
func signIn(t *testing.T, b *browser, base, token string) {
	t.Helper()
	status, loc, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {token}, "next": {"/ui/endpoints"}}, base)
	if status != http.StatusSeeOther || loc != "/ui/endpoints" {
		t.Fatalf("sign in: %d to %q, want a redirect to the endpoints:\n%s", status, loc, body)
	}
}

// signedIn is a browser signed in to r's console with its admin token.
func (r *rig) signedIn(t *testing.T) *browser {
	t.Helper()
	b := newBrowser(t, r.g.APIURL())
	signIn(t, b, r.g.APIURL(), r.api.Token)
	return b
}

// Every page renders for the admin, and what a user typed is escaped wherever it is shown; a
// read-only token sees no edit controls and the server refuses its edits; sign-out ends the
// session.
func TestPagesAndScopes(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	evil := `<script>window.__xss=1</script>`
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"group:gate", "cargo_loaded"},
		"description": evil, "headers": map[string]string{"X-Tenant": evil, "X-Api-Key": "key-do-not-show"}})
	r.publish(t, "cargo_gated_in", "MSCU1234567")
	testwait.For(t, 20*time.Second, "the delivery", func() bool { return r.rcv.count() == 1 })

	b := newBrowser(t, base)
	if status, _ := b.get("/ui/endpoints"); status != http.StatusSeeOther {
		t.Fatalf("endpoints without a session: %d, want a redirect to sign in", status)
	}
	status, _, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {"wrong"}}, base)
	if status != http.StatusUnauthorized || !strings.Contains(body, `id="token-error"`) {
		t.Fatalf("a wrong token: %d, want 401 with the error beside the field", status)
	}
	signIn(t, b, base, adminToken)
	var seq string
	testwait.For(t, 20*time.Second, "the delivery in the log", func() bool {
		_, body := b.get("/ui/endpoints/" + ep.ID + "/deliveries")
		i := strings.Index(body, "/deliveries/")
		if i < 0 {
			return false
		}
		seq = strings.SplitN(body[i+len("/deliveries/"):], `"`, 2)[0]
		return seq != ""
	})
	for _, path := range []string{
		"/ui/endpoints", "/ui/endpoints?sort=p99&dir=desc&q=hook&state=enabled", "/ui/endpoints/new", "/ui/endpoints/" + ep.ID,
		"/ui/endpoints/" + ep.ID + "/edit", "/ui/endpoints/" + ep.ID + "/delete", "/ui/endpoints/" + ep.ID + "/test",
		"/ui/endpoints/" + ep.ID + "/redeliver",
		"/ui/endpoints/" + ep.ID + "/deliveries", "/ui/endpoints/" + ep.ID + "/deliveries/" + seq,
		"/ui/endpoints/" + ep.ID + "/dead-letters", "/ui/endpoints/" + ep.ID + "/dead-letters/purge",
		"/ui/live", "/ui/catalogue", "/ui/tokens", "/ui/publishers", "/ui/cluster", "/ui/events?id=x",
	} {
		status, body := b.get(path)
		if status != http.StatusOK {
			t.Errorf("%s: %d, want 200:\n%s", path, status, body)
			continue
		}
		if strings.Contains(body, evil) || strings.Contains(body, "key-do-not-show") {
			t.Errorf("%s shows the typed <script> unescaped, or a credential header's value", path)
		}
	}
	_, detail := b.get("/ui/endpoints/" + ep.ID + "/deliveries/" + seq)
	for _, want := range []string{"&lt;script&gt;window.__xss=1&lt;/script&gt;", "[redacted]", "webhook-signature", "MSCU1234567", `{&#34;ack&#34;:true}`} {
		if !strings.Contains(strings.ToLower(detail), strings.ToLower(want)) {
			t.Errorf("the attempt's detail lacks %q", want)
		}
	}

	// A read-only token: no edit controls, and edits refused by the server.
	var tok struct{ Token string }
	if err := r.api.Do(t.Context(), "POST", "/v1/tokens", map[string]any{"name": "viewer", "scopes": []string{"endpoints:read", "deliveries:read"}}, &tok); err != nil {
		t.Fatal(err)
	}
	ro := newBrowser(t, base)
	signIn(t, ro, base, tok.Token)
	for _, path := range []string{"/ui/endpoints", "/ui/endpoints/" + ep.ID, "/ui/endpoints/" + ep.ID + "/dead-letters"} {
		_, body := ro.get(path)
		for _, control := range []string{"/edit", "/enabled", "/rotate", "/delete", "New endpoint", "/purge", "Replay"} {
			if strings.Contains(body, control) {
				t.Errorf("%s shows %q to a read-only token", path, control)
			}
		}
	}
	if status, _ := ro.get("/ui/endpoints/" + ep.ID + "/edit"); status != http.StatusForbidden {
		t.Errorf("edit form for a read-only token: %d, want 403", status)
	}
	csrf := ro.csrf("/ui/endpoints/" + ep.ID)
	for path, form := range map[string]url.Values{
		"/enabled": {"enabled": {"false"}},
		"/rotate":  {"grace": {"0s"}},
		"/delete":  {},
		"/edit":    {"url": {r.rcv.URL + "/other"}, "event_types": {"*"}},
	} {
		form.Set("csrf", csrf)
		if status, _, _ := ro.post("/ui/endpoints/"+ep.ID+path, form, base); status != http.StatusForbidden {
			t.Errorf("read-only POST %s: %d, want 403", path, status)
		}
	}
	var got struct {
		Enabled bool
		URL     string
	}
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+ep.ID, nil, &got); err != nil || !got.Enabled || got.URL != r.rcv.URL+"/hook" {
		t.Errorf("endpoint after refused edits: %+v (%v), want it unchanged", got, err)
	}

	// Sign-out ends the session.
	if status, loc, _ := b.post("/ui/signout", url.Values{"csrf": {b.csrf("/ui/endpoints")}}, base); status != http.StatusSeeOther || loc != "/ui/signin" {
		t.Fatalf("sign out: %d to %q", status, loc)
	}
	if status, _ := b.get("/ui/endpoints"); status != http.StatusSeeOther {
		t.Errorf("endpoints after sign-out: %d, want a redirect to sign in", status)
	}
}
