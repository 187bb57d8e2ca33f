package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/tenants"
)

// TenantInput is a new tenant: its id (what events name), a name for people and the operator's
// own reference.
type TenantInput struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	ExternalID string `json:"external_id"`
}

// CreateTenant stores a new tenant; a *ConflictError if its id is taken.
func (s *Service) CreateTenant(ctx context.Context, c Caller, in TenantInput) (*tenants.Tenant, error) {
	if err := s.Check(c, OpCreateTenant); err != nil {
		return nil, err
	}
	t, err := s.d.Tenants.Create(ctx, tenants.Tenant{ID: in.ID, Name: in.Name, ExternalID: in.ExternalID})
	if errors.Is(err, tenants.ErrExists) {
		return nil, &ConflictError{Reason: "a tenant with this id exists"}
	}
	return t, err
}

// Tenants lists the tenants, by id: a tenant's token sees its own only.
func (s *Service) Tenants(ctx context.Context, c Caller) ([]*tenants.Tenant, error) {
	if err := s.Check(c, OpListTenants); err != nil {
		return nil, err
	}
	all, err := s.d.Tenants.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*tenants.Tenant, 0, len(all))
	for _, t := range all {
		if c.sees(t.ID) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Tenant reads one tenant: another tenant's is "not found" to a tenant's token.
func (s *Service) Tenant(ctx context.Context, c Caller, id string) (*tenants.Tenant, error) {
	if err := s.Check(c, OpGetTenant); err != nil {
		return nil, err
	}
	if !c.sees(id) {
		return nil, &NotFoundError{Kind: "tenant"}
	}
	t, err := s.d.Tenants.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "tenant", tenants.ErrNotFound)
	}
	return t, nil
}

// DeleteTenant removes a tenant that has no endpoints left: a *ConflictError while it has.
func (s *Service) DeleteTenant(ctx context.Context, c Caller, id string) error {
	if err := s.Check(c, OpDeleteTenant); err != nil {
		return err
	}
	n, err := s.tenantEndpoints(ctx, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return &ConflictError{Reason: fmt.Sprintf("the tenant has %d endpoints: delete them first", n)}
	}
	return notFound(s.d.Tenants.Delete(ctx, id), "tenant", tenants.ErrNotFound)
}

// tenantEndpoints counts tenant's endpoints.
func (s *Service) tenantEndpoints(ctx context.Context, tenant string) (int, error) {
	eps, err := s.d.Registry.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range eps {
		if e.Tenant == tenant {
			n++
		}
	}
	return n, nil
}

// tenantOf sets the tenant of a new endpoint: the caller's own for a tenant's token (which may
// name only it), else the one the input names, which must exist and have room for one more.
func (s *Service) tenantOf(ctx context.Context, c Caller, given *string, ep *consumer.Endpoint) error {
	tenant := c.Tenant()
	switch {
	case tenant != "" && given != nil && *given != tenant:
		return &fielderr.Error{Field: "tenant", Reason: "must be this token's tenant"}
	case tenant == "" && given != nil:
		tenant = *given
	}
	if tenant == "" {
		return nil
	}
	if _, err := s.d.Tenants.Get(ctx, tenant); errors.Is(err, tenants.ErrNotFound) {
		return &fielderr.Error{Field: "tenant", Reason: "no tenant with this id"}
	} else if err != nil {
		return err
	}
	n, err := s.tenantEndpoints(ctx, tenant)
	if err != nil {
		return err
	}
	if limit := s.d.TenantMaxEndpoints; limit > 0 && n >= limit {
		return &ConflictError{Reason: fmt.Sprintf("the tenant has %d endpoints, the most --tenant-max-endpoints allows", n)}
	}
	ep.Tenant = tenant
	return nil
}
