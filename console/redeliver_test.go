package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// The redeliver page sends an endpoint's events again and says how many; a sequence that is
// not one, or a sequence and a time together, is refused beside its field.
func TestRedeliverPage(t *testing.T) {
	t.Parallel()
	r := start(t, adminToken)
	base := r.g.APIURL()
	ep := r.addEndpoint(t, map[string]any{"url": r.rcv.URL + "/hook", "event_types": []string{"cargo_loaded"}})
	r.publish(t, "cargo_loaded", "MSCU1")
	r.publish(t, "cargo_loaded", "MSCU2")
	testwait.For(t, 30*time.Second, "two deliveries", func() bool { return r.rcv.count() == 2 })
	b := r.signedIn(t)
	page := "/ui/endpoints/" + ep.ID + "/redeliver"
	send := func(form url.Values) (int, string) {
		form.Set("csrf", b.csrf(page))
		status, _, body := b.post(page, form, base)
		return status, body
	}
	if status, body := send(url.Values{"since_seq": {"1"}, "entities": {"MSCU2"}}); status != http.StatusOK || !strings.Contains(body, "<strong>1</strong> events redelivered of 2 examined") {
		t.Fatalf("redeliver MSCU2: %d %s", status, body)
	}
	testwait.For(t, 30*time.Second, "the redelivery", func() bool { return r.rcv.count() == 3 })
	r.rcv.mu.Lock()
	last := r.rcv.got[2].Header.Get("Quaycast-Redelivery")
	r.rcv.mu.Unlock()
	if last != "true" {
		t.Errorf("the redelivered event's Quaycast-Redelivery is %q", last)
	}
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"not a sequence", url.Values{"since_seq": {"abc"}}, `id="since_seq-error"`},
		{"a sequence and a time", url.Values{"since_seq": {"1"}, "since": {"2026-11-30T14:00"}}, `id="since_seq-error"`},
		{"a bad limit", url.Values{"since_seq": {"1"}, "limit": {"0"}}, `id="limit-error"`},
	} {
		if status, body := send(tc.form); status != http.StatusBadRequest || !strings.Contains(body, tc.field) {
			t.Errorf("%s: %d, want 400 with %s", tc.name, status, tc.field)
		}
	}
}
