package subjects

import (
	"errors"
	"slices"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// The operator events are selected by naming them, their group or their source, and only so: the
// filters of every other selector stay what they were, and tenants get their own tenant's.
func TestOpsFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		sel        []string
		want       []string
		tenant     []string // TenantFilters("maersk", want)
		allTenants []string // OpsTenantFilters(want)
	}{
		{"all of them", []string{"quaycast:*"}, []string{"quaycast.ops.*"},
			[]string{"quaycast.ops.maersk.*"}, []string{"quaycast.ops.>"}},
		{"the group is all of them", []string{"quaycast:group:operator"}, []string{"quaycast.ops.*"},
			[]string{"quaycast.ops.maersk.*"}, []string{"quaycast.ops.>"}},
		{"one kind", []string{"quaycast:endpoint_disabled"}, []string{"quaycast.ops.endpoint_disabled"},
			[]string{"quaycast.ops.maersk.endpoint_disabled"}, []string{"quaycast.ops.endpoint_disabled", "quaycast.ops.*.endpoint_disabled"}},
		{"beside every event", []string{"*", "quaycast:breaker_opened"}, []string{"evt.>", "quaycast.ops.breaker_opened"},
			[]string{"tnt.maersk.>", "quaycast.ops.maersk.breaker_opened"}, []string{"evt.>", "quaycast.ops.breaker_opened", "quaycast.ops.*.breaker_opened"}},
		{"every kind wins over one", []string{"quaycast:breaker_opened", "quaycast:*"}, []string{"quaycast.ops.*"},
			[]string{"quaycast.ops.maersk.*"}, []string{"quaycast.ops.>"}},
		{"everything is not them", []string{"*"}, []string{"evt.>"}, []string{"tnt.maersk.>"}, []string{"evt.>"}},
		{"their group, named alone", []string{"group:operator", "group:gate"}, []string{"quaycast.ops.*", "evt.*.cargo_gated_in", "evt.*.cargo_gated_out", "evt.*.gate_selected", "evt.*.truck_gated_out"},
			[]string{"quaycast.ops.maersk.*", "tnt.maersk.*.cargo_gated_in", "tnt.maersk.*.cargo_gated_out", "tnt.maersk.*.gate_selected", "tnt.maersk.*.truck_gated_out"},
			[]string{"quaycast.ops.>", "evt.*.cargo_gated_in", "evt.*.cargo_gated_out", "evt.*.gate_selected", "evt.*.truck_gated_out"}},
		{"a type, named alone", []string{"endpoint_disabled"}, []string{"quaycast.ops.endpoint_disabled"},
			[]string{"quaycast.ops.maersk.endpoint_disabled"}, []string{"quaycast.ops.endpoint_disabled", "quaycast.ops.*.endpoint_disabled"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Filters(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(got, want) {
				t.Errorf("Filters(%q) = %q, want %q", tc.sel, got, want)
			}
			if tf := TenantFilters("maersk", got); !slices.Equal(slices.Sorted(slices.Values(tf)), slices.Sorted(slices.Values(tc.tenant))) {
				t.Errorf("TenantFilters(maersk, %q) = %q, want %q", got, tf, tc.tenant)
			}
			all := OpsTenantFilters(got)
			if !slices.Equal(slices.Sorted(slices.Values(all)), slices.Sorted(slices.Values(tc.allTenants))) {
				t.Errorf("OpsTenantFilters(%q) = %q, want %q", got, all, tc.allTenants)
			}
			assertNoOverlap(t, all)
		})
	}
}

func TestOpsSelectorErrors(t *testing.T) {
	t.Parallel()
	for _, sel := range []string{
		"tos:breaker_opened",      // from another source
		"tos:group:operator",      //
		"quaycast:cargo_loaded",   // a business type from quaycast
		"quaycast:group:gate",     //
		"quaycast:cargo_teleport", // unknown, from quaycast
	} {
		err := ValidateSelectors([]string{"*", sel})
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != "event_types[1]" {
			t.Errorf("ValidateSelectors(%q) = %v, want a field error naming event_types[1]", sel, err)
		}
	}
}

func TestOpsMatchesAndExpand(t *testing.T) {
	t.Parallel()
	if Matches([]string{"*"}, "breaker_opened") || Matches([]string{"group:gate", "tos:*"}, "breaker_opened") {
		t.Error(`"*" or another source's selector matches breaker_opened`)
	}
	if !Matches([]string{"breaker_opened"}, "breaker_opened") || !Matches([]string{"group:operator"}, "breaker_opened") {
		t.Error("naming breaker_opened or its group does not match it")
	}
	if !Builtin().Matches([]string{"quaycast:*"}, OpsSource, "breaker_opened") || Builtin().Matches([]string{"quaycast:*"}, "tos", "cargo_loaded") {
		t.Error(`"quaycast:*" does not match exactly the operator events`)
	}
	got, err := Expand([]string{"quaycast:*"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, et := range opsTypes {
		want = append(want, et.Name)
	}
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Errorf("Expand(quaycast:*) = %q, want %q", got, want)
	}
}

func TestOpsSubjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject, tenant, typ string
	}{
		{OpsSubject("", "breaker_opened"), "", "breaker_opened"},
		{OpsSubject("maersk", "endpoint_disabled"), "maersk", "endpoint_disabled"},
	} {
		ep, source, typ, err := ParseAny(tc.subject)
		if err != nil || ep != "" || source != OpsSource || typ != tc.typ {
			t.Errorf("ParseAny(%s) = %q, %q, %q, %v; want source %s, type %s", tc.subject, ep, source, typ, err, OpsSource, tc.typ)
		}
		if tenant, ok := OpsTenantOf(tc.subject); !ok || tenant != tc.tenant {
			t.Errorf("OpsTenantOf(%s) = %q, %v; want %q", tc.subject, tenant, ok, tc.tenant)
		}
		if r := ReservedReason(tc.subject, source, typ); r != "" {
			t.Errorf("ReservedReason(%s) = %q, want none", tc.subject, r)
		}
	}
	for _, bad := range []string{"quaycast.ops.a.b.c", "quaycast.ops.MAERSK.breaker_opened", "quaycast.ops.", "quaycast.ops.a.*"} {
		if _, _, _, err := ParseAny(bad); !errors.Is(err, ErrBadSubject) {
			t.Errorf("ParseAny(%q) = %v, want ErrBadSubject", bad, err)
		}
	}
	if _, ok := OpsTenantOf("evt.tos.cargo_loaded"); ok {
		t.Error("OpsTenantOf(evt.tos.cargo_loaded) says it is an operator event")
	}
}

// Only quaycast stores operator events, on their own subjects.
func TestReservedReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject, source, typ string
		reserved             bool
	}{
		{"evt.tos.cargo_loaded", "tos", "cargo_loaded", false},
		{"evt.quaycast.cargo_loaded", "quaycast", "cargo_loaded", true},
		{"evt.quaycast.breaker_opened", "quaycast", "breaker_opened", true},
		{"evt.tos.breaker_opened", "tos", "breaker_opened", true},
		{"tnt.maersk.quaycast.breaker_opened", "quaycast", "breaker_opened", true},
		{"quaycast.ops.cargo_loaded", "quaycast", "cargo_loaded", true},
		{"quaycast.ops.maersk.breaker_opened", "quaycast", "breaker_opened", false},
		// A replay is judged by its original (ReplayReservedReason), never waved through.
		{"replay.ep_1.quaycast.breaker_opened", "quaycast", "breaker_opened", true},
		{"replay.ep_1.tos.cargo_loaded", "tos", "cargo_loaded", false},
	}
	for _, tc := range tests {
		if got := ReservedReason(tc.subject, tc.source, tc.typ); (got != "") != tc.reserved {
			t.Errorf("ReservedReason(%s, %s, %s) = %q, want reserved %v", tc.subject, tc.source, tc.typ, got, tc.reserved)
		}
	}
}

// A replay of an operator event passes only when its original is one quaycast stored; a replay
// of any other event passes whatever its origin says.
func TestReplayReservedReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, origin, source, typ string
		reserved                  bool
	}{
		{"genuine operator event", "quaycast.ops.breaker_opened", "quaycast", "breaker_opened", false},
		{"genuine tenant's operator event", "quaycast.ops.hlag.endpoint_deleted", "quaycast", "endpoint_deleted", false},
		{"forged with the reserved source", "evt.quaycast.endpoint_deleted", "quaycast", "endpoint_deleted", true},
		{"forged tenant copy", "tnt.hlag.quaycast.endpoint_deleted", "quaycast", "endpoint_deleted", true},
		{"forged type under another source", "evt.tos.breaker_opened", "tos", "breaker_opened", true},
		{"reserved source, ordinary type", "evt.quaycast.cargo_loaded", "quaycast", "cargo_loaded", true},
		{"no origin", "", "quaycast", "breaker_opened", true},
		{"origin of another type", "quaycast.ops.breaker_closed", "quaycast", "breaker_opened", true},
		{"origin a replay", "replay.ep_1.quaycast.breaker_opened", "quaycast", "breaker_opened", true},
		{"origin unparseable", "quaycast.ops.a.b.c", "quaycast", "breaker_opened", true},
		{"ordinary event", "evt.tos.cargo_loaded", "tos", "cargo_loaded", false},
		{"ordinary event without origin", "", "tos", "cargo_loaded", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplayReservedReason(tc.origin, tc.source, tc.typ); (got != "") != tc.reserved {
				t.Errorf("ReplayReservedReason(%q, %s, %s) = %q, want reserved %v", tc.origin, tc.source, tc.typ, got, tc.reserved)
			}
		})
	}
}
