package eventtypes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// Bucket is the KV bucket of the custom event types, one key per type name.
const Bucket = "quaycast_event_types"

// Bounds of a custom type's texts.
const (
	MaxTitleBytes       = 128
	MaxDescriptionBytes = 1024
	MaxCustom           = 1000 // custom types in all: each may become a filter subject
)

var (
	// ErrNotFound is returned for a custom type the bucket does not hold.
	ErrNotFound = errors.New("event type not found")
	// ErrBuiltin is returned for a change to a built-in type.
	ErrBuiltin = errors.New("built-in event types cannot be changed or deleted")
	// ErrExists is returned for a custom type whose name is taken.
	ErrExists = errors.New("event type exists")
)

// record is a custom type as stored.
type record struct {
	Name        string    `json:"name"`
	Title       string    `json:"title"`
	Group       string    `json:"group"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Store is the live catalogue.
type Store struct {
	kv  jetstream.KeyValue
	log zerolog.Logger
	cur atomic.Pointer[subjects.Catalogue]

	mu       sync.Mutex
	onChange []func()
	running  chan struct{} // closed when the refresh in progress ends; nil: none
	loaded   time.Time     // when the last completed read started
}

// Open opens (creating if needed) the bucket, replicated like the others, and reads it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, log zerolog.Logger) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "quaycast: custom event types", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", Bucket, err)
	}
	s := &Store{kv: kv, log: log}
	s.cur.Store(subjects.Builtin())
	if _, err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Current is the catalogue as this gateway last read it.
func (s *Store) Current() *subjects.Catalogue { return s.cur.Load() }

// OnChange registers f, called (from the watch) after the catalogue changed: a group that grew
// changes the filters of the endpoints that select it.
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}

// Refresh reads the bucket again and returns the catalogue as it is now: one read started after
// the call, shared by the callers that ask meanwhile, so a flood of unknown types costs one read
// at a time.
func (s *Store) Refresh(ctx context.Context) (*subjects.Catalogue, error) {
	asked := time.Now()
	for {
		s.mu.Lock()
		if !s.loaded.Before(asked) {
			s.mu.Unlock()
			return s.Current(), nil
		}
		if ch := s.running; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return s.Current(), ctx.Err()
			}
		}
		ch, start := make(chan struct{}), time.Now()
		s.running = ch
		s.mu.Unlock()

		changed, err := s.load(ctx)
		s.mu.Lock()
		s.running = nil
		if err == nil {
			s.loaded = start
		}
		fs := slices.Clone(s.onChange)
		s.mu.Unlock()
		close(ch)
		if err != nil {
			return s.Current(), err
		}
		if changed {
			for _, f := range fs {
				f()
			}
		}
		return s.Current(), nil
	}
}

// load reads every custom type and makes the catalogue of them; changed says it differs.
func (s *Store) load(ctx context.Context) (changed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	recs, err := s.list(ctx)
	if err != nil {
		return false, err
	}
	custom := make([]subjects.EventType, 0, len(recs))
	for _, r := range recs {
		custom = append(custom, subjects.EventType{Name: r.Name, Title: r.Title, Group: r.Group, Description: r.Description})
	}
	cat, err := subjects.NewCatalogue(custom)
	if err != nil { // written by someone else: keep what we have
		return false, fmt.Errorf("custom event types: %w", err)
	}
	old := s.cur.Swap(cat)
	return !slices.Equal(old.Types(), cat.Types()), nil
}

// list reads the custom types, oldest first.
func (s *Store) list(ctx context.Context) ([]record, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	var out []record
	for k := range keys.Keys() {
		entry, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read event type %s: %w", k, err)
		}
		var r record
		if err := json.Unmarshal(entry.Value(), &r); err != nil || r.Name != k {
			s.log.Warn().Str("key", k).Msg("unreadable custom event type ignored")
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return compare(a.Name, b.Name)
	})
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Run follows the bucket until ctx ends: a type added or deleted through any gateway reaches this
// one's catalogue. A watch that breaks is started again.
func (s *Store) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := s.watch(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("custom event types watch; starting again")
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
	return nil
}

func (s *Store) watch(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-w.Updates():
			if !ok {
				return errors.New("watch ended")
			}
			if u == nil {
				continue // the initial values are in
			}
			if _, err := s.Refresh(ctx); err != nil {
				s.log.Warn().Err(err).Msg("read custom event types")
			}
		}
	}
}

// Create adds a custom type, checked against the catalogue as it is now: a valid name not taken
// (built-in or custom), a valid group token (new or existing), a title. Errors: a *fielderr.Error
// naming name, title, group or description; ErrBuiltin or ErrExists for a taken name.
func (s *Store) Create(ctx context.Context, t subjects.EventType) (subjects.EventType, error) {
	switch {
	case !subjects.ValidToken(t.Name):
		return t, &fielderr.Error{Field: "name", Reason: "must be 1 to 64 characters of [a-z0-9_-]"}
	case !subjects.ValidToken(t.Group):
		return t, &fielderr.Error{Field: "group", Reason: "must be 1 to 64 characters of [a-z0-9_-]"}
	case t.Group == subjects.OpsGroup:
		return t, &fielderr.Error{Field: "group", Reason: "is quaycast's own operator events' group"}
	case t.Title == "" || len(t.Title) > MaxTitleBytes || !printable(t.Title):
		return t, &fielderr.Error{Field: "title", Reason: fmt.Sprintf("must be 1 to %d bytes of UTF-8 without control characters", MaxTitleBytes)}
	case len(t.Description) > MaxDescriptionBytes || !printable(t.Description):
		return t, &fielderr.Error{Field: "description", Reason: fmt.Sprintf("must be at most %d bytes of UTF-8 without control characters", MaxDescriptionBytes)}
	}
	cat, err := s.Refresh(ctx)
	if err != nil {
		return t, err
	}
	if bt, ok := subjects.Builtin().Lookup(t.Name); ok {
		return bt, ErrBuiltin
	}
	if _, ok := cat.Lookup(t.Name); ok {
		return t, ErrExists
	}
	if len(cat.Types())-len(subjects.Builtin().Types()) >= MaxCustom {
		return t, &fielderr.Error{Field: "name", Reason: fmt.Sprintf("there are %d custom event types already, the most there may be", MaxCustom)}
	}
	r := record{Name: t.Name, Title: t.Title, Group: t.Group, Description: t.Description, CreatedAt: time.Now().UTC()}
	v, err := json.Marshal(r)
	if err != nil {
		return t, err
	}
	if _, err := s.kv.Create(ctx, t.Name, v); errors.Is(err, jetstream.ErrKeyExists) {
		return t, ErrExists
	} else if err != nil {
		return t, fmt.Errorf("store event type %s: %w", t.Name, err)
	}
	if _, err := s.Refresh(ctx); err != nil {
		return t, err
	}
	t.System = subjects.SystemCustom
	return t, nil
}

// Delete removes a custom type. Whether an endpoint still uses it is the caller's check.
// ErrBuiltin for a built-in type, ErrNotFound for a name that is neither.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, ok := subjects.Builtin().Lookup(name); ok {
		return ErrBuiltin
	}
	if !subjects.ValidToken(name) {
		return ErrNotFound
	}
	if _, err := s.kv.Get(ctx, name); errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("read event type %s: %w", name, err)
	}
	if err := s.kv.Purge(ctx, name); err != nil {
		return fmt.Errorf("delete event type %s: %w", name, err)
	}
	_, err := s.Refresh(ctx)
	return err
}

// printable reports UTF-8 text without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
