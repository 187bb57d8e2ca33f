package service

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/quaycast/quaycast/tokens"
)

// Scopes of API tokens: the read, write and delete rights on webhook configuration the terminal
// system's users know, plus publishing events and reading the delivery log. The admin token has
// all of them and is the only one that manages tokens and publishers (ScopeAdmin).
const (
	ScopeEndpointsRead   = "endpoints:read"
	ScopeEndpointsWrite  = "endpoints:write"
	ScopeEndpointsDelete = "endpoints:delete"
	ScopeEventsPublish   = "events:publish"
	ScopeDeliveriesRead  = "deliveries:read"
	ScopeAdmin           = "admin"
)

// Scopes lists the scopes a token can be given.
var Scopes = []string{ScopeEndpointsRead, ScopeEndpointsWrite, ScopeEndpointsDelete, ScopeEventsPublish, ScopeDeliveriesRead}

// Op is an operation an operator performs. Each needs one scope, named here and nowhere else.
type Op string

// The operations. OpPublishEvents is the gateway's ingest, authorized here like the rest.
const (
	OpCreateEndpoint    Op = "create endpoint"
	OpListEndpoints     Op = "list endpoints"
	OpGetEndpoint       Op = "get endpoint"
	OpPatchEndpoint     Op = "patch endpoint"
	OpDeleteEndpoint    Op = "delete endpoint"
	OpRotateSecret      Op = "rotate secret"
	OpTestSend          Op = "test send"
	OpListDeliveries    Op = "list deliveries"
	OpListDeadLetters   Op = "list dead letters"
	OpReplayDeadLetters Op = "replay dead letters"
	OpPurgeDeadLetters  Op = "purge dead letters"
	OpRedeliver         Op = "redeliver events"
	OpPublishEvents     Op = "publish events"
	OpCreateToken       Op = "create token"
	OpListTokens        Op = "list tokens"
	OpRevokeToken       Op = "revoke token"
	OpCreatePublisher   Op = "create publisher"
	OpListPublishers    Op = "list publishers"
	OpRevokePublisher   Op = "revoke publisher"
	OpViewCluster       Op = "view cluster"
	OpViewFigures       Op = "view delivery figures"
	OpCreateEventType   Op = "create event type"
	OpDeleteEventType   Op = "delete event type"
	OpCreateTenant      Op = "create tenant"
	OpListTenants       Op = "list tenants"
	OpGetTenant         Op = "get tenant"
	OpDeleteTenant      Op = "delete tenant"
	OpCreatePortalLink  Op = "create portal link"
)

var opScopes = map[Op]string{
	OpCreateEndpoint:    ScopeEndpointsWrite,
	OpListEndpoints:     ScopeEndpointsRead,
	OpGetEndpoint:       ScopeEndpointsRead,
	OpPatchEndpoint:     ScopeEndpointsWrite,
	OpDeleteEndpoint:    ScopeEndpointsDelete,
	OpRotateSecret:      ScopeEndpointsWrite,
	OpTestSend:          ScopeEndpointsWrite,
	OpListDeliveries:    ScopeDeliveriesRead,
	OpListDeadLetters:   ScopeDeliveriesRead,
	OpReplayDeadLetters: ScopeEndpointsWrite,
	OpPurgeDeadLetters:  ScopeEndpointsDelete,
	OpRedeliver:         ScopeEndpointsWrite,
	OpPublishEvents:     ScopeEventsPublish,
	OpCreateToken:       ScopeAdmin,
	OpListTokens:        ScopeAdmin,
	OpRevokeToken:       ScopeAdmin,
	OpCreatePublisher:   ScopeAdmin,
	OpListPublishers:    ScopeAdmin,
	OpRevokePublisher:   ScopeAdmin,
	OpViewCluster:       ScopeEndpointsRead,
	OpViewFigures:       ScopeEndpointsRead,
	OpCreateEventType:   ScopeAdmin,
	OpDeleteEventType:   ScopeAdmin,
	OpCreateTenant:      ScopeAdmin,
	OpListTenants:       ScopeEndpointsRead,
	OpGetTenant:         ScopeEndpointsRead,
	OpDeleteTenant:      ScopeAdmin,
	OpCreatePortalLink:  ScopeEndpointsWrite, // and every one of PortalScopes: see CreatePortalLink
}

// tenantOps are the operations a tenant's token may do, each within its tenant: the endpoints,
// their deliveries, dead letters and redeliveries (from the endpoint's own, tenant-filtered
// consumer), and its own tenant record. Everything else (publishing,
// the cluster, tokens, the catalogue) is the operator's.
var tenantOps = map[Op]bool{
	OpCreateEndpoint: true, OpListEndpoints: true, OpGetEndpoint: true, OpPatchEndpoint: true, OpDeleteEndpoint: true,
	OpRotateSecret: true, OpTestSend: true, OpListDeliveries: true, OpListDeadLetters: true, OpReplayDeadLetters: true,
	OpPurgeDeadLetters: true, OpRedeliver: true, OpViewFigures: true, OpListTenants: true, OpGetTenant: true,
}

// Scope is the scope op needs; ScopeAdmin for an operation unknown here, which only the admin
// may then do.
func (op Op) Scope() string {
	if s, ok := opScopes[op]; ok {
		return s
	}
	return ScopeAdmin
}

// Caller is who asks: the admin, or the holder of an API token. The zero Caller may do nothing.
// A caller whose token is limited to a tenant sees that tenant's endpoints only: every operation
// on an endpoint reads it through endpointFor, which answers "not found" for another tenant's, so
// ids do not tell another tenant's endpoints exist.
type Caller struct {
	admin  bool
	token  *tokens.Token
	portal bool // a tenant's portal session (PortalCaller): its token is made up, never stored
}

// Portal reports a tenant's portal session.
func (c Caller) Portal() bool { return c.portal }

// Tenant is the tenant the caller is limited to; "" for the operator.
func (c Caller) Tenant() string {
	if c.token == nil {
		return ""
	}
	return c.token.Tenant
}

// sees reports whether the caller may know of an endpoint of tenant.
func (c Caller) sees(tenant string) bool {
	t := c.Tenant()
	return t == "" || t == tenant
}

// Admin is the caller that may do everything: the admin token's holder, or anyone when the API
// has no access control.
func Admin() Caller { return Caller{admin: true} }

// may reports whether the caller holds scope; only the admin holds ScopeAdmin.
func (c Caller) may(scope string) bool {
	return c.admin || scope != ScopeAdmin && c.token != nil && c.token.Has(scope)
}

// tokenCacheTTL bounds how long a revoked token keeps working on a gateway that checked it
// (revoked through this gateway, it stops at once).
const tokenCacheTTL = 5 * time.Second

type cachedToken struct {
	token *tokens.Token
	until time.Time
}

// AccessControl reports whether callers must present a token (an admin token is configured).
func (s *Service) AccessControl() bool { return s.d.AdminToken != "" }

// Authenticate returns the caller presenting token: the admin for the admin token, or an API
// token's holder with its scopes. Without access control every caller is the admin. Errors:
// ErrNoToken for an empty token, ErrBadToken for one that is not valid, anything else when the
// token store cannot be read.
func (s *Service) Authenticate(ctx context.Context, token string) (Caller, error) {
	if !s.AccessControl() {
		return Admin(), nil
	}
	if token == "" {
		return Caller{}, ErrNoToken
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.d.AdminToken)) == 1 {
		return Admin(), nil
	}
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[token]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return Caller{token: c.token}, nil
	}
	t, err := s.d.Tokens.Check(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	s.mu.Lock()
	if len(s.cache) > 10_000 { // bounded: many distinct tokens just cost KV reads
		clear(s.cache)
	}
	s.cache[token] = cachedToken{token: t, until: now.Add(tokenCacheTTL)}
	s.mu.Unlock()
	return Caller{token: t}, nil
}

// Check reports whether c may do op on this gateway: a *ForbiddenError without the scope, a
// *ConflictError for publishers when NATS is the operator's. Every operation checks it first; a
// front end may too, before it reads the request, so that a caller without the right learns
// nothing more.
func (s *Service) Check(c Caller, op Op) error {
	if scope := op.Scope(); !c.may(scope) {
		return &ForbiddenError{Scope: scope}
	}
	if c.Tenant() != "" && !tenantOps[op] {
		return &ForbiddenError{Scope: op.Scope(), Tenant: true}
	}
	switch op {
	case OpCreatePublisher, OpListPublishers, OpRevokePublisher:
		if s.d.Publishers == nil {
			return &ConflictError{Reason: "publishers are managed in the operator's NATS (--nats-url): give each upstream system a user there (see the README, Securing NATS)"}
		}
	}
	return nil
}
