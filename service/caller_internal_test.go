package service

import (
	"errors"
	"slices"
	"testing"

	"github.com/quaycast/quaycast/tokens"
)

// Each operation is allowed to exactly the callers holding its scope: the admin always, a token
// only with that scope, never for an admin operation, and the zero Caller never.
func TestCheckByScope(t *testing.T) {
	t.Parallel()
	s := New(Deps{}) // publishers unmanaged here: allowed publisher operations are conflicts
	for op, scope := range opScopes {
		t.Run(string(op), func(t *testing.T) {
			var fb *ForbiddenError
			if err := s.Check(Caller{}, op); !errors.As(err, &fb) || fb.Scope != scope {
				t.Errorf("zero caller: %v, want forbidden for %s", err, scope)
			}
			if err := s.Check(Admin(), op); errors.As(err, &fb) {
				t.Errorf("admin: %v, want allowed", err)
			}
			others := slices.DeleteFunc(slices.Clone(Scopes), func(sc string) bool { return sc == scope })
			if err := s.Check(Caller{token: &tokens.Token{Scopes: others}}, op); !errors.As(err, &fb) {
				t.Errorf("token with every other scope: %v, want forbidden", err)
			}
			err := s.Check(Caller{token: &tokens.Token{Scopes: []string{scope}}}, op)
			if scope == ScopeAdmin && !errors.As(err, &fb) {
				t.Errorf("token claiming the admin scope: %v, want forbidden", err)
			}
			if scope != ScopeAdmin && errors.As(err, &fb) {
				t.Errorf("token with %s: %v, want allowed", scope, err)
			}
		})
	}
	if got := Op("not an operation").Scope(); got != ScopeAdmin {
		t.Errorf("an unknown operation needs %q, want admin", got)
	}
}
