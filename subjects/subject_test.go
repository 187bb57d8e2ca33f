package subjects

import (
	"errors"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
)

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "lower case word", in: "tos", want: true},
		{name: "digits underscore dash", in: "octopi-rtm_2", want: true},
		{name: "single char", in: "a", want: true},
		{name: "64 chars", in: strings.Repeat("a", 64), want: true},
		{name: "empty", in: "", want: false},
		{name: "65 chars", in: strings.Repeat("a", 65), want: false},
		{name: "upper case", in: "Tos", want: false},
		{name: "dot", in: "a.b", want: false},
		{name: "star wildcard", in: "*", want: false},
		{name: "tail wildcard", in: ">", want: false},
		{name: "space", in: "a b", want: false},
		{name: "tab", in: "a\tb", want: false},
		{name: "tilde", in: "a~b", want: false},
		{name: "colon", in: "group:gate", want: false},
		{name: "non-ASCII", in: "gaté", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidToken(tt.in); got != tt.want {
				t.Errorf("ValidToken(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		source    string
		typ       string
		want      string
		wantField string // non-empty: want a *fielderr.Error on this field
	}{
		{name: "tos event", source: "tos", typ: "cargo_gated_in", want: "evt.tos.cargo_gated_in"},
		{name: "dashed source", source: "octopi-rtm", typ: "reefer_plugged_in", want: "evt.octopi-rtm.reefer_plugged_in"},
		{name: "type outside catalogue is grammatical", source: "tos", typ: "not_in_catalogue", want: "evt.tos.not_in_catalogue"},
		{name: "empty source", source: "", typ: "cargo_loaded", wantField: "source"},
		{name: "upper case source", source: "TOS", typ: "cargo_loaded", wantField: "source"},
		{name: "dotted source", source: "a.b", typ: "cargo_loaded", wantField: "source"},
		{name: "wildcard source", source: "*", typ: "cargo_loaded", wantField: "source"},
		{name: "empty type", source: "tos", typ: "", wantField: "type"},
		{name: "tail wildcard type", source: "tos", typ: ">", wantField: "type"},
		{name: "too long type", source: "tos", typ: strings.Repeat("x", 65), wantField: "type"},
		{name: "both bad reports source", source: "", typ: "", wantField: "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Subject(tt.source, tt.typ)
			if tt.wantField != "" {
				assertField(t, err, tt.wantField)
				return
			}
			if err != nil {
				t.Fatalf("Subject(%q, %q): %v", tt.source, tt.typ, err)
			}
			if got != tt.want {
				t.Errorf("Subject(%q, %q) = %q, want %q", tt.source, tt.typ, got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		wantSource string
		wantType   string
		wantErr    string // substring of the error; the error must wrap ErrBadSubject
	}{
		{name: "tos event", in: "evt.tos.cargo_gated_in", wantSource: "tos", wantType: "cargo_gated_in"},
		{name: "dashed source", in: "evt.octopi-rtm.hold_applied", wantSource: "octopi-rtm", wantType: "hold_applied"},
		{name: "type outside catalogue is grammatical", in: "evt.tos.something_new", wantSource: "tos", wantType: "something_new"},
		{name: "wrong prefix", in: "ev.tos.cargo_loaded", wantErr: `prefix "ev", want "evt"`},
		{name: "upper case prefix", in: "EVT.tos.cargo_loaded", wantErr: "prefix"},
		{name: "empty", in: "", wantErr: "want 3 tokens"},
		{name: "one token", in: "evt", wantErr: "got 1"},
		{name: "two tokens", in: "evt.tos", wantErr: "got 2"},
		{name: "four tokens: entity in subject", in: "evt.tos.cargo_loaded.MSCU1234567", wantErr: "got 4"},
		{name: "trailing dot", in: "evt.tos.cargo_loaded.", wantErr: "got 4"},
		{name: "star wildcard source", in: "evt.*.cargo_loaded", wantErr: "wildcard"},
		{name: "star wildcard type", in: "evt.tos.*", wantErr: "wildcard"},
		{name: "tail wildcard type", in: "evt.tos.>", wantErr: "wildcard"},
		{name: "stream filter", in: "evt.>", wantErr: "got 2"},
		{name: "empty source", in: "evt..cargo_loaded", wantErr: "source is empty"},
		{name: "empty type", in: "evt.tos.", wantErr: "type is empty"},
		{name: "leading dot", in: ".evt.tos", wantErr: "prefix"},
		{name: "upper case source", in: "evt.TOS.cargo_loaded", wantErr: "source"},
		{name: "upper case type", in: "evt.tos.Cargo_Loaded", wantErr: "type"},
		{name: "space in token", in: "evt.tos.cargo loaded", wantErr: "type"},
		{name: "too long source", in: "evt." + strings.Repeat("s", 65) + ".cargo_loaded", wantErr: "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			source, typ, err := Parse(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadSubject) {
					t.Fatalf("Parse(%q) error = %v, want one wrapping ErrBadSubject", tt.in, err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if source != "" || typ != "" {
					t.Errorf("Parse(%q) = %q, %q with an error, want empty results", tt.in, source, typ)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if source != tt.wantSource || typ != tt.wantType {
				t.Errorf("Parse(%q) = %q, %q, want %q, %q", tt.in, source, typ, tt.wantSource, tt.wantType)
			}
		})
	}
}

func TestSubjectParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, et := range Builtin().Types() {
		for _, source := range []string{"tos", "octopi-rtm", et.System} {
			subj, err := Subject(source, et.Name)
			if err != nil {
				t.Fatalf("Subject(%q, %q): %v", source, et.Name, err)
			}
			gotSource, gotType, err := Parse(subj)
			if err != nil {
				t.Fatalf("Parse(%q): %v", subj, err)
			}
			if gotSource != source || gotType != et.Name {
				t.Errorf("Parse(Subject(%q, %q)) = %q, %q", source, et.Name, gotSource, gotType)
			}
		}
	}
}

func TestParseErrorEchoIsBounded(t *testing.T) {
	t.Parallel()
	_, _, err := Parse(strings.Repeat("x", MaxEventBytes))
	if err == nil {
		t.Fatal("Parse of a 1 MiB subject succeeded")
	}
	if n := len(err.Error()); n > 300 {
		t.Errorf("error message is %d bytes, want it cut to a readable length", n)
	}
}

// assertField fails the test unless err is a *fielderr.Error on field.
func assertField(t *testing.T, err error, field string) *fielderr.Error {
	t.Helper()
	var fe *fielderr.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want a *fielderr.Error on %q", err, err, field)
	}
	if fe.Field != field {
		t.Fatalf("field = %q (%v), want %q", fe.Field, fe, field)
	}
	if fe.Reason == "" {
		t.Fatalf("the error on %q has an empty reason", field)
	}
	if r := fe.Reason; r != strings.ToLower(r[:1])+r[1:] || strings.Contains(r, "failed to") {
		t.Errorf("reason %q: want lower case, no \"failed to\"", r)
	}
	return fe
}
