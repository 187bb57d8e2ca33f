package subjects

import (
	"fmt"
	"strings"
)

// Operator events: what happens to endpoints (created, changed, disabled, breaker opened, dead
// letter recorded), stored in the events stream by the gateway where it happened, as ordinary
// events of the reserved source "quaycast", so that an endpoint can receive them like any other:
//
//	quaycast.ops.<kind>            about an endpoint of the operator
//	quaycast.ops.<tenant>.<kind>   about an endpoint of tenant
//
// They live outside evt.> and tnt.> on purpose: "*" (evt.>, or tnt.<tenant>.> for a tenant's
// endpoint) never matches them, so no endpoint receives them, or even reads them from the stream,
// unless a selector names them: "quaycast:*", "group:operator", "endpoint_disabled" (the last two
// also after "quaycast:"). The tenant is a subject token, so the server keeps a tenant's operator
// events from another tenant's endpoints, as it does with tenant copies.
const (
	// OpsSource is the source of operator events, reserved: no publisher may use it.
	OpsSource = "quaycast"
	// OpsGroup is the catalogue group of the operator events.
	OpsGroup = "operator"
	// OpsSubjectPrefix starts every operator event's subject.
	OpsSubjectPrefix = "quaycast.ops."
	// OpsStreamSubjects is the filter of every operator event, which the events stream captures.
	OpsStreamSubjects = "quaycast.ops.>"
	// SystemQuaycast is the System of the operator events in the catalogue.
	SystemQuaycast = "quaycast"
)

// The operator events of the catalogue; their names are the kinds quaycast publishes.
var opsTypes = []EventType{
	{"endpoint_created", "Endpoint Created", OpsGroup, SystemQuaycast, "An endpoint is created."},
	{"endpoint_updated", "Endpoint Updated", OpsGroup, SystemQuaycast, "An endpoint is changed or its secret rotated."},
	{"endpoint_deleted", "Endpoint Deleted", OpsGroup, SystemQuaycast, "An endpoint is deleted."},
	{"endpoint_disabled", "Endpoint Disabled", OpsGroup, SystemQuaycast, "quaycast disabled an endpoint; data.reason says why (410 Gone)."},
	{"breaker_opened", "Breaker Opened", OpsGroup, SystemQuaycast, "An endpoint's circuit breaker opened: deliveries to it pause."},
	{"breaker_closed", "Breaker Closed", OpsGroup, SystemQuaycast, "An endpoint's circuit breaker closed: deliveries resume."},
	{"dead_letter_recorded", "Dead Letter Recorded", OpsGroup, SystemQuaycast, "An event was dead-lettered for an endpoint; data.event_id and data.reason say which and why."},
}

// IsOpsType reports whether name is an operator event's type.
func IsOpsType(name string) bool {
	for _, t := range opsTypes {
		if t.Name == name {
			return true
		}
	}
	return false
}

// OpsSubject is the subject of an operator event of kind about an endpoint of tenant ("": the
// operator's).
func OpsSubject(tenant, kind string) string {
	if tenant == "" {
		return OpsSubjectPrefix + kind
	}
	return OpsSubjectPrefix + tenant + "." + kind
}

// IsOpsSubject reports whether subject is in the operator events' space.
func IsOpsSubject(subject string) bool { return strings.HasPrefix(subject, OpsSubjectPrefix) }

// parseOpsSubject splits quaycast.ops.<kind> or quaycast.ops.<tenant>.<kind>; errors wrap
// ErrBadSubject.
func parseOpsSubject(subject string) (tenant, kind string, err error) {
	parts := strings.Split(strings.TrimPrefix(subject, OpsSubjectPrefix), ".")
	switch len(parts) {
	case 1:
		kind = parts[0]
	case 2:
		tenant, kind = parts[0], parts[1]
		if !ValidTenant(tenant) {
			return "", "", badSubject(subject, "tenant "+quote(tenant)+" is not a valid token")
		}
	default:
		return "", "", badSubject(subject, "want "+OpsSubjectPrefix+"<kind> or "+OpsSubjectPrefix+"<tenant>.<kind>")
	}
	if reason := tokenReason(kind); reason != "" {
		return "", "", badSubject(subject, "kind "+reason)
	}
	return tenant, kind, nil
}

// OpsTenantOf returns the tenant of an operator event's subject ("" for the operator's), and
// whether subject is one.
func OpsTenantOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, OpsSubjectPrefix)
	if !ok {
		return "", false
	}
	t, _, two := strings.Cut(rest, ".")
	if !two {
		return "", true
	}
	return t, true
}

// ReservedReason says why an event stored on subject, of source and type typ, is not one quaycast
// may deliver because it claims to be an operator event (or is one out of place), or returns "".
// Only quaycast stores operator events, on their own subjects. A replay's subject
// (replay.<endpoint>.<source>.<type>) is not one of them: a replay is judged by the subject its
// original was stored on (ReplayReservedReason).
func ReservedReason(subject, source, typ string) string {
	ops := IsOpsSubject(subject)
	switch {
	case ops && !IsOpsType(typ):
		return fmt.Sprintf("%s is not an operator event's type", quote(typ))
	case !ops && source == OpsSource:
		return fmt.Sprintf("source %q is reserved for quaycast's operator events", OpsSource)
	case !ops && IsOpsType(typ):
		return fmt.Sprintf("type %s is an operator event: only quaycast publishes it", quote(typ))
	}
	return ""
}

// ReplayReservedReason is ReservedReason for a replay of an event of source and type typ whose
// original was stored on origin (the replay's HeaderOrigin, "" when it has none): a replay of the
// reserved source or of an operator event's type is delivered only when its original is an
// operator event quaycast stored on its own subject; any other replay passes as before.
func ReplayReservedReason(origin, source, typ string) string {
	if source != OpsSource && !IsOpsType(typ) {
		return ""
	}
	if origin == "" {
		return fmt.Sprintf("replay of source %q and type %s without the subject of its original", source, quote(typ))
	}
	if strings.HasPrefix(origin, ReplayPrefix+".") {
		return fmt.Sprintf("replay whose original subject %s is a replay's", origin)
	}
	_, s, ty, err := ParseAny(origin)
	if err != nil {
		return "replay of an unparseable original: " + err.Error()
	}
	if s != source || ty != typ {
		return fmt.Sprintf("replay of source %q and type %s whose original %s is not", source, quote(typ), origin)
	}
	return ReservedReason(origin, source, typ)
}

// OpsTenantFilters widens an operator endpoint's operator-event filters (Catalogue.Filters) to
// every tenant's, for an endpoint that opted in to tenants' events: quaycast.ops.* becomes
// quaycast.ops.>, and quaycast.ops.<kind> gains quaycast.ops.*.<kind>. Other filters are kept.
func OpsTenantFilters(filters []string) []string {
	out := make([]string, 0, len(filters))
	for _, f := range filters {
		kind, ok := strings.CutPrefix(f, OpsSubjectPrefix)
		switch {
		case !ok:
			out = append(out, f)
		case kind == "*":
			out = append(out, OpsStreamSubjects)
		default:
			out = append(out, f, OpsSubjectPrefix+"*."+kind)
		}
	}
	return out
}
