package subjects

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// FuzzTokenCodec: EncodeToken always yields one valid subject token, and
// DecodeToken gives the input back.
func FuzzTokenCodec(f *testing.F) {
	for _, s := range []string{"", "~", "~~", "~7E", "MSCU1234567", "a.b", "*", ">", "a b\tc\r\n", "é📦", "\x00\xff", "voy/2026:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EncodeToken(s)
		if tok == "" {
			t.Fatalf("EncodeToken(%q) is empty", s)
		}
		if i := strings.IndexAny(tok, ".*> \t\r\n"); i >= 0 {
			t.Fatalf("EncodeToken(%q) = %q contains %q", s, tok, tok[i])
		}
		if !utf8.ValidString(tok) {
			t.Fatalf("EncodeToken(%q) = %q is not valid UTF-8", s, tok)
		}
		got, err := DecodeToken(tok)
		if err != nil {
			t.Fatalf("DecodeToken(EncodeToken(%q) = %q): %v", s, tok, err)
		}
		if got != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q", s, got)
		}
	})
}

// FuzzDecodeToken: DecodeToken never panics, accepts only canonical tokens
// (re-encoding gives the token back) and wraps ErrBadSubject otherwise.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"", "~", "~~", "~7E", "~7e", "~41", "ab~", "ab~2", "a~2Eb", "a.b", "~C3~A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := DecodeToken(tok)
		if err != nil {
			if !errors.Is(err, ErrBadSubject) {
				t.Fatalf("DecodeToken(%q) error %v does not wrap ErrBadSubject", tok, err)
			}
			return
		}
		if enc := EncodeToken(got); enc != tok {
			t.Fatalf("DecodeToken(%q) = %q, which encodes as %q", tok, got, enc)
		}
	})
}

// FuzzParse: Parse never panics, and a subject it accepts is exactly the one
// Subject builds from the parts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"evt.tos.cargo_gated_in", "evt.octopi-rtm.hold_applied", "evt.>", "evt.*.cargo_loaded",
		"evt.tos.cargo_loaded.MSCU1234567", "evt..x", "ev.tos.x", "EVT.tos.x", "", ".", "..", "evt.tos.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		source, typ, err := Parse(subject)
		if err != nil {
			if !errors.Is(err, ErrBadSubject) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrBadSubject", subject, err)
			}
			return
		}
		got, err := Subject(source, typ)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, %q, but Subject rejects them: %v", subject, source, typ, err)
		}
		if got != subject {
			t.Fatalf("Subject(Parse(%q)) = %q", subject, got)
		}
	})
}

// FuzzParseEnvelope: ParseEnvelope never panics; what it accepts validates,
// has a subject Parse accepts, and it returns only *fielderr.Error.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"e1","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-03-01T14:05:09Z","data":{}}`))
	f.Add([]byte(`{"id":"e1","type":"load_plan_saved","source":"cargo-planner","entity":"plan 7","occurred_at":"2026-03-01T14:05:09.5+01:00","data":{"a":[1,{"b":null}]},"x":1}`))
	f.Add([]byte(`{"id":"e1","id":"e2"}`))
	f.Add([]byte(`{"type":"\u0063argo_loaded"}`))
	f.Add([]byte(`{"occurred_at":"2026-13-01T00:00:00Z"}`))
	f.Add([]byte(`{"data":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"entity\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
				t.Fatalf("ParseEnvelope error %v (%T) is not a *fielderr.Error with field and reason", err, err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("ParseEnvelope accepted %q, but Validate() = %v", b, err)
		}
		source, typ, err := Parse(e.Subject())
		if err != nil || source != e.Source || typ != e.Type {
			t.Fatalf("Parse(%q) = %q, %q, %v", e.Subject(), source, typ, err)
		}
		if !json.Valid(e.Data) || e.OccurredAt.Equal(time.Time{}) {
			t.Fatalf("accepted envelope has data %q, occurred_at %v", e.Data, e.OccurredAt)
		}
	})
}
