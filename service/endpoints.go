package service

import (
	"context"
	"errors"
	"github.com/quaycast/quaycast/cluster"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/payload"
	"github.com/quaycast/quaycast/subjects"
)

// EndpointInput is an endpoint's definition as an operator gives it. On create, nil fields take
// their defaults; on patch, nil fields are left as they are. Field errors name the JSON fields.
type EndpointInput struct {
	URL         *string            `json:"url"`
	EventTypes  *[]string          `json:"event_types"`
	Description *string            `json:"description"`
	Enabled     *bool              `json:"enabled"`
	Headers     *map[string]string `json:"headers"`
	Signing     *SigningInput      `json:"signing"`
	Layout      *LayoutInput       `json:"layout"`
	Body        *BodyInput         `json:"body"`
	ReplyFormat *string            `json:"reply_format"`
	Condition   *string            `json:"condition"` // CEL over the envelope; "" removes it
	Secret      *string            `json:"secret"`    // create only: a receiver's existing key
	// Tenant, create only, makes it a tenant's endpoint (a tenant's token gives its own);
	// TenantEvents lets an operator's endpoint receive events that name tenants too.
	Tenant       *string `json:"tenant"`
	TenantEvents *bool   `json:"tenant_events"`
}

// SigningInput is how deliveries to an endpoint are signed.
type SigningInput struct {
	Profile    string `json:"profile"`
	HeaderName string `json:"header_name"`
	HexCase    string `json:"hex_case"` // hex: "lower" (default) or "upper"
}

// LayoutInput chooses the headers a receiver built for another vendor's webhooks reads: a preset,
// and any of its fields changed. A named preset brings its signing too (octopi: hex in
// X-Octopi-Signature; github: hub; standard: Standard Webhooks) unless the same request gives
// signing.
type LayoutInput struct {
	Preset          string  `json:"preset"`           // standard (default), github or octopi
	EventHeader     *string `json:"event_header"`     // "" sends none
	EventName       string  `json:"event_name"`       // type or title
	DeliveryHeader  *string `json:"delivery_header"`  // "" sends none
	DeliveryID      string  `json:"delivery_id"`      // event_id or uuid
	TimestampHeader *string `json:"timestamp_header"` // "" sends none
	TimestampFormat string  `json:"timestamp_format"` // unix, unix_ms or rfc3339
	QuaycastHeaders *bool   `json:"quaycast_headers"` // also send quaycast's webhook-*/Quaycast-* headers
}

// layout resolves the input over its preset; signing is the preset's.
func (in *LayoutInput) layout() (consumer.Layout, consumer.Signing, error) {
	name := in.Preset
	if name == "" {
		name = consumer.LayoutStandard
	}
	p, ok := consumer.Presets()[name]
	if !ok {
		return consumer.Layout{}, consumer.Signing{}, &fielderr.Error{Field: "layout.preset", Reason: "must be standard, github or octopi"}
	}
	l := p.Layout
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.EventHeader, in.EventHeader)
	set(&l.DeliveryHeader, in.DeliveryHeader)
	set(&l.TimestampHeader, in.TimestampHeader)
	for _, f := range [...]struct {
		dst *string
		v   string
	}{{&l.EventName, in.EventName}, {&l.DeliveryID, in.DeliveryID}, {&l.TimestampFormat, in.TimestampFormat}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if in.QuaycastHeaders != nil {
		l.OmitQuaycast = !*in.QuaycastHeaders
	}
	return l, p.Signing, nil
}

// BodyInput changes what the endpoint gets as the body: the event type mirrored into a top-level
// field, and/or only the fields the JSON Pointers select. Either means the receiver no longer gets
// the publisher's exact bytes (the signature covers what is sent). Empty: the event as published.
type BodyInput struct {
	TypeField string   `json:"type_field"`
	Fields    []string `json:"fields"`
}

// Endpoint is an endpoint as an operator sees it.
type Endpoint struct {
	*consumer.Endpoint
	// TargetError says why the URL would be refused if it were saved now (saved before a check
	// covered its form): deliveries to it are refused at connection time.
	TargetError string
	Secret      string   // only from CreateEndpoint and RotateSecret
	Warnings    []string // only from CreateEndpoint and PatchEndpoint: e.g. a host that does not resolve
}

// EndpointDetail is one endpoint read alone, with its delivery on this gateway.
type EndpointDetail struct {
	Endpoint
	State       string          // consumer.StateDelivering, StateDegraded or StateStopped; StateElsewhere
	Owner       *cluster.Member // the gateway delivering to it, when clustered
	Stuck       consumer.Stuck
	Breaker     BreakerStatus
	DeadLetters uint64
	Conditions  consumer.ConditionStats // what its condition passed over on this gateway
}

// RotateInput is a secret rotation: a new secret — generated, or Secret — with the old one still
// signing beside it for Grace ("24h" when empty, "0s" stops it at once).
type RotateInput struct {
	Secret *string `json:"secret"`
	Grace  string  `json:"grace"`
}

// CreateEndpoint checks and stores a new endpoint, enabled unless the input says otherwise, and
// returns it with its secret — the only answer that shows it.
func (s *Service) CreateEndpoint(ctx context.Context, c Caller, in EndpointInput) (*Endpoint, error) {
	if err := s.Check(c, OpCreateEndpoint); err != nil {
		return nil, err
	}
	ep := consumer.Endpoint{Enabled: true}
	if err := in.apply(&ep); err != nil {
		return nil, err
	}
	if err := s.tenantOf(ctx, c, in.Tenant, &ep); err != nil {
		return nil, err
	}
	secret, err := newSecret(ep.Signing, in.Secret)
	if err != nil {
		return nil, err
	}
	ep.Secret = consumer.NewSecret(secret)
	if err := s.validate(ctx, &ep); err != nil { // before CheckURL, which may ask DNS
		return nil, err
	}
	warnings, err := s.d.Rules.CheckURL(ctx, ep.URL)
	if err != nil {
		return nil, err
	}
	created, err := s.d.Registry.Create(ctx, ep)
	if err != nil {
		return nil, err
	}
	// Not waiting for the gateway to apply it: its consumer starts at StartSeq, the stream's next
	// sequence when the record was written, so every event published after this answer is kept
	// for it however long the consumer's create takes (the server makes them one at a time).
	s.changed(EndpointCreated, created)
	v := s.endpoint(created)
	v.Secret, v.Warnings = secret, warnings
	return &v, nil
}

// Endpoints lists every endpoint, oldest first.
func (s *Service) Endpoints(ctx context.Context, c Caller) ([]Endpoint, error) {
	if err := s.Check(c, OpListEndpoints); err != nil {
		return nil, err
	}
	eps, err := s.d.Registry.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(eps))
	for _, e := range eps {
		if c.sees(e.Tenant) {
			out = append(out, s.endpoint(e))
		}
	}
	return out, nil
}

// Endpoint reads one endpoint with its delivery state, breaker and dead-letter count.
func (s *Service) Endpoint(ctx context.Context, c Caller, id string) (*EndpointDetail, error) {
	ep, err := s.endpointFor(ctx, c, OpGetEndpoint, id)
	if err != nil {
		return nil, err
	}
	d := EndpointDetail{Endpoint: s.endpoint(ep), State: s.d.States.State(ep.ID), Stuck: s.d.States.Stuck(ep.ID), Conditions: s.d.States.Conditions(ep.ID)}
	d.Owner, d.State = s.owner(ep.ID, d.State)
	d.Breaker, _ = s.d.Sender.Breaker(ep.ID)
	if d.DeadLetters, err = s.d.DeadLetters.Count(ctx, ep.ID); err != nil {
		return nil, err
	}
	return &d, nil
}

// PatchEndpoint changes the fields in is given. A new URL is checked, and so is the URL of an
// endpoint being enabled: it may have been saved before a check covered its form. The secret
// changes only by RotateSecret.
func (s *Service) PatchEndpoint(ctx context.Context, c Caller, id string, in EndpointInput) (*Endpoint, error) {
	cur, err := s.endpointFor(ctx, c, OpPatchEndpoint, id)
	if err != nil {
		return nil, err
	}
	if in.Secret != nil {
		return nil, &fielderr.Error{Field: "secret", Reason: "cannot be changed here; rotate the secret instead"}
	}
	if in.Tenant != nil && *in.Tenant != cur.Tenant {
		return nil, &fielderr.Error{Field: "tenant", Reason: "cannot be changed: create an endpoint for the other tenant"}
	}
	enabling := in.Enabled != nil && *in.Enabled
	checked := in.URL
	if checked == nil && enabling {
		checked = &cur.URL
	}
	var warnings []string
	if checked != nil {
		var err error
		if warnings, err = s.d.Rules.CheckURL(ctx, *checked); err != nil {
			return nil, enablingURL(err, in.URL == nil)
		}
	}
	ep, err := s.d.Registry.Update(ctx, id, func(e *consumer.Endpoint) error {
		if e.Tenant != cur.Tenant { // deleted and its id taken meanwhile: never
			return consumer.ErrNotFound
		}
		signing := e.Signing
		if err := in.apply(e); err != nil {
			return err
		}
		if err := s.validate(ctx, e); err != nil {
			return err
		}
		if enabling && e.URL != *checked { // changed meanwhile: check what can be without DNS
			if err := s.d.Rules.CheckStatic(e.URL); err != nil {
				return enablingURL(err, true)
			}
		}
		if e.Signing != signing { // the secret must suit the new profile
			if err := checkSecret(e.Signing, e.Secret.Reveal()); err != nil {
				return &fielderr.Error{Field: "signing.profile", Reason: "the endpoint's secret does not suit this profile: rotate it with a new secret in the same request's profile first"}
			}
		}
		return nil
	})
	if err != nil {
		return nil, notFound(err, "endpoint", consumer.ErrNotFound)
	}
	s.changed(EndpointUpdated, ep)
	s.applied(ctx, ep)
	v := s.endpoint(ep)
	v.Warnings = warnings
	return &v, nil
}

// DeleteEndpoint removes an endpoint; its consumer stops on every gateway watching the registry.
func (s *Service) DeleteEndpoint(ctx context.Context, c Caller, id string) error {
	ep, err := s.endpointFor(ctx, c, OpDeleteEndpoint, id)
	if err != nil {
		return err
	}
	if err := s.d.Registry.Delete(ctx, id); err != nil {
		return notFound(err, "endpoint", consumer.ErrNotFound)
	}
	s.changed(EndpointDeleted, ep)
	s.d.Sender.Forget(id)
	return nil
}

// RotateSecret gives an endpoint a new secret and keeps the old one signing beside it for the
// grace period. Standard Webhooks receivers accept either signature meanwhile; hub and hex carry
// one signature, made with the new secret.
func (s *Service) RotateSecret(ctx context.Context, c Caller, id string, in RotateInput) (*Endpoint, error) {
	if _, err := s.endpointFor(ctx, c, OpRotateSecret, id); err != nil {
		return nil, err
	}
	grace := 24 * time.Hour
	if in.Grace != "" {
		d, err := time.ParseDuration(in.Grace)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			return nil, &fielderr.Error{Field: "grace", Reason: "must be a duration from 0s to 720h, e.g. 24h"}
		}
		grace = d
	}
	var secret string
	ep, err := s.d.Registry.Update(ctx, id, func(e *consumer.Endpoint) error {
		sec, err := newSecret(e.Signing, in.Secret)
		if err != nil {
			return err
		}
		secret = sec
		e.Rotate(consumer.NewSecret(sec), grace, time.Now().UTC())
		return nil
	})
	if err != nil {
		return nil, notFound(err, "endpoint", consumer.ErrNotFound)
	}
	s.changed(EndpointUpdated, ep)
	s.applied(ctx, ep)
	s.d.Log.Info().Str("endpoint_id", ep.ID).Dur("grace", grace).Msg("secret rotated")
	v := s.endpoint(ep)
	v.Secret = secret
	return &v, nil
}

// appliedWait bounds how long a write waits for this gateway's delivery side to take it in.
const appliedWait = 5 * time.Second

// applied waits until this gateway delivers with ep's stored revision, so that an event
// published after the answer goes out with the change (a secret rotated out with no grace no
// longer signs). The write is stored either way: a slow watch only delays it, and is logged.
func (s *Service) applied(ctx context.Context, ep *consumer.Endpoint) {
	ctx, cancel := context.WithTimeout(ctx, appliedWait)
	defer cancel()
	if err := s.d.States.WaitApplied(ctx, ep.Revision); err != nil {
		s.d.Log.Warn().Err(err).Str("endpoint_id", ep.ID).Uint64("revision", ep.Revision).Msg("change stored, not yet applied by this gateway's delivery")
	}
}

// endpointFor reads endpoint id for c, once c may do op: another tenant's endpoint is "not
// found", as one that does not exist.
func (s *Service) endpointFor(ctx context.Context, c Caller, op Op, id string) (*consumer.Endpoint, error) {
	if err := s.Check(c, op); err != nil {
		return nil, err
	}
	ep, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.sees(ep.Tenant) {
		return nil, &NotFoundError{Kind: "endpoint"}
	}
	return ep, nil
}

// get reads one endpoint; a *NotFoundError if there is none.
func (s *Service) get(ctx context.Context, id string) (*consumer.Endpoint, error) {
	ep, err := s.d.Registry.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "endpoint", consumer.ErrNotFound)
	}
	return ep, nil
}

// endpoint is e as an operator sees it, flagged if its URL would be refused now.
func (s *Service) endpoint(e *consumer.Endpoint) Endpoint {
	v := Endpoint{Endpoint: e}
	var fe *fielderr.Error
	if err := s.d.Rules.CheckStatic(e.URL); errors.As(err, &fe) {
		v.TargetError = fe.Reason
	}
	return v
}

// validate checks an endpoint definition: consumer's checks, then the headers against what the
// sender writes.
func (s *Service) validate(ctx context.Context, e *consumer.Endpoint) error {
	// A type another gateway added a moment ago: read the catalogue again before refusing it.
	if _, err := consumer.WithCatalogue(ctx, s.types(), func(c *subjects.Catalogue) (struct{}, error) { return struct{}{}, e.ValidateWith(c) }); err != nil {
		return err
	}
	return s.d.Rules.CheckHeaders(e)
}

// enablingURL says, of a refused URL the request did not change, that it must change before the
// endpoint is enabled.
func enablingURL(err error, unchanged bool) error {
	var fe *fielderr.Error
	if !unchanged || !errors.As(err, &fe) {
		return err
	}
	return &fielderr.Error{Field: fe.Field, Reason: fe.Reason + "; change the url to enable the endpoint"}
}

func (in EndpointInput) apply(e *consumer.Endpoint) error {
	if in.URL != nil {
		e.URL = *in.URL
	}
	if in.EventTypes != nil {
		e.EventTypes = *in.EventTypes
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
		if e.Enabled {
			e.DisabledReason = ""
		}
	}
	if in.Headers != nil {
		e.Headers = *in.Headers
	}
	if in.ReplyFormat != nil {
		e.ReplyFormat = *in.ReplyFormat
	}
	if in.Condition != nil {
		e.Condition = *in.Condition
	}
	if in.TenantEvents != nil {
		e.TenantEvents = *in.TenantEvents
	}
	if in.Body != nil {
		e.Body = payload.Options{TypeField: in.Body.TypeField, Fields: in.Body.Fields}
	}
	if in.Layout != nil {
		l, sig, err := in.Layout.layout()
		if err != nil {
			return err
		}
		e.Layout = l
		if in.Signing == nil && in.Layout.Preset != "" {
			e.Signing = sig
		}
	}
	if in.Signing != nil {
		s, err := in.Signing.signing()
		if err != nil {
			return err
		}
		e.Signing = s
	}
	return nil
}

// signing checks a signing input and returns the endpoint's setting.
func (in *SigningInput) signing() (consumer.Signing, error) {
	p, err := signature.ParseProfile(in.Profile)
	if err != nil {
		return consumer.Signing{}, &fielderr.Error{Field: "signing.profile", Reason: "must be standard, hub or hex"}
	}
	s := consumer.Signing{Profile: string(p), HeaderName: in.HeaderName}
	switch in.HexCase {
	case "", "lower":
	case "upper":
		s.HexUpper = true
	default:
		return s, &fielderr.Error{Field: "signing.hex_case", Reason: "must be lower or upper"}
	}
	if err := p.ValidateOptions(signatureOptions(s)); err != nil {
		field := "signing.header_name"
		if in.HexCase != "" && p != signature.Hex {
			field = "signing.hex_case"
		}
		return s, &fielderr.Error{Field: field, Reason: err.Error()}
	}
	return s, nil
}

// signatureOptions maps an endpoint's signing settings to the signer's options, as the sender
// does (gateway.SignatureOptions, which this package cannot import).
func signatureOptions(s consumer.Signing) signature.Options {
	return signature.Options{HeaderName: s.HeaderName, HexUpper: s.HexUpper}
}

// checkSecret reports whether secret is acceptable for the endpoint's profile.
func checkSecret(s consumer.Signing, secret string) error {
	p, _ := signature.ParseProfile(s.Profile)
	if _, err := signature.ParseKey(p, secret); err != nil {
		return &fielderr.Error{Field: "secret", Reason: err.Error()}
	}
	return nil
}

// newSecret is a secret the caller gave, checked, or a new random one.
func newSecret(s consumer.Signing, given *string) (string, error) {
	if given != nil {
		return *given, checkSecret(s, *given)
	}
	p, _ := signature.ParseProfile(s.Profile)
	return signature.NewSecret(p)
}
