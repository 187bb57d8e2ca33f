package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// The endpoint form edits the condition: one that does not compile is shown again with the
// error beside the field (its position in the expression), a good one is saved and shown on the
// endpoint's page, and emptying the field removes it.
func TestEndpointFormCondition(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"cargo_loaded"}})
	b := r.signedIn(t)

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

// The dead letters page replays a pick: by entity, and by when they were dead-lettered; a time
// window in the future picks none, and a time that is not one is refused naming the field.
func TestDeadLettersReplayPick(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"cargo_loaded"}})
	r.rcv.status.Store(400)
	r.publish(t, "cargo_loaded", "MSCU1")
	r.publish(t, "cargo_loaded", "MSCU2")
	b := r.signedIn(t)
	page := "/ui/endpoints/" + ep.ID + "/dead-letters"
	testwait.For(t, 30*time.Second, "two dead letters", func() bool {
		_, body := b.get(page)
		return strings.Count(body, `name="event_id"`) == 2
	})
	r.rcv.status.Store(200)
	pick := func(entities, since, until string) (int, string, string) {
		form := url.Values{"csrf": {b.csrf(page)}, "pick": {"true"}, "entities": {entities}, "since": {since}, "until": {until}}
		return b.post(page+"/replay", form, base)
	}
	if status, loc, _ := pick("MSCU2", "", "2999-01-01T00:00"); status != http.StatusSeeOther || !strings.HasSuffix(loc, "replayed=1") {
		t.Fatalf("replay MSCU2: %d to %q, want one replayed", status, loc)
	}
	testwait.For(t, 30*time.Second, "MSCU2's event delivered", func() bool { return r.rcv.count() > 0 })
	if status, loc, _ := pick("", "2999-01-01T00:00", ""); status != http.StatusSeeOther || !strings.HasSuffix(loc, "replayed=0") {
		t.Errorf("a window in the future: %d to %q, want none replayed", status, loc)
	}
	if status, _, body := pick("", "yesterday", ""); status != http.StatusBadRequest || !strings.Contains(body, "since") {
		t.Errorf("since not a time: %d, want 400 naming since:\n%s", status, body)
	}
	if _, body := b.get(page); strings.Count(body, `name="event_id"`) != 1 || !strings.Contains(body, "MSCU1") {
		t.Errorf("after the pick the dead letters should be MSCU1's alone:\n%s", body)
	}
}
