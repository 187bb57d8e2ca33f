package console_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var uuidForm = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The layout form in a real browser: choosing the octopi preset shows what it sends and hides the
// custom fields, a mirrored body field is set, and the endpoint saved; a test event sent from the
// console reaches a real receiver with the X-Octopi-* headers and the event_type field, and the
// signature verifies as the TOS's receiver checks it. The form, the endpoint's page and the
// catalogue with a custom type pass axe-core and run no script but the console's own.
func TestLayoutFormInBrowser(t *testing.T) {
	r := start(t, adminToken)
	tb := newTab(t, r.g.APIURL())
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	hidden := func(sel string) bool {
		t.Helper()
		return eval[bool](tb, `document.querySelector(`+jsString(sel)+`).closest("[hidden]") !== null`)
	}

	tb.open("/ui/")
	tb.run(chromedp.SendKeys(css("#token"), adminToken), chromedp.Submit(css("#token")), chromedp.WaitVisible(css(`a[href="/ui/endpoints/new"]`)))

	tb.open("/ui/endpoints/new")
	if hidden(`[data-layouts="standard"]`) || !hidden(`[data-layouts="octopi"]`) || !hidden("#layout_event_header") || !hidden("#signing_header_name") {
		t.Errorf("the new form should show the standard preset's headers only, no custom fields, no signature header (signing as the preset says)")
	}
	tb.run(chromedp.SendKeys(css("#url"), r.rcv.URL+"/tos"), chromedp.Click(css("#ev-cargo_gated_in")),
		chromedp.SetValue(css("#layout_preset"), "octopi"))
	eval[any](tb, `document.getElementById("layout_preset").dispatchEvent(new Event("change")), true`)
	if hidden(`[data-layouts="octopi"]`) || !hidden(`[data-layouts="standard"]`) || !hidden("#layout_event_header") {
		t.Errorf("with octopi chosen the form should show the octopi preset's headers and no custom fields")
	}
	if got := tb.text(`[data-layouts="octopi"]`); !strings.Contains(got, "X-Octopi-Signature") || !strings.Contains(got, "X-Octopi-Event") {
		t.Errorf("the octopi preset's description does not name its headers: %q", got)
	}
	if got := get(tb, chromedp.Value(css("#signing_profile"))); got != "preset" {
		t.Errorf("signing is %q, want as the preset says", got)
	}
	tb.run(chromedp.SendKeys(css("#body_type_field"), "event_type"))
	tb.check("layout form, octopi chosen")
	tb.run(chromedp.Click(css(`form.card button[type="submit"]`)), chromedp.WaitVisible(css("#secret")))
	secret := get(tb, chromedp.Value(css("#secret")))
	epID := eval[string](tb, `document.querySelector("main .card a").textContent`)

	tb.open("/ui/endpoints/" + epID)
	tb.check("endpoint with the octopi layout")
	if got := tb.text("#layout-headers"); !strings.Contains(got, "X-Octopi-Event") || !strings.Contains(got, "X-Octopi-Delivery") ||
		!strings.Contains(got, "X-Octopi-Timestamp") || !strings.Contains(got, "X-Octopi-Signature") || strings.Contains(got, "Quaycast-Attempt") {
		t.Errorf("the endpoint's page lists the headers %q, want the four X-Octopi-* and no Quaycast-*", got)
	}
	if got := tb.text("#body-options"); !strings.Contains(got, "event_type") {
		t.Errorf("the endpoint's page shows the body as %q", got)
	}
	tb.open("/ui/endpoints/" + epID + "/edit")
	if got := get(tb, chromedp.Value(css("#layout_preset"))); got != "octopi" || hidden(`[data-layouts="octopi"]`) {
		t.Errorf("the edit form shows the layout %q", got)
	}
	tb.check("edit form, octopi")

	// A test event from the console, checked at the receiver as the TOS's receiver checks it.
	before := r.rcv.count()
	tb.open("/ui/endpoints/" + epID + "/test")
	tb.run(chromedp.Click(css(`form.card button[type="submit"]`)), chromedp.WaitVisible(css("#result")))
	if got := tb.text("#result .outcome"); !strings.Contains(got, "delivered") {
		t.Fatalf("test send answered %q, want delivered", got)
	}
	r.rcv.mu.Lock()
	if len(r.rcv.got) != before+1 {
		r.rcv.mu.Unlock()
		t.Fatalf("the receiver got %d requests, want %d", len(r.rcv.got), before+1)
	}
	h, body := r.rcv.got[before].Header, r.rcv.bodies[before]
	r.rcv.mu.Unlock()
	if got := h.Get("X-Octopi-Event"); got != "Cargo Gated In" {
		t.Errorf("X-Octopi-Event %q, want the display name Cargo Gated In", got)
	}
	if got := h.Get("X-Octopi-Delivery"); !uuidForm.MatchString(got) {
		t.Errorf("X-Octopi-Delivery %q, want a version 5 UUID", got)
	}
	if ts, err := strconv.ParseInt(h.Get("X-Octopi-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Hour {
		t.Errorf("X-Octopi-Timestamp %q, want Unix seconds of now", h.Get("X-Octopi-Timestamp"))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if got, want := h.Get("X-Octopi-Signature"), hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("X-Octopi-Signature %q does not verify (hex HMAC-SHA256 of the body with the secret: %q)", got, want)
	}
	if h.Get("Quaycast-Attempt") != "" || h.Get("Webhook-Signature") != "" {
		t.Errorf("quaycast's own headers sent with the octopi layout: %v", h)
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil || ev["event_type"] != "Cargo Gated In" || ev["type"] != "cargo_gated_in" {
		t.Errorf("body %s: want event_type mirroring the event header beside the event's fields (%v)", body, err)
	}

	// The catalogue with a custom type and the admin's buttons.
	if err := r.api.Do(t.Context(), "POST", "/v1/event-types", map[string]string{"name": "reefer_alarm", "title": "Reefer Alarm", "group": "reefer"}, nil); err != nil {
		t.Fatal(err)
	}
	tb.open("/ui/catalogue")
	if n := eval[int](tb, `document.querySelectorAll('form[action="/ui/catalogue/reefer_alarm/delete"]').length`); n != 1 {
		t.Errorf("the custom type has %d delete buttons, want 1", n)
	}
	tb.check("catalogue with a custom type")
}
