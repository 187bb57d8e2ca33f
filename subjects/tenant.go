package subjects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Tenants: an event may belong to one or several of the operator's customers. It names them in
// the envelope's "tenants" array and in the Quaycast-Tenants header (comma-separated). The
// router (package consumer) copies such an event once per tenant to
//
//	tnt.<tenant>.<source>.<type>
//
// in the events stream, and a tenant's endpoints consume only their tenant's subjects: the
// server never hands them another tenant's events, whatever they subscribe to.
const (
	// TenantPrefix is the first token of a tenant copy's subject.
	TenantPrefix = "tnt"
	// TenantStreamSubjects is the filter of every tenant copy, which the events stream captures.
	TenantStreamSubjects = "tnt.>"
	// HeaderTenants carries the tenants of an event, comma-separated, as its envelope names them.
	HeaderTenants = "Quaycast-Tenants"
	// HeaderTenant marks a tenant copy with the one tenant it was made for.
	HeaderTenant = "Quaycast-Tenant"
	// MaxEventTenants bounds how many tenants one event names.
	MaxEventTenants = 16
)

// ValidTenant reports whether s can be a tenant id: a token (ValidToken), so that it goes into
// a subject as it is.
func ValidTenant(s string) bool { return ValidToken(s) }

// TenantSubject is the subject of the copy of an event from source of type typ for tenant.
func TenantSubject(tenant, source, typ string) string {
	return TenantPrefix + "." + tenant + "." + source + "." + typ
}

// TenantFilters turns an endpoint's event filters (Catalogue.Filters: evt.>, evt.*.<type>,
// evt.<source>.> or evt.<source>.<type>) into the same filters over tenant's copies, and its
// operator events' (quaycast.ops.* or quaycast.ops.<type>) into those about tenant's endpoints.
func TenantFilters(tenant string, filters []string) []string {
	out := make([]string, len(filters))
	for i, f := range filters {
		if kind, ok := strings.CutPrefix(f, OpsSubjectPrefix); ok {
			out[i] = OpsSubjectPrefix + tenant + "." + kind
			continue
		}
		out[i] = TenantPrefix + "." + tenant + strings.TrimPrefix(f, Prefix)
	}
	return out
}

// TenantOf returns the tenant of a tenant copy's subject, or "" for any other subject.
func TenantOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, TenantPrefix+".")
	if !ok {
		return ""
	}
	t, _, _ := strings.Cut(rest, ".")
	return t
}

// parseTenantSubject splits tnt.<tenant>.<source>.<type>; errors wrap ErrBadSubject.
func parseTenantSubject(subject string) (tenant, source, typ string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return "", "", "", badSubject(subject, fmt.Sprintf("want 4 tokens %s.<tenant>.<source>.<type>, got %d", TenantPrefix, len(parts)))
	}
	if !ValidTenant(parts[1]) {
		return "", "", "", badSubject(subject, "tenant "+quote(parts[1])+" is not a valid token")
	}
	source, typ, err = Parse(Prefix + "." + parts[2] + "." + parts[3])
	return parts[1], source, typ, err
}

// TenantsHeader is the Quaycast-Tenants value for tenants.
func TenantsHeader(tenants []string) string { return strings.Join(tenants, ",") }

// ParseTenantsHeader splits a Quaycast-Tenants value; "" names none.
func ParseTenantsHeader(h string) []string {
	if h == "" {
		return nil
	}
	return strings.Split(h, ",")
}

// SameTenants reports whether a header's tenants are the envelope's, in the same order.
func SameTenants(header string, tenants []string) bool {
	return header == TenantsHeader(tenants)
}

// parseTenants reads the envelope's optional "tenants" value: an array of 1 to MaxEventTenants
// distinct tenant ids.
func parseTenants(v json.RawMessage) ([]string, error) {
	var ts []string
	if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &ts) != nil {
		return nil, &fielderr.Error{Field: "tenants", Reason: "must be an array of tenant ids"}
	}
	if reason := tenantsReason(ts); reason != "" {
		return nil, &fielderr.Error{Field: "tenants", Reason: reason}
	}
	return ts, nil
}

// tenantsReason says what is wrong with an event's tenants, or returns "". nil names none; an
// empty list given is refused, as it would say "no tenant" in a way a reader may take otherwise.
func tenantsReason(ts []string) string {
	if ts == nil {
		return ""
	}
	if len(ts) == 0 {
		return "is empty: leave it out for an event of no tenant"
	}
	if len(ts) > MaxEventTenants {
		return fmt.Sprintf("more than %d tenants", MaxEventTenants)
	}
	for i, t := range ts {
		if !ValidTenant(t) {
			return fmt.Sprintf("[%d] %s is not a tenant id: 1 to %d characters of [a-z0-9_-]", i, quote(t), MaxTokenLen)
		}
		for _, u := range ts[:i] {
			if u == t {
				return fmt.Sprintf("[%d] %s is named twice", i, quote(t))
			}
		}
	}
	return ""
}

// PeekTenants reads only the "tenants" of an event body, for routing: nil when the body does not
// name any. It does not check the rest of the envelope (endpoints' consumers do).
func PeekTenants(b []byte) ([]string, error) {
	// A key spelled with escapes is found by the full scan only.
	if !bytes.Contains(b, []byte(`"tenants"`)) && !bytes.Contains(b, []byte(`\u`)) || !json.Valid(b) {
		return nil, nil
	}
	var v []byte
	if err := scanTopLevel(b, func(key, value []byte) {
		if string(key) == "tenants" {
			v = value
		}
	}); err != nil {
		return nil, err
	}
	if v == nil || string(v) == "null" {
		return nil, nil
	}
	return parseTenants(v)
}
