package consumer

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quaycast/quaycast/conditions"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/payload"
	"github.com/quaycast/quaycast/subjects"
)

// Size bounds of an endpoint definition.
const (
	MaxURLBytes         = 2048
	MaxDescriptionBytes = 1024
	MaxHeaders          = 32
	MaxHeaderValueBytes = 1024
)

// Endpoint is one registered webhook receiver and what it subscribed to.
type Endpoint struct {
	ID          string
	URL         string
	EventTypes  []string // selectors: type names, "group:<name>" or "*" (see package subjects)
	Description string
	Enabled     bool
	// DisabledReason says why quaycast disabled the endpoint itself (a 410 Gone); cleared
	// when it is enabled again.
	DisabledReason string
	Headers        map[string]string // custom static headers sent with every delivery
	Signing        Signing           // how deliveries are signed
	Layout         Layout            // which headers carry the event type, delivery id and time
	// Body says how the body differs from the event as published (mirrored type, selected
	// fields); the zero value sends the publisher's bytes.
	Body payload.Options
	// ReplyFormat says what a 2xx JSON reply is: "" any JSON, passed on as it is; "alerts" the
	// voyage platform's array of alerts, validated and parsed into the delivery log.
	ReplyFormat string
	// Condition, when set, is a CEL expression over the envelope (package conditions): an event
	// it does not take is acknowledged without a POST.
	Condition string
	// Tenant is the operator's customer the endpoint belongs to ("" = the operator's own): it
	// receives only that tenant's events. Set when created, never changed.
	Tenant string
	// TenantEvents, for an operator endpoint, opts in to events that name tenants too; without it
	// an operator endpoint gets only the events that name none.
	TenantEvents bool
	Secret       Secret
	// PreviousSecrets still sign beside Secret until their grace period ends (a rotation),
	// newest first.
	PreviousSecrets []PreviousSecret
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// StartSeq is the first stream sequence the endpoint receives: the stream's next
	// sequence when it was created, so it gets exactly the events published after that.
	StartSeq uint64
	// Revision is the registry's revision of this definition.
	Revision uint64
	// SecretErr is set when the stored secret could not be read (it is sealed and the key is
	// missing or another): the endpoint is shown but not delivered to.
	SecretErr error
}

// Signing says how an endpoint's deliveries are signed. The gateway validates it (package
// gateway/signature); the zero value is the Standard Webhooks profile.
type Signing struct {
	Profile    string // "standard" (default), "hub" or "hex"
	HeaderName string // hub and hex: the signature header
	HexUpper   bool   // hex: upper-case hex digits
}

// PreviousSecret is a rotated-out secret that keeps signing until Until.
type PreviousSecret struct {
	Secret Secret
	Until  time.Time
}

// ActivePrevious lists the previous secrets still in their grace period at now, newest first,
// and the time the first of them ends (zero if none).
func (e *Endpoint) ActivePrevious(now time.Time) (secrets []Secret, nextExpiry time.Time) {
	for _, p := range e.PreviousSecrets {
		if now.Before(p.Until) {
			secrets = append(secrets, p.Secret)
			if nextExpiry.IsZero() || p.Until.Before(nextExpiry) {
				nextExpiry = p.Until
			}
		}
	}
	return secrets, nextExpiry
}

// Rotate makes next the secret and keeps the current one signing for grace (0: not at all).
// Previous secrets already past their grace period are dropped.
func (e *Endpoint) Rotate(next Secret, grace time.Duration, now time.Time) {
	kept := []PreviousSecret{}
	if grace > 0 {
		kept = append(kept, PreviousSecret{Secret: e.Secret, Until: now.Add(grace)})
	}
	for _, p := range e.PreviousSecrets {
		if now.Before(p.Until) && len(kept) < MaxPreviousSecrets {
			kept = append(kept, p)
		}
	}
	e.Secret, e.PreviousSecrets = next, kept
}

// MaxPreviousSecrets bounds how many rotated-out secrets sign at once.
const MaxPreviousSecrets = 5

// ConsumerName is the durable consumer that delivers to this endpoint.
func (e *Endpoint) ConsumerName() string { return e.ID }

// Secret is a signing secret. It prints and marshals as a redaction so that it cannot leak into
// logs, errors or API listings by accident; Reveal is the one way to the value.
type Secret struct{ v string }

// NewSecret wraps a secret value.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the secret: only for the signer and the response that creates or rotates it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return s.v == "" }

const redacted = "[redacted]"

func (s Secret) String() string               { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s Secret) GoString() string             { return redacted }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// NewID returns a new endpoint id: "ep_" and 26 base32 characters of randomness, usable as a
// KV key and a consumer name.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "ep_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// ValidID reports whether s has the shape of an endpoint id, before it is used as a key.
func ValidID(s string) bool {
	if len(s) < 4 || len(s) > 64 || !strings.HasPrefix(s, "ep_") {
		return false
	}
	for _, r := range s[3:] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Validate checks an endpoint definition against the built-in catalogue (see ValidateWith).
func (e *Endpoint) Validate() error { return e.ValidateWith(subjects.Builtin()) }

// ValidateWith checks an endpoint definition, its selectors against cat; the error is a
// *fielderr.Error naming the field (matching subjects.ErrUnknownType for a type or group cat
// lacks). Which header names are reserved depends on what the sender writes: the gateway checks
// that.
func (e *Endpoint) ValidateWith(cat *subjects.Catalogue) error {
	if e.URL == "" {
		return &fielderr.Error{Field: "url", Reason: "is required"}
	}
	if len(e.URL) > MaxURLBytes {
		return &fielderr.Error{Field: "url", Reason: fmt.Sprintf("longer than %d bytes", MaxURLBytes)}
	}
	u, err := url.Parse(e.URL)
	if err != nil || !u.IsAbs() || u.Hostname() == "" {
		return &fielderr.Error{Field: "url", Reason: "must be an absolute http or https URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &fielderr.Error{Field: "url", Reason: fmt.Sprintf("scheme %q is not http or https", u.Scheme)}
	}
	if u.User != nil {
		return &fielderr.Error{Field: "url", Reason: "must not carry credentials; use headers"}
	}
	if strings.ContainsAny(e.URL, " \t") {
		return &fielderr.Error{Field: "url", Reason: "must not contain spaces: percent-encode them (%20)"}
	}
	if strings.Contains(e.URL, "#") {
		return &fielderr.Error{Field: "url", Reason: "must not have a #fragment: it is never sent to the receiver"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &fielderr.Error{Field: "url", Reason: fmt.Sprintf("port %s is not from 1 to 65535", truncate(p, 16))}
		}
	}
	if e.Tenant != "" && !subjects.ValidTenant(e.Tenant) {
		return &fielderr.Error{Field: "tenant", Reason: "is not a tenant id"}
	}
	if e.Tenant != "" && e.TenantEvents {
		return &fielderr.Error{Field: "tenant_events", Reason: "is for the operator's endpoints: a tenant's endpoint gets its tenant's events only"}
	}
	if e.ReplyFormat != "" && e.ReplyFormat != "alerts" {
		return &fielderr.Error{Field: "reply_format", Reason: `must be "" (any JSON) or "alerts"`}
	}
	if err := cat.ValidateSelectors(e.EventTypes); err != nil {
		return err
	}
	if err := e.Layout.validate(); err != nil {
		return err
	}
	if err := payload.Validate(e.Body); err != nil {
		return err
	}
	if e.Condition != "" {
		if _, err := conditions.Compile(e.Condition); err != nil {
			return &fielderr.Error{Field: "condition", Reason: err.Error()}
		}
	}
	if len(e.Description) > MaxDescriptionBytes || !utf8.ValidString(e.Description) {
		return &fielderr.Error{Field: "description", Reason: fmt.Sprintf("must be UTF-8 of at most %d bytes", MaxDescriptionBytes)}
	}
	if len(e.Headers) > MaxHeaders {
		return &fielderr.Error{Field: "headers", Reason: fmt.Sprintf("more than %d headers", MaxHeaders)}
	}
	seen := make(map[string]bool, len(e.Headers))
	for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
		value, field := e.Headers[name], "headers."+name
		if seen[strings.ToLower(name)] {
			return &fielderr.Error{Field: field, Reason: "is given twice, in different case"}
		}
		seen[strings.ToLower(name)] = true
		if !validHeaderName(name) {
			return &fielderr.Error{Field: field, Reason: "is not a valid HTTP header name"}
		}
		if len(value) > MaxHeaderValueBytes || strings.ContainsAny(value, "\r\n\x00") {
			return &fielderr.Error{Field: field, Reason: fmt.Sprintf("value must be one line of at most %d bytes", MaxHeaderValueBytes)}
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
