package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The endpoint form edits the condition: one that does not compile is shown again with the
// error beside the field (its position in the expression), a good one is saved and shown on the
// endpoint's page, and emptying the field removes it.
func TestEndpointFormCondition(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"cargo_loaded"}})
	b := newBrowser(t, base)
	signIn(t, b, base, adminToken)

	edit := func(condition string) (int, string, string) {
		form := url.Values{"csrf": {b.csrf("/ui/endpoints/" + ep.ID + "/edit")}, "url": {r.rcv.URL + "/hook"},
			"event_types": {"cargo_loaded"}, "signing_profile": {"standard"}, "condition": {condition}}
		return b.post("/ui/endpoints/"+ep.ID+"/edit", form, base)
	}
	status, _, body := edit(`entty == "x"`)
	if status != http.StatusBadRequest || !strings.Contains(body, `id="condition-error"`) || !strings.Contains(body, "1:1: undeclared reference to &#39;entty&#39;") {
		t.Fatalf("a bad condition: %d, want 400 with the error beside the field:\n%s", status, body)
	}
	if status, _, _ := edit(`entity.startsWith("MSCU") && data.gate != "<G9>"`); status != http.StatusSeeOther {
		t.Fatalf("a good condition: %d, want a redirect to the endpoint", status)
	}
	_, page := b.get("/ui/endpoints/" + ep.ID)
	if !strings.Contains(page, `entity.startsWith(&#34;MSCU&#34;) &amp;&amp; data.gate != &#34;&lt;G9&gt;&#34;`) || !strings.Contains(page, "0 events not taken") {
		t.Errorf("the endpoint's page does not show the condition, escaped, with its figures:\n%s", page)
	}
	if _, form := b.get("/ui/endpoints/" + ep.ID + "/edit"); !strings.Contains(form, `data.gate != &#34;&lt;G9&gt;&#34;</textarea>`) {
		t.Errorf("the edit form does not show the current condition")
	}
	if status, _, _ := edit(""); status != http.StatusSeeOther {
		t.Fatalf("clearing the condition: %d", status)
	}
	var got struct{ Condition string }
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+ep.ID, nil, &got); err != nil || got.Condition != "" {
		t.Errorf("after clearing: %+v (%v)", got, err)
	}
}
