package gateway

import (
	"net/http"
	"time"

	"github.com/quaycast/quaycast/console"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/tenants"
)

// tenantView is a tenant as the API shows it.
type tenantView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ExternalID string    `json:"external_id"`
	CreatedAt  time.Time `json:"created_at"`
}

func viewTenant(t *tenants.Tenant) tenantView {
	return tenantView{ID: t.ID, Name: t.Name, ExternalID: t.ExternalID, CreatedAt: t.CreatedAt}
}

// createTenant adds a tenant (admin): {"id", "name", "external_id"}.
func (a *api) createTenant(w http.ResponseWriter, r *http.Request) {
	var in service.TenantInput
	if !decodeJSON(w, r, &in) {
		return
	}
	t, err := a.svc.CreateTenant(r.Context(), callerOf(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	writeJSON(w, http.StatusCreated, viewTenant(t))
}

func (a *api) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.Tenant(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewTenant(t))
}

// portalLinkView is a new portal link: the URL to open (its code is shown this once) and until
// when it can be.
type portalLinkView struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// portalLink makes a single-use link to the console limited to a tenant: {"ttl", "session_ttl"},
// both optional.
func (a *api) portalLink(w http.ResponseWriter, r *http.Request) {
	l, ok := callWithBody(a, w, r, bodyOptional, a.svc.CreatePortalLink)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, portalLinkView{URL: console.PortalURL(a.publicURL, r, l.Code), ExpiresAt: l.ExpiresAt})
}
