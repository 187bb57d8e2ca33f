package subjects

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// seedTOS is the terminal system's catalogue (seed 002), in its order.
var seedTOS = []string{
	"Cargo Manifested", "Voyage Created", "Voyage Updated", "Gate Selected", "Cargo Gated In",
	"Cargo Gated Out", "Cargo Loaded", "Cargo Unloaded", "Reefer Plugged In", "Reefer Plugged Out",
	"Cargo Held", "Cargo Released", "Hold Applied", "Hold Lifted", "Cargo Transferred In",
	"Cargo Transferred Out", "Train Departed", "Container Resealed", "Rail Cargo Loaded",
	"Rail Cargo Unloaded", "Container Stripped", "Truck Gated Out", "Outbound EDI Failed",
	"Berth Request Approved", "Cargo Overlanded", "Cargo Overshipped", "Cargo Delivered",
	"Cargo Stuffed", "Cargo Yard Transfer",
}

func TestCatalogueTerminalEvents(t *testing.T) {
	t.Parallel()
	var titles []string
	for _, et := range Builtin().Types() {
		if et.System == SystemTOS {
			titles = append(titles, et.Title)
		}
	}
	if len(titles) != 29 {
		t.Errorf("%d tos events, want 29", len(titles))
	}
	if !slices.Equal(titles, seedTOS) {
		t.Errorf("tos titles, in order:\n got %q\nwant %q", titles, seedTOS)
	}
	// The first 29 entries are the terminal events.
	for i, et := range Builtin().Types()[:len(seedTOS)] {
		if et.Title != seedTOS[i] {
			t.Errorf("Builtin().Types()[%d] = %q, want %q", i, et.Title, seedTOS[i])
		}
	}
}

func TestCatalogueNamesFollowTitles(t *testing.T) {
	t.Parallel()
	for _, et := range Builtin().Types() {
		want := strings.ReplaceAll(strings.ToLower(et.Title), " ", "_")
		if et.Name != want {
			t.Errorf("name %q for title %q, want %q", et.Name, et.Title, want)
		}
	}
}

func TestCatalogueInvariants(t *testing.T) {
	t.Parallel()
	cat := Builtin().Types()
	if len(cat) != 29+3+2+7 {
		t.Errorf("%d catalogue entries, want 41", len(cat))
	}
	seen := make(map[string]bool)
	perGroup := make(map[string]int)
	systems := map[string]bool{SystemTOS: true, SystemTMS: true, SystemLoadPlan: true, SystemQuaycast: true}
	for _, et := range cat {
		t.Run(et.Name, func(t *testing.T) {
			if !ValidToken(et.Name) {
				t.Errorf("name %q is not a valid token", et.Name)
			}
			if seen[et.Name] {
				t.Errorf("name %q appears twice", et.Name)
			}
			if !ValidToken(et.Group) {
				t.Errorf("group %q is not a valid token", et.Group)
			}
			if !systems[et.System] {
				t.Errorf("system %q, want tos, tms, loadplan or quaycast", et.System)
			}
			if et.Title == "" || et.Description == "" {
				t.Errorf("empty title or description: %+v", et)
			}
			if !strings.HasSuffix(et.Description, ".") {
				t.Errorf("description %q does not end with a period", et.Description)
			}
			got, ok := Lookup(et.Name)
			if !ok || got != et {
				t.Errorf("Lookup(%q) = %+v, %v, want %+v", et.Name, got, ok, et)
			}
		})
		seen[et.Name] = true
		perGroup[et.Group]++
	}
	groups := Groups()
	if !slices.IsSorted(groups) {
		t.Errorf("Groups() = %q, not sorted", groups)
	}
	if len(groups) != len(perGroup) {
		t.Errorf("Groups() = %q, want the %d groups of the catalogue", groups, len(perGroup))
	}
	for _, g := range groups {
		if perGroup[g] == 0 {
			t.Errorf("group %q is empty", g)
		}
	}
}

func TestCatalogueGroups(t *testing.T) {
	t.Parallel()
	want := map[string]string{ // group -> system
		"cargo": SystemTOS, "vessel": SystemTOS, "gate": SystemTOS, "reefer": SystemTOS, "hold": SystemTOS,
		"rail": SystemTOS, "yard": SystemTOS, "edi": SystemTOS, "shipment": SystemTMS, "loadplan": SystemLoadPlan,
		OpsGroup: SystemQuaycast,
	}
	got := Groups()
	if len(got) != len(want) {
		t.Errorf("Groups() = %q, want %d groups", got, len(want))
	}
	for _, et := range Builtin().Types() {
		if sys, ok := want[et.Group]; !ok || sys != et.System {
			t.Errorf("%s: group %q of system %q, want a %q group", et.Name, et.Group, et.System, sys)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   EventType
		wantOK bool
	}{
		{name: "tos event", in: "cargo_gated_in", wantOK: true, want: EventType{
			Name: "cargo_gated_in", Title: "Cargo Gated In", Group: "gate", System: "tos", Description: "Cargo is gated in.",
		}},
		{name: "edi event", in: "outbound_edi_failed", wantOK: true, want: EventType{
			Name: "outbound_edi_failed", Title: "Outbound EDI Failed", Group: "edi", System: "tos", Description: "An outbound EDI message failed to send.",
		}},
		{name: "tms event", in: "shipment_status_updated", wantOK: true, want: EventType{
			Name: "shipment_status_updated", Title: "Shipment Status Updated", Group: "shipment", System: "tms",
			Description: "A shipment's status changes (e.g. collected, delivered).",
		}},
		{name: "load plan event", in: "load_plan_saved", wantOK: true, want: EventType{
			Name: "load_plan_saved", Title: "Load Plan Saved", Group: "loadplan", System: "loadplan", Description: "A load plan is saved.",
		}},
		{name: "unknown", in: "cargo_teleported"},
		{name: "title is not a name", in: "Cargo Gated In"},
		{name: "group is not a name", in: "gate"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Lookup(tt.in)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("Lookup(%q) = %+v, %v, want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCatalogueReturnsCopies(t *testing.T) {
	t.Parallel()
	c := Builtin().Types()
	c[0].Name = "changed"
	if Builtin().Types()[0].Name != "cargo_manifested" {
		t.Error("modifying the result of Catalogue changed the catalogue")
	}
	g := Groups()
	g[0] = "changed"
	if Groups()[0] == "changed" {
		t.Error("modifying the result of Groups changed the groups")
	}
}

// TestDocGroupTable keeps the group table in doc.go in step with the catalogue.
func TestDocGroupTable(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(src), "//\tgroup     system    types\n")
	if !ok {
		t.Fatal("doc.go has no group table")
	}
	row := regexp.MustCompile(`^//\t(\S+)\s+(\S+)\s+(.*)$`)
	cont := regexp.MustCompile(`^//\t\s+(.*)$`)
	docGroup := make(map[string]string) // type -> group
	group := ""
	for _, line := range strings.Split(table, "\n") {
		var names string
		if m := row.FindStringSubmatch(line); m != nil {
			group, names = m[1], m[3]
		} else if m := cont.FindStringSubmatch(line); m != nil {
			names = m[1]
		} else {
			break
		}
		for _, n := range strings.Split(names, ",") {
			if n = strings.TrimSpace(n); n != "" {
				docGroup[n] = group
			}
		}
	}
	for _, et := range Builtin().Types() {
		if docGroup[et.Name] != et.Group {
			t.Errorf("doc.go puts %s in group %q, catalogue in %q", et.Name, docGroup[et.Name], et.Group)
		}
		delete(docGroup, et.Name)
	}
	for n := range docGroup {
		t.Errorf("doc.go lists %q, which is not in the catalogue", n)
	}
}
