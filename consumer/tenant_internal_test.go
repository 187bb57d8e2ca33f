package consumer

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/subjects"
)

type headerMsg struct {
	subject string
	h       nats.Header
}

func (m headerMsg) Subject() string      { return m.subject }
func (m headerMsg) Data() []byte         { return nil }
func (m headerMsg) Headers() nats.Header { return m.h }

// Who takes what, tenants aside from types: the rule forTenant keeps whatever the filters are.
func TestForTenant(t *testing.T) {
	t.Parallel()
	maersk := &Endpoint{ID: "ep_a", Tenant: "maersk", StartSeq: 10}
	operator := &Endpoint{ID: "ep_o"}
	all := &Endpoint{ID: "ep_all", TenantEvents: true}
	copyOf := func(tenant string, src string) headerMsg {
		h := nats.Header{}
		if src != "" {
			h.Set(HeaderSourceSeq, src)
		}
		return headerMsg{subjects.TenantSubject(tenant, "tos", "cargo_loaded"), h}
	}
	opsOf := func(tenant string) headerMsg {
		return headerMsg{subjects.OpsSubject(tenant, "breaker_opened"), nats.Header{}}
	}
	original := headerMsg{"evt.tos.cargo_loaded", nats.Header{}}
	replay := headerMsg{"replay.ep_a.tos.cargo_loaded", nats.Header{}}
	opsReplayOf := func(tenant string) headerMsg {
		h := nats.Header{}
		h.Set(subjects.HeaderOrigin, subjects.OpsSubject(tenant, "breaker_opened"))
		return headerMsg{"replay.ep_a.quaycast.breaker_opened", h}
	}
	named := subjects.Envelope{Tenants: []string{"maersk"}}
	none := subjects.Envelope{}
	for _, tc := range []struct {
		name string
		ep   *Endpoint
		msg  headerMsg
		env  subjects.Envelope
		want bool
	}{
		{"its tenant's copy", maersk, copyOf("maersk", "12"), named, true},
		{"its tenant's copy of an event from before it was created", maersk, copyOf("maersk", "9"), named, false},
		{"another tenant's copy", maersk, copyOf("hlag", "12"), subjects.Envelope{Tenants: []string{"hlag"}}, false},
		{"the original of its tenant's event", maersk, original, named, false},
		{"an event of no tenant", maersk, original, none, false},
		{"its replay", maersk, replay, named, true},
		{"operator: an event of no tenant", operator, original, none, true},
		{"operator: an event of a tenant", operator, original, named, false},
		{"operator: a copy", operator, copyOf("maersk", "12"), named, false},
		{"operator opted in: an event of a tenant", all, original, named, true},
		{"operator opted in: a copy (it reads the original)", all, copyOf("maersk", "12"), named, false},
		{"operator event of its tenant", maersk, opsOf("maersk"), named, true},
		{"operator event of another tenant", maersk, opsOf("hlag"), subjects.Envelope{Tenants: []string{"hlag"}}, false},
		{"operator event of the operator, to a tenant", maersk, opsOf(""), none, false},
		{"operator: its operator event", operator, opsOf(""), none, true},
		{"operator: a tenant's operator event", operator, opsOf("maersk"), named, false},
		{"operator opted in: a tenant's operator event", all, opsOf("maersk"), named, true},
		{"replay of its tenant's operator event", maersk, opsReplayOf("maersk"), named, true},
		{"replay of another tenant's operator event", maersk, opsReplayOf("hlag"), subjects.Envelope{Tenants: []string{"hlag"}}, false},
		{"operator: replay of a tenant's operator event", operator, opsReplayOf("maersk"), named, false},
		{"operator: replay of its operator event", operator, opsReplayOf(""), none, true},
	} {
		if got := forTenant(tc.ep, tc.msg, &tc.env); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
