package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quaycast/quaycast/service"
)

// tenantsData is the operator's tenants page: the list with each tenant's endpoints, the create
// form, and a portal link shown this once.
type tenantsData struct {
	Tenants []tenantRow
	In      service.TenantInput
	Link    *linkView
}

type tenantRow struct {
	ID, Name, ExternalID string
	CreatedAt            time.Time
	Endpoints            int
}

// linkView is a new portal link.
type linkView struct {
	Tenant, URL string
	ExpiresAt   time.Time
	Session     time.Duration
}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, p *page) {
	c.showTenants(w, r, p, &tenantsData{}, http.StatusOK)
}

func (c *Console) showTenants(w http.ResponseWriter, r *http.Request, p *page, d *tenantsData, status int) {
	if p.caller.Tenant() != "" { // it would list its own record only: nothing to manage
		c.fail(w, r, &service.ForbiddenError{Scope: service.ScopeAdmin, Tenant: true}, "", p)
		return
	}
	list, err := c.svc.Tenants(r.Context(), p.caller)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	counts := map[string]int{}
	if eps, err := c.svc.Endpoints(r.Context(), p.caller); err == nil {
		for _, e := range eps {
			counts[e.Tenant]++
		}
	}
	for _, t := range list {
		d.Tenants = append(d.Tenants, tenantRow{ID: t.ID, Name: t.Name, ExternalID: t.ExternalID, CreatedAt: t.CreatedAt, Endpoints: counts[t.ID]})
	}
	p.Title, p.Nav, p.Data = "Tenants", "tenants", d
	p.Notice = firstNonEmpty(p.Notice, notice(r))
	c.render(w, r, status, "tenants", p)
}

func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, p *page) {
	in := service.TenantInput{ID: strings.TrimSpace(r.PostFormValue("id")), Name: strings.TrimSpace(r.PostFormValue("name")),
		ExternalID: strings.TrimSpace(r.PostFormValue("external_id"))}
	_, err := c.svc.CreateTenant(r.Context(), p.caller, in)
	var cf *service.ConflictError
	switch {
	case err == nil:
		redirect(w, r, "/ui/tenants?done=tenant-added")
	case errors.As(err, &cf): // the id is taken: beside the id
		p.Errors, p.Error = map[string]string{"id": cf.Reason}, "Not created: correct the fields marked below."
		c.showTenants(w, r, p, &tenantsData{In: in}, http.StatusConflict)
	case fieldErr(err, p):
		c.showTenants(w, r, p, &tenantsData{In: in}, http.StatusBadRequest)
	default:
		c.fail(w, r, err, "", p)
	}
}

func (c *Console) deleteTenant(w http.ResponseWriter, r *http.Request, p *page) {
	err := c.svc.DeleteTenant(r.Context(), p.caller, r.PathValue("id"))
	var cf *service.ConflictError
	switch {
	case err == nil:
		redirect(w, r, "/ui/tenants?done=tenant-deleted")
	case errors.As(err, &cf): // endpoints left: said on the page
		p.Error = "Not deleted: " + cf.Reason
		c.showTenants(w, r, p, &tenantsData{}, http.StatusConflict)
	default:
		c.fail(w, r, err, "", p)
	}
}

// portalLink makes a portal link for the tenant and shows it, this once.
func (c *Console) portalLink(w http.ResponseWriter, r *http.Request, p *page) {
	l, err := c.svc.CreatePortalLink(r.Context(), p.caller, r.PathValue("id"), service.PortalLinkInput{})
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	d := &tenantsData{Link: &linkView{Tenant: l.Tenant, URL: PortalURL(c.o.PublicURL, r, l.Code), ExpiresAt: l.ExpiresAt, Session: l.SessionTTL}}
	c.showTenants(w, r, p, d, http.StatusCreated)
}
