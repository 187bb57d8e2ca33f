package subjects

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
)

func TestPerSourceFilters(t *testing.T) {
	t.Parallel()
	others := func(src string, except ...string) []string {
		var out []string
		for _, et := range businessTypes() {
			if !slices.Contains(except, et.Name) {
				out = append(out, "evt."+src+"."+et.Name)
			}
		}
		return out
	}
	tests := []struct {
		name string
		sel  []string
		want []string
	}{
		{"a type of one source", []string{"tos-rotterdam:cargo_loaded"}, []string{"evt.tos-rotterdam.cargo_loaded"}},
		{"a group of one source", []string{"tos-rotterdam:group:gate"}, []string{"evt.tos-rotterdam.cargo_gated_in", "evt.tos-rotterdam.cargo_gated_out", "evt.tos-rotterdam.gate_selected", "evt.tos-rotterdam.truck_gated_out"}},
		{"every type of one source", []string{"tos-rotterdam:*"}, []string{"evt.tos-rotterdam.>"}},
		{"two sources", []string{"tos-a:cargo_loaded", "tos-b:*"}, []string{"evt.tos-a.cargo_loaded", "evt.tos-b.>"}},
		{"a source's type inside a type of every source", []string{"tos-rotterdam:cargo_loaded", "cargo_loaded"}, []string{"evt.*.cargo_loaded"}},
		{"a whole source beside a type of every source", []string{"tos-rotterdam:*", "cargo_loaded"},
			append([]string{"evt.*.cargo_loaded"}, others("tos-rotterdam", "cargo_loaded")...)},
		{"a whole source beside its own types", []string{"tos-rotterdam:*", "tos-rotterdam:cargo_loaded"}, []string{"evt.tos-rotterdam.>"}},
		{"everything wins", []string{"tos-rotterdam:cargo_loaded", "*"}, []string{"evt.>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Filters(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("Filters(%q) =\n%q\nwant\n%q", tc.sel, got, want)
			}
		})
	}
}

func TestPerSourceSelectorErrors(t *testing.T) {
	t.Parallel()
	many := make([]string, 0, 30)
	for i := range 30 {
		many = append(many, fmt.Sprintf("tos-%d:group:cargo", i)) // 11 types each
	}
	tests := []struct {
		name    string
		sel     []string
		field   string
		unknown bool
	}{
		{"source not a token", []string{"TOS:cargo_loaded"}, "event_types[0]", false},
		{"nothing after the source", []string{"cargo_loaded", "tos:"}, "event_types[1]", false},
		{"unknown type of a source", []string{"tos:no_such_type"}, "event_types[0]", true},
		{"unknown group of a source", []string{"tos:group:no_such_group"}, "event_types[0]", true},
		{"unknown type", []string{"no_such_type"}, "event_types[0]", true},
		{"too many filters", many, "event_types", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSelectors(tc.sel)
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != tc.field || errors.Is(err, ErrUnknownType) != tc.unknown {
				t.Errorf("ValidateSelectors(%q) = %v, want a field error on %s (unknown type: %v)", tc.sel, err, tc.field, tc.unknown)
			}
		})
	}
	if err := ValidateSelectors(many[:23]); err != nil { // 253 filters
		t.Errorf("23 sources' cargo groups: %v, want accepted", err)
	}
}

// subjectMatches is NATS subject matching: "*" one token, ">" the rest.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || tok != "*" && tok != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// For random selector lists the filters never overlap (JetStream refuses a consumer whose filters
// do), and an event's subject passes them exactly when the selectors match its source and type.
func TestFiltersAgreeWithMatches(t *testing.T) {
	t.Parallel()
	types := Builtin().Types()
	sources := []string{"tos", "tos-rotterdam", "tms-eu"}
	pick := func(r *rand.Rand) string {
		var s string
		ops := false // the operator events come from their source only
		switch r.IntN(3) {
		case 0:
			et := types[r.IntN(len(types))]
			s, ops = et.Name, et.System == SystemQuaycast
		case 1:
			et := types[r.IntN(len(types))]
			s, ops = GroupPrefix+et.Group, et.System == SystemQuaycast
		default:
			s, ops = SelectAll, r.IntN(4) == 0
		}
		switch {
		case ops && (s == SelectAll || r.IntN(2) == 0): // a type or the group may go without it
			s = OpsSource + SourceSep + s
		case ops:
		case r.IntN(4) > 0:
			s = sources[r.IntN(len(sources))] + SourceSep + s
		}
		return s
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		sel := make([]string, 1+r.IntN(4))
		for i := range sel {
			sel[i] = pick(r)
		}
		filters, err := Filters(sel)
		if err != nil {
			t.Fatalf("Filters(%q): %v", sel, err)
		}
		for _, src := range append(sources, "other", OpsSource) {
			for _, et := range types {
				subject := "evt." + src + "." + et.Name
				// Operator events only on their subjects, nothing else there (ReservedReason).
				if (src == OpsSource) != (et.System == SystemQuaycast) {
					continue
				}
				if src == OpsSource {
					subject = OpsSubject("", et.Name)
				}
				n := 0
				for _, f := range filters {
					if subjectMatches(f, subject) {
						n++
					}
				}
				if n > 1 {
					t.Fatalf("Filters(%q) = %q: %s passes %d filters (they overlap)", sel, filters, subject, n)
				}
				if want := Builtin().Matches(sel, src, et.Name); (n == 1) != want {
					t.Fatalf("Filters(%q) = %q: %s passes: %v, Matches says %v", sel, filters, subject, n == 1, want)
				}
			}
		}
	}
}
