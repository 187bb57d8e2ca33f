package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/subjects"
)

// Deliverer sends one event to one endpoint. It is implemented by gateway.Sender; Deliver is
// called concurrently for different entities, never for two events of one entity of one endpoint.
type Deliverer interface {
	Deliver(ctx context.Context, d *Delivery) Outcome
}

// Delivery is one attempt to deliver one event to one endpoint.
type Delivery struct {
	Endpoint *Endpoint         // the definition current at this attempt
	Seq      uint64            // stream sequence of the event
	Subject  string            // subject it was published on
	Event    subjects.Envelope // parsed envelope; its Data is not set: the bytes are Body
	Body     []byte            // the event exactly as published: sent byte for byte
	// Header is the NATS message's headers as published (the trace context among them), shared
	// with the message: read-only, nil when there are none.
	Header    nats.Header
	Published time.Time // when JetStream stored it
	Attempt   int       // 1 for the first POST, counted by us
	// PreviousEventID is the id of the entity's event delivered or dead-lettered to this endpoint
	// before this one; empty for the first (or when its event has left the stream). A receiver
	// that did not see it has missed one: a dead letter, or an event still to come from a replay.
	PreviousEventID string
	// Redelivery is set on a copy an operator asked for again (Redeliverer), not on a live event
	// or a replayed dead letter.
	Redelivery bool
}

// Result is the closed set of things an attempt can come to.
type Result int

const (
	// Delivered: the receiver accepted the event (2xx); acknowledge it.
	Delivered Result = iota + 1
	// Retry: try again later (connection error, timeout, 5xx, 429 ...).
	Retry
	// BreakerOpen: no attempt was made because the endpoint's breaker is open; no attempt is spent.
	BreakerOpen
	// Permanent: the receiver refused the event for good; retrying will not help. It is
	// dead-lettered at once.
	Permanent
	// Gone: the receiver said the endpoint no longer exists (410). The endpoint is disabled and
	// the event stays unacknowledged, to be delivered if the endpoint is enabled again.
	Gone
)

func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case BreakerOpen:
		return "breaker_open"
	case Permanent:
		return "permanent"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Outcome is what an attempt came to.
type Outcome struct {
	Result     Result
	Status     int           // HTTP status, 0 if no response
	RetryAfter time.Duration // Retry: the receiver's Retry-After, if any; BreakerOpen: until the breaker lets a probe through
	Err        error         // transport error or a description of the failure
}
