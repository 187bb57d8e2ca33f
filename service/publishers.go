package service

import (
	"context"

	"github.com/quaycast/quaycast/natsauth"
)

// PublisherInput is a new NATS credential for an upstream system: the sources it may publish
// (or "*"), and whether it may follow the replies to their events.
type PublisherInput struct {
	Name    string   `json:"name"`
	Sources []string `json:"sources"`
	Replies bool     `json:"replies"`
}

// CreatePublisher stores a publisher credential and lets it connect at once; the credential is
// returned this once. A *ConflictError with an external NATS, where quaycast mints none.
func (s *Service) CreatePublisher(ctx context.Context, c Caller, in PublisherInput) (credential string, p *natsauth.Publisher, err error) {
	if err := s.Check(c, OpCreatePublisher); err != nil {
		return "", nil, err
	}
	if err := natsauth.ValidatePublisher(in.Name, in.Sources); err != nil {
		return "", nil, err
	}
	cred, p, err := s.d.Publishers.Create(ctx, in.Name, in.Sources, in.Replies)
	if err != nil {
		return "", nil, err
	}
	s.d.NATSAuth.Add(p) // usable at once; the watch of the bucket does the same
	return cred, p, nil
}

// Publishers lists the publisher credentials (never their secrets).
func (s *Service) Publishers(ctx context.Context, c Caller) ([]*natsauth.Publisher, error) {
	if err := s.Check(c, OpListPublishers); err != nil {
		return nil, err
	}
	return s.d.Publishers.List(ctx)
}

// RevokePublisher deletes a publisher credential and closes its connections.
func (s *Service) RevokePublisher(ctx context.Context, c Caller, id string) error {
	if err := s.Check(c, OpRevokePublisher); err != nil {
		return err
	}
	if err := s.d.Publishers.Revoke(ctx, id); err != nil {
		return notFound(err, "publisher", natsauth.ErrNotFound)
	}
	s.d.NATSAuth.Revoke(id) // at once; the watch of the bucket does the same
	return nil
}
