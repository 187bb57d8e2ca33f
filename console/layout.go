package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/subjects"
)

// The endpoint form's layout, body and free-text selectors, and how the endpoint's page shows
// them.

const (
	// layoutCustom is the form's choice of a layout set field by field: the standard preset with
	// every field given.
	layoutCustom = "custom"
	// profilePreset is the form's signing choice "as the layout preset says": no signing is sent,
	// so the service gives the preset's (Standard Webhooks for standard and custom).
	profilePreset = "preset"
)

// presetView is a layout preset as the form offers it, with the headers it sends.
type presetView struct {
	Name    string
	Headers []headerRow
}

// headerRow is a header a receiver gets and what it carries.
type headerRow struct {
	Name, Carries string
}

// presetOrder is the order the form lists the presets in.
var presetOrder = []string{consumer.LayoutStandard, consumer.LayoutGitHub, consumer.LayoutOctopi}

func presetViews() []presetView {
	all := consumer.Presets()
	out := make([]presetView, 0, len(presetOrder))
	for _, name := range presetOrder {
		p := all[name]
		out = append(out, presetView{Name: name, Headers: receiverHeaders(p.Layout, p.Signing)})
	}
	return out
}

// Header names quaycast writes beside a layout's (gateway/headers.go, which this package cannot
// import: gateway imports the console). TestEndpointPageShowsHeadersSent holds the page to what
// a receiver gets.
const (
	headerEventType  = "Quaycast-Event-Type"
	headerSource     = "Quaycast-Event-Source"
	headerAttempt    = "Quaycast-Attempt"
	headerPreviousID = "Quaycast-Previous-Event-Id"
)

// receiverHeaders lists the headers a receiver gets besides Content-Type, User-Agent and the
// endpoint's custom headers, as the sender writes them for layout l and signing s.
func receiverHeaders(l consumer.Layout, s consumer.Signing) []headerRow {
	var out []headerRow
	name := "the event type's machine name (cargo_gated_in)"
	if l.EventName == consumer.EventNameTitle {
		name = "the event type's display name (Cargo Gated In)"
	}
	if l.EventHeader != "" {
		out = append(out, headerRow{l.EventHeader, name})
	}
	if l.DeliveryHeader != "" {
		id := "the event id"
		if l.DeliveryID == consumer.DeliveryUUID {
			id = "a UUID of endpoint and event id, the same on every retry"
		}
		out = append(out, headerRow{l.DeliveryHeader, id})
	}
	if l.TimestampHeader != "" {
		out = append(out, headerRow{l.TimestampHeader, "the attempt's time, " + timestampFormats[cmp.Or(l.TimestampFormat, consumer.TimeUnix)]})
	}
	profile, _ := signature.ParseProfile(s.Profile)
	if !l.OmitQuaycast || profile == signature.Standard {
		out = append(out, headerRow{signature.HeaderID, "the event id"}, headerRow{signature.HeaderTimestamp, "the attempt's time, Unix seconds"})
	}
	if !l.OmitQuaycast {
		out = append(out, headerRow{headerEventType, "the event type's machine name"}, headerRow{headerSource, "the event's source"},
			headerRow{headerAttempt, "the attempt's number, from 1"},
			headerRow{headerPreviousID, "the entity's event sent before this one (empty for the first)"})
	}
	switch profile {
	case signature.Hub:
		out = append(out, headerRow{cmp.Or(s.HeaderName, signature.DefaultHubHeader), "the signature: sha256=<hex HMAC-SHA256 of the body>"})
	case signature.Hex:
		hexCase := "lower"
		if s.HexUpper {
			hexCase = "upper"
		}
		out = append(out, headerRow{s.HeaderName, "the signature: hex HMAC-SHA256 of the body (" + hexCase + " case)"})
	default:
		out = append(out, headerRow{signature.HeaderSignature, "the signature: Standard Webhooks (v1,<base64>)"})
	}
	return out
}

var timestampFormats = map[string]string{
	consumer.TimeUnix: "Unix seconds", consumer.TimeUnixMilli: "Unix milliseconds", consumer.TimeRFC3339: "RFC 3339 (UTC)",
}

// normLayout is l with its defaults spelled out and without what the comparison with a preset
// leaves out (its name, and the event name, which the form sets apart).
func normLayout(l consumer.Layout) consumer.Layout {
	l.Preset, l.EventName = "", ""
	l.DeliveryID = cmp.Or(l.DeliveryID, consumer.DeliveryEventID)
	l.TimestampFormat = cmp.Or(l.TimestampFormat, consumer.TimeUnix)
	return l
}

func normSigning(s consumer.Signing) consumer.Signing {
	p, _ := signature.ParseProfile(s.Profile)
	s.Profile = string(p)
	if p == signature.Hub {
		s.HeaderName = cmp.Or(s.HeaderName, signature.DefaultHubHeader)
	}
	return s
}

// layoutChoice is how the form shows a stored layout: the preset it is, or custom.
func layoutChoice(l consumer.Layout) (choice string, preset consumer.LayoutPreset) {
	name := cmp.Or(l.Preset, consumer.LayoutStandard)
	p, ok := consumer.Presets()[name]
	if ok && normLayout(l) == normLayout(p.Layout) {
		return name, p
	}
	return layoutCustom, consumer.Presets()[consumer.LayoutStandard]
}

// setLayout fills the form's layout and signing from an endpoint's: the preset it matches or
// custom, and "as the preset says" when the signing is the preset's.
func (f *endpointForm) setLayout(l consumer.Layout, s consumer.Signing) {
	choice, p := layoutChoice(l)
	f.Layout = choice
	f.EventHeader, f.DeliveryHeader, f.TimestampHeader = l.EventHeader, l.DeliveryHeader, l.TimestampHeader
	f.DeliveryID = cmp.Or(l.DeliveryID, consumer.DeliveryEventID)
	f.TimestampFormat = cmp.Or(l.TimestampFormat, consumer.TimeUnix)
	f.QuaycastHeaders = !l.OmitQuaycast
	f.EventName = cmp.Or(l.EventName, consumer.EventNameType)
	if f.EventName == cmp.Or(p.Layout.EventName, consumer.EventNameType) {
		f.EventName = "" // as the preset says
	}
	f.Profile, f.HeaderName, f.HexCase = profilePreset, s.HeaderName, "lower"
	if s.HexUpper {
		f.HexCase = "upper"
	}
	if normSigning(s) != normSigning(p.Signing) {
		f.Profile = cmp.Or(s.Profile, string(signature.Standard))
	}
}

// readLayout reads the form's layout and body into in; a form without them (posted by an older
// page) leaves both as they are.
func readLayout(r *http.Request, f *endpointForm, in *service.EndpointInput) {
	f.Layout = r.PostFormValue("layout_preset")
	f.EventName = r.PostFormValue("layout_event_name")
	f.EventHeader = strings.TrimSpace(r.PostFormValue("layout_event_header"))
	f.DeliveryHeader = strings.TrimSpace(r.PostFormValue("layout_delivery_header"))
	f.DeliveryID = r.PostFormValue("layout_delivery_id")
	f.TimestampHeader = strings.TrimSpace(r.PostFormValue("layout_timestamp_header"))
	f.TimestampFormat = r.PostFormValue("layout_timestamp_format")
	f.QuaycastHeaders = r.PostFormValue("layout_quaycast_headers") == "true"
	f.TypeField = strings.TrimSpace(r.PostFormValue("body_type_field"))
	f.Fields = r.PostFormValue("body_fields")
	if _, ok := r.PostForm["layout_preset"]; ok {
		l := &service.LayoutInput{Preset: f.Layout, EventName: f.EventName}
		if f.Layout == layoutCustom {
			qh := f.QuaycastHeaders
			l.Preset = consumer.LayoutStandard
			l.EventHeader, l.DeliveryHeader, l.TimestampHeader = &f.EventHeader, &f.DeliveryHeader, &f.TimestampHeader
			l.DeliveryID, l.TimestampFormat, l.QuaycastHeaders = f.DeliveryID, f.TimestampFormat, &qh
		}
		in.Layout = l
	}
	if _, ok := r.PostForm["body_type_field"]; ok {
		in.Body = &service.BodyInput{TypeField: f.TypeField, Fields: lines(f.Fields)}
	}
}

// lines are the text's non-empty lines, trimmed.
func lines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// splitSelectors parts an endpoint's selectors into those the form's toggles show (every type,
// a group, a type of every source) and the rest, such as source-qualified ones, for the text
// field.
func splitSelectors(cat *subjects.Catalogue, sel []string) (toggles, other []string) {
	groups := cat.Groups()
	for _, s := range sel {
		_, known := cat.Lookup(s)
		if s == subjects.SelectAll || known || strings.HasPrefix(s, subjects.GroupPrefix) && slices.Contains(groups, strings.TrimPrefix(s, subjects.GroupPrefix)) {
			toggles = append(toggles, s)
		} else {
			other = append(other, s)
		}
	}
	return toggles, other
}

// selectorsOf reads the text field's selectors: one per line, or separated by commas or spaces.
func selectorsOf(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// formError points a service's field error at the form's field: a selector typed into the text
// field at that field, a body pointer with its text. picked is how many selectors came from the
// toggles, before typed; pointers are the body's.
func formError(err error, picked int, typed, pointers []string) error {
	var fe *fielderr.Error
	if !errors.As(err, &fe) {
		return err
	}
	if i, ok := index(fe.Field, "event_types"); ok && i >= picked && i-picked < len(typed) {
		return &fielderr.Error{Field: "selectors", Reason: fmt.Sprintf("%s: %s", typed[i-picked], fe.Reason)}
	}
	if i, ok := index(fe.Field, "body.fields"); ok && i < len(pointers) {
		return &fielderr.Error{Field: "body.fields", Reason: fmt.Sprintf("%s: %s", pointers[i], fe.Reason)}
	}
	return err
}

// index reads i from "<name>[i]".
func index(field, name string) (int, bool) {
	rest, ok := strings.CutPrefix(field, name+"[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	return i, err == nil
}

// layoutView is an endpoint's layout and body as its page shows them.
type layoutView struct {
	Layout    string // the preset, or custom
	Headers   []headerRow
	TypeField string
	TypeName  string // what the mirrored field carries
	Fields    []string
}

func viewLayout(e *consumer.Endpoint) layoutView {
	choice, _ := layoutChoice(e.Layout)
	v := layoutView{Layout: choice, Headers: receiverHeaders(e.Layout, e.Signing), TypeField: e.Body.TypeField, Fields: e.Body.Fields, TypeName: "machine name"}
	if e.Layout.EventName == consumer.EventNameTitle {
		v.TypeName = "display name"
	}
	return v
}
