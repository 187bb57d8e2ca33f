package subjects

import (
	"fmt"
	"slices"
)

// EventType is one entry of the event catalogue.
type EventType struct {
	Name        string // stable machine name, e.g. "cargo_gated_in"; a valid token
	Title       string // human name, e.g. "Cargo Gated In"
	Group       string // e.g. "gate"; every type belongs to exactly one group
	System      string // "tos" (terminal operating system), "tms" (transport management) or "loadplan"
	Description string // the trigger, e.g. "Cargo is gated in."
}

// Systems that publish catalogue events.
const (
	SystemTOS      = "tos"
	SystemTMS      = "tms"
	SystemLoadPlan = "loadplan"
)

// catalogue lists the terminal events in the order of the terminal system's
// webhook page, then the transport-management and load-planning events.
var catalogue = []EventType{
	// Terminal operating system.
	{"cargo_manifested", "Cargo Manifested", "cargo", SystemTOS, "Cargo is added to a manifest."},
	{"voyage_created", "Voyage Created", "vessel", SystemTOS, "A new voyage is created."},
	{"voyage_updated", "Voyage Updated", "vessel", SystemTOS, "Details for an existing voyage are updated."},
	{"gate_selected", "Gate Selected", "gate", SystemTOS, "A terminal gate is selected."},
	{"cargo_gated_in", "Cargo Gated In", "gate", SystemTOS, "Cargo is gated in."},
	{"cargo_gated_out", "Cargo Gated Out", "gate", SystemTOS, "Cargo is gated out."},
	{"cargo_loaded", "Cargo Loaded", "cargo", SystemTOS, "Cargo is loaded onto a marine vessel."},
	{"cargo_unloaded", "Cargo Unloaded", "cargo", SystemTOS, "Cargo is discharged from a marine vessel."},
	{"reefer_plugged_in", "Reefer Plugged In", "reefer", SystemTOS, "A reefer is plugged in."},
	{"reefer_plugged_out", "Reefer Plugged Out", "reefer", SystemTOS, "A reefer is unplugged."},
	{"cargo_held", "Cargo Held", "hold", SystemTOS, "Cargo has its first hold placed on it."},
	{"cargo_released", "Cargo Released", "hold", SystemTOS, "Cargo has its last hold lifted."},
	{"hold_applied", "Hold Applied", "hold", SystemTOS, "A hold is placed on cargo."},
	{"hold_lifted", "Hold Lifted", "hold", SystemTOS, "A hold is lifted from cargo."},
	{"cargo_transferred_in", "Cargo Transferred In", "cargo", SystemTOS, "Cargo is transferred in to the terminal."},
	{"cargo_transferred_out", "Cargo Transferred Out", "cargo", SystemTOS, "Cargo is transferred out from the terminal."},
	{"train_departed", "Train Departed", "rail", SystemTOS, "A train departs from the terminal."},
	{"container_resealed", "Container Resealed", "cargo", SystemTOS, "A container is resealed."},
	{"rail_cargo_loaded", "Rail Cargo Loaded", "rail", SystemTOS, "Cargo is loaded onto a rail car."},
	{"rail_cargo_unloaded", "Rail Cargo Unloaded", "rail", SystemTOS, "Cargo is discharged from a rail car."},
	{"container_stripped", "Container Stripped", "cargo", SystemTOS, "Cargo is stripped from a container."},
	{"truck_gated_out", "Truck Gated Out", "gate", SystemTOS, "A truck is gated out from the terminal."},
	{"outbound_edi_failed", "Outbound EDI Failed", "edi", SystemTOS, "An outbound EDI message failed to send."},
	{"berth_request_approved", "Berth Request Approved", "vessel", SystemTOS, "A berth request was approved."},
	{"cargo_overlanded", "Cargo Overlanded", "cargo", SystemTOS, "Cargo is overlanded during a discharge tally."},
	{"cargo_overshipped", "Cargo Overshipped", "cargo", SystemTOS, "Cargo is overshipped during a loading tally."},
	{"cargo_delivered", "Cargo Delivered", "cargo", SystemTOS, "Cargo is delivered."},
	{"cargo_stuffed", "Cargo Stuffed", "cargo", SystemTOS, "Cargo is stuffed into a container."},
	{"cargo_yard_transfer", "Cargo Yard Transfer", "yard", SystemTOS, "Cargo is relocated to a new yard slot."},

	// Transport management system.
	{"shipment_booked", "Shipment Booked", "shipment", SystemTMS, "A new shipment is booked."},
	{"shipment_status_updated", "Shipment Status Updated", "shipment", SystemTMS, "A shipment's status changes (e.g. collected, delivered)."},
	{"shipment_details_changed", "Shipment Details Changed", "shipment", SystemTMS, "A shipment's details are changed."},

	// Load planning.
	{"load_plan_saved", "Load Plan Saved", "loadplan", SystemLoadPlan, "A load plan is saved."},
	{"load_plan_updated", "Load Plan Updated", "loadplan", SystemLoadPlan, "A saved load plan is updated."},
}

// builtinTypes are the business events, then quaycast's own operator events (ops.go).
var builtinTypes = slices.Concat(catalogue, opsTypes)

// SystemCustom is the System of event types added at run time (package eventtypes).
const SystemCustom = "custom"

// Catalogue is a set of event types — the built-in ones, and custom ones added at run time — with
// their groups. It is immutable: a change makes a new one (NewCatalogue), so readers hold a
// consistent snapshot without locks.
type Catalogue struct {
	types   []EventType
	byName  map[string]EventType
	byGroup map[string][]string // group -> sorted type names
	groups  []string            // sorted
}

var builtin = func() *Catalogue {
	c, err := build(builtinTypes)
	if err != nil {
		panic("subjects: " + err.Error())
	}
	return c
}()

// Builtin returns the built-in catalogue.
func Builtin() *Catalogue { return builtin }

// NewCatalogue returns the built-in catalogue with the custom types after it, in the order given.
// A custom type must be a valid token not already taken, with a valid group token; its System is
// set to SystemCustom.
func NewCatalogue(custom []EventType) (*Catalogue, error) {
	all := slices.Clone(builtinTypes)
	for _, t := range custom {
		t.System = SystemCustom
		all = append(all, t)
	}
	return build(all)
}

func build(types []EventType) (*Catalogue, error) {
	c := &Catalogue{types: types, byName: make(map[string]EventType, len(types)), byGroup: map[string][]string{}}
	for _, t := range types {
		if !ValidToken(t.Name) || !ValidToken(t.Group) {
			return nil, fmt.Errorf("event type %q has an invalid name or group %q", t.Name, t.Group)
		}
		if _, dup := c.byName[t.Name]; dup {
			return nil, fmt.Errorf("event type %q is listed twice", t.Name)
		}
		c.byName[t.Name] = t
		c.byGroup[t.Group] = append(c.byGroup[t.Group], t.Name)
	}
	for g, names := range c.byGroup {
		slices.Sort(names)
		c.groups = append(c.groups, g)
	}
	slices.Sort(c.groups)
	return c, nil
}

// Types returns every event type in a stable order: the terminal events in the order of the
// terminal system's catalogue, then the transport-management events, then the load-planning
// events, then quaycast's operator events, then custom ones. The slice is a copy the caller may modify.
func (c *Catalogue) Types() []EventType { return slices.Clone(c.types) }

// Lookup returns the event type with the given machine name.
func (c *Catalogue) Lookup(name string) (EventType, bool) {
	t, ok := c.byName[name]
	return t, ok
}

// Groups returns the sorted names of the event groups. The slice is a copy.
func (c *Catalogue) Groups() []string { return slices.Clone(c.groups) }

// GroupTypes returns the sorted names of a group's types. The slice is a copy.
func (c *Catalogue) GroupTypes(group string) []string { return slices.Clone(c.byGroup[group]) }

// Lookup returns the built-in event type with the given machine name.
func Lookup(name string) (EventType, bool) { return builtin.Lookup(name) }

// Groups returns the sorted names of the built-in event groups. The slice is a copy.
func Groups() []string { return builtin.Groups() }
