package gateway

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/service"
)

// Operator events: what happens to endpoints, published on core NATS for the operator's systems
// (and a tenant's, through a publisher with replies) to follow, one subject per tenant:
//
//	quaycast.sys.ops.operator.<kind>          the operator's endpoints
//	quaycast.sys.ops.tenant.<tenant>.<kind>   a tenant's
//
// Each is published once, by the gateway where it happened: a change through the API by the
// gateway that served it, a disable, breaker change or dead letter by the gateway delivering to
// the endpoint. Like the breaker notices (BreakerSubject), they are not stored: a subscriber that
// is away misses them.
const OpsPrefix = "quaycast.sys.ops."

// The kinds of operator events.
const (
	OpsEndpointCreated  = "endpoint_created"
	OpsEndpointUpdated  = "endpoint_updated"
	OpsEndpointDeleted  = "endpoint_deleted"
	OpsEndpointDisabled = "endpoint_disabled" // by quaycast: Reason says why (410 Gone)
	OpsBreakerOpened    = "breaker_opened"
	OpsBreakerClosed    = "breaker_closed"
	OpsDeadLetter       = "dead_letter_recorded"
)

// opsKinds are the kinds of the service's endpoint changes.
var opsKinds = map[service.EndpointChange]string{
	service.EndpointCreated: OpsEndpointCreated, service.EndpointUpdated: OpsEndpointUpdated, service.EndpointDeleted: OpsEndpointDeleted,
}

// OpsEvent is one operator event, as JSON.
type OpsEvent struct {
	Kind       string    `json:"kind"`
	EndpointID string    `json:"endpoint_id"`
	Tenant     string    `json:"tenant,omitempty"` // absent: the operator's endpoint
	EventID    string    `json:"event_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

// OpsSubject is the subject of an operator event of kind about an endpoint of tenant ("": the
// operator's).
func OpsSubject(tenant, kind string) string {
	if tenant == "" {
		return OpsPrefix + "operator." + kind
	}
	return OpsPrefix + "tenant." + tenant + "." + kind
}

// publishOps publishes ev; a failure is logged (the event itself is not lost: it is what the
// registry, the breaker or the dead letters hold).
func publishOps(nc *nats.Conn, log zerolog.Logger, ev OpsEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b, _ := json.Marshal(ev)
	if err := nc.Publish(OpsSubject(ev.Tenant, ev.Kind), b); err != nil {
		log.Warn().Err(err).Str("endpoint_id", ev.EndpointID).Str("kind", ev.Kind).Msg("publish operator event")
	}
}
