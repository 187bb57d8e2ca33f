package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	Hash      string    `json:"hash"`              // hex SHA-256 of the secret part
	Binding   string    `json:"binding,omitempty"` // seal.Key.Bind of the fields above

	// Forged is set by List for a record whose binding does not verify: it is refused.
	Forged bool `json:"-"`
}

func (t *Token) fields() []string {
	return []string{"token", t.ID, t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339Nano), t.Hash}
}

// Has reports whether the token grants scope.
func (t *Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// Store stores API tokens.
type Store struct {
	kv  jetstream.KeyValue
	key *seal.Key
}

// New opens (creating if needed) the tokens bucket. key binds the records; nil leaves them
// unbound (no access control needs them then).
func New(ctx context.Context, js jetstream.JetStream, replicas int, key *seal.Key) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "quaycast: API tokens, hashed", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv, key: key}, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create makes a token; the returned string is the only time its secret exists in the clear.
func (s *Store) Create(ctx context.Context, name string, scopes []string) (string, *Token, error) {
	var id [10]byte
	var secret [32]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand documents it)
	_, _ = rand.Read(secret[:])
	t := &Token{
		ID: "tok_" + hex.EncodeToString(id[:]), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(),
	}
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	t.Hash = hashSecret(sec)
	t.Binding = s.key.Bind(t.fields()...)
	b, err := json.Marshal(t)
	if err != nil {
		return "", nil, fmt.Errorf("encode token: %w", err)
	}
	if _, err := s.kv.Create(ctx, t.ID, b); err != nil {
		return "", nil, fmt.Errorf("store token %s: %w", t.ID, err)
	}
	return "qct_" + strings.TrimPrefix(t.ID, "tok_") + "_" + sec, t, nil
}

// Check returns the token a presented string stands for, or ErrInvalid.
func (s *Store) Check(ctx context.Context, presented string) (*Token, error) {
	rest, ok := strings.CutPrefix(presented, "qct_")
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 20 || secret == "" {
		return nil, ErrInvalid
	}
	entry, err := s.kv.Get(ctx, "tok_"+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	var t Token
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return nil, fmt.Errorf("decode token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.Hash)) != 1 || !s.key.Verify(t.Binding, t.fields()...) {
		return nil, ErrInvalid
	}
	return &t, nil
}

// List returns every token (hashes included: callers show only the rest).
func (s *Store) List(ctx context.Context) ([]*Token, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []*Token
	for k := range keys.Keys() {
		entry, err := s.kv.Get(ctx, k)
		if err != nil {
			continue // revoked meanwhile
		}
		var t Token
		if json.Unmarshal(entry.Value(), &t) == nil {
			t.Forged = !s.key.Verify(t.Binding, t.fields()...)
			out = append(out, &t)
		}
	}
	slices.SortFunc(out, func(a, b *Token) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Revoke deletes a token; ErrNotFound if there is none.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if _, err := s.kv.Get(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("read token %s: %w", id, err)
	}
	if err := s.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return nil
}

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
	if entry, err := s.kv.Get(ctx, boundMarker); err == nil && s.key.Verify(string(entry.Value()), boundMarker) {
		return 0, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("read token marker: %w", err)
	}
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("list tokens: %w", err)
	}
	n := 0
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "tok_") {
			continue
		}
		entry, err := s.kv.Get(ctx, k)
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
		if _, err := s.kv.Update(ctx, k, b, entry.Revision()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return n, fmt.Errorf("bind token %s: %w", k, err)
		}
		n++
	}
	if _, err := s.kv.Put(ctx, boundMarker, []byte(s.key.Bind(boundMarker))); err != nil {
		return n, fmt.Errorf("store token marker: %w", err)
	}
	return n, nil
}
