package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/tokens"
)

// Scopes of API tokens, as the service defines them.
const (
	ScopeEndpointsRead   = service.ScopeEndpointsRead
	ScopeEndpointsWrite  = service.ScopeEndpointsWrite
	ScopeEndpointsDelete = service.ScopeEndpointsDelete
	ScopeEventsPublish   = service.ScopeEventsPublish
	ScopeDeliveriesRead  = service.ScopeDeliveriesRead
	scopeNone            = "" // open: health, readiness, metrics, the catalogue, the API document
)

// Scopes lists the scopes a token can be given.
var Scopes = service.Scopes

type callerKey struct{}

// callerOf is the caller require put in the request's context; the zero Caller, which may do
// nothing, if none.
func callerOf(r *http.Request) service.Caller {
	c, _ := r.Context().Value(callerKey{}).(service.Caller)
	return c
}

// require wraps h so that it runs only for a caller the service lets do op: 401 without a valid
// token, 403 without the scope (409 for an operation this gateway does not offer) — decided
// before the request's body is read. Open routes (op "") run for anyone.
func (a *api) require(op service.Op, h http.HandlerFunc) http.HandlerFunc {
	if op == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			presented = ""
		}
		c, err := a.svc.Authenticate(r.Context(), presented)
		switch {
		case errors.Is(err, service.ErrNoToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="quaycast"`)
			writeError(w, http.StatusUnauthorized, "", "missing API token: send Authorization: Bearer <token>")
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="quaycast", error="invalid_token"`)
			if errors.Is(err, service.ErrBadToken) {
				writeError(w, http.StatusUnauthorized, "", "invalid API token")
			} else {
				writeError(w, http.StatusServiceUnavailable, "", "cannot check the API token now")
			}
			return
		}
		if err := a.svc.Check(c, op); err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	}
}

// tokenView is a token as listed: never its secret nor its hash.
type tokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Tenant    string    `json:"tenant,omitempty"` // the one tenant it is limited to
	Token     string    `json:"token,omitempty"`  // only in the answer that creates it
}

func viewToken(t *tokens.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt, Tenant: t.Tenant}
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	if secret, t, ok := callCreate(a, w, r, a.svc.CreateToken); ok {
		v := viewToken(t)
		v.Token = secret
		writeJSON(w, http.StatusCreated, v)
	}
}
