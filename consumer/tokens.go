package consumer

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
)

// API tokens, stored hashed in the KV bucket quaycast_tokens: a token is "qct_<id>_<secret>";
// the bucket keeps its id, name, scopes and the SHA-256 of the secret, never the secret.
const TokensBucket = "quaycast_tokens"

// ErrBadToken is returned for a token that is malformed, unknown, revoked or wrong.
var ErrBadToken = errors.New("invalid API token")

// Token is a stored API token.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Hash      string    `json:"hash"` // hex SHA-256 of the secret part
}

// Has reports whether the token grants scope.
func (t *Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// Tokens stores API tokens.
type Tokens struct{ kv jetstream.KeyValue }

// NewTokens opens (creating if needed) the tokens bucket.
func NewTokens(ctx context.Context, js jetstream.JetStream, replicas int) (*Tokens, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: TokensBucket, Description: "quaycast: API tokens, hashed", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", TokensBucket, err)
	}
	return &Tokens{kv: kv}, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create makes a token; the returned string is the only time its secret exists in the clear.
func (s *Tokens) Create(ctx context.Context, name string, scopes []string) (string, *Token, error) {
	var id [10]byte
	var secret [32]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand documents it)
	_, _ = rand.Read(secret[:])
	t := &Token{
		ID: "tok_" + hex.EncodeToString(id[:]), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(),
	}
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	t.Hash = hashSecret(sec)
	b, err := json.Marshal(t)
	if err != nil {
		return "", nil, fmt.Errorf("encode token: %w", err)
	}
	if _, err := s.kv.Create(ctx, t.ID, b); err != nil {
		return "", nil, fmt.Errorf("store token %s: %w", t.ID, err)
	}
	return "qct_" + strings.TrimPrefix(t.ID, "tok_") + "_" + sec, t, nil
}

// Check returns the token a presented string stands for, or ErrBadToken.
func (s *Tokens) Check(ctx context.Context, presented string) (*Token, error) {
	rest, ok := strings.CutPrefix(presented, "qct_")
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 20 || secret == "" {
		return nil, ErrBadToken
	}
	entry, err := s.kv.Get(ctx, "tok_"+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	var t Token
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return nil, fmt.Errorf("decode token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.Hash)) != 1 {
		return nil, ErrBadToken
	}
	return &t, nil
}

// List returns every token (hashes included: callers show only the rest).
func (s *Tokens) List(ctx context.Context) ([]*Token, error) {
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
			out = append(out, &t)
		}
	}
	slices.SortFunc(out, func(a, b *Token) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Revoke deletes a token; ErrNotFound if there is none.
func (s *Tokens) Revoke(ctx context.Context, id string) error {
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
