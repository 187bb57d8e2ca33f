package service

import (
	"context"
	"time"

	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

// PortalScopes are what a tenant's portal session may do, within its tenant (tenantOps bound
// it further): its endpoints, their deliveries, dead letters, test sends and redeliveries.
var PortalScopes = []string{ScopeEndpointsRead, ScopeEndpointsWrite, ScopeEndpointsDelete, ScopeDeliveriesRead}

// Errors of a portal link being redeemed.
var (
	ErrLinkUsed    = portal.ErrUsed    // redeemed before, or never issued
	ErrLinkExpired = portal.ErrExpired // past its time
)

// PortalLinkInput asks for a portal link: how long it can be redeemed ("5m" when empty, at most
// 1h) and how long the session it opens lasts (--portal-session-ttl when empty, and at most that:
// a link can only ask for less).
type PortalLinkInput struct {
	TTL        string `json:"ttl"`
	SessionTTL string `json:"session_ttl"`
}

// PortalLink is a new link's code, shown this once, and its deadline.
type PortalLink struct {
	Code       string
	Tenant     string
	ExpiresAt  time.Time
	SessionTTL time.Duration
}

// CreatePortalLink makes a single-use link that opens a console session limited to tenant. It
// hands out the PortalScopes, so the caller must hold each of them itself (a token may not make
// a session that may do more than it); a tenant's token may not (403); an unknown tenant is not
// found; without access control there are no sessions to limit (409).
func (s *Service) CreatePortalLink(ctx context.Context, c Caller, tenant string, in PortalLinkInput) (*PortalLink, error) {
	if err := s.Check(c, OpCreatePortalLink); err != nil {
		return nil, err
	}
	for _, scope := range PortalScopes {
		if !c.may(scope) {
			return nil, &ForbiddenError{Scope: scope}
		}
	}
	if !s.AccessControl() {
		return nil, &ConflictError{Reason: "portal links need access control: start the gateway with --admin-token"}
	}
	ttl, err := duration(in.TTL, "ttl", defaults.PortalLinkTTL, portal.MaxLinkTTL)
	if err != nil {
		return nil, err
	}
	most := min(s.portalSessionTTL(), defaults.MaxPortalSessionTTL) // the flag is the cap
	sessionTTL, err := duration(in.SessionTTL, "session_ttl", most, most)
	if err != nil {
		return nil, err
	}
	if _, err := s.d.Tenants.Get(ctx, tenant); err != nil {
		return nil, notFound(err, "tenant", tenants.ErrNotFound)
	}
	l := portal.Link{Tenant: tenant, Expires: time.Now().Add(ttl).UTC(), SessionTTL: sessionTTL}
	code, err := s.d.PortalLinks.Create(ctx, l)
	if err != nil {
		return nil, err
	}
	s.d.Log.Info().Str("tenant", tenant).Time("expires_at", l.Expires).Msg("portal link issued")
	return &PortalLink{Code: code, Tenant: tenant, ExpiresAt: l.Expires, SessionTTL: sessionTTL}, nil
}

func (s *Service) portalSessionTTL() time.Duration {
	if s.d.PortalSessionTTL > 0 {
		return s.d.PortalSessionTTL
	}
	return defaults.PortalSessionTTL
}

// duration reads an optional duration field from 1s to most; def when empty.
func duration(v, field string, def, most time.Duration) (time.Duration, error) {
	if v == "" {
		return min(def, most), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > most {
		return 0, &fielderr.Error{Field: field, Reason: "must be a duration from 1s to " + most.String() + ", e.g. 5m"}
	}
	return d, nil
}

// RedeemPortalLink takes a link's code, once across the cluster, and returns the tenant and how
// long its session lasts: ErrLinkUsed or ErrLinkExpired when it cannot. The code is the
// credential: there is no caller.
func (s *Service) RedeemPortalLink(ctx context.Context, code string) (tenant string, sessionTTL time.Duration, err error) {
	if !s.AccessControl() {
		return "", 0, ErrLinkUsed
	}
	l, err := s.d.PortalLinks.Redeem(ctx, code)
	if err != nil {
		return "", 0, err
	}
	if ok, err := s.d.Tenants.Known(ctx, l.Tenant); err != nil {
		return "", 0, err
	} else if !ok {
		return "", 0, ErrLinkUsed // deleted since: the link opens nothing
	}
	s.d.Log.Info().Str("tenant", l.Tenant).Msg("portal link redeemed")
	return l.Tenant, l.SessionTTL, nil
}

// PortalCaller is the caller of a tenant's portal session: a token limited to tenant with the
// PortalScopes, authorized by the same checks as any tenant's token. Asked again on every
// request: ErrBadToken once the tenant is deleted, which ends its sessions.
func (s *Service) PortalCaller(ctx context.Context, tenant string) (Caller, error) {
	ok, err := s.d.Tenants.Known(ctx, tenant)
	switch {
	case err != nil:
		return Caller{}, err
	case !ok:
		return Caller{}, ErrBadToken
	}
	return Caller{token: &tokens.Token{ID: "portal", Name: "portal session of " + tenant, Scopes: PortalScopes, Tenant: tenant}, portal: true}, nil
}
