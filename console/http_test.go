package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Without access control the console opens at once and says so; a page of another origin
// cannot change anything through it, with or without the CSRF token, nor reach it by a name
// that is not this machine's.
func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	r := start(t, "")
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"*"}})
	b := newBrowser(t, r.g.APIURL())
	status, body := b.get("/ui/endpoints")
	if status != http.StatusOK || !strings.Contains(body, "No access control") {
		t.Fatalf("endpoints page: %d, want 200 with the no-access-control banner:\n%s", status, body)
	}
	token := b.csrf("/ui/endpoints/" + ep.ID)
	disable := url.Values{"csrf": {token}, "enabled": {"false"}}
	for _, tc := range []struct {
		name, origin string
		form         url.Values
	}{
		{"another origin, with the token", "http://evil.example", disable},
		{"a null origin", "null", disable},
		{"no origin nor referer", "", disable},
		{"same origin, no token", r.g.APIURL(), url.Values{"enabled": {"false"}}},
		{"same origin, a wrong token", r.g.APIURL(), url.Values{"csrf": {strings.Repeat("0", 32)}, "enabled": {"false"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, _ := b.post("/ui/endpoints/"+ep.ID+"/enabled", tc.form, tc.origin)
			if status != http.StatusForbidden {
				t.Errorf("status %d, want 403", status)
			}
		})
	}
	var got struct{ Enabled bool }
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+ep.ID, nil, &got); err != nil || !got.Enabled {
		t.Fatalf("endpoint after refused posts: enabled=%v (%v), want still enabled", got.Enabled, err)
	}
	// The same form from the console's own origin goes through.
	status, loc, _ := b.post("/ui/endpoints/"+ep.ID+"/enabled", disable, r.g.APIURL())
	if status != http.StatusSeeOther || !strings.Contains(loc, "done=disabled") {
		t.Fatalf("same-origin post: %d to %q, want a redirect saying disabled", status, loc)
	}
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+ep.ID, nil, &got); err != nil || got.Enabled {
		t.Errorf("endpoint after the console's post: enabled=%v (%v), want disabled", got.Enabled, err)
	}
	// A name another site points at 127.0.0.1 (DNS rebinding) is refused.
	req, _ := http.NewRequest("GET", r.g.APIURL()+"/ui/endpoints", nil)
	req.Host = "rebound.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host rebound.example: %d, want 421", resp.StatusCode)
	}
}
