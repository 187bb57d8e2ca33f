package natsauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/credential"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/subjects"
)

// PublishersBucket holds the publisher credentials of the embedded server: id, name, sources,
// whether replies are granted, the SHA-256 of the secret (never the secret) and a binding made
// with the gateways' secret key. A record that does not verify is never loaded into the server.
const PublishersBucket = "quaycast_publishers"

// ErrNotFound is returned for a publisher id the bucket does not hold.
var ErrNotFound = errors.New("publisher not found")

// kind is what publisher credentials share with the other credentials. A credential is
// "qcp_<id>_<secret>", presented to NATS as a token.
var kind = credential.Kind{
	Noun: "publisher", IDPrefix: "pub_", Prefix: "qcp_", NotFound: ErrNotFound,
	Bucket: PublishersBucket, Description: "quaycast: publisher credentials of the embedded NATS, hashed and bound",
}

// Publisher is one upstream system's NATS credential.
type Publisher struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Sources   []string  `json:"sources"` // source tokens it may publish, or "*" for all
	Replies   bool      `json:"replies"` // may follow replies to its sources' events and quaycast.sys.>
	CreatedAt time.Time `json:"created_at"`
	Hash      string    `json:"hash"`
	Binding   string    `json:"binding,omitempty"`

	// Forged is set for a record whose binding does not verify: it is listed, never loaded.
	Forged bool `json:"-"`
}

func (p *Publisher) fields() []string {
	return []string{"publisher", p.ID, p.Name, strings.Join(p.Sources, ","), strconv.FormatBool(p.Replies), p.CreatedAt.Format(time.RFC3339Nano), p.Hash}
}

// ValidatePublisher checks what a caller may choose: name and sources. Errors name the field.
func ValidatePublisher(name string, sources []string) error {
	if err := credential.CheckName(name); err != nil {
		return err
	}
	if len(sources) == 0 || len(sources) > 64 {
		return &fielderr.Error{Field: "sources", Reason: `1 to 64 sources (subject tokens of [a-z0-9_-]), or "*" for all`}
	}
	for i, s := range sources {
		if s != AllSources && !subjects.ValidToken(s) {
			return &fielderr.Error{Field: "sources[" + strconv.Itoa(i) + "]", Reason: `must be 1-64 characters of [a-z0-9_-], or "*" for all`}
		}
		if s == subjects.OpsSource {
			return &fielderr.Error{Field: "sources[" + strconv.Itoa(i) + "]", Reason: "is reserved for quaycast's own operator events"}
		}
	}
	return nil
}

// Publishers stores publisher credentials.
type Publishers struct {
	recs *credential.Bucket[*Publisher]
	key  *seal.Key
}

// NewPublishers opens (creating if needed) the bucket. key binds the records.
func NewPublishers(ctx context.Context, js jetstream.JetStream, replicas int, key *seal.Key) (*Publishers, error) {
	s := &Publishers{key: key}
	recs, err := credential.Open(ctx, js, kind, replicas, s.decode, func(p *Publisher) time.Time { return p.CreatedAt })
	if err != nil {
		return nil, err
	}
	s.recs = recs
	return s, nil
}

// Create stores a publisher; the returned credential is the only time its secret exists.
func (s *Publishers) Create(ctx context.Context, name string, sources []string, replies bool) (string, *Publisher, error) {
	if err := ValidatePublisher(name, sources); err != nil {
		return "", nil, err
	}
	id, presented, hash := kind.Mint()
	p := &Publisher{ID: id, Name: name, Sources: slices.Clone(sources), Replies: replies, CreatedAt: time.Now().UTC(), Hash: hash}
	p.Binding = s.key.Bind(p.fields()...)
	if err := s.recs.Create(ctx, p.ID, p); err != nil {
		return "", nil, err
	}
	return presented, p, nil
}

// List returns every publisher, oldest first; records that do not verify are marked Forged.
func (s *Publishers) List(ctx context.Context) ([]*Publisher, error) { return s.recs.List(ctx) }

// Revoke deletes a publisher; ErrNotFound if there is none.
func (s *Publishers) Revoke(ctx context.Context, id string) error { return s.recs.Revoke(ctx, id) }

func (s *Publishers) decode(b []byte) (*Publisher, error) {
	var p Publisher
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode publisher: %w", err)
	}
	p.Forged = s.key == nil || !s.key.Verify(p.Binding, p.fields()...) // unbound is never trusted here
	return &p, nil
}

// watch calls apply with every publisher now in the bucket and every change after it (nil for a
// revoked id), until ctx ends. ready is closed once the current records were applied.
func (s *Publishers) watch(ctx context.Context, apply func(id string, p *Publisher), ready chan<- struct{}) error {
	w, err := s.recs.KV().WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch publishers: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok {
				return errors.New("watch publishers: stopped")
			}
			switch {
			case entry == nil:
				if ready != nil {
					close(ready)
					ready = nil
				}
			case entry.Operation() != jetstream.KeyValuePut:
				apply(entry.Key(), nil)
			default:
				p, err := s.decode(entry.Value())
				if err != nil || p.ID != entry.Key() {
					apply(entry.Key(), nil)
					continue
				}
				apply(entry.Key(), p)
			}
		}
	}
}

// matches reports in constant time whether secret is the publisher's.
func (p *Publisher) matches(secret string) bool { return credential.Matches(secret, p.Hash) }
