package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// Published is what JetStream answered for one event.
type Published struct {
	ID        string `json:"id"`
	Stored    bool   `json:"stored"` // false: not stored (error says why); publish it again
	Stream    string `json:"stream,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	Duplicate bool   `json:"duplicate"`
	Error     string `json:"error,omitempty"`
}

// ErrStreamFull is returned when the events stream refuses a publish for lack of room.
var ErrStreamFull = errors.New("events stream is full")

// errCodeStoreFailed is nats-server's JSStreamStoreFailedF, given when a DiscardNew stream is full.
const errCodeStoreFailed jetstream.ErrorCode = 10077

// NewEventMsg builds the NATS message for a validated event: its subject, the raw bytes as the
// body, the event id as Nats-Msg-Id (JetStream drops a duplicate publish within the window) and
// the entity header — left out for an entity with spaces at either end, which NATS clients trim
// from header values (the header would then disagree with the envelope).
func NewEventMsg(env subjects.Envelope, raw []byte) *nats.Msg {
	m := nats.NewMsg(env.Subject())
	m.Data = raw
	m.Header.Set(subjects.HeaderMsgID, env.ID)
	if strings.TrimSpace(env.Entity) == env.Entity {
		m.Header.Set(subjects.HeaderEntity, env.Entity)
	}
	if len(env.Tenants) > 0 { // the router reads it without parsing the body
		m.Header.Set(subjects.HeaderTenants, subjects.TenantsHeader(env.Tenants))
	}
	return m
}

// PublishEvents validates every event, then publishes them in order and returns only once
// JetStream has stored each (or recognised it as a duplicate). Nothing is published if one is
// invalid: the error is a *fielderr.Error, its Field prefixed with "[i]." when there are
// several events. A batch is stored as an in-order prefix: each event is published once the one
// before it is stored, so when one fails (a full stream) none after it is stored, and a client
// that publishes again the events not stored keeps their order. The results then say, per event,
// whether it was stored, beside the error.
//
// A W3C trace context in ctx (as propagation.TraceContext extracts it) goes on each message as
// its traceparent and tracestate headers.
//
// Types are checked against cat, the live catalogue, read again before a type it does not know is
// refused (another gateway may have just added it); nil: the built-in types.
func PublishEvents(ctx context.Context, js jetstream.JetStream, cat consumer.Catalogue, raws [][]byte) ([]Published, error) {
	if cat == nil {
		cat = builtinTypes{}
	}
	envs := make([]subjects.Envelope, len(raws))
	for i, raw := range raws {
		env, err := consumer.WithCatalogue(ctx, cat, func(c *subjects.Catalogue) (subjects.Envelope, error) { return c.ParseEnvelope(raw) })
		if err == nil {
			err = reserved(env)
		}
		if err != nil {
			var fe *fielderr.Error
			if len(raws) > 1 && errors.As(err, &fe) {
				return nil, &fielderr.Error{Field: fmt.Sprintf("[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
			return nil, err
		}
		envs[i] = env
	}
	out := make([]Published, len(raws))
	for i, env := range envs {
		out[i].ID = env.ID
	}
	for i, env := range envs {
		m := NewEventMsg(env, raws[i])
		traceContext.Inject(ctx, natsCarrier(m.Header)) // the caller's trace context, if any
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed {
				err = fmt.Errorf("%w: %w", ErrStreamFull, err)
			}
			out[i].Error = err.Error()
			for j := i + 1; j < len(out); j++ {
				out[j].Error = "not published: event " + env.ID + " before it was not stored"
			}
			return out, fmt.Errorf("publish event %s: %w", env.ID, err)
		}
		out[i] = Published{ID: env.ID, Stored: true, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
	}
	return out, nil
}

// builtinTypes is the catalogue without custom types.
type builtinTypes struct{}

func (builtinTypes) Current() *subjects.Catalogue { return subjects.Builtin() }
func (builtinTypes) Refresh(context.Context) (*subjects.Catalogue, error) {
	return subjects.Builtin(), nil
}

// reserved refuses an event that claims to be one of quaycast's operator events: only quaycast
// publishes those, on their own subjects (subjects.ReservedReason).
func reserved(env subjects.Envelope) error {
	reason := subjects.ReservedReason(env.Subject(), env.Source, env.Type)
	switch {
	case reason == "":
		return nil
	case env.Source == subjects.OpsSource:
		return &fielderr.Error{Field: "source", Reason: reason}
	}
	return &fielderr.Error{Field: "type", Reason: reason}
}
