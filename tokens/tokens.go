package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/credential"
	"github.com/quaycast/quaycast/seal"
)

// Bucket is the KV bucket of the API tokens.
const Bucket = "quaycast_tokens"

var (
	// ErrInvalid is returned for a token that is malformed, unknown, revoked or wrong.
	ErrInvalid = errors.New("invalid API token")
	// ErrNotFound is returned for a token id the bucket does not hold.
	ErrNotFound = errors.New("token not found")
)

// Token is a stored API token.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Hash      string    `json:"hash"` // hex SHA-256 of the secret part
	// Tenant limits the token to one tenant's endpoints, deliveries and dead letters ("" = the
	// operator's, all of them).
	Tenant  string `json:"tenant,omitempty"`
	Binding string `json:"binding,omitempty"` // seal.Key.Bind of the fields above

	// Forged is set by List for a record whose binding does not verify: it is refused.
	Forged bool `json:"-"`
}

func (t *Token) fields() []string {
	f := []string{"token", t.ID, t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339Nano), t.Hash}
	if t.Tenant != "" { // only then: the bindings of tokens stored before tenants still verify
		f = append(f, "tenant="+t.Tenant)
	}
	return f
}

// Has reports whether the token grants scope.
func (t *Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// kind is what the API tokens share with the other credentials.
var kind = credential.Kind{
	Noun: "token", IDPrefix: "tok_", Prefix: "qct_", NotFound: ErrNotFound,
	Bucket: Bucket, Description: "quaycast: API tokens, hashed",
}

// Store stores API tokens.
type Store struct {
	recs *credential.Bucket[*Token]
	key  *seal.Key
}

// New opens (creating if needed) the tokens bucket. key binds the records; nil leaves them
// unbound (no access control needs them then).
func New(ctx context.Context, js jetstream.JetStream, replicas int, key *seal.Key) (*Store, error) {
	s := &Store{key: key}
	recs, err := credential.Open(ctx, js, kind, replicas, s.decode, func(t *Token) time.Time { return t.CreatedAt })
	if err != nil {
		return nil, err
	}
	s.recs = recs
	return s, nil
}

// decode reads a record, marking it Forged when its binding does not verify.
func (s *Store) decode(b []byte) (*Token, error) {
	var t Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode token: %w", err)
	}
	t.Forged = !s.key.Verify(t.Binding, t.fields()...)
	return &t, nil
}

// Create makes a token; the returned string is the only time its secret exists in the clear.
func (s *Store) Create(ctx context.Context, name string, scopes []string) (string, *Token, error) {
	return s.CreateFor(ctx, name, scopes, "")
}

// CreateFor makes a token limited to tenant ("" = none), as Create.
func (s *Store) CreateFor(ctx context.Context, name string, scopes []string, tenant string) (string, *Token, error) {
	id, presented, hash := kind.Mint()
	t := &Token{ID: id, Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(), Hash: hash, Tenant: tenant}
	t.Binding = s.key.Bind(t.fields()...)
	if err := s.recs.Create(ctx, t.ID, t); err != nil {
		return "", nil, err
	}
	return presented, t, nil
}

// Check returns the token a presented string stands for, or ErrInvalid.
func (s *Store) Check(ctx context.Context, presented string) (*Token, error) {
	id, secret, ok := kind.Parse(presented)
	if !ok {
		return nil, ErrInvalid
	}
	t, err := s.recs.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if !credential.Matches(secret, t.Hash) || t.Forged {
		return nil, ErrInvalid
	}
	return t, nil
}

// List returns every token, oldest first (hashes included: callers show only the rest).
func (s *Store) List(ctx context.Context) ([]*Token, error) { return s.recs.List(ctx) }

// Revoke deletes a token; ErrNotFound if there is none.
func (s *Store) Revoke(ctx context.Context, id string) error { return s.recs.Revoke(ctx, id) }

// boundMarker is the key of a bound record saying the tokens were bound once; its absence makes
// BindAll bind the records of a release that stored them unbound.
const boundMarker = "meta_bound"

// BindAll binds, once, the tokens stored unbound by an earlier release (plain SHA-256 records),
// so they keep working. Records that carry a binding that does not verify are left refused.
// It is idempotent, and does nothing without a key. It returns how many it bound.
func (s *Store) BindAll(ctx context.Context) (int, error) {
	if s.key == nil {
		return 0, nil
	}
	kv := s.recs.KV()
	if entry, err := kv.Get(ctx, boundMarker); err == nil && s.key.Verify(string(entry.Value()), boundMarker) {
		return 0, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("read token marker: %w", err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("list tokens: %w", err)
	}
	n := 0
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "tok_") {
			continue
		}
		entry, err := kv.Get(ctx, k)
		if err != nil {
			continue // revoked meanwhile
		}
		var t Token
		if json.Unmarshal(entry.Value(), &t) != nil || t.Binding != "" || t.ID != k {
			continue
		}
		t.Binding = s.key.Bind(t.fields()...)
		b, err := json.Marshal(&t)
		if err != nil {
			return n, fmt.Errorf("encode token: %w", err)
		}
		if _, err := kv.Update(ctx, k, b, entry.Revision()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return n, fmt.Errorf("bind token %s: %w", k, err)
		}
		n++
	}
	if _, err := kv.Put(ctx, boundMarker, []byte(s.key.Bind(boundMarker))); err != nil {
		return n, fmt.Errorf("store token marker: %w", err)
	}
	return n, nil
}
