package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/payload"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/subjects"
)

// ErrNotFound is returned for an endpoint id the registry does not hold.
var ErrNotFound = errors.New("endpoint not found")

// Registry stores endpoint definitions in a JetStream KV bucket, keyed by endpoint id. Every
// gateway watching the bucket sees every change, whichever gateway made it.
type Registry struct {
	kv     jetstream.KeyValue
	events jetstream.Stream
	key    *seal.Key
	cat    Catalogue
}

// RegistryOptions: the zero value stores secrets in the clear.
type RegistryOptions struct {
	// Key encrypts endpoint secrets at rest (AES-256-GCM); nil stores them in the clear.
	Key *seal.Key
	// Catalogue is the live event catalogue selectors are checked against; nil: the built-in types.
	Catalogue Catalogue
}

// NewRegistry returns a registry over the bucket; events is the events stream, read to pin a new
// endpoint's start sequence.
func NewRegistry(kv jetstream.KeyValue, events jetstream.Stream, o RegistryOptions) (*Registry, error) {
	if o.Catalogue == nil {
		o.Catalogue = builtinCatalogue{}
	}
	return &Registry{kv: kv, events: events, key: o.Key, cat: o.Catalogue}, nil
}

// record is the stored form: unlike Endpoint, it holds the secret in the clear.
type record struct {
	ID          string            `json:"id"`
	URL         string            `json:"url"`
	EventTypes  []string          `json:"event_types"`
	Description string            `json:"description,omitempty"`
	Enabled     bool              `json:"enabled"`
	Disabled    string            `json:"disabled_reason,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Signing     signingRecord     `json:"signing,omitzero"`
	Layout      layoutRecord      `json:"layout,omitzero"`
	Body        bodyRecord        `json:"body,omitzero"`
	ReplyFormat string            `json:"reply_format,omitempty"`
	Condition   string            `json:"condition,omitempty"`
	Tenant      string            `json:"tenant,omitempty"`
	TenantEvts  bool              `json:"tenant_events,omitempty"`
	Secret      string            `json:"secret"` // sealed when a secret key is configured
	Previous    []previousRecord  `json:"previous_secrets,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	StartSeq    uint64            `json:"start_seq"`
}

type signingRecord struct {
	Profile    string `json:"profile,omitempty"`
	HeaderName string `json:"header_name,omitempty"`
	HexUpper   bool   `json:"hex_upper,omitempty"`
}

type layoutRecord struct {
	Preset          string `json:"preset,omitempty"`
	EventHeader     string `json:"event_header,omitempty"`
	EventName       string `json:"event_name,omitempty"`
	DeliveryHeader  string `json:"delivery_header,omitempty"`
	DeliveryID      string `json:"delivery_id,omitempty"`
	TimestampHeader string `json:"timestamp_header,omitempty"`
	TimestampFormat string `json:"timestamp_format,omitempty"`
	OmitQuaycast    bool   `json:"omit_quaycast,omitempty"`
}

type bodyRecord struct {
	TypeField string   `json:"type_field,omitempty"`
	Fields    []string `json:"fields,omitempty"`
}

type previousRecord struct {
	Secret string    `json:"secret"`
	Until  time.Time `json:"until"`
}

func (r *Registry) toRecord(e *Endpoint) record {
	rec := record{
		ID: e.ID, URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Enabled: e.Enabled,
		Disabled: e.DisabledReason, Headers: e.Headers, Signing: signingRecord(e.Signing), Layout: layoutRecord(e.Layout), Body: bodyRecord(e.Body), ReplyFormat: e.ReplyFormat, Condition: e.Condition,
		Tenant: e.Tenant, TenantEvts: e.TenantEvents,
		Secret: r.key.Seal(e.Secret.Reveal(), e.ID), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, StartSeq: e.StartSeq,
	}
	for _, p := range e.PreviousSecrets {
		rec.Previous = append(rec.Previous, previousRecord{Secret: r.key.Seal(p.Secret.Reveal(), e.ID), Until: p.Until})
	}
	return rec
}

func (r *Registry) decode(entry jetstream.KeyValueEntry) (*Endpoint, error) {
	var rec record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return nil, fmt.Errorf("decode endpoint %s: %w", entry.Key(), err)
	}
	e := &Endpoint{
		ID: rec.ID, URL: rec.URL, EventTypes: rec.EventTypes, Description: rec.Description, Enabled: rec.Enabled,
		DisabledReason: rec.Disabled, Headers: rec.Headers, Signing: Signing(rec.Signing), Layout: Layout(rec.Layout), Body: payload.Options(rec.Body), ReplyFormat: rec.ReplyFormat, Condition: rec.Condition, CreatedAt: rec.CreatedAt,
		Tenant: rec.Tenant, TenantEvents: rec.TenantEvts,
		UpdatedAt: rec.UpdatedAt, StartSeq: rec.StartSeq, Revision: entry.Revision(),
	}
	// A secret that does not open (no key, another key) leaves the endpoint readable — listed,
	// editable, deletable — but not deliverable: SecretErr says why.
	secret, err := r.key.Open(rec.Secret, rec.ID)
	if err != nil {
		e.SecretErr = err
		return e, nil
	}
	e.Secret = NewSecret(secret)
	for _, p := range rec.Previous {
		prev, err := r.key.Open(p.Secret, rec.ID)
		if err != nil {
			e.SecretErr = fmt.Errorf("previous secret: %w", err)
			return e, nil
		}
		e.PreviousSecrets = append(e.PreviousSecrets, PreviousSecret{Secret: NewSecret(prev), Until: p.Until})
	}
	return e, nil
}

// Create validates e, gives it an id, timestamps and a start sequence, and stores it. The
// caller sets the secret.
func (r *Registry) Create(ctx context.Context, e Endpoint) (*Endpoint, error) {
	if err := r.validate(ctx, &e); err != nil {
		return nil, err
	}
	info, err := r.events.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read events stream: %w", err)
	}
	now := time.Now().UTC()
	e.ID, e.CreatedAt, e.UpdatedAt = NewID(), now, now
	e.StartSeq = info.State.LastSeq + 1
	b, err := json.Marshal(r.toRecord(&e))
	if err != nil {
		return nil, fmt.Errorf("encode endpoint: %w", err)
	}
	rev, err := r.kv.Create(ctx, e.ID, b)
	if err != nil {
		return nil, fmt.Errorf("store endpoint %s: %w", e.ID, err)
	}
	e.Revision = rev
	return &e, nil
}

// Get returns one endpoint, or ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (*Endpoint, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	entry, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return r.decode(entry)
}

// List returns every endpoint, oldest first.
func (r *Registry) List(ctx context.Context) ([]*Endpoint, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*Endpoint
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list endpoints: %w", ctx.Err())
		case entry := <-w.Updates():
			if entry == nil { // end of the current values, in order of last change
				slices.SortStableFunc(out, func(a, b *Endpoint) int { return a.CreatedAt.Compare(b.CreatedAt) })
				return out, nil
			}
			e, err := r.decode(entry)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
}

// Update applies change to the stored endpoint and stores the result if it validates. It retries
// when another writer got in between, so change may run more than once.
func (r *Registry) Update(ctx context.Context, id string, change func(*Endpoint) error) (*Endpoint, error) {
	for {
		e, err := r.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if e.SecretErr != nil {
			return nil, fmt.Errorf("endpoint %s: %w", id, e.SecretErr)
		}
		if err := change(e); err != nil {
			return nil, err
		}
		if err := r.validate(ctx, e); err != nil {
			return nil, err
		}
		e.UpdatedAt = time.Now().UTC()
		b, err := json.Marshal(r.toRecord(e))
		if err != nil {
			return nil, fmt.Errorf("encode endpoint: %w", err)
		}
		rev, err := r.kv.Update(ctx, id, b, e.Revision)
		if errors.Is(err, jetstream.ErrKeyExists) { // someone else wrote first: read again
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store endpoint %s: %w", id, err)
		}
		e.Revision = rev
		return e, nil
	}
}

// Delete removes an endpoint; ErrNotFound if there is none.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	if err := r.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	return nil
}

// Change is one registry event seen by watch: Endpoint is nil for a deletion, Err is set for a
// definition that cannot be read.
type Change struct {
	ID       string
	Endpoint *Endpoint
	Err      error
	Revision uint64 // the bucket's revision of this change; 0 for the zero Change
}

// watch streams the current endpoints, then a zero Change marking the end of them, then every
// change as it happens, until ctx ends.
func (r *Registry) watch(ctx context.Context) (<-chan Change, error) {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch endpoints: %w", err)
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var entry jetstream.KeyValueEntry
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				entry = e
			}
			var c Change
			switch {
			case entry == nil: // the zero Change: current values done
			case entry.Operation() != jetstream.KeyValuePut:
				c.ID, c.Revision = entry.Key(), entry.Revision()
			default:
				c.ID, c.Revision = entry.Key(), entry.Revision()
				c.Endpoint, c.Err = r.decode(entry)
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ErrSealed is returned when a stored secret is encrypted and no key is configured.
var ErrSealed = seal.ErrSealed

// SealAll encrypts, in place, every secret stored in the clear: records written before a key was
// configured, or by a release that stored them so. Each sealed record replaces its key's whole
// history (a roll-up), so the clear revisions can no longer be read from the bucket. It is
// idempotent and safe beside other gateways doing the same (a record changed meanwhile is read
// again). Without a key it does nothing. It returns how many endpoints it sealed.
func (r *Registry) SealAll(ctx context.Context, js jetstream.JetStream) (int, error) {
	if r.key == nil {
		return 0, nil
	}
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("list endpoints: %w", err)
	}
	n := 0
	for id := range keys.Keys() {
		for {
			entry, err := r.kv.Get(ctx, id)
			if isNotFound(err) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("read endpoint %s: %w", id, err)
			}
			var rec record
			if json.Unmarshal(entry.Value(), &rec) != nil || !rec.hasClearSecret() {
				break // an unreadable record is left as it is, for an operator to repair
			}
			if !seal.IsSealed(rec.Secret) {
				rec.Secret = r.key.Seal(rec.Secret, rec.ID)
			}
			for i := range rec.Previous {
				if !seal.IsSealed(rec.Previous[i].Secret) {
					rec.Previous[i].Secret = r.key.Seal(rec.Previous[i].Secret, rec.ID)
				}
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return n, fmt.Errorf("encode endpoint %s: %w", id, err)
			}
			m := nats.NewMsg("$KV." + r.kv.Bucket() + "." + id)
			m.Data = b
			m.Header.Set("Nats-Rollup", "sub")
			_, err = js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(entry.Revision()))
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
				continue // written meanwhile: look again
			}
			if err != nil {
				return n, fmt.Errorf("seal endpoint %s: %w", id, err)
			}
			n++
			break
		}
	}
	return n, nil
}

func (rec *record) hasClearSecret() bool {
	if rec.Secret != "" && !seal.IsSealed(rec.Secret) {
		return true
	}
	for _, p := range rec.Previous {
		if p.Secret != "" && !seal.IsSealed(p.Secret) {
			return true
		}
	}
	return false
}

// ErrWrongKey is returned by CheckKey when the configured key opens none of the sealed secrets.
var ErrWrongKey = errors.New("does not open the endpoint secrets stored in NATS: every gateway of one NATS must use the key that sealed them")

// CheckKey fails with ErrWrongKey when the registry holds sealed secrets and the key opens none
// of them (a record that does not open beside others that do is a single bad record, shown on
// its endpoint, not a wrong key).
func (r *Registry) CheckKey(ctx context.Context) error {
	if r.key == nil {
		return nil // without a key sealed secrets are shown with secret_error
	}
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list endpoints: %w", err)
	}
	sealed := 0
	for id := range keys.Keys() {
		entry, err := r.kv.Get(ctx, id)
		if err != nil {
			continue
		}
		var rec record
		if json.Unmarshal(entry.Value(), &rec) != nil || !seal.IsSealed(rec.Secret) {
			continue
		}
		if _, err := r.key.Open(rec.Secret, rec.ID); err == nil {
			return nil
		}
		sealed++
	}
	if sealed > 0 {
		return ErrWrongKey
	}
	return nil
}

// validate checks e against the live catalogue, read again if e names a type it does not know.
func (r *Registry) validate(ctx context.Context, e *Endpoint) error {
	_, err := WithCatalogue(ctx, r.cat, func(c *subjects.Catalogue) (struct{}, error) { return struct{}{}, e.ValidateWith(c) })
	return err
}
