package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

// Sender is the delivery side the service drives: the gateway's sender.
type Sender interface {
	// Test POSTs d now, outside the event stream and the breaker, and returns the attempt as the
	// delivery log records it (JSON).
	Test(ctx context.Context, d *consumer.Delivery) (json.RawMessage, error)
	// Breaker is an endpoint's circuit breaker; ok is false before its first delivery.
	Breaker(endpointID string) (status BreakerStatus, ok bool)
	// Forget drops what the sender keeps for a deleted endpoint.
	Forget(endpointID string)
}

// Rules are the delivery side's checks of an endpoint definition: where it may POST and which
// headers it may send.
type Rules interface {
	// CheckURL checks a URL being saved, asking DNS; a name that does not resolve is a warning.
	CheckURL(ctx context.Context, url string) (warnings []string, err error)
	// CheckStatic checks what can be checked of a URL without DNS.
	CheckStatic(url string) error
	// CheckHeaders refuses custom and signature headers that the sender writes itself.
	CheckHeaders(ep *consumer.Endpoint) error
}

// States tells an endpoint's delivery state on this gateway: the consumer.Manager.
type States interface {
	State(endpointID string) string
	Stuck(endpointID string) consumer.Stuck // its blocked and parked entities
	// Conditions are what its condition passed over.
	Conditions(endpointID string) consumer.ConditionStats
	// WaitApplied returns once this gateway delivers with registry revision rev.
	WaitApplied(ctx context.Context, rev uint64) error
}

// BreakerStatus is an endpoint's circuit breaker as an operator sees it.
type BreakerStatus struct {
	State               string    `json:"state"` // closed, open, half-open
	Since               time.Time `json:"since,omitzero"`
	ConsecutiveFailures uint32    `json:"consecutive_failures"`
	Requests            uint32    `json:"requests"` // in the current window
	Failures            uint32    `json:"failures"` // in the current window
}

// Deps are what the service works on. All are required but Publishers and NATSAuth, which are
// nil with an external NATS (publishers are managed there), AdminToken, empty when the API has
// no access control, and those marked optional.
type Deps struct {
	Registry    *consumer.Registry
	DeadLetters *consumer.DeadLetters
	Redeliverer *consumer.Redeliverer
	Attempts    *attempts.Log
	Tokens      *tokens.Store
	Publishers  *natsauth.Publishers
	NATSAuth    *natsauth.Embedded
	Sender      Sender
	Rules       Rules
	States      States
	Cluster     Cluster           // nil unless clustered
	Types       *eventtypes.Store // the live event catalogue; nil: the built-in types only
	Tenants     *tenants.Store
	PortalLinks *portal.Store
	// PortalSessionTTL is how long a portal session lasts unless its link asks for less
	// (--portal-session-ttl); 0: the default.
	PortalSessionTTL time.Duration
	// TenantMaxEndpoints bounds a tenant's endpoints (--tenant-max-endpoints); 0: no bound.
	TenantMaxEndpoints int
	// OnEndpointChange, optional, is told of each endpoint created, changed or deleted through
	// the service, once stored (the operator events).
	OnEndpointChange func(EndpointChange, *consumer.Endpoint)
	// Optional, for the console's overview (nil: not shown): the hourly figures per endpoint, the
	// backlog of every endpoint, and the events stream (the bodies of logged attempts).
	Rollups    *rollup.Reader
	Backlogs   func(ctx context.Context) (map[string]uint64, error)
	Events     jetstream.Stream
	AdminToken string
	Log        zerolog.Logger
}

// EndpointChange is what happened to an endpoint through the service.
type EndpointChange int

// The endpoint changes.
const (
	EndpointCreated EndpointChange = iota
	EndpointUpdated
	EndpointDeleted
)

// changed tells Deps.OnEndpointChange, if set.
func (s *Service) changed(kind EndpointChange, ep *consumer.Endpoint) {
	if s.d.OnEndpointChange != nil {
		s.d.OnEndpointChange(kind, ep)
	}
}

// Service is what an operator can do, authorized per caller.
type Service struct {
	d Deps

	mu    sync.Mutex
	cache map[string]cachedToken // presented token -> check result, briefly
}

// New returns the service over d.
func New(d Deps) *Service {
	return &Service{d: d, cache: map[string]cachedToken{}}
}
