package gateway

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// The headers of a delivery, in one place: what the sender writes, the names that reserves, and
// the one rule for showing header values.

// Headers sent with every delivery beside the signature headers.
const (
	HeaderEventType   = "Quaycast-Event-Type"
	HeaderEventSource = "Quaycast-Event-Source"
	HeaderAttempt     = "Quaycast-Attempt"
	// HeaderPreviousEventID names the entity's event sent to (or dead-lettered for) the endpoint
	// before this one, empty for the first: a receiver that did not see it has a gap.
	HeaderPreviousEventID = "Quaycast-Previous-Event-Id"
	// HeaderRedelivery is "true" on an event sent again because an operator asked for a
	// redeliver; absent otherwise.
	HeaderRedelivery = "Quaycast-Redelivery"
	userAgent        = "quaycast/1"
)

// ownHeaders are the values of the headers quaycast writes on one POST.
type ownHeaders struct {
	eventID, eventType, source string
	previousID                 string
	redelivery                 bool
	at                         time.Time // of this attempt
	attempt                    int
	sigHeader                  string // as the signer names it
	sig                        []byte
	standard                   bool // the signature is Standard Webhooks': webhook-id and -timestamp are part of it

	layout     *consumer.Layout // nil: the standard layout
	eventName  string           // the layout's event header value
	deliveryID string           // the layout's delivery header value
}

// write sets quaycast's headers on h, over the endpoint's custom headers already there. It is
// what the sender writes, and what the reserved names are derived from (writtenNames), so a header
// added here is reserved with no other change. The signature goes last: nothing overwrites it.
func (o *ownHeaders) write(h http.Header) {
	l := o.layout
	if l == nil {
		l = &consumer.Layout{}
	}
	// One array holds every value: a header's slice of one value each was an allocation apiece.
	vals := make([]string, 0, ownHeaderCount)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)] // capped: an Add elsewhere copies
	}
	set("Content-Type", "application/json")
	set("User-Agent", userAgent)
	if !l.OmitQuaycast || o.standard {
		set(signature.HeaderID, o.eventID)
		set(signature.HeaderTimestamp, strconv.FormatInt(o.at.Unix(), 10))
	}
	if !l.OmitQuaycast {
		set(HeaderEventType, o.eventType)
		set(HeaderEventSource, o.source)
		set(HeaderAttempt, strconv.Itoa(o.attempt))
		set(HeaderPreviousEventID, o.previousID) // sent empty, so "first" differs from "not told"
		if o.redelivery {
			set(HeaderRedelivery, "true")
		}
	}
	if l.EventHeader != "" {
		set(l.EventHeader, o.eventName)
	}
	if l.DeliveryHeader != "" {
		set(l.DeliveryHeader, o.deliveryID)
	}
	if l.TimestampHeader != "" {
		set(l.TimestampHeader, formatTime(o.at, l.TimestampFormat))
	}
	set(o.sigHeader, string(o.sig))
}

// ownHeaderCount is how many headers write sets at most.
const ownHeaderCount = 12

// formatTime writes an attempt's time as a layout asks.
func formatTime(t time.Time, format string) string {
	switch format {
	case consumer.TimeUnixMilli:
		return strconv.FormatInt(t.UnixMilli(), 10)
	case consumer.TimeRFC3339:
		return t.UTC().Format(time.RFC3339)
	}
	return strconv.FormatInt(t.Unix(), 10)
}

// eventName is the value of a layout's event header (and of a mirrored type field): the type's
// machine name, or its display name from the catalogue (the machine name if it has none).
func eventName(l *consumer.Layout, typ string, title func(string) (string, bool)) string {
	if l.EventName == consumer.EventNameTitle && title != nil {
		if t, ok := title(typ); ok && t != "" {
			return t
		}
	}
	return typ
}

// deliveryID is the value of a layout's delivery header: the event id, or a UUID derived from the
// endpoint and event ids, so that every attempt of one event to one endpoint carries the same
// (receivers dedupe on it) while two endpoints see different ones.
func deliveryID(l *consumer.Layout, endpointID, eventID string, scratch []byte) string {
	if l.DeliveryID != consumer.DeliveryUUID {
		return eventID
	}
	return DeliveryUUID(endpointID, eventID, scratch)
}

// deliveryNamespace is the namespace of delivery UUIDs: the version 5 UUID of the URL
// https://github.com/quaycast/quaycast#delivery in the RFC 9562 URL namespace.
var deliveryNamespace = uuidV5([16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8},
	nil, "https://github.com/quaycast/quaycast#delivery", "", "")

// DeliveryUUID is the delivery id of the uuid layouts: the version 5 (SHA-1) UUID of
// "<endpoint id>/<event id>" in deliveryNamespace, so a receiver can recompute it. scratch, if it
// has room, saves an allocation.
func DeliveryUUID(endpointID, eventID string, scratch []byte) string {
	u := uuidV5(deliveryNamespace, scratch, endpointID, "/", eventID)
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:16])
	return string(out[:])
}

// uuidV5 is RFC 9562's name-based UUID with SHA-1, of the name a+b+c.
func uuidV5(ns [16]byte, scratch []byte, a, b, c string) [16]byte {
	buf := append(append(append(append(scratch[:0], ns[:]...), a...), b...), c...)
	sum := sha1.Sum(buf)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

// transportHeaders are written or managed by net/http's transport on every request (framing,
// connection, compression): a header of that name from an endpoint would be dropped, sent twice,
// or would break the request or the reading of the reply.
var transportHeaders = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade", "Accept-Encoding",
}

// clientHeaders are written by net/http's client from a URL's credentials and a cookie jar.
// quaycast has neither (URLs with credentials are refused), so custom headers may carry them — the
// documented way to send a credential — but a signature may not go there.
var clientHeaders = []string{"Authorization", "Cookie"}

// reservedPrefixes are kept for headers quaycast writes, now or later.
var reservedPrefixes = []string{"webhook-", "quaycast-"}

// writtenNames lists, lower-cased, every header quaycast or net/http's transport writes on a
// delivery but the signature header: derived by writing quaycast's headers.
var writtenNames = sync.OnceValue(func() map[string]bool {
	h := http.Header{}
	(&ownHeaders{}).write(h)
	delete(h, "") // the signature header, which depends on the endpoint
	out := make(map[string]bool, len(h)+len(transportHeaders))
	for k := range h {
		out[strings.ToLower(k)] = true
	}
	for _, k := range transportHeaders {
		out[strings.ToLower(k)] = true
	}
	return out
})

func reservedPrefix(lower string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// customAllowed says whether quaycast sends a custom header of this name to an endpoint whose
// signature and layout headers are taken: not when quaycast or net/http writes the name, in any
// case.
func customAllowed(name string, taken []string) bool {
	lower := strings.ToLower(name)
	return !writtenNames()[lower] && !reservedPrefix(lower) && !slices.ContainsFunc(taken, func(t string) bool { return strings.EqualFold(t, name) })
}

// signatureHeader is the header an endpoint's signature goes in ("" if its profile is unknown).
func signatureHeader(s consumer.Signing) string {
	p, err := signature.ParseProfile(s.Profile)
	if err != nil {
		return ""
	}
	return p.HeaderName(SignatureOptions(s))
}

// takenHeaders are the headers an endpoint's definition gives to quaycast beyond its own: the
// signature's and the layout's.
func takenHeaders(ep *consumer.Endpoint) []string {
	return append([]string{signatureHeader(ep.Signing)}, ep.Layout.Headers()...)
}

// quaycastWrites reports names quaycast or its HTTP client writes, or keeps for itself.
func quaycastWrites(name string) bool {
	lower := strings.ToLower(name)
	return writtenNames()[lower] || reservedPrefix(lower) || slices.ContainsFunc(clientHeaders, func(c string) bool { return strings.EqualFold(c, name) })
}

// checkHeaders refuses an endpoint whose custom headers, layout headers or signature header
// quaycast or net/http would write too, and custom headers that are the signature header or a
// layout header in another case. The error names headers.<name>, layout.<field> or
// signing.header_name.
func checkHeaders(ep *consumer.Endpoint) error {
	sig := signatureHeader(ep.Signing)
	l := ep.Layout
	layout := []struct{ field, name string }{
		{"layout.event_header", l.EventHeader}, {"layout.delivery_header", l.DeliveryHeader}, {"layout.timestamp_header", l.TimestampHeader},
	}
	for _, name := range slices.Sorted(maps.Keys(ep.Headers)) {
		if strings.EqualFold(name, sig) {
			return &fielderr.Error{Field: "headers." + name, Reason: fmt.Sprintf("is the signature header %s (compared ignoring case): the receiver would get both", sig)}
		}
		for _, lh := range layout {
			if lh.name != "" && strings.EqualFold(name, lh.name) {
				return &fielderr.Error{Field: "headers." + name, Reason: fmt.Sprintf("is the layout's header %s (%s, compared ignoring case): the receiver would get both", lh.name, lh.field)}
			}
		}
		if !customAllowed(name, nil) {
			return &fielderr.Error{Field: "headers." + name, Reason: "is set by quaycast or its HTTP client and cannot be overridden"}
		}
	}
	for _, lh := range layout {
		switch {
		case lh.name == "":
		case quaycastWrites(lh.name):
			return &fielderr.Error{Field: lh.field, Reason: fmt.Sprintf("%s is set by quaycast or its HTTP client: choose another header", lh.name)}
		case strings.EqualFold(lh.name, sig):
			return &fielderr.Error{Field: lh.field, Reason: fmt.Sprintf("%s is the signature header", lh.name)}
		}
	}
	if name := ep.Signing.HeaderName; name != "" && quaycastWrites(name) {
		return &fielderr.Error{Field: "signing.header_name", Reason: fmt.Sprintf("%s is set by quaycast or its HTTP client: choose another header for the signature", name)}
	}
	return nil
}

// customHeaders are the custom headers quaycast sends to ep, canonically spelled: those that
// quaycast's own do not override (an endpoint saved before a name was reserved keeps working).
func customHeaders(ep *consumer.Endpoint) http.Header {
	taken := takenHeaders(ep)
	h := make(http.Header, len(ep.Headers))
	for k, v := range ep.Headers {
		if customAllowed(k, taken) {
			h[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	return h
}

const redactedValue = "[redacted]"

// shownValue is the one rule for showing a header value of a delivery — in endpoint views, the
// delivery log, test-send answers: a custom header whose name suggests a credential is redacted;
// other custom headers (tenant ids, configuration flags) and the headers quaycast wrote itself,
// signatures included (they reveal nothing of the secret), are shown.
func shownValue(name, value string, custom bool) string {
	if custom && credentialName(name) {
		return redactedValue
	}
	return value
}

// credentialName reports header names that suggest a credential.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "cookie", "token", "key", "secret", "password", "signature", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
