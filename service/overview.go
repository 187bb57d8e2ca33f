package service

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/rollup"
)

// What the web console reads beyond the JSON API's operations: every endpoint's state at a
// glance, the hourly figures, one logged attempt with the body it sent, and the log as it grows.

// EndpointStatus is one endpoint in the overview.
type EndpointStatus struct {
	Endpoint
	State        string          // consumer.StateDelivering, StateDegraded or StateStopped; StateElsewhere
	Owner        *cluster.Member // the gateway delivering to it, when clustered
	Breaker      BreakerStatus
	BreakerKnown bool // false: it has not delivered from this gateway
	Backlog      uint64
	BacklogKnown bool
	DeadLetters  uint64
	Hour         *rollup.Minute // its attempts over the last hour, cluster-wide; nil without any
}

// Overview lists every endpoint, oldest first, with its delivery state, breaker, backlog, dead
// letters and last hour's figures. What cannot be read now is left out rather than failing the
// list (the Known flags, a nil Hour); the errors come back beside it, for a banner.
func (s *Service) Overview(ctx context.Context, c Caller) ([]EndpointStatus, []error, error) {
	eps, err := s.Endpoints(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	var partial []error
	dead, err := s.d.DeadLetters.Counts(ctx)
	if err != nil {
		partial = append(partial, err)
	}
	var backlogs map[string]uint64
	if s.d.Backlogs != nil {
		if backlogs, err = s.d.Backlogs(ctx); err != nil {
			partial = append(partial, err)
		}
	}
	var hour map[string]*rollup.Minute
	if s.d.Rollups != nil {
		recs, err := s.d.Rollups.Hour(ctx, "")
		if err != nil {
			partial = append(partial, err)
		}
		hour = rollup.Totals(recs)
	}
	out := make([]EndpointStatus, len(eps))
	for i, e := range eps {
		st := EndpointStatus{Endpoint: e, State: s.d.States.State(e.ID), DeadLetters: dead[e.ID], Hour: hour[e.ID]}
		st.Owner, st.State = s.owner(e.ID, st.State)
		st.Breaker, st.BreakerKnown = s.d.Sender.Breaker(e.ID)
		st.Backlog, st.BacklogKnown = backlogs[e.ID]
		if backlogs != nil && !st.BacklogKnown { // no consumer (yet, or disabled): nothing held for it
			st.BacklogKnown = true
		}
		out[i] = st
	}
	return out, partial, nil
}

// Figures are an endpoint's attempts over the last hour, minute by minute (60 minutes, the
// current one not yet counted), cluster-wide. Empty when the figures are not kept.
func (s *Service) Figures(ctx context.Context, c Caller, id string) ([]rollup.Minute, error) {
	ep, err := s.endpointFor(ctx, c, OpViewFigures, id)
	if err != nil {
		return nil, err
	}
	if s.d.Rollups == nil {
		return nil, nil
	}
	recs, err := s.d.Rollups.Hour(ctx, ep.ID)
	if err != nil {
		return nil, err
	}
	return rollup.PerMinute(recs, ep.ID, time.Now()), nil
}

// HourFigures are every endpoint's minute records of the last hour, oldest first: the live page
// draws the busiest.
func (s *Service) HourFigures(ctx context.Context, c Caller) ([]rollup.Minute, error) {
	if err := s.Check(c, OpViewFigures); err != nil {
		return nil, err
	}
	if s.d.Rollups == nil {
		return nil, nil
	}
	recs, err := s.d.Rollups.Hour(ctx, "")
	if err != nil || c.Tenant() == "" {
		return recs, err
	}
	mine, err := s.visibleEndpoints(ctx, c)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(recs, func(m rollup.Minute) bool { return !mine[m.EndpointID] }), nil
}

// LoggedAttempt is one delivery-log record with the request body it sent.
type LoggedAttempt struct {
	Record json.RawMessage
	Body   []byte // the event as published; nil for a test send or an event no longer kept
}

// Delivery reads the delivery-log record at position seq of an endpoint (DeliveryPage.Seqs), and
// the body that was sent, from the events stream while it keeps the event.
func (s *Service) Delivery(ctx context.Context, c Caller, id string, seq uint64) (*LoggedAttempt, error) {
	ep, err := s.endpointFor(ctx, c, OpListDeliveries, id)
	if err != nil {
		return nil, err
	}
	if seq == 0 {
		return nil, &NotFoundError{Kind: "delivery"}
	}
	recs, _, err := s.d.Attempts.List(ctx, attempts.Query{EndpointID: ep.ID, After: seq - 1, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || recs[0].Pos != seq {
		return nil, &NotFoundError{Kind: "delivery"}
	}
	out := &LoggedAttempt{Record: recs[0].Data}
	var rec struct {
		EventID  string `json:"event_id"`
		EventSeq uint64 `json:"event_seq"`
		Test     bool   `json:"test"`
	}
	if json.Unmarshal(recs[0].Data, &rec) != nil || rec.Test || rec.EventSeq == 0 || s.d.Events == nil {
		return out, nil
	}
	m, err := s.d.Events.GetMsg(ctx, rec.EventSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return nil, err
	case m.Header.Get(jetstream.MsgIDHeader) == rec.EventID || m.Header.Get(jetstream.MsgIDHeader) == "":
		out.Body = m.Data
	}
	return out, nil
}

// RecentDeliveries is what the delivery log recorded after cursor, across endpoints, oldest
// first, and the cursor to follow on from. Cursor 0 starts with the last few records.
func (s *Service) RecentDeliveries(ctx context.Context, c Caller, after uint64, limit int) ([]json.RawMessage, uint64, error) {
	if err := s.Check(c, OpListDeliveries); err != nil {
		return nil, 0, err
	}
	if after == 0 {
		var err error
		if after, err = s.d.Attempts.Tail(ctx, limit); err != nil {
			return nil, 0, err
		}
	}
	q := attempts.Query{After: after, Limit: limit}
	if c.Tenant() != "" {
		mine, err := s.visibleEndpoints(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		q.Match = mine.record
	}
	recs, _, err := s.d.Attempts.List(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		out[i], after = r.Data, r.Pos
	}
	return slices.Clip(out), after, nil
}
