package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// Published is what JetStream answered for one event.
type Published struct {
	ID        string `json:"id"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
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
	return m
}

// PublishEvents validates every event, then publishes them in order and returns only once
// JetStream has stored each (or recognised it as a duplicate). Nothing is published if one is
// invalid: the error is a *subjects.FieldError, its Field prefixed with "[i]." when there are
// several events.
func PublishEvents(ctx context.Context, js jetstream.JetStream, raws [][]byte) ([]Published, error) {
	envs := make([]subjects.Envelope, len(raws))
	for i, raw := range raws {
		env, err := subjects.ParseEnvelope(raw)
		if err != nil {
			var fe *subjects.FieldError
			if len(raws) > 1 && errors.As(err, &fe) {
				return nil, &subjects.FieldError{Field: fmt.Sprintf("[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
			return nil, err
		}
		envs[i] = env
	}
	futures := make([]jetstream.PubAckFuture, len(raws))
	for i, env := range envs {
		f, err := js.PublishMsgAsync(NewEventMsg(env, raws[i]))
		if err != nil {
			return nil, fmt.Errorf("publish event %s: %w", env.ID, err)
		}
		futures[i] = f
	}
	out := make([]Published, len(raws))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			out[i] = Published{ID: envs[i].ID, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed {
				err = fmt.Errorf("%w: %w", ErrStreamFull, err)
			}
			return nil, fmt.Errorf("publish event %s: %w", envs[i].ID, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("publish event %s: %w", envs[i].ID, ctx.Err())
		}
	}
	return out, nil
}
