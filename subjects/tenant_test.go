package subjects

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
)

func tenantEnvelope(tenants string) []byte {
	b := `{"id":"e1","type":"cargo_loaded","source":"tos","entity":"MSCU1","occurred_at":"2026-11-23T10:00:00Z","data":{}`
	if tenants != "" {
		b += `,"tenants":` + tenants
	}
	return []byte(b + "}")
}

func TestEnvelopeTenants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tenants string
		want          []string
		wantErr       string // the reason's start; "" for none
	}{
		{"none", "", nil, ""},
		{"null", "null", nil, ""},
		{"one", `["maersk"]`, []string{"maersk"}, ""},
		{"two, in order", `["maersk","hlag"]`, []string{"maersk", "hlag"}, ""},
		{"empty list", `[]`, nil, "is empty"},
		{"not a list", `"maersk"`, nil, "must be an array"},
		{"not strings", `[1]`, nil, "must be an array"},
		{"upper case", `["Maersk"]`, nil, "[0]"},
		{"a dot", `["a.b"]`, nil, "[0]"},
		{"a wildcard", `["*"]`, nil, "[0]"},
		{"twice", `["a","b","a"]`, nil, "[2]"},
		{"too many", `["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]`, nil, "more than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ParseEnvelope(tenantEnvelope(tc.tenants))
			if tc.wantErr != "" {
				var fe *fielderr.Error
				if !errors.As(err, &fe) || fe.Field != "tenants" || !strings.HasPrefix(fe.Reason, tc.wantErr) {
					t.Fatalf("err %v, want tenants: %s...", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(env.Tenants, tc.want) {
				t.Errorf("tenants %v, want %v", env.Tenants, tc.want)
			}
			if err := env.Validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
			peek, err := PeekTenants(tenantEnvelope(tc.tenants))
			if err != nil || !slices.Equal(peek, tc.want) {
				t.Errorf("peek: %v %v, want %v", peek, err, tc.want)
			}
		})
	}
	if _, err := ParseEnvelope([]byte(`{"tenants":["a"],"id":"e1","type":"cargo_loaded","source":"tos","entity":"M","occurred_at":"2026-11-23T10:00:00Z","data":{},"tenants":["b"]}`)); err == nil || !strings.Contains(err.Error(), "tenants") {
		t.Errorf("tenants twice: %v", err)
	}
	// A key spelled with an escape is still found: the router must not miss what endpoints see.
	peek, err := PeekTenants([]byte(`{"id":"e1","tenant\u0073":["maersk"],"data":{}}`))
	if err != nil || !slices.Equal(peek, []string{"maersk"}) {
		t.Errorf("escaped key: %v %v", peek, err)
	}
}

func TestTenantSubjects(t *testing.T) {
	t.Parallel()
	s := TenantSubject("maersk", "tos", "cargo_loaded")
	if s != "tnt.maersk.tos.cargo_loaded" || TenantOf(s) != "maersk" || TenantOf("evt.tos.cargo_loaded") != "" {
		t.Fatalf("subject %s, tenant %q", s, TenantOf(s))
	}
	ep, src, typ, err := ParseAny(s)
	if err != nil || ep != "" || src != "tos" || typ != "cargo_loaded" {
		t.Errorf("ParseAny(%s) = %q %q %q %v", s, ep, src, typ, err)
	}
	for _, bad := range []string{"tnt.maersk.tos", "tnt.Maersk.tos.cargo_loaded", "tnt.maersk.tos.cargo_loaded.x"} {
		if _, _, _, err := ParseAny(bad); !errors.Is(err, ErrBadSubject) {
			t.Errorf("ParseAny(%s): %v, want ErrBadSubject", bad, err)
		}
	}
	filters, err := Filters([]string{"cargo_loaded", "tos:*"})
	if err != nil {
		t.Fatal(err)
	}
	got := TenantFilters("maersk", filters)
	for i, f := range got {
		if want := "tnt.maersk" + strings.TrimPrefix(filters[i], "evt"); f != want {
			t.Errorf("filter %s -> %s, want %s", filters[i], f, want)
		}
	}
	if !SameTenants("maersk,hlag", []string{"maersk", "hlag"}) || SameTenants("hlag,maersk", []string{"maersk", "hlag"}) {
		t.Error("SameTenants")
	}
	if got := ParseTenantsHeader(TenantsHeader([]string{"a", "b"})); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("header round trip %v", got)
	}
}
