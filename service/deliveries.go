package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// Page selects one page of a list, as a query string gives it: Limit from 1 to 1000 (default
// 100), After the NextCursor of the previous page.
type Page struct {
	Limit, After string
}

// DeliveryFilter selects delivery-log records: Status is delivered, failed or an HTTP status
// code; Since and Until are RFC 3339 times.
type DeliveryFilter struct {
	Page
	Status, Since, Until string
}

// DeliveryPage is a page of the delivery log, oldest first: one JSON record per POST.
type DeliveryPage struct {
	Deliveries []json.RawMessage
	Seqs       []uint64 // each delivery's position in the log: Delivery reads it again
	NextCursor string   // "" on the last page
}

// DeadLetterPage is a page of an endpoint's dead letters, oldest first.
type DeadLetterPage struct {
	DeadLetters []consumer.DeadLetter
	NextCursor  string // "" on the last page
}

// TestInput is a test event: Type defaults to the first the endpoint subscribes to, Entity to
// TEST0000001, Data to {"test":true}.
type TestInput struct {
	Type   string          `json:"type"`
	Entity string          `json:"entity"`
	Data   json.RawMessage `json:"data"`
}

// ReplayInput picks dead letters to replay: by event id, by entity, by when they were
// dead-lettered (RFC 3339); a dead letter is picked when it passes every part given, and an
// empty input picks all.
type ReplayInput struct {
	EventIDs []string `json:"event_ids"`
	Entities []string `json:"entities"`
	Since    string   `json:"since"`
	Until    string   `json:"until"`
}

// timeField is a time given as RFC 3339 text in the field name, parsed into into when set.
type timeField struct {
	name, value string
	into        *time.Time
}

// parseTimes parses each field given, in order; the first that is not a time is the error.
func parseTimes(fields ...timeField) error {
	for _, tf := range fields {
		if tf.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, tf.value)
		if err != nil {
			return &fielderr.Error{Field: tf.name, Reason: "must be an RFC 3339 time, e.g. 2026-11-30T14:00:00Z"}
		}
		*tf.into = t
	}
	return nil
}

// maxReplayList bounds the event ids and entities one replay names.
const maxReplayList = 10_000

// filter checks the input and returns the dead-letter filter it means.
func (in ReplayInput) filter() (consumer.ReplayFilter, error) {
	f := consumer.ReplayFilter{EventIDs: in.EventIDs, Entities: in.Entities}
	if len(in.EventIDs) > maxReplayList {
		return f, &fielderr.Error{Field: "event_ids", Reason: fmt.Sprintf("more than %d", maxReplayList)}
	}
	if len(in.Entities) > maxReplayList {
		return f, &fielderr.Error{Field: "entities", Reason: fmt.Sprintf("more than %d", maxReplayList)}
	}
	if err := parseTimes(timeField{"since", in.Since, &f.Since}, timeField{"until", in.Until, &f.Until}); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, &fielderr.Error{Field: "until", Reason: "must be after since"}
	}
	return f, nil
}

// TestSend delivers a test event to an endpoint now, through the normal signing path, and
// returns the attempt: status, latency, response excerpt. A type the endpoint does not subscribe
// to is refused: the receiver would never see such an event for real.
func (s *Service) TestSend(ctx context.Context, c Caller, id string, in TestInput) (json.RawMessage, error) {
	ep, err := s.endpointFor(ctx, c, OpTestSend, id)
	if err != nil {
		return nil, err
	}
	cat := s.types().Current()
	if in.Type == "" {
		types, _ := cat.Expand(ep.EventTypes)
		if len(types) > 0 {
			in.Type = types[0]
		}
	}
	if in.Entity == "" {
		in.Entity = "TEST0000001"
	}
	if len(in.Data) == 0 {
		in.Data = json.RawMessage(`{"test":true}`)
	}
	env := subjects.Envelope{ID: "test_" + nuid.Next(), Type: in.Type, Source: "quaycast", Entity: in.Entity, OccurredAt: time.Now().UTC(), Data: in.Data}
	if ep.Tenant != "" {
		env.Tenants = []string{ep.Tenant} // as its real events name it
	}
	if err := cat.ValidateEnvelope(env); err != nil {
		return nil, err
	}
	if !cat.Matches(ep.EventTypes, "", in.Type) {
		return nil, &fielderr.Error{Field: "type", Reason: "the endpoint does not subscribe to " + in.Type}
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	return s.d.Sender.Test(ctx, &consumer.Delivery{Endpoint: ep, Subject: env.Subject(), Event: env, Body: body, Published: env.OccurredAt, Attempt: 1})
}

// EndpointDeliveries pages through the delivery log of one endpoint.
func (s *Service) EndpointDeliveries(ctx context.Context, c Caller, id string, f DeliveryFilter) (*DeliveryPage, error) {
	ep, err := s.endpointFor(ctx, c, OpListDeliveries, id)
	if err != nil {
		return nil, err
	}
	return s.deliveries(ctx, attempts.Query{EndpointID: ep.ID}, f)
}

// EventDeliveries pages through the delivery log of one event, across endpoints.
func (s *Service) EventDeliveries(ctx context.Context, c Caller, eventID string, f DeliveryFilter) (*DeliveryPage, error) {
	if err := s.Check(c, OpListDeliveries); err != nil {
		return nil, err
	}
	if eventID == "" || len(eventID) > subjects.MaxIDBytes || strings.ContainsAny(eventID, " \t\r\n") {
		return nil, &fielderr.Error{Field: "id", Reason: "is not an event id"}
	}
	q := attempts.Query{EventID: eventID}
	if c.Tenant() != "" {
		mine, err := s.visibleEndpoints(ctx, c)
		if err != nil {
			return nil, err
		}
		q.Match = mine.record
	}
	return s.deliveries(ctx, q, f)
}

// endpointSet is the endpoints a tenant's caller sees, to filter records across endpoints by.
type endpointSet map[string]bool

// record reports whether a delivery-log record is of one of the endpoints.
func (s endpointSet) record(b []byte) bool {
	var rec struct {
		EndpointID string `json:"endpoint_id"`
	}
	return json.Unmarshal(b, &rec) == nil && s[rec.EndpointID]
}

// visibleEndpoints are the ids of the endpoints c sees.
func (s *Service) visibleEndpoints(ctx context.Context, c Caller) (endpointSet, error) {
	eps, err := s.d.Registry.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(endpointSet)
	for _, e := range eps {
		if c.sees(e.Tenant) {
			out[e.ID] = true
		}
	}
	return out, nil
}

func (s *Service) deliveries(ctx context.Context, q attempts.Query, f DeliveryFilter) (*DeliveryPage, error) {
	var err error
	if q.Limit, q.After, err = f.parse(); err != nil {
		return nil, err
	}
	if err := parseTimes(timeField{"since", f.Since, &q.Since}, timeField{"until", f.Until, &q.Until}); err != nil {
		return nil, err
	}
	if f.Status != "" {
		match, ok := statusFilter(f.Status)
		if !ok {
			return nil, &fielderr.Error{Field: "status", Reason: "must be delivered, failed or an HTTP status code"}
		}
		if scope := q.Match; scope != nil {
			q.Match = func(b []byte) bool { return scope(b) && match(b) }
		} else {
			q.Match = match
		}
	}
	recs, next, err := s.d.Attempts.List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &DeliveryPage{Deliveries: make([]json.RawMessage, len(recs)), Seqs: make([]uint64, len(recs)), NextCursor: cursor(next)}
	for i, rec := range recs {
		out.Deliveries[i], out.Seqs[i] = rec.Data, rec.Pos
	}
	return out, nil
}

// statusFilter matches log records by outcome or HTTP status.
func statusFilter(s string) (func([]byte) bool, bool) {
	decode := func(b []byte) (outcome string, status int) {
		var rec struct {
			Outcome  string
			Response *struct{ Status int }
		}
		_ = json.Unmarshal(b, &rec)
		if rec.Response != nil {
			status = rec.Response.Status
		}
		return rec.Outcome, status
	}
	switch s {
	case "delivered":
		return func(b []byte) bool { o, _ := decode(b); return o == "delivered" }, true
	case "failed":
		return func(b []byte) bool { o, _ := decode(b); return o != "delivered" }, true
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		return nil, false
	}
	return func(b []byte) bool { _, st := decode(b); return st == code }, true
}

// DeadLetters pages through an endpoint's dead letters, oldest first.
func (s *Service) DeadLetters(ctx context.Context, c Caller, id string, p Page) (*DeadLetterPage, error) {
	ep, err := s.endpointFor(ctx, c, OpListDeadLetters, id)
	if err != nil {
		return nil, err
	}
	limit, after, err := p.parse()
	if err != nil {
		return nil, err
	}
	page, next, err := s.d.DeadLetters.List(ctx, ep.ID, after, limit)
	if err != nil {
		return nil, err
	}
	return &DeadLetterPage{DeadLetters: page, NextCursor: cursor(next)}, nil
}

// ReplayDeadLetters delivers an endpoint's dead letters again — those in picks — in their
// original order, and returns how many it replayed.
func (s *Service) ReplayDeadLetters(ctx context.Context, c Caller, id string, in ReplayInput) (int, error) {
	ep, err := s.endpointFor(ctx, c, OpReplayDeadLetters, id)
	if err != nil {
		return 0, err
	}
	f, err := in.filter()
	if err != nil {
		return 0, err
	}
	return s.d.DeadLetters.Replay(ctx, ep.ID, f)
}

// RedeliverInput picks the events a redeliver sends again: from a stream sequence or from a
// time (RFC 3339, when JetStream stored the event) — exactly one — optionally only some
// entities', at most Limit (default and most: consumer.MaxRedeliver).
type RedeliverInput struct {
	SinceSeq uint64   `json:"since_seq"`
	Since    string   `json:"since"`
	Entities []string `json:"entities"`
	Limit    int      `json:"limit"`
}

func (in RedeliverInput) from() (consumer.RedeliverFrom, error) {
	f := consumer.RedeliverFrom{Seq: in.SinceSeq, Entities: in.Entities, Limit: in.Limit}
	if err := parseTimes(timeField{"since", in.Since, &f.Since}); err != nil {
		return f, err
	}
	switch {
	case (f.Seq == 0) == f.Since.IsZero():
		return f, &fielderr.Error{Field: "since_seq", Reason: "give exactly one of since_seq (a stream sequence, from 1) and since (a time)"}
	case len(in.Entities) > maxReplayList:
		return f, &fielderr.Error{Field: "entities", Reason: fmt.Sprintf("more than %d", maxReplayList)}
	case slices.Contains(in.Entities, ""):
		return f, &fielderr.Error{Field: "entities", Reason: "an entity is empty"}
	case in.Limit < 0 || in.Limit > consumer.MaxRedeliver:
		return f, &fielderr.Error{Field: "limit", Reason: fmt.Sprintf("must be from 1 to %d", consumer.MaxRedeliver)}
	case in.Limit == 0:
		f.Limit = consumer.MaxRedeliver
	}
	return f, nil
}

// Redeliver sends an endpoint's events again — every event its subscription matches from a
// sequence or a time on, through the stream's end when asked — each marked as a redelivery,
// through its normal lanes beside live traffic. An endpoint of a cluster is redelivered by its
// owner like any event: the copies go into the stream.
func (s *Service) Redeliver(ctx context.Context, c Caller, id string, in RedeliverInput) (consumer.Redelivered, error) {
	ep, err := s.endpointFor(ctx, c, OpRedeliver, id)
	if err != nil {
		return consumer.Redelivered{}, err
	}
	f, err := in.from()
	if err != nil {
		return consumer.Redelivered{}, err
	}
	return s.d.Redeliverer.Redeliver(ctx, ep, f)
}

// PurgeDeadLetters deletes every dead letter of an endpoint.
func (s *Service) PurgeDeadLetters(ctx context.Context, c Caller, id string) error {
	ep, err := s.endpointFor(ctx, c, OpPurgeDeadLetters, id)
	if err != nil {
		return err
	}
	return s.d.DeadLetters.Purge(ctx, ep.ID)
}

// parse reads a page selection: limit (default 100) and the cursor to go on after.
func (p Page) parse() (limit int, after uint64, err error) {
	limit = 100
	if p.Limit != "" {
		n, err := strconv.Atoi(p.Limit)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, &fielderr.Error{Field: "limit", Reason: "must be a number from 1 to 1000"}
		}
		limit = n
	}
	if p.After != "" {
		n, err := strconv.ParseUint(p.After, 10, 64)
		if err != nil {
			return 0, 0, &fielderr.Error{Field: "after", Reason: "must be a cursor from a previous page"}
		}
		after = n
	}
	return limit, after, nil
}

// cursor is a next-page position as the caller gets it: "" for none.
func cursor(next uint64) string {
	if next == 0 {
		return ""
	}
	return strconv.FormatUint(next, 10)
}
