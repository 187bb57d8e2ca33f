package consumer_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/subjects"
)

func TestRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	before := time.Now().UTC().Add(-time.Second)

	in := consumer.Endpoint{
		ID:          "ep_chosenbycaller", // the registry gives the id
		URL:         "https://receiver.example/in",
		EventTypes:  []string{"cargo_loaded", "group:gate"},
		Description: "yard system",
		Enabled:     true,
		Headers:     map[string]string{"Authorization": "Bearer t0k"},
		Secret:      consumer.NewSecret("whsec_roundtrip"),
	}
	created, err := e.reg.Create(ctx, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !consumer.ValidID(created.ID) || created.ID == in.ID {
		t.Errorf("Create gave id %q, want a new valid id", created.ID)
	}
	if created.CreatedAt.Before(before) || !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Errorf("CreatedAt %v, UpdatedAt %v: want now, and equal", created.CreatedAt, created.UpdatedAt)
	}
	if created.Revision == 0 {
		t.Error("Revision = 0 after Create")
	}
	if created.StartSeq != 1 {
		t.Errorf("StartSeq = %d on an empty stream, want 1", created.StartSeq)
	}

	got, err := e.reg.Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	assertSameEndpoint(t, "Get after Create", got, created)

	list, err := e.reg.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("List = %d endpoints, want 1", len(list))
	}
	assertSameEndpoint(t, "List after Create", list[0], created)

	updated, err := e.reg.Update(ctx, created.ID, func(ep *consumer.Endpoint) error {
		ep.URL = "https://receiver.example/v2"
		ep.EventTypes = append(ep.EventTypes, "cargo_held")
		ep.Enabled = false
		ep.Secret = consumer.NewSecret("whsec_rotated")
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.Revision <= created.Revision {
		t.Errorf("Revision %d after Update, want more than %d", updated.Revision, created.Revision)
	}
	if !updated.CreatedAt.Equal(created.CreatedAt) || updated.StartSeq != created.StartSeq {
		t.Errorf("Update changed CreatedAt (%v -> %v) or StartSeq (%d -> %d)",
			created.CreatedAt, updated.CreatedAt, created.StartSeq, updated.StartSeq)
	}
	if updated.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v -> %v", created.UpdatedAt, updated.UpdatedAt)
	}
	got, err = e.reg.Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get after Update: %v", err)
	}
	assertSameEndpoint(t, "Get after Update", got, updated)
	if got.URL != "https://receiver.example/v2" || got.Enabled || got.Secret.Reveal() != "whsec_rotated" ||
		!slices.Equal(got.EventTypes, []string{"cargo_loaded", "group:gate", "cargo_held"}) {
		t.Errorf("Get after Update = %+v, want the change applied", got)
	}

	if err := e.reg.Delete(ctx, created.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := e.reg.Get(ctx, created.ID); !errors.Is(err, consumer.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := e.reg.Delete(ctx, created.ID); !errors.Is(err, consumer.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	list, err = e.reg.List(ctx)
	if err != nil {
		t.Fatalf("List after Delete: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("List after Delete = %d endpoints, want 0", len(list))
	}
}

// assertSameEndpoint compares every field; times by instant, as they went through JSON.
func assertSameEndpoint(t *testing.T, what string, got, want *consumer.Endpoint) {
	t.Helper()
	same := got.ID == want.ID && got.URL == want.URL && slices.Equal(got.EventTypes, want.EventTypes) &&
		got.Description == want.Description && got.Enabled == want.Enabled && maps.Equal(got.Headers, want.Headers) &&
		got.Secret.Reveal() == want.Secret.Reveal() && got.CreatedAt.Equal(want.CreatedAt) &&
		got.UpdatedAt.Equal(want.UpdatedAt) && got.StartSeq == want.StartSeq && got.Revision == want.Revision
	if !same {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestRegistryUnknownID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createEndpoint(t, "*") // a registry that is not empty
	for _, id := range []string{consumer.NewID(), "", "ep_", "ep_../x", "quaycast_endpoints", "ep_a.b", "ep_>"} {
		if _, err := e.reg.Get(t.Context(), id); !errors.Is(err, consumer.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
		if err := e.reg.Delete(t.Context(), id); !errors.Is(err, consumer.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", id, err)
		}
		called := false
		_, err := e.reg.Update(t.Context(), id, func(*consumer.Endpoint) error { called = true; return nil })
		if !errors.Is(err, consumer.ErrNotFound) || called {
			t.Errorf("Update(%q) = %v (change called: %v), want ErrNotFound without calling change", id, err, called)
		}
	}
	if list, err := e.reg.List(t.Context()); err != nil || len(list) != 1 {
		t.Errorf("List = %d endpoints, %v; want the 1 created", len(list), err)
	}
}

func TestRegistryCreateInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.reg.Create(t.Context(), consumer.Endpoint{URL: "https://receiver.example/", EventTypes: []string{"group:nope"}})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "event_types[0]" {
		t.Fatalf("Create with an unknown group = %v, want a field error for event_types[0]", err)
	}
	if list, err := e.reg.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("List = %d endpoints, %v; want nothing stored", len(list), err)
	}
}

func TestRegistryUpdateInvalidStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")

	_, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error {
		ep.Description = "changed"
		ep.URL = "ftp://receiver.example/"
		return nil
	})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "url" {
		t.Fatalf("Update to an ftp URL = %v, want a field error for url", err)
	}

	refused := errors.New("refused by the caller")
	_, err = e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error {
		ep.Description = "changed"
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Update whose change fails = %v, want the change's error", err)
	}

	got, err := e.reg.Get(t.Context(), ep.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	assertSameEndpoint(t, "after refused updates", got, ep)
}

// Concurrent updates from several writers are all applied: Update re-reads when another writer
// got in between.
func TestRegistryConcurrentUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")

	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := e.reg.Update(t.Context(), ep.ID, func(ep *consumer.Endpoint) error {
				if ep.Headers == nil {
					ep.Headers = make(map[string]string)
				}
				ep.Headers["X-Writer-"+strconv.Itoa(i)] = "1"
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	got, err := e.reg.Get(t.Context(), ep.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got.Headers) != writers {
		t.Errorf("headers after %d concurrent updates = %v, want one from each writer", writers, got.Headers)
	}
}

// Create pins the endpoint to the events published after it: StartSeq is the stream's last
// sequence + 1 at creation.
func TestRegistryCreatePinsStartSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 3 {
		e.publishEvent(t, event{id: "pre-" + strconv.Itoa(i), typ: "cargo_loaded", entity: "MSCU1234567"})
	}
	first := e.createEndpoint(t, "cargo_loaded")
	if first.StartSeq != 4 {
		t.Errorf("StartSeq after 3 events = %d, want 4", first.StartSeq)
	}
	last := e.publishEvent(t, event{id: "mid", typ: "cargo_gated_in", entity: "MSCU1234567"})
	second := e.createEndpoint(t, "*")
	if second.StartSeq != last+1 {
		t.Errorf("StartSeq after seq %d = %d, want %d", last, second.StartSeq, last+1)
	}
	got, err := e.reg.Get(t.Context(), first.ID)
	if err != nil || got.StartSeq != 4 {
		t.Errorf("stored StartSeq = %v (err %v), want 4", got, err)
	}
}

// Setup can run at every start, from every gateway: a second run changes nothing that exists.
func TestSetupIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the first Setup
	seq := e.publishEvent(t, event{id: "kept", typ: "cargo_loaded", entity: "MSCU1234567"})
	ep := e.createEndpoint(t, "*")

	o := streamOptions
	o.MaxConsumers = 7
	const limit = 7 + consumer.WatcherRoom // the gateways' watchers have room beside the endpoints
	for i := range 2 {
		stream, kv, err := consumer.Setup(t.Context(), e.js, o)
		if err != nil {
			t.Fatalf("Setup #%d: %v", i+2, err)
		}
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		if info.Config.Name != consumer.EventsStream || info.Config.MaxConsumers != limit {
			t.Errorf("stream %s MaxConsumers = %d, want %s with %d", info.Config.Name, info.Config.MaxConsumers, consumer.EventsStream, limit)
		}
		if !slices.Contains(info.Config.Subjects, subjects.StreamSubjects) || info.Config.Discard != jetstream.DiscardNew {
			t.Errorf("stream subjects %v, discard %v: want %s captured and DiscardNew", info.Config.Subjects, info.Config.Discard, subjects.StreamSubjects)
		}
		if info.State.Msgs != 1 || info.State.LastSeq != seq {
			t.Errorf("stream holds %d msgs up to seq %d after Setup, want the 1 published (seq %d)", info.State.Msgs, info.State.LastSeq, seq)
		}
		got, err := newRegistry(t, kv, stream, consumer.RegistryOptions{}).Get(t.Context(), ep.ID)
		if err != nil {
			t.Fatalf("endpoint after Setup: %v", err)
		}
		assertSameEndpoint(t, "endpoint after Setup", got, ep)
		if _, err := e.js.Stream(t.Context(), consumer.InvalidStream); err != nil {
			t.Errorf("stream %s: %v", consumer.InvalidStream, err)
		}
	}

	// The limit is the one given, with the watchers' room: one more consumer is refused.
	for i := range limit + 1 {
		_, err := e.stream.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "c" + strconv.Itoa(i)})
		if i < limit && err != nil {
			t.Fatalf("consumer %d of %d: %v", i+1, limit, err)
		}
		if i == limit && err == nil {
			t.Fatalf("consumer %d created, want it refused by MaxConsumers %d", i+1, limit)
		}
	}
}

// The registry keeps the secret (the signer needs it back), yet nothing it returns prints it.
func TestRegistrySecretStoredNotPrinted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const value = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw"
	ep, err := e.reg.Create(t.Context(), consumer.Endpoint{
		URL: "https://receiver.example/", EventTypes: []string{"*"}, Secret: consumer.NewSecret(value),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	entry, err := e.kv.Get(t.Context(), ep.ID)
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	var stored struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(entry.Value(), &stored); err != nil || stored.Secret != value {
		t.Fatalf("stored secret = %q (err %v), want the value in the clear", stored.Secret, err)
	}

	got, err := e.reg.Get(t.Context(), ep.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	list, err := e.reg.List(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d, %v", len(list), err)
	}
	for what, p := range map[string]*consumer.Endpoint{"Create": ep, "Get": got, "List": list[0]} {
		if p.Secret.Reveal() != value {
			t.Errorf("%s: Reveal() = %q, want the stored secret", what, p.Secret.Reveal())
		}
		js, _ := json.Marshal(p)
		for _, out := range []string{fmt.Sprintf("%v", *p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", *p), string(js)} {
			if strings.Contains(out, value) {
				t.Errorf("%s: printed endpoint shows the secret: %s", what, out)
			}
		}
	}
}

// List returns the endpoints oldest first, as documented, also after one of them changed.
func TestRegistryListOldestFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for range 3 {
		want = append(want, e.createEndpoint(t, "*").ID)
	}
	if _, err := e.reg.Update(t.Context(), want[0], func(ep *consumer.Endpoint) error {
		ep.Description = "edited after the others were created"
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	list, err := e.reg.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, ep := range list {
		got = append(got, ep.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List order = %v, want oldest (by creation) first %v", got, want)
	}
}

// With a secret key, the bucket holds only ciphertext of the secrets, current and previous, and
// the registry still gives them back; without the key, or with another, they do not open.
func TestRegistrySealsSecretsAtRest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	key := []byte("0123456789abcdef0123456789abcdef")
	reg := newRegistry(t, e.kv, e.stream, consumer.RegistryOptions{Key: mustKey(t, key)})
	const first, second = "whsec_Zmlyc3Qtc2VjcmV0LXZhbHVl", "whsec_c2Vjb25kLXNlY3JldC12YWx1ZQ"

	ep, err := reg.Create(ctx, consumer.Endpoint{URL: "https://receiver.example/", EventTypes: []string{"*"}, Secret: consumer.NewSecret(first)})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	now := time.Now()
	if _, err := reg.Update(ctx, ep.ID, func(ep *consumer.Endpoint) error {
		ep.Rotate(consumer.NewSecret(second), time.Hour, now)
		return nil
	}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	entry, err := e.kv.Get(ctx, ep.ID)
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	for _, s := range []string{first, second} {
		if strings.Contains(string(entry.Value()), s) {
			t.Errorf("bucket holds a secret in the clear: %s", entry.Value())
		}
	}

	got, err := reg.Get(ctx, ep.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Secret.Reveal() != second || len(got.PreviousSecrets) != 1 || got.PreviousSecrets[0].Secret.Reveal() != first ||
		!got.PreviousSecrets[0].Until.Equal(now.Add(time.Hour)) {
		t.Errorf("after rotation: secret %q, previous %+v; want %q, and %q until %v", got.Secret.Reveal(), got.PreviousSecrets, second, first, now.Add(time.Hour))
	}

	if got, err := e.reg.Get(ctx, ep.ID); err != nil || !errors.Is(got.SecretErr, consumer.ErrSealed) { // e.reg has no key
		t.Errorf("Get without a key = %v, SecretErr %v; want the endpoint with SecretErr ErrSealed", err, got.SecretErr)
	}
	other := newRegistry(t, e.kv, e.stream, consumer.RegistryOptions{Key: mustKey(t, []byte("another key of exactly 32 bytes!"))})
	if got, err := other.Get(ctx, ep.ID); err != nil || got.SecretErr == nil || !got.Secret.IsZero() {
		t.Errorf("Get with another key = %v, secret %q, SecretErr %v; want the endpoint with no secret and a SecretErr", err, got.Secret.Reveal(), got.SecretErr)
	}
	if _, err := seal.New(key[:16]); err == nil {
		t.Error("seal.New with a 16-byte key: want an error")
	}

	// A sealed secret copied into another endpoint's record does not open there.
	victim, err := reg.Create(ctx, consumer.Endpoint{URL: "https://receiver.example/", EventTypes: []string{"*"}, Secret: consumer.NewSecret("whsec_victim")})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	var src, dst map[string]any
	vEntry, err := e.kv.Get(ctx, victim.ID)
	if err != nil || json.Unmarshal(entry.Value(), &src) != nil || json.Unmarshal(vEntry.Value(), &dst) != nil {
		t.Fatalf("read records: %v", err)
	}
	dst["secret"] = src["secret"]
	b, _ := json.Marshal(dst)
	if _, err := e.kv.Put(ctx, victim.ID, b); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	if got, err := reg.Get(ctx, victim.ID); err != nil || got.SecretErr == nil || !got.Secret.IsZero() {
		t.Errorf("a secret sealed for %s read for %s: %v, secret %q, SecretErr %v", ep.ID, victim.ID, err, got.Secret.Reveal(), got.SecretErr)
	}
}

// A secret stored before a key was configured is still read, and is sealed at the next write.
func TestRegistrySealsClearSecretOnNextWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const value = "whsec_c3RvcmVkLWluLXRoZS1jbGVhcg"
	ep, err := e.reg.Create(ctx, consumer.Endpoint{URL: "https://receiver.example/", EventTypes: []string{"*"}, Secret: consumer.NewSecret(value)})
	if err != nil {
		t.Fatalf("Create without a key: %v", err)
	}
	reg := newRegistry(t, e.kv, e.stream, consumer.RegistryOptions{Key: mustKey(t, []byte("0123456789abcdef0123456789abcdef"))})
	got, err := reg.Get(ctx, ep.ID)
	if err != nil || got.Secret.Reveal() != value {
		t.Fatalf("Get with a key of a clear secret = %v, %v; want it read as stored", got, err)
	}
	if _, err := reg.Update(ctx, ep.ID, func(ep *consumer.Endpoint) error { ep.Description = "touched"; return nil }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	entry, err := e.kv.Get(ctx, ep.ID)
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	if strings.Contains(string(entry.Value()), value) {
		t.Errorf("secret still in the clear after a write with a key: %s", entry.Value())
	}
	if got, err := reg.Get(ctx, ep.ID); err != nil || got.Secret.Reveal() != value {
		t.Errorf("Get after sealing = %v, %v; want the same secret", got, err)
	}
}

func mustKey(t *testing.T, raw []byte) *seal.Key {
	t.Helper()
	k, err := seal.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
