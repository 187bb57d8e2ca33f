package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket keeps the records of one kind, one JSON value per id.
type Bucket[T any] struct {
	kv      jetstream.KeyValue
	kind    Kind
	decode  func([]byte) (T, error)
	created func(T) time.Time
}

// Open opens (creating if needed) the kind's bucket. decode reads a record (and may mark it, as
// one that does not verify); created orders List.
func Open[T any](ctx context.Context, js jetstream.JetStream, kind Kind, replicas int, decode func([]byte) (T, error), created func(T) time.Time) (*Bucket[T], error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: kind.Bucket, Description: kind.Description, History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", kind.Bucket, err)
	}
	return &Bucket[T]{kv: kv, kind: kind, decode: decode, created: created}, nil
}

// KV is the bucket itself, for what only one kind does with it (watching, migrating).
func (b *Bucket[T]) KV() jetstream.KeyValue { return b.kv }

// Create stores a new record under id.
func (b *Bucket[T]) Create(ctx context.Context, id string, rec T) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s: %w", b.kind.Noun, err)
	}
	if _, err := b.kv.Create(ctx, id, v); err != nil {
		return fmt.Errorf("store %s %s: %w", b.kind.Noun, id, err)
	}
	return nil
}

// Get reads and decodes the record of id; the kind's NotFound if there is none.
func (b *Bucket[T]) Get(ctx context.Context, id string) (T, error) {
	var zero T
	entry, err := b.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return zero, b.kind.NotFound
	}
	if err != nil {
		return zero, fmt.Errorf("read %s %s: %w", b.kind.Noun, id, err)
	}
	return b.decode(entry.Value())
}

// List returns every record decode accepts, oldest first.
func (b *Bucket[T]) List(ctx context.Context) ([]T, error) {
	keys, err := b.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", b.kind.Noun, err)
	}
	var out []T
	for k := range keys.Keys() {
		entry, err := b.kv.Get(ctx, k)
		if err != nil {
			continue // revoked meanwhile
		}
		if rec, err := b.decode(entry.Value()); err == nil {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(x, y T) int { return b.created(x).Compare(b.created(y)) })
	return out, nil
}

// Revoke deletes the record of id; the kind's NotFound if there is none.
func (b *Bucket[T]) Revoke(ctx context.Context, id string) error {
	if !b.kind.ValidID(id) {
		return b.kind.NotFound
	}
	if _, err := b.kv.Get(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return b.kind.NotFound
		}
		return fmt.Errorf("read %s %s: %w", b.kind.Noun, id, err)
	}
	if err := b.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("revoke %s %s: %w", b.kind.Noun, id, err)
	}
	return nil
}
