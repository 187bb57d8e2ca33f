package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
)

func TestCheckHeaders(t *testing.T) {
	t.Parallel()
	hub := consumer.Signing{Profile: "hub"}
	hex := func(name string) consumer.Signing { return consumer.Signing{Profile: "hex", HeaderName: name} }
	tests := []struct {
		name      string
		headers   map[string]string
		signing   consumer.Signing
		wantField string // "" = accepted
	}{
		{"plain custom headers", map[string]string{"X-Tenant": "acme", "Authorization": "Bearer x", "Cookie": "a=b"}, consumer.Signing{}, ""},
		{"names that only look reserved", map[string]string{"Webhook": "1", "X-Webhook-Id": "2", "Quaycast": "3", "Content-Typo": "4", "Hosts": "5"}, consumer.Signing{}, ""},
		{"the hub default header is free under standard", map[string]string{"X-Hub-Signature-256": "x"}, consumer.Signing{}, ""},
		{"Content-Type", map[string]string{"Content-Type": "text/plain"}, consumer.Signing{}, "headers.Content-Type"},
		{"content-length in capitals", map[string]string{"CONTENT-LENGTH": "1"}, consumer.Signing{}, "headers.CONTENT-LENGTH"},
		{"host", map[string]string{"host": "evil.example"}, consumer.Signing{}, "headers.host"},
		{"User-Agent", map[string]string{"User-Agent": "me"}, consumer.Signing{}, "headers.User-Agent"},
		{"Transfer-Encoding", map[string]string{"Transfer-Encoding": "chunked"}, consumer.Signing{}, "headers.Transfer-Encoding"},
		{"Connection", map[string]string{"Connection": "close"}, consumer.Signing{}, "headers.Connection"},
		{"Accept-Encoding", map[string]string{"Accept-Encoding": "br"}, consumer.Signing{}, "headers.Accept-Encoding"},
		{"Upgrade", map[string]string{"upgrade": "h2c"}, consumer.Signing{}, "headers.upgrade"},
		{"webhook-signature", map[string]string{"webhook-signature": "v1,x"}, consumer.Signing{}, "headers.webhook-signature"},
		{"Webhook-Id", map[string]string{"Webhook-Id": "x"}, consumer.Signing{}, "headers.Webhook-Id"},
		{"a future webhook- header", map[string]string{"Webhook-Nonce": "x"}, consumer.Signing{}, "headers.Webhook-Nonce"},
		{"Quaycast- prefix", map[string]string{"Quaycast-Foo": "x"}, consumer.Signing{}, "headers.Quaycast-Foo"},
		{"bare Quaycast- prefix", map[string]string{"quaycast-": "x"}, consumer.Signing{}, "headers.quaycast-"},
		{"the hub default signature header", map[string]string{"x-hub-signature-256": "x"}, hub, "headers.x-hub-signature-256"},
		{"the hex signature header in another case", map[string]string{"X-Sig": "static"}, hex("x-sig"), "headers.X-Sig"},
		{"signature header Quaycast-Event-Type", nil, hex("Quaycast-Event-Type"), "signing.header_name"},
		{"signature header quaycast-attempt", nil, hex("quaycast-attempt"), "signing.header_name"},
		{"signature header User-Agent", nil, hex("User-Agent"), "signing.header_name"},
		{"signature header Authorization", nil, hex("Authorization"), "signing.header_name"},
		{"signature header cookie", nil, hex("cookie"), "signing.header_name"},
		{"signature header Accept-Encoding", nil, hex("accept-encoding"), "signing.header_name"},
		{"signature header webhook-id", nil, hex("Webhook-ID"), "signing.header_name"},
		{"a free signature header", map[string]string{"X-Tenant": "acme"}, hex("Veson-Webhook-Signature"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkHeaders(&consumer.Endpoint{Headers: tc.headers, Signing: tc.signing})
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("checkHeaders() = %v, want nil", err)
				}
				return
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != tc.wantField || fe.Reason == "" {
				t.Fatalf("checkHeaders() = %v, want a field error naming %s", err, tc.wantField)
			}
		})
	}
}

// An endpoint saved with a custom header that is reserved now keeps working: quaycast's header is
// the one sent.
func TestCustomHeadersNeverOverrideOwn(t *testing.T) {
	t.Parallel()
	ep := &consumer.Endpoint{Signing: consumer.Signing{Profile: "hex", HeaderName: "x-sig"},
		Headers: map[string]string{"X-Sig": "static", "quaycast-attempt": "99", "x-tenant": "acme", "Accept-Encoding": "br"}}
	custom := customHeaders(ep)
	if len(custom) != 1 || custom.Get("X-Tenant") != "acme" {
		t.Fatalf("customHeaders() = %v, want only X-Tenant", custom)
	}
	h := http.Header{}
	for k, v := range custom {
		h[k] = v
	}
	(&ownHeaders{eventID: "e1", attempt: 1, sigHeader: "x-sig", sig: []byte("abc")}).write(h)
	for name, want := range map[string]string{"x-sig": "abc", "Quaycast-Attempt": "1", "X-Tenant": "acme"} {
		var got []string // every value under the name in any case, as a receiver sees them
		for k, vs := range h {
			if strings.EqualFold(k, name) {
				got = append(got, vs...)
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want one value %q", name, got, want)
		}
	}
}

// quaycast's own headers share one array of values: writing them allocates that array and the
// strings it cannot borrow (the timestamp and the signature), not one slice per header.
func TestOwnHeadersAllocateOnce(t *testing.T) { // not parallel: AllocsPerRun refuses
	own := ownHeaders{eventID: "evt-1", eventType: "cargo_loaded", source: "tos", previousID: "evt-0", at: time.Unix(1796147194, 0),
		attempt: 2, sigHeader: "webhook-signature", sig: []byte("v1,abc"), standard: true}
	h := make(http.Header, ownHeaderCount)
	if n := testing.AllocsPerRun(100, func() { own.write(h) }); n > 3 {
		t.Errorf("writing quaycast's headers allocates %v times, want 3 at most", n)
	}
	if got := h.Get("Quaycast-Attempt"); got != "2" || h["webhook-id"][0] != "evt-1" || cap(h["webhook-id"]) != 1 {
		t.Errorf("headers %v: attempt %q, webhook-id %v (cap %d)", h, got, h["webhook-id"], cap(h["webhook-id"]))
	}
}
