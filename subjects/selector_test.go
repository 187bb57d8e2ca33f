package subjects

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateSelectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         []string
		wantField  string // non-empty: want a *fielderr.Error on this field
		wantReason string // substring of the reason
	}{
		{name: "one type", in: []string{"cargo_gated_in"}},
		{name: "all", in: []string{"*"}},
		{name: "group", in: []string{"group:reefer"}},
		{name: "mixed with duplicates", in: []string{"cargo_loaded", "group:gate", "cargo_loaded", "*"}},
		{name: "nil list", in: nil, wantField: "event_types", wantReason: "at least one"},
		{name: "empty list", in: []string{}, wantField: "event_types", wantReason: "at least one"},
		{name: "unknown type", in: []string{"cargo_teleported"}, wantField: "event_types[0]", wantReason: `unknown event type "cargo_teleported"`},
		{name: "unknown type after valid ones", in: []string{"cargo_loaded", "group:gate", "foo"}, wantField: "event_types[2]", wantReason: `"foo"`},
		{name: "unknown group", in: []string{"group:ships"}, wantField: "event_types[0]", wantReason: `unknown group "ships"`},
		{name: "empty group", in: []string{"group:"}, wantField: "event_types[0]", wantReason: `unknown group ""`},
		{name: "empty selector", in: []string{"cargo_loaded", ""}, wantField: "event_types[1]", wantReason: "empty selector"},
		{name: "title instead of name", in: []string{"Cargo Loaded"}, wantField: "event_types[0]", wantReason: `"Cargo Loaded"`},
		{name: "upper-case name", in: []string{"CARGO_LOADED"}, wantField: "event_types[0]", wantReason: "unknown event type"},
		{name: "group name without prefix", in: []string{"gate"}, wantField: "event_types[0]", wantReason: `unknown event type "gate"`},
		{name: "subject wildcard", in: []string{">"}, wantField: "event_types[0]", wantReason: "unknown event type"},
		{name: "padded name", in: []string{" cargo_loaded"}, wantField: "event_types[0]", wantReason: "unknown event type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateSelectors(tt.in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ValidateSelectors(%q): %v", tt.in, err)
				}
				return
			}
			fe := assertField(t, err, tt.wantField)
			if !strings.Contains(fe.Reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", fe.Reason, tt.wantReason)
			}
			// Expand and Filters report the same error.
			if _, err := Expand(tt.in); err == nil || err.Error() != fe.Error() {
				t.Errorf("Expand error = %v, want %v", err, fe)
			}
			if _, err := Filters(tt.in); err == nil || err.Error() != fe.Error() {
				t.Errorf("Filters error = %v, want %v", err, fe)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "one type", in: []string{"cargo_gated_in"}, want: []string{"cargo_gated_in"}},
		{name: "sorted", in: []string{"hold_lifted", "cargo_loaded"}, want: []string{"cargo_loaded", "hold_lifted"}},
		{name: "duplicates collapsed", in: []string{"cargo_loaded", "cargo_loaded"}, want: []string{"cargo_loaded"}},
		{name: "group", in: []string{"group:gate"}, want: []string{"cargo_gated_in", "cargo_gated_out", "gate_selected", "truck_gated_out"}},
		{name: "group and its member collapsed", in: []string{"group:reefer", "reefer_plugged_in"}, want: []string{"reefer_plugged_in", "reefer_plugged_out"}},
		{name: "group repeated", in: []string{"group:edi", "group:edi"}, want: []string{"outbound_edi_failed"}},
		{name: "two groups", in: []string{"group:shipment", "group:loadplan"}, want: []string{
			"load_plan_saved", "load_plan_updated", "shipment_booked", "shipment_details_changed", "shipment_status_updated",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Expand(tt.in)
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// businessTypes are the catalogue's types but the operator events, which "*" and groups without
// their source do not cover.
func businessTypes() []EventType {
	return slices.DeleteFunc(Builtin().Types(), func(et EventType) bool { return et.System == SystemQuaycast })
}

// businessGroups are the groups of businessTypes.
func businessGroups() []string {
	return slices.DeleteFunc(Groups(), func(g string) bool { return g == OpsGroup })
}

func TestExpandAll(t *testing.T) {
	t.Parallel()
	var want []string
	for _, et := range businessTypes() {
		want = append(want, et.Name)
	}
	slices.Sort(want)
	for _, in := range [][]string{{"*"}, {"cargo_loaded", "*"}, {"*", "group:gate", "*"}} {
		got, err := Expand(in)
		if err != nil {
			t.Fatalf("Expand(%q): %v", in, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Expand(%q) = %q, want every type", in, got)
		}
	}
	// Every group together covers the catalogue too.
	var all []string
	for _, g := range businessGroups() {
		all = append(all, GroupPrefix+g)
	}
	got, err := Expand(all)
	if err != nil {
		t.Fatalf("Expand(all groups): %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Expand(all groups) = %q, want every type exactly once", got)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "all is the single stream filter", in: []string{"*"}, want: []string{"evt.>"}},
		{name: "all swallows the rest", in: []string{"cargo_loaded", "*", "group:gate"}, want: []string{"evt.>"}},
		{name: "one type any source", in: []string{"cargo_gated_in"}, want: []string{"evt.*.cargo_gated_in"}},
		{name: "group expanded and sorted", in: []string{"group:hold"}, want: []string{
			"evt.*.cargo_held", "evt.*.cargo_released", "evt.*.hold_applied", "evt.*.hold_lifted",
		}},
		{name: "duplicates collapsed", in: []string{"hold_applied", "group:hold", "hold_applied"}, want: []string{
			"evt.*.cargo_held", "evt.*.cargo_released", "evt.*.hold_applied", "evt.*.hold_lifted",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Filters(tt.in)
			if err != nil {
				t.Fatalf("Filters(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Filters(%q) = %q, want %q", tt.in, got, tt.want)
			}
			assertNoOverlap(t, got)
		})
	}
}

func TestFiltersNeverOverlap(t *testing.T) {
	t.Parallel()
	var every []string
	for _, et := range businessTypes() {
		every = append(every, et.Name)
	}
	for _, g := range businessGroups() {
		every = append(every, GroupPrefix+g)
	}
	// Every pair of selectors, plus all of them at once.
	cases := [][]string{every}
	for _, a := range every {
		for _, b := range every {
			cases = append(cases, []string{a, b})
		}
	}
	for _, sel := range cases {
		f, err := Filters(sel)
		if err != nil {
			t.Fatalf("Filters(%q): %v", sel, err)
		}
		assertNoOverlap(t, f)
		for _, s := range f {
			if _, typ, err := Parse(strings.Replace(s, "*", "src", 1)); err != nil || !Matches(sel, typ) {
				t.Errorf("Filters(%q) has %q, which the selectors do not match", sel, s)
			}
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sel  []string
		typ  string
		want bool
	}{
		{name: "exact", sel: []string{"cargo_loaded"}, typ: "cargo_loaded", want: true},
		{name: "other type", sel: []string{"cargo_loaded"}, typ: "cargo_unloaded", want: false},
		{name: "group member", sel: []string{"group:rail"}, typ: "train_departed", want: true},
		{name: "not a group member", sel: []string{"group:rail"}, typ: "cargo_loaded", want: false},
		{name: "all", sel: []string{"*"}, typ: "load_plan_updated", want: true},
		{name: "all but unknown type", sel: []string{"*"}, typ: "cargo_teleported", want: false},
		{name: "unknown selector matches nothing", sel: []string{"cargo_teleported"}, typ: "cargo_teleported", want: false},
		{name: "empty list", sel: nil, typ: "cargo_loaded", want: false},
		{name: "second selector", sel: []string{"group:edi", "hold_lifted"}, typ: "hold_lifted", want: true},
		{name: "group name as type", sel: []string{"group:gate"}, typ: "gate", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Matches(tt.sel, tt.typ); got != tt.want {
				t.Errorf("Matches(%q, %q) = %v, want %v", tt.sel, tt.typ, got, tt.want)
			}
		})
	}
}

func TestMatchesAgreesWithExpand(t *testing.T) {
	t.Parallel()
	sels := [][]string{{"*"}, {"group:cargo"}, {"group:vessel", "cargo_delivered"}, {"shipment_booked"},
		{"quaycast:*"}, {"quaycast:breaker_opened", "*"}, {"quaycast:group:operator"}}
	for _, g := range businessGroups() {
		sels = append(sels, []string{GroupPrefix + g})
	}
	for _, sel := range sels {
		names, err := Expand(sel)
		if err != nil {
			t.Fatalf("Expand(%q): %v", sel, err)
		}
		for _, et := range Builtin().Types() {
			if got, want := Matches(sel, et.Name), slices.Contains(names, et.Name); got != want {
				t.Errorf("Matches(%q, %q) = %v, Expand says %v", sel, et.Name, got, want)
			}
		}
	}
}

// assertNoOverlap fails if two filter subjects could match the same subject,
// which JetStream rejects for a consumer's FilterSubjects.
func assertNoOverlap(t *testing.T, filters []string) {
	t.Helper()
	for i := range filters {
		for j := i + 1; j < len(filters); j++ {
			if overlap(filters[i], filters[j]) {
				t.Errorf("filters %q and %q overlap (in %q)", filters[i], filters[j], filters)
			}
		}
	}
}

// overlap reports whether some subject matches both NATS filters a and b.
func overlap(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i < len(ta) && ta[i] == ">", i < len(tb) && tb[i] == ">":
			return true
		case i == len(ta) || i == len(tb):
			return len(ta) == len(tb)
		case ta[i] != tb[i] && ta[i] != "*" && tb[i] != "*":
			return false
		}
	}
}

func TestOverlapHelper(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"evt.>", "evt.*.cargo_loaded", true},
		{"evt.*.cargo_loaded", "evt.*.cargo_loaded", true},
		{"evt.*.cargo_loaded", "evt.tos.cargo_loaded", true},
		{"evt.*.cargo_loaded", "evt.*.cargo_unloaded", false},
		{"evt.*.a", "evt.*.a.b", false},
	}
	for _, tt := range tests {
		if got := overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
