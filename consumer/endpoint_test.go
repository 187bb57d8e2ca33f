package consumer_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// validEndpoint is a definition that passes Validate; each case changes one thing.
func validEndpoint() consumer.Endpoint {
	return consumer.Endpoint{
		URL:        "https://receiver.example/hooks/quaycast",
		EventTypes: []string{"cargo_loaded"},
		Enabled:    true,
	}
}

// manyHeaders returns n distinct valid custom headers.
func manyHeaders(n int) map[string]string {
	h := make(map[string]string, n)
	for i := range n {
		h["X-Custom-"+strconv.Itoa(i)] = "v"
	}
	return h
}

func TestEndpointValidate(t *testing.T) {
	t.Parallel()
	longURL := func(n int) string { // an https URL of exactly n bytes
		const prefix = "https://receiver.example/"
		return prefix + strings.Repeat("a", n-len(prefix))
	}
	tests := []struct {
		name      string
		change    func(*consumer.Endpoint)
		wantField string // "" = valid
	}{
		// Valid definitions.
		{name: "minimal https", change: func(*consumer.Endpoint) {}},
		{name: "http with port, path and query", change: func(e *consumer.Endpoint) { e.URL = "http://10.0.0.7:8080/in?token=x" }},
		{name: "port 65535 and an escaped space", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example:65535/a%20b" }},
		{name: "IPv6 host with port", change: func(e *consumer.Endpoint) { e.URL = "https://[2001:db8::1]:8443/in" }},
		{name: "upper-case scheme", change: func(e *consumer.Endpoint) { e.URL = "HTTPS://receiver.example/" }},
		{name: "URL of exactly the limit", change: func(e *consumer.Endpoint) { e.URL = longURL(consumer.MaxURLBytes) }},
		{name: "every type", change: func(e *consumer.Endpoint) { e.EventTypes = []string{"*"} }},
		{name: "group selector", change: func(e *consumer.Endpoint) { e.EventTypes = []string{"group:gate"} }},
		{name: "mixed selectors with a duplicate", change: func(e *consumer.Endpoint) {
			e.EventTypes = []string{"cargo_loaded", "group:hold", "shipment_booked", "cargo_loaded"}
		}},
		{name: "description of exactly the limit", change: func(e *consumer.Endpoint) {
			e.Description = strings.Repeat("d", consumer.MaxDescriptionBytes)
		}},
		{name: "UTF-8 description", change: func(e *consumer.Endpoint) { e.Description = "Hafen Zürich → Rotterdam" }},
		{name: "as many headers as allowed", change: func(e *consumer.Endpoint) { e.Headers = manyHeaders(consumer.MaxHeaders) }},
		{name: "authorization and token-character header names", change: func(e *consumer.Endpoint) {
			e.Headers = map[string]string{"Authorization": "Bearer abc", "X-Api-Key": "k", "x_odd!#$%&'*+.^`|~": "1"}
		}},
		{name: "names that only look reserved", change: func(e *consumer.Endpoint) {
			e.Headers = map[string]string{"Webhook": "1", "X-Webhook-Id": "2", "Quaycast": "3", "Content-Typo": "4", "Hosts": "5"}
		}},
		{name: "header value of exactly the limit", change: func(e *consumer.Endpoint) {
			e.Headers = map[string]string{"X-Long": strings.Repeat("v", consumer.MaxHeaderValueBytes)}
		}},
		{name: "empty header value", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Empty": ""} }},

		// url.
		{name: "url missing", change: func(e *consumer.Endpoint) { e.URL = "" }, wantField: "url"},
		{name: "url relative", change: func(e *consumer.Endpoint) { e.URL = "/hooks/quaycast" }, wantField: "url"},
		{name: "url without host", change: func(e *consumer.Endpoint) { e.URL = "https:///hooks" }, wantField: "url"},
		{name: "url unparsable", change: func(e *consumer.Endpoint) { e.URL = "https://receiver example/" }, wantField: "url"},
		{name: "url ftp scheme", change: func(e *consumer.Endpoint) { e.URL = "ftp://receiver.example/in" }, wantField: "url"},
		{name: "url ws scheme", change: func(e *consumer.Endpoint) { e.URL = "ws://receiver.example/in" }, wantField: "url"},
		{name: "url with user and password", change: func(e *consumer.Endpoint) { e.URL = "https://user:pass@receiver.example/" }, wantField: "url"},
		{name: "url with user only", change: func(e *consumer.Endpoint) { e.URL = "https://user@receiver.example/" }, wantField: "url"},
		{name: "url with a space in the path", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example/a b" }, wantField: "url"},
		{name: "url with a space in the query", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example/?q=a b" }, wantField: "url"},
		{name: "url port above 65535", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example:65536/" }, wantField: "url"},
		{name: "url port far above 65535", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example:99999999999999999999/" }, wantField: "url"},
		{name: "url port 0", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example:0/" }, wantField: "url"},
		{name: "url with a fragment", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example/in#frag" }, wantField: "url"},
		{name: "url with an empty fragment", change: func(e *consumer.Endpoint) { e.URL = "https://receiver.example/in#" }, wantField: "url"},
		{name: "url one byte too long", change: func(e *consumer.Endpoint) { e.URL = longURL(consumer.MaxURLBytes + 1) }, wantField: "url"},

		// event_types.
		{name: "event_types nil", change: func(e *consumer.Endpoint) { e.EventTypes = nil }, wantField: "event_types"},
		{name: "event_types empty", change: func(e *consumer.Endpoint) { e.EventTypes = []string{} }, wantField: "event_types"},
		{name: "unknown type", change: func(e *consumer.Endpoint) { e.EventTypes = []string{"cargo_teleported"} }, wantField: "event_types[0]"},
		{name: "unknown type after a good one", change: func(e *consumer.Endpoint) {
			e.EventTypes = []string{"cargo_loaded", "Cargo_Loaded"}
		}, wantField: "event_types[1]"},
		{name: "empty selector", change: func(e *consumer.Endpoint) { e.EventTypes = []string{""} }, wantField: "event_types[0]"},
		{name: "unknown group", change: func(e *consumer.Endpoint) { e.EventTypes = []string{"cargo_loaded", "group:airport"} }, wantField: "event_types[1]"},
		{name: "subject wildcard is not a selector", change: func(e *consumer.Endpoint) { e.EventTypes = []string{">"} }, wantField: "event_types[0]"},

		// description.
		{name: "description one byte too long", change: func(e *consumer.Endpoint) {
			e.Description = strings.Repeat("d", consumer.MaxDescriptionBytes+1)
		}, wantField: "description"},
		{name: "description not UTF-8", change: func(e *consumer.Endpoint) { e.Description = "bad \xff byte" }, wantField: "description"},

		// headers.
		{name: "one header too many", change: func(e *consumer.Endpoint) { e.Headers = manyHeaders(consumer.MaxHeaders + 1) }, wantField: "headers"},
		{name: "header name with a space", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X Bad": "v"} }, wantField: "headers.X Bad"},
		{name: "header name with a colon", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Bad:": "v"} }, wantField: "headers.X-Bad:"},
		{name: "header name empty", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"": "v"} }, wantField: "headers."},
		{name: "header name not ASCII", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Größe": "v"} }, wantField: "headers.X-Größe"},
		{name: "header name too long", change: func(e *consumer.Endpoint) {
			e.Headers = map[string]string{"X-" + strings.Repeat("n", 255): "v"}
		}, wantField: "headers.X-" + strings.Repeat("n", 255)},
		{name: "value with CR", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Token": "a\rInjected: 1"} }, wantField: "headers.X-Token"},
		{name: "value with LF", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Token": "a\nInjected: 1"} }, wantField: "headers.X-Token"},
		{name: "value with CRLF", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Token": "a\r\n"} }, wantField: "headers.X-Token"},
		{name: "value with NUL", change: func(e *consumer.Endpoint) { e.Headers = map[string]string{"X-Token": "a\x00b"} }, wantField: "headers.X-Token"},
		{name: "value one byte too long", change: func(e *consumer.Endpoint) {
			e.Headers = map[string]string{"X-Long": strings.Repeat("v", consumer.MaxHeaderValueBytes+1)}
		}, wantField: "headers.X-Long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := validEndpoint()
			tt.change(&e)
			err := e.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v (%T), want a *fielderr.Error for %q", err, err, tt.wantField)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (reason %q)", fe.Field, tt.wantField, fe.Reason)
			}
			if fe.Reason == "" {
				t.Error("Reason is empty")
			}
		})
	}
}

// A definition with several problems reports the first in the documented order, so the API
// names one field the client can fix.
func TestEndpointValidateReportsFirstField(t *testing.T) {
	t.Parallel()
	e := consumer.Endpoint{
		URL:         "ftp://x/",
		EventTypes:  nil,
		Description: "\xff",
		Headers:     map[string]string{"X Bad": "x"},
	}
	var fe *fielderr.Error
	for _, want := range []string{"url", "event_types", "description", "headers.X Bad"} {
		err := e.Validate()
		if !errors.As(err, &fe) || fe.Field != want {
			t.Fatalf("Validate() = %v, want field %q", err, want)
		}
		switch want { // fix the field just reported
		case "url":
			e.URL = "https://receiver.example/"
		case "event_types":
			e.EventTypes = []string{"*"}
		case "description":
			e.Description = ""
		case "headers.X Bad":
			e.Headers = nil
		}
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate() after fixing every field = %v", err)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"ep_a", true},
		{"ep_abc123", true},
		{"ep_" + strings.Repeat("z", 61), true}, // 64 bytes
		{"ep_" + strings.Repeat("z", 62), false},
		{"", false},
		{"ep_", false},
		{"ep", false},
		{"EP_abc", false},
		{"ep_ABC", false},
		{"ep-abc", false},
		{"xx_abc", false},
		{"ep_a-b", false},
		{"ep_a_b", false},
		{"ep_a.b", false},
		{"ep_a b", false},
		{"ep_a*", false},
		{"ep_>", false},
		{"ep_../etc", false},
		{"ep_é", false},
	}
	for _, tt := range tests {
		if got := consumer.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		id := consumer.NewID()
		if !consumer.ValidID(id) {
			t.Fatalf("NewID() = %q, not a ValidID", id)
		}
		if len(id) != len("ep_")+26 {
			t.Fatalf("NewID() = %q, %d bytes, want 29", id, len(id))
		}
		if seen[id] {
			t.Fatalf("NewID() returned %q twice", id)
		}
		seen[id] = true
		if ep := (&consumer.Endpoint{ID: id}); ep.ConsumerName() != id {
			t.Fatalf("ConsumerName() = %q, want the id %q", ep.ConsumerName(), id)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	const value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s := consumer.NewSecret(value)
	if s.Reveal() != value {
		t.Fatalf("Reveal() = %q, want %q", s.Reveal(), value)
	}
	if s.IsZero() || !consumer.NewSecret("").IsZero() || !(consumer.Secret{}).IsZero() {
		t.Fatal("IsZero wrong: want false for a set secret, true for an empty or zero one")
	}
	ep := consumer.Endpoint{
		ID: "ep_x", URL: "https://receiver.example/", EventTypes: []string{"*"}, Secret: consumer.NewSecret("whsec_next"),
		PreviousSecrets: []consumer.PreviousSecret{{Secret: s, Until: time.Now().Add(time.Hour)}},
	}
	holder := struct {
		Name   string
		Secret consumer.Secret
		Ptr    *consumer.Secret
		ByName map[string]consumer.Secret
	}{"h", s, &s, map[string]consumer.Secret{"k": s}}

	outputs := map[string]func() (string, error){
		"%v secret":       func() (string, error) { return fmt.Sprintf("%v", s), nil },
		"%s secret":       func() (string, error) { return fmt.Sprintf("%s", s), nil },
		"%q secret":       func() (string, error) { return fmt.Sprintf("%q", s), nil },
		"%x secret":       func() (string, error) { return fmt.Sprintf("%x", s), nil },
		"%#v secret":      func() (string, error) { return fmt.Sprintf("%#v", s), nil },
		"%v endpoint":     func() (string, error) { return fmt.Sprintf("%v", ep), nil },
		"%+v endpoint":    func() (string, error) { return fmt.Sprintf("%+v", ep), nil },
		"%#v endpoint":    func() (string, error) { return fmt.Sprintf("%#v", ep), nil },
		"%v *endpoint":    func() (string, error) { return fmt.Sprintf("%v", &ep), nil },
		"%+v holder":      func() (string, error) { return fmt.Sprintf("%+v", holder), nil },
		"%#v holder":      func() (string, error) { return fmt.Sprintf("%#v", holder), nil },
		"json secret":     func() (string, error) { b, err := json.Marshal(s); return string(b), err },
		"json endpoint":   func() (string, error) { b, err := json.Marshal(ep); return string(b), err },
		"json holder":     func() (string, error) { b, err := json.Marshal(holder); return string(b), err },
		"json map key":    func() (string, error) { b, err := json.Marshal(map[consumer.Secret]int{s: 1}); return string(b), err },
		"text marshaller": func() (string, error) { b, err := s.MarshalText(); return string(b), err },
	}
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := outputs[name]()
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
				t.Fatalf("output shows the secret: %s", out)
			}
		})
	}
}
