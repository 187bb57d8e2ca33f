package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// Bucket is the KV bucket of the tenants, one key per tenant id.
const Bucket = "quaycast_tenants"

// Bounds of a tenant's texts.
const (
	MaxNameBytes       = 256
	MaxExternalIDBytes = 256
)

var (
	// ErrNotFound is returned for a tenant id the bucket does not hold.
	ErrNotFound = errors.New("tenant not found")
	// ErrExists is returned for a tenant whose id is taken.
	ErrExists = errors.New("tenant exists")
)

// Tenant is one of the operator's customers.
type Tenant struct {
	ID         string    `json:"id"`          // what events name; a subject token
	Name       string    `json:"name"`        // shown to people
	ExternalID string    `json:"external_id"` // the operator's own reference (CRM, billing), free text
	CreatedAt  time.Time `json:"created_at"`
}

// Validate checks a tenant's fields; the error is a *fielderr.Error naming the JSON field.
func (t *Tenant) Validate() error {
	switch {
	case t.ID == "":
		return &fielderr.Error{Field: "id", Reason: "is required"}
	case !subjects.ValidTenant(t.ID):
		return &fielderr.Error{Field: "id", Reason: fmt.Sprintf("must be 1 to %d characters of [a-z0-9_-]: events name it and it goes into subjects", subjects.MaxTokenLen)}
	case t.Name == "":
		return &fielderr.Error{Field: "name", Reason: "is required"}
	case len(t.Name) > MaxNameBytes || !utf8.ValidString(t.Name):
		return &fielderr.Error{Field: "name", Reason: fmt.Sprintf("must be UTF-8 of at most %d bytes", MaxNameBytes)}
	case len(t.ExternalID) > MaxExternalIDBytes || !utf8.ValidString(t.ExternalID):
		return &fielderr.Error{Field: "external_id", Reason: fmt.Sprintf("must be UTF-8 of at most %d bytes", MaxExternalIDBytes)}
	}
	return nil
}

// knownTTL is how long Known trusts what it read of a tenant: a tenant created through another
// gateway is routed within it, and a flood of events naming an unknown tenant costs one read per
// tenant per TTL.
const knownTTL = 5 * time.Second

type known struct {
	ok    bool
	until time.Time
}

// Store stores the tenants.
type Store struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]known
}

// Open opens (creating if needed) the bucket, replicated like the others.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "quaycast: tenants, the operator's customers", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv, cache: make(map[string]known)}, nil
}

// KV is the bucket, where the router (consumer.Router) keeps its position too, under a key no
// tenant id can be.
func (s *Store) KV() jetstream.KeyValue { return s.kv }

// Create stores a new tenant; ErrExists if its id is taken.
func (s *Store) Create(ctx context.Context, t Tenant) (*Tenant, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	t.CreatedAt = time.Now().UTC()
	b, err := json.Marshal(&t)
	if err != nil {
		return nil, fmt.Errorf("encode tenant: %w", err)
	}
	if _, err := s.kv.Create(ctx, t.ID, b); errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrExists
	} else if err != nil {
		return nil, fmt.Errorf("store tenant %s: %w", t.ID, err)
	}
	s.remember(t.ID, true)
	return &t, nil
}

// Get returns one tenant, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Tenant, error) {
	if !subjects.ValidTenant(id) {
		return nil, ErrNotFound
	}
	entry, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	var t Tenant
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return nil, fmt.Errorf("decode tenant %s: %w", id, err)
	}
	return &t, nil
}

// List returns every tenant, by id.
func (s *Store) List(ctx context.Context) ([]*Tenant, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	var out []*Tenant
	for k := range keys.Keys() {
		t, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Tenant) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Any reports whether at least one tenant exists. The bucket also holds the tenant router's
// position, under a key with a '.', which no tenant id has.
func (s *Store) Any(ctx context.Context) (bool, error) {
	keys, err := s.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list tenants: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		if !strings.Contains(k, ".") {
			return true, nil
		}
	}
	return false, nil
}

// Delete removes a tenant; ErrNotFound if there is none. The caller makes sure no endpoint
// belongs to it any more.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	s.remember(id, false)
	return nil
}

// Known reports whether tenant id exists, from what this gateway read of it within the last few
// seconds, else from the bucket.
func (s *Store) Known(ctx context.Context, id string) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	k, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Before(k.until) {
		return k.ok, nil
	}
	_, err := s.Get(ctx, id)
	switch {
	case err == nil:
		s.remember(id, true)
		return true, nil
	case errors.Is(err, ErrNotFound):
		s.remember(id, false)
		return false, nil
	}
	return false, err
}

func (s *Store) remember(id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) > 100_000 { // bounded: events may name any number of unknown ids
		clear(s.cache)
	}
	s.cache[id] = known{ok: ok, until: time.Now().Add(knownTTL)}
}
