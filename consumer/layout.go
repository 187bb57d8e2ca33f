package consumer

import (
	"fmt"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Layout says which headers carry what a receiver built for another vendor's webhooks reads: the
// event's type, a delivery id and the attempt's time, beside the signature (Signing). The zero
// value is the standard layout: quaycast's own webhook-*/Quaycast-* headers and nothing more.
type Layout struct {
	Preset          string // the layout it started from: "" or LayoutStandard, LayoutGitHub, LayoutOctopi
	EventHeader     string // carries the event type; "" none
	EventName       string // EventNameType (default) or EventNameTitle
	DeliveryHeader  string // carries the delivery id; "" none
	DeliveryID      string // DeliveryEventID (default) or DeliveryUUID
	TimestampHeader string // carries the attempt's time; "" none
	TimestampFormat string // TimeUnix (default), TimeUnixMilli or TimeRFC3339
	// OmitQuaycast leaves out quaycast's own Quaycast-* headers, and webhook-id and
	// webhook-timestamp unless the standard signature needs them.
	OmitQuaycast bool
}

// Layout presets.
const (
	LayoutStandard = "standard" // quaycast's own headers (the default)
	LayoutGitHub   = "github"   // X-GitHub-Event, X-GitHub-Delivery (UUID), X-Hub-Signature-256
	LayoutOctopi   = "octopi"   // the Octopi TOS's X-Octopi-Event/-Delivery/-Timestamp/-Signature
)

// What a layout's headers carry.
const (
	EventNameType  = "type"  // the machine name, "cargo_gated_in"
	EventNameTitle = "title" // the catalogue's display name, "Cargo Gated In"

	DeliveryEventID = "event_id" // the event id: the same for every endpoint and attempt
	DeliveryUUID    = "uuid"     // a UUID (version 5) of endpoint id and event id: the same on every attempt

	TimeUnix      = "unix"    // seconds since 1970
	TimeUnixMilli = "unix_ms" // milliseconds since 1970
	TimeRFC3339   = "rfc3339" // 2026-11-23T10:00:00Z
)

// LayoutPreset is a preset's layout and the signing it comes with when none is given.
type LayoutPreset struct {
	Layout  Layout
	Signing Signing
}

// Presets returns the named layouts, by name.
func Presets() map[string]LayoutPreset {
	return map[string]LayoutPreset{
		LayoutStandard: {Layout: Layout{Preset: LayoutStandard}},
		LayoutGitHub: {
			Layout: Layout{Preset: LayoutGitHub, EventHeader: "X-GitHub-Event", EventName: EventNameType,
				DeliveryHeader: "X-GitHub-Delivery", DeliveryID: DeliveryUUID, OmitQuaycast: true},
			Signing: Signing{Profile: "hub"},
		},
		// The seed does not say how X-Octopi-Signature is made: hex HMAC-SHA256 of the body is an
		// assumption (README), changeable with the signing options.
		LayoutOctopi: {
			Layout: Layout{Preset: LayoutOctopi, EventHeader: "X-Octopi-Event", EventName: EventNameTitle,
				DeliveryHeader: "X-Octopi-Delivery", DeliveryID: DeliveryUUID,
				TimestampHeader: "X-Octopi-Timestamp", TimestampFormat: TimeUnix, OmitQuaycast: true},
			Signing: Signing{Profile: "hex", HeaderName: "X-Octopi-Signature"},
		},
	}
}

// Headers lists the layout's header names, those it sets.
func (l Layout) Headers() []string {
	var out []string
	for _, h := range [...]string{l.EventHeader, l.DeliveryHeader, l.TimestampHeader} {
		if h != "" {
			out = append(out, h)
		}
	}
	return out
}

// validate checks the layout's own values; which names are reserved is the gateway's check.
func (l Layout) validate() error {
	if _, ok := Presets()[l.Preset]; !ok && l.Preset != "" {
		return &fielderr.Error{Field: "layout.preset", Reason: "must be standard, github or octopi"}
	}
	for _, f := range [...]struct{ field, v, allowed string }{
		{"layout.event_name", l.EventName, EventNameType + "," + EventNameTitle},
		{"layout.delivery_id", l.DeliveryID, DeliveryEventID + "," + DeliveryUUID},
		{"layout.timestamp_format", l.TimestampFormat, TimeUnix + "," + TimeUnixMilli + "," + TimeRFC3339},
	} {
		if f.v != "" && !strings.Contains(","+f.allowed+",", ","+f.v+",") {
			return &fielderr.Error{Field: f.field, Reason: "must be one of " + strings.ReplaceAll(f.allowed, ",", ", ")}
		}
	}
	seen := map[string]string{}
	for _, f := range [...]struct{ field, name string }{
		{"layout.event_header", l.EventHeader}, {"layout.delivery_header", l.DeliveryHeader}, {"layout.timestamp_header", l.TimestampHeader},
	} {
		if f.name == "" {
			continue
		}
		if !validHeaderName(f.name) {
			return &fielderr.Error{Field: f.field, Reason: "is not a valid HTTP header name"}
		}
		if other, dup := seen[strings.ToLower(f.name)]; dup {
			return &fielderr.Error{Field: f.field, Reason: fmt.Sprintf("is the same header as %s", other)}
		}
		seen[strings.ToLower(f.name)] = f.field
	}
	return nil
}
