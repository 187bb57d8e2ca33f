package service

import (
	"errors"

	"github.com/quaycast/quaycast/tokens"
)

// NotFoundError is an id that names nothing of its kind.
type NotFoundError struct {
	Kind string // endpoint, token, publisher
}

func (e *NotFoundError) Error() string { return "no " + e.Kind + " with this id" }

// ForbiddenError is a caller without the scope an operation needs.
type ForbiddenError struct {
	Scope  string
	Tenant bool // the token is a tenant's, and this is the operator's to do
}

func (e *ForbiddenError) Error() string {
	if e.Tenant {
		return "a tenant's token cannot do this: it is the operator's"
	}
	return "this token lacks the scope " + e.Scope
}

// ConflictError is an operation this gateway does not offer as it is set up.
type ConflictError struct {
	Reason string
}

func (e *ConflictError) Error() string { return e.Reason }

// ErrNoToken is a request with access control on and no token.
var ErrNoToken = errors.New("no API token")

// ErrBadToken is a token that is malformed, unknown, revoked or wrong.
var ErrBadToken = tokens.ErrInvalid

// notFound turns a store's not-found error into a NotFoundError of kind; other errors pass.
func notFound(err error, kind string, storeErr error) error {
	if errors.Is(err, storeErr) {
		return &NotFoundError{Kind: kind}
	}
	return err
}
