package console_test

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testwait"
)

// endpointView is the API's endpoint: what a form round trip is checked against.
type endpointView struct {
	ID         string   `json:"id"`
	EventTypes []string `json:"event_types"`
	Signing    struct {
		Profile    string `json:"profile"`
		HeaderName string `json:"header_name"`
		HexCase    string `json:"hex_case"`
	} `json:"signing"`
	Layout struct {
		Preset          string `json:"preset"`
		EventHeader     string `json:"event_header"`
		EventName       string `json:"event_name"`
		DeliveryHeader  string `json:"delivery_header"`
		DeliveryID      string `json:"delivery_id"`
		TimestampHeader string `json:"timestamp_header"`
		TimestampFormat string `json:"timestamp_format"`
		QuaycastHeaders bool   `json:"quaycast_headers"`
	} `json:"layout"`
	Body struct {
		TypeField string   `json:"type_field"`
		Fields    []string `json:"fields"`
	} `json:"body"`
}

func (r *rig) endpoint(t *testing.T, id string) endpointView {
	t.Helper()
	var v endpointView
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+id, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// form is the endpoint form's fields, from a base every case changes.
func form(csrf, target string, set map[string]string) url.Values {
	f := url.Values{"csrf": {csrf}, "url": {target}, "event_types": {"cargo_loaded"}, "layout_preset": {"standard"},
		"layout_event_name": {""}, "signing_profile": {"preset"}, "body_type_field": {""}, "body_fields": {""}, "selectors": {""}}
	for k, v := range set {
		if v == "\x00" {
			f.Del(k)
			continue
		}
		f.Set(k, v)
	}
	return f
}

var createdID = regexp.MustCompile(`href="/ui/endpoints/(ep_[^"/]+)"`)

// create posts the new-endpoint form and returns the new endpoint's id.
func create(t *testing.T, b *browser, base string, f url.Values) string {
	t.Helper()
	status, _, body := b.post("/ui/endpoints/new", f, base)
	m := createdID.FindStringSubmatch(body)
	if status != http.StatusCreated || m == nil {
		t.Fatalf("create: %d, want 201 with the new endpoint:\n%s", status, body)
	}
	return m[1]
}

// The form round trip of each new field: what is posted is stored (read back through the API),
// and the edit form shows it again as it was chosen — a preset as that preset, its signing as
// "as the preset says" unless a profile was chosen, a custom layout's fields, the body options,
// and source-qualified selectors in their text field beside the toggles.
func TestEndpointFormLayoutRoundTrip(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	b := r.signedIn(t)
	target := r.rcv.URL + "/hook"
	// editFormShows fetches the endpoint's edit form and checks that it shows each of want.
	editFormShows := func(t *testing.T, id string, want ...string) string {
		t.Helper()
		_, page := b.get("/ui/endpoints/" + id + "/edit")
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("the edit form lacks %q", w)
			}
		}
		return page
	}

	t.Run("octopi preset, its signing, a mirrored type field", func(t *testing.T) {
		id := create(t, b, base, form(b.csrf("/ui/endpoints/new"), target, map[string]string{"layout_preset": "octopi", "body_type_field": "event_type"}))
		got := r.endpoint(t, id)
		if got.Layout.Preset != "octopi" || got.Layout.EventHeader != "X-Octopi-Event" || got.Layout.EventName != "title" || got.Layout.QuaycastHeaders ||
			got.Signing.Profile != "hex" || got.Signing.HeaderName != "X-Octopi-Signature" || got.Body.TypeField != "event_type" || len(got.Body.Fields) != 0 {
			t.Errorf("stored %+v", got)
		}
		editFormShows(t, id, `<option value="octopi" selected>`, `<option value="preset" selected>`, `id="body_type_field" name="body_type_field" type="text" value="event_type"`,
			`<option value="" selected>as the preset says`)
	})

	t.Run("github preset with a signing profile of its own", func(t *testing.T) {
		id := create(t, b, base, form(b.csrf("/ui/endpoints/new"), target, map[string]string{"layout_preset": "github", "layout_event_name": "title",
			"signing_profile": "hex", "signing_header_name": "X-Sig", "signing_hex_case": "upper"}))
		got := r.endpoint(t, id)
		if got.Layout.Preset != "github" || got.Layout.EventHeader != "X-GitHub-Event" || got.Layout.EventName != "title" ||
			got.Signing.Profile != "hex" || got.Signing.HeaderName != "X-Sig" || got.Signing.HexCase != "upper" {
			t.Errorf("stored %+v", got)
		}
		editFormShows(t, id, `<option value="github" selected>`, `<option value="hex" selected>`, `value="X-Sig"`, `<option value="upper" selected>`, `<option value="title" selected>`)
		// Saved again as shown, the preset's signing does not replace the one chosen.
		status, _, body := b.post("/ui/endpoints/"+id+"/edit", form(b.csrf("/ui/endpoints/"+id+"/edit"), target, map[string]string{"layout_preset": "github",
			"layout_event_name": "title", "signing_profile": "hex", "signing_header_name": "X-Sig", "signing_hex_case": "upper"}), base)
		if status != http.StatusSeeOther {
			t.Fatalf("save again: %d\n%s", status, body)
		}
		if got := r.endpoint(t, id); got.Signing.Profile != "hex" || got.Signing.HeaderName != "X-Sig" {
			t.Errorf("after saving again: signing %+v", got.Signing)
		}
	})

	t.Run("custom layout, selected fields, per-source selectors", func(t *testing.T) {
		id := create(t, b, base, form(b.csrf("/ui/endpoints/new"), target, map[string]string{"event_types": "cargo_gated_in", "layout_preset": "custom",
			"layout_event_name": "title", "layout_event_header": "X-Acme-Event", "layout_delivery_header": "X-Acme-Id", "layout_delivery_id": "uuid",
			"layout_timestamp_header": "X-Acme-Time", "layout_timestamp_format": "rfc3339", "body_type_field": "kind", "body_fields": "/id\r\n\r\n/data/gate\r\n",
			"selectors": "tos-rotterdam:cargo_loaded\r\ntos-rotterdam:group:gate"}))
		got := r.endpoint(t, id)
		l := got.Layout
		if l.EventHeader != "X-Acme-Event" || l.EventName != "title" || l.DeliveryHeader != "X-Acme-Id" || l.DeliveryID != "uuid" || l.TimestampHeader != "X-Acme-Time" ||
			l.TimestampFormat != "rfc3339" || l.QuaycastHeaders || got.Signing.Profile != "standard" {
			t.Errorf("stored layout %+v, signing %+v", l, got.Signing)
		}
		if got.Body.TypeField != "kind" || !slices.Equal(got.Body.Fields, []string{"/id", "/data/gate"}) {
			t.Errorf("stored body %+v", got.Body)
		}
		if want := []string{"cargo_gated_in", "tos-rotterdam:cargo_loaded", "tos-rotterdam:group:gate"}; !slices.Equal(got.EventTypes, want) {
			t.Errorf("stored event types %q, want %q", got.EventTypes, want)
		}
		page := editFormShows(t, id, `<option value="custom" selected>`, `value="X-Acme-Event"`, `value="X-Acme-Id"`, `<option value="uuid" selected>`,
			`value="X-Acme-Time"`, `<option value="rfc3339" selected>`, `<option value="preset" selected>`, `value="cargo_gated_in" data-member="gate" checked>`,
			">tos-rotterdam:cargo_loaded\ntos-rotterdam:group:gate</textarea>", ">/id\n/data/gate</textarea>")
		if strings.Contains(page, `id="layout_quaycast_headers" name="layout_quaycast_headers" value="true" aria-describedby="layout_quaycast_headers-hint" checked`) {
			t.Error("the edit form ticks quaycast's own headers, stored as not sent")
		}
		// Back to the standard preset and the event as published.
		status, _, body := b.post("/ui/endpoints/"+id+"/edit", form(b.csrf("/ui/endpoints/"+id+"/edit"), target, nil), base)
		if status != http.StatusSeeOther {
			t.Fatalf("edit to standard: %d\n%s", status, body)
		}
		got = r.endpoint(t, id)
		if got.Layout.Preset != "standard" || got.Layout.EventHeader != "" || !got.Layout.QuaycastHeaders || got.Body.TypeField != "" || len(got.Body.Fields) != 0 ||
			!slices.Equal(got.EventTypes, []string{"cargo_loaded"}) {
			t.Errorf("after the edit to standard: %+v", got)
		}
	})
}

// fieldErrorText is the text of the error shown beside the field with that id.
func fieldErrorText(page, id string) (string, bool) {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-error">([^<]*)</p>`).FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

// Each new field's errors are shown beside that field, in the API's words: the same definition
// sent to the API is refused with the same reason.
func TestEndpointFormFieldErrors(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	b := r.signedIn(t)
	target := r.rcv.URL + "/hook"
	// A receiver's own secret that suits hex but not Standard Webhooks.
	octopi := r.addEndpoint(t, map[string]any{"url": target, "event_types": []string{"cargo_loaded"}, "layout": map[string]any{"preset": "octopi"},
		"secret": "the shared secret the receiver has"}).ID

	custom := func(extra map[string]string) map[string]string {
		m := map[string]string{"layout_preset": "custom", "layout_delivery_id": "event_id", "layout_timestamp_format": "unix"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		form  map[string]string
		api   map[string]any // the same through the API
		field string         // the id of the input the error is beside
		want  string         // part of the reason
	}{
		{"a header name that is not one", custom(map[string]string{"layout_event_header": "X Event"}),
			map[string]any{"layout": map[string]any{"event_header": "X Event"}}, "layout_event_header", "not a valid HTTP header name"},
		{"a reserved header", custom(map[string]string{"layout_delivery_header": "Content-Type"}),
			map[string]any{"layout": map[string]any{"delivery_header": "Content-Type"}}, "layout_delivery_header", "set by quaycast"},
		{"one header twice", custom(map[string]string{"layout_event_header": "X-A", "layout_timestamp_header": "x-a"}),
			map[string]any{"layout": map[string]any{"event_header": "X-A", "timestamp_header": "x-a"}}, "layout_timestamp_header", "same header"},
		{"an unknown timestamp format", custom(map[string]string{"layout_timestamp_header": "X-T", "layout_timestamp_format": "julian"}),
			map[string]any{"layout": map[string]any{"timestamp_header": "X-T", "timestamp_format": "julian"}}, "layout_timestamp_format", "must be one of"},
		{"an unknown preset", map[string]string{"layout_preset": "acme"},
			map[string]any{"layout": map[string]any{"preset": "acme"}}, "layout_preset", "must be standard, github or octopi"},
		{"a preset's header as a custom header", map[string]string{"layout_preset": "octopi", "headers": "X-Octopi-Event: x"},
			map[string]any{"layout": map[string]any{"preset": "octopi"}, "headers": map[string]string{"X-Octopi-Event": "x"}}, "headers", "layout's header X-Octopi-Event"},
		{"a preset's header as the signature header", map[string]string{"layout_preset": "octopi", "signing_profile": "hex", "signing_header_name": "X-Octopi-Delivery"},
			map[string]any{"layout": map[string]any{"preset": "octopi"}, "signing": map[string]any{"profile": "hex", "header_name": "X-Octopi-Delivery"}}, "layout_preset", "signature header"},
		{"a pointer without its slash", map[string]string{"body_fields": "/id\ndata/gate"},
			map[string]any{"body": map[string]any{"fields": []string{"/id", "data/gate"}}}, "body_fields", `starts with "/"`},
		{"two pointers to one key", map[string]string{"body_fields": "/id\n/data/id"},
			map[string]any{"body": map[string]any{"fields": []string{"/id", "/data/id"}}}, "body_fields", `its key "id"`},
		{"a bad source", map[string]string{"selectors": "TOS:cargo_loaded"},
			map[string]any{"event_types": []string{"cargo_loaded", "TOS:cargo_loaded"}}, "selectors", `source "TOS"`},
		{"an unknown type of a source", map[string]string{"selectors": "tos:cargo_teleported"},
			map[string]any{"event_types": []string{"cargo_loaded", "tos:cargo_teleported"}}, "selectors", `unknown event type "cargo_teleported"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, page := b.post("/ui/endpoints/new", form(b.csrf("/ui/endpoints/new"), target, tc.form), base)
			got, ok := fieldErrorText(page, tc.field)
			if status != http.StatusBadRequest || !ok || !strings.Contains(got, tc.want) {
				t.Fatalf("%d, error beside %s %q (shown: %v); want 400 with %q there:\n%s", status, tc.field, got, ok, tc.want, page)
			}
			if !strings.Contains(page, `aria-describedby="`) || !strings.Contains(page, tc.field+`-error"`) {
				t.Errorf("the field does not point at its error")
			}
			// The API says the same of the same definition.
			body := map[string]any{"url": target, "event_types": []string{"cargo_loaded"}}
			for k, v := range tc.api {
				body[k] = v
			}
			var ae *gateway.APIError
			err := r.api.Do(t.Context(), "POST", "/v1/endpoints", body, nil)
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("the API took it: %v", err)
			}
			reason := strings.TrimPrefix(ae.Message, ae.Field+": ")
			if !strings.Contains(got, reason) {
				t.Errorf("the console says %q, the API %q", got, reason)
			}
		})
	}

	// On an edit: a profile the endpoint's secret does not suit, beside the profile.
	status, _, page := b.post("/ui/endpoints/"+octopi+"/edit", form(b.csrf("/ui/endpoints/"+octopi+"/edit"), target, map[string]string{"layout_preset": "standard"}), base)
	if got, _ := fieldErrorText(page, "signing_profile"); status != http.StatusBadRequest || !strings.Contains(got, "secret does not suit this profile") {
		t.Errorf("octopi to standard with a hex secret: %d, %q beside the profile; want 400 saying the secret does not suit it", status, got)
	}
	if _, page := b.get("/ui/endpoints/" + octopi + "/edit"); !strings.Contains(page, `<option value="octopi" selected>`) {
		t.Error("the refused edit changed the layout")
	}

	// No event type at all, on a create and on an edit: refused beside the toggles.
	for _, path := range []string{"/ui/endpoints/new", "/ui/endpoints/" + octopi + "/edit"} {
		status, _, page := b.post(path, form(b.csrf(path), target, map[string]string{"event_types": "\x00", "layout_preset": "octopi"}), base)
		if got, _ := fieldErrorText(page, "event_types"); status != http.StatusBadRequest || got != "choose at least one event type" {
			t.Errorf("%s without an event type: %d, %q beside the event types; want 400 asking for one", path, status, got)
		}
	}
}

// The endpoint's page lists the headers a receiver gets — checked against what a receiver got —
// with its body options and selectors.
func TestEndpointPageShowsHeadersSent(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	b := r.signedIn(t)
	codes := regexp.MustCompile(`<code>([^<]*)</code>`)
	parent := t
	for _, tc := range []struct {
		name string
		def  map[string]any
		body []string // what the page says of the body
	}{
		{"standard", map[string]any{"event_types": []string{"cargo_loaded", "tos:group:gate"}}, []string{"the event as published"}},
		{"octopi, mirrored", map[string]any{"event_types": []string{"tos:*"}, "layout": map[string]any{"preset": "octopi"}, "body": map[string]any{"type_field": "event_type"}},
			[]string{"display name in the field <code>event_type</code>", "not the publisher's exact bytes"}},
		{"github, hub elsewhere, fields", map[string]any{"event_types": []string{"*"}, "layout": map[string]any{"preset": "github", "quaycast_headers": true},
			"signing": map[string]any{"profile": "hub", "header_name": "X-Sig"}, "body": map[string]any{"fields": []string{"/id", "/entity"}}},
			[]string{"only the fields <code>/id</code>, <code>/entity</code>"}},
		{"custom, rfc3339", map[string]any{"event_types": []string{"cargo_loaded"}, "layout": map[string]any{"timestamp_header": "X-When", "timestamp_format": "rfc3339", "quaycast_headers": false}},
			[]string{"the event as published"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(parent) // open until every subtest's events are delivered
			tc.def["url"] = rcv.URL + "/hook"
			ep := r.addEndpoint(t, tc.def)
			_, page := b.get("/ui/endpoints/" + ep.ID)
			list := page[strings.Index(page, `id="layout-headers"`):]
			list = list[:strings.Index(list, "</ul>")]
			var shown []string
			for _, m := range codes.FindAllStringSubmatch(list, -1) {
				shown = append(shown, http.CanonicalHeaderKey(html.UnescapeString(m[1])))
			}
			body := page[strings.Index(page, `id="body-options"`):]
			for _, want := range tc.body {
				if !strings.Contains(body[:strings.Index(body, "</dd>")], want) {
					t.Errorf("the body options lack %q", want)
				}
			}
			for _, sel := range tc.def["event_types"].([]string) {
				if !strings.Contains(page, "<code>"+sel+"</code>") {
					t.Errorf("the page does not show the selector %s", sel)
				}
			}

			r.publish(t, "cargo_loaded", "MSCU7654321")
			testwait.For(t, 20*time.Second, "the delivery", func() bool { return rcv.count() > 0 })
			rcv.mu.Lock()
			var got []string
			for name := range rcv.got[0].Header {
				switch name {
				case "Content-Type", "User-Agent", "Content-Length", "Accept-Encoding":
				default:
					got = append(got, name)
				}
			}
			rcv.mu.Unlock()
			slices.Sort(got)
			slices.Sort(shown)
			if !slices.Equal(got, shown) {
				t.Errorf("the page lists %q, the receiver got %q", shown, got)
			}
		})
	}
}

// The catalogue page lists built-in and custom types by group; the admin adds a custom type and
// deletes it, a type in use is not deleted (409, said on the page), and a token without the admin
// scope sees no buttons and is refused.
func TestCatalogueCustomTypes(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	b := r.signedIn(t)
	add := func(name, title, group string) (int, string, string) {
		return b.post("/ui/catalogue", url.Values{"csrf": {b.csrf("/ui/catalogue")}, "name": {name}, "title": {title}, "group": {group}, "description": {"A reefer alarm."}}, base)
	}
	del := func(br *browser, name string) (int, string, string) {
		return br.post("/ui/catalogue/"+name+"/delete", url.Values{"csrf": {br.csrf("/ui/catalogue")}}, base)
	}

	if status, loc, body := add("reefer_alarm", "Reefer <Alarm>", "reefer"); status != http.StatusSeeOther || loc != "/ui/catalogue?done=type-added" {
		t.Fatalf("add: %d to %q\n%s", status, loc, body)
	}
	_, page := b.get("/ui/catalogue?done=type-added")
	for _, want := range []string{"Event type added.", `id="g-reefer"`, "Reefer &lt;Alarm&gt;", "<code>reefer_alarm</code>", `action="/ui/catalogue/reefer_alarm/delete"`,
		"Cargo Loaded", "<code>cargo_loaded</code>", "built in"} {
		if !strings.Contains(page, want) {
			t.Errorf("the catalogue lacks %s", want)
		}
	}
	if strings.Contains(page, `action="/ui/catalogue/cargo_loaded/delete"`) {
		t.Error("a built-in type has a delete button")
	}
	if _, form := b.get("/ui/endpoints/new"); !strings.Contains(form, `id="ev-reefer_alarm"`) {
		t.Error("the endpoint form does not offer the custom type")
	}

	status, _, page := add("reefer_alarm", "Again", "reefer")
	if got, _ := fieldErrorText(page, "name"); status != http.StatusConflict || !strings.Contains(got, "there is an event type reefer_alarm already") {
		t.Errorf("the same name again: %d, %q beside the name", status, got)
	}
	status, _, page = add("Reefer Alarm", "Reefer Alarm", "reefer")
	if got, _ := fieldErrorText(page, "name"); status != http.StatusBadRequest || !strings.Contains(got, "must be 1 to 64 characters of [a-z0-9_-]") || !strings.Contains(page, `value="Reefer Alarm"`) {
		t.Errorf("a bad name: %d, %q beside the name, the form kept: %v", status, got, strings.Contains(page, `value="Reefer Alarm"`))
	}
	if status, _, page := del(b, "cargo_loaded"); status != http.StatusConflict || !strings.Contains(page, "built-in event type") {
		t.Errorf("delete a built-in type: %d\n%s", status, page)
	}

	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"tos:reefer_alarm"}})
	status, _, page = del(b, "reefer_alarm")
	if status != http.StatusConflict || !strings.Contains(page, "Not deleted: endpoint "+ep.ID+" selects reefer_alarm") {
		t.Errorf("delete a type in use: %d, want 409 naming the endpoint\n%s", status, page)
	}

	// A token with every scope but admin's: no buttons, and refused.
	var tok struct{ Token string }
	if err := r.api.Do(t.Context(), "POST", "/v1/tokens", map[string]any{"name": "operator", "scopes": []string{"endpoints:read", "endpoints:write", "endpoints:delete"}}, &tok); err != nil {
		t.Fatal(err)
	}
	op := newBrowser(t, base)
	signIn(t, op, base, tok.Token)
	if _, page := op.get("/ui/catalogue"); !strings.Contains(page, "<code>reefer_alarm</code>") || strings.Contains(page, "/delete") || strings.Contains(page, `action="/ui/catalogue"`) {
		t.Errorf("without the admin scope the catalogue shows buttons, or not the type:\n%s", page)
	}
	if err := r.api.Do(t.Context(), "DELETE", "/v1/endpoints/"+ep.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := del(op, "reefer_alarm"); status != http.StatusForbidden {
		t.Errorf("delete without the admin scope: %d, want 403", status)
	}
	if status, _, _ := op.post("/ui/catalogue", url.Values{"csrf": {op.csrf("/ui/catalogue")}, "name": {"x_y"}, "title": {"X"}, "group": {"x"}}, base); status != http.StatusForbidden {
		t.Errorf("add without the admin scope: %d, want 403", status)
	}

	if status, loc, _ := del(b, "reefer_alarm"); status != http.StatusSeeOther || loc != "/ui/catalogue?done=type-deleted" {
		t.Fatalf("delete once unused: %d to %q", status, loc)
	}
	if _, page := b.get("/ui/catalogue"); strings.Contains(page, "<code>reefer_alarm</code>") || strings.Contains(page, "<code>x_y</code>") {
		t.Errorf("the deleted type, or the refused one, is listed:\n%s", page)
	}
}
