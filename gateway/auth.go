package gateway

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/subjects"
)

// Scopes of API tokens: the read, write and delete rights on webhook configuration the terminal
// system's users know, plus publishing events and reading the delivery log. The admin token has
// all of them and is the only one that manages tokens.
const (
	ScopeEndpointsRead   = "endpoints:read"
	ScopeEndpointsWrite  = "endpoints:write"
	ScopeEndpointsDelete = "endpoints:delete"
	ScopeEventsPublish   = "events:publish"
	ScopeDeliveriesRead  = "deliveries:read"
	scopeAdmin           = "admin"
	scopeNone            = "" // open: health, readiness, metrics, the catalogue, the API document
)

// Scopes lists the scopes a token can be given.
var Scopes = []string{ScopeEndpointsRead, ScopeEndpointsWrite, ScopeEndpointsDelete, ScopeEventsPublish, ScopeDeliveriesRead}

// auth checks bearer tokens. With no admin token configured it lets everything through: the
// gateway then listens on loopback only (config refuses anything else).
type auth struct {
	admin  string
	tokens *consumer.Tokens

	mu    sync.Mutex
	cache map[string]cachedToken // presented token -> check result, briefly
}

type cachedToken struct {
	token *consumer.Token
	until time.Time
}

// tokenCacheTTL bounds how long a revoked token keeps working on a gateway that checked it.
const tokenCacheTTL = 5 * time.Second

func (a *auth) enabled() bool { return a.admin != "" }

// require wraps h so that it runs only for a caller holding scope: 401 without a valid token,
// 403 without the scope.
func (a *auth) require(scope string, h http.HandlerFunc) http.HandlerFunc {
	if scope == scopeNone {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled() {
			h(w, r)
			return
		}
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || presented == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quaycast"`)
			writeError(w, http.StatusUnauthorized, "", "missing API token: send Authorization: Bearer <token>")
			return
		}
		if subtle.ConstantTimeCompare([]byte(presented), []byte(a.admin)) == 1 {
			h(w, r)
			return
		}
		t, err := a.check(r, presented)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quaycast", error="invalid_token"`)
			if errors.Is(err, consumer.ErrBadToken) {
				writeError(w, http.StatusUnauthorized, "", "invalid API token")
			} else {
				writeError(w, http.StatusServiceUnavailable, "", "cannot check the API token now")
			}
			return
		}
		if scope == scopeAdmin || !t.Has(scope) {
			writeError(w, http.StatusForbidden, "", "this token lacks the scope "+scope)
			return
		}
		h(w, r)
	}
}

func (a *auth) check(r *http.Request, presented string) (*consumer.Token, error) {
	now := time.Now()
	a.mu.Lock()
	c, ok := a.cache[presented]
	a.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.token, nil
	}
	t, err := a.tokens.Check(r.Context(), presented)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.cache) > 10_000 { // bounded: many distinct tokens just cost KV reads
		clear(a.cache)
	}
	a.cache[presented] = cachedToken{token: t, until: now.Add(tokenCacheTTL)}
	a.mu.Unlock()
	return t, nil
}

// tokenView is a token as listed: never its secret nor its hash.
type tokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token,omitempty"` // only in the answer that creates it
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Name == "" || len(in.Name) > 128 {
		a.fail(w, r, &subjects.FieldError{Field: "name", Reason: "is required, at most 128 bytes"})
		return
	}
	if len(in.Scopes) == 0 {
		a.fail(w, r, &subjects.FieldError{Field: "scopes", Reason: "at least one of " + strings.Join(Scopes, ", ")})
		return
	}
	for i, s := range in.Scopes {
		if !slices.Contains(Scopes, s) {
			a.fail(w, r, &subjects.FieldError{Field: "scopes[" + strconv.Itoa(i) + "]", Reason: "unknown scope " + quoteShort(s) + "; one of " + strings.Join(Scopes, ", ")})
			return
		}
	}
	secret, t, err := a.auth.tokens.Create(r.Context(), in.Name, in.Scopes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenView{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt, Token: secret})
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.auth.tokens.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]tokenView, len(ts))
	for i, t := range ts {
		out[i] = tokenView{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validTokenID(id) {
		writeError(w, http.StatusNotFound, "id", "no token with this id")
		return
	}
	if err := a.auth.tokens.Revoke(r.Context(), id); err != nil {
		if errors.Is(err, consumer.ErrNotFound) {
			writeError(w, http.StatusNotFound, "id", "no token with this id")
			return
		}
		a.fail(w, r, err)
		return
	}
	a.auth.mu.Lock()
	clear(a.auth.cache) // revoked here: effective here at once
	a.auth.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func validTokenID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, "tok_")
	return ok && len(hexPart) == 20 && strings.Trim(hexPart, "0123456789abcdef") == ""
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}
