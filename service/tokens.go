package service

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/quaycast/quaycast/internal/credential"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

// TokenInput is a new API token: a name for people and the scopes it grants.
type TokenInput struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Tenant string   `json:"tenant"` // limits it to one tenant's endpoints, deliveries and dead letters
}

// CreateToken stores a new API token and returns it with its secret — shown this once.
func (s *Service) CreateToken(ctx context.Context, c Caller, in TokenInput) (secret string, t *tokens.Token, err error) {
	if err := s.Check(c, OpCreateToken); err != nil {
		return "", nil, err
	}
	if err := credential.CheckName(in.Name); err != nil {
		return "", nil, err
	}
	if len(in.Scopes) == 0 {
		return "", nil, &fielderr.Error{Field: "scopes", Reason: "at least one of " + strings.Join(Scopes, ", ")}
	}
	for i, sc := range in.Scopes {
		if !slices.Contains(Scopes, sc) {
			return "", nil, &fielderr.Error{Field: "scopes[" + strconv.Itoa(i) + "]", Reason: "unknown scope " + quoteShort(sc) + "; one of " + strings.Join(Scopes, ", ")}
		}
	}
	if in.Tenant != "" {
		if _, err := s.d.Tenants.Get(ctx, in.Tenant); errors.Is(err, tenants.ErrNotFound) {
			return "", nil, &fielderr.Error{Field: "tenant", Reason: "no tenant with this id"}
		} else if err != nil {
			return "", nil, err
		}
	}
	return s.d.Tokens.CreateFor(ctx, in.Name, in.Scopes, in.Tenant)
}

// Tokens lists the API tokens (never their secrets).
func (s *Service) Tokens(ctx context.Context, c Caller) ([]*tokens.Token, error) {
	if err := s.Check(c, OpListTokens); err != nil {
		return nil, err
	}
	return s.d.Tokens.List(ctx)
}

// RevokeToken deletes an API token: refused at once by this gateway, within the token cache's
// lifetime by the others.
func (s *Service) RevokeToken(ctx context.Context, c Caller, id string) error {
	if err := s.Check(c, OpRevokeToken); err != nil {
		return err
	}
	if err := s.d.Tokens.Revoke(ctx, id); err != nil {
		return notFound(err, "token", tokens.ErrNotFound)
	}
	s.mu.Lock()
	clear(s.cache) // revoked here: effective here at once
	s.mu.Unlock()
	return nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}
