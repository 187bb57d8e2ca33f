package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/subjects"
)

// Dead letters: events an endpoint would not take within the retry budget, or refused for good.
// Each is one message in the QUAYCAST_DEAD stream, subject quaycast.dead.<endpoint>, whose body
// is the event exactly as published and whose headers say why.
const (
	DeadStream   = "QUAYCAST_DEAD"
	deadSubjects = "quaycast.dead.>"
)

// Headers of a dead-letter record.
const (
	hdrEndpoint   = "Quaycast-Endpoint"
	hdrEventID    = "Quaycast-Event-Id"
	hdrEventSeq   = "Quaycast-Event-Seq"
	hdrSubject    = "Quaycast-Subject"
	hdrAttempts   = "Quaycast-Attempts"
	hdrStatus     = "Quaycast-Last-Status"
	hdrError      = "Quaycast-Last-Error"
	hdrReason     = "Quaycast-Reason"
	hdrFirstTried = "Quaycast-First-Attempt"
)

// DeadLetter is one dead-lettered event.
type DeadLetter struct {
	Seq          uint64    `json:"seq"` // position in the dead-letter stream: the pagination cursor
	EndpointID   string    `json:"endpoint_id"`
	EventID      string    `json:"event_id"`
	EventSeq     uint64    `json:"event_seq"` // its sequence in the events stream
	Subject      string    `json:"subject"`
	Origin       string    `json:"-"` // the subject its original was stored on (differs for a replay's)
	Tenant       string    `json:"-"` // the endpoint's tenant, as its worker knew it (OnDeadLetter only)
	Entity       string    `json:"entity"`
	Type         string    `json:"type"`
	Attempts     int       `json:"attempts"`
	LastStatus   int       `json:"last_status"`
	LastError    string    `json:"last_error"`
	Reason       string    `json:"reason"`
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	DeadAt       time.Time `json:"dead_at"`
	Body         []byte    `json:"-"`
}

func deadSubject(endpointID string) string {
	return "quaycast.dead." + subjects.EncodeToken(endpointID)
}

// newDeadMsg builds the record of a dead letter.
func newDeadMsg(dl DeadLetter) *nats.Msg {
	m := nats.NewMsg(deadSubject(dl.EndpointID))
	m.Data = dl.Body
	h := m.Header
	h.Set(hdrEndpoint, dl.EndpointID)
	h.Set(hdrEventID, dl.EventID)
	h.Set(hdrEventSeq, strconv.FormatUint(dl.EventSeq, 10))
	h.Set(hdrSubject, dl.Subject)
	if dl.Origin != "" {
		h.Set(subjects.HeaderOrigin, dl.Origin)
	}
	h.Set(subjects.HeaderEntity, dl.Entity)
	h.Set(hdrAttempts, strconv.Itoa(dl.Attempts))
	h.Set(hdrStatus, strconv.Itoa(dl.LastStatus))
	h.Set(hdrError, oneLine(dl.LastError, 1024))
	h.Set(hdrReason, oneLine(dl.Reason, 1024))
	if !dl.FirstAttempt.IsZero() {
		h.Set(hdrFirstTried, dl.FirstAttempt.UTC().Format(time.RFC3339Nano))
	}
	return m
}

// deadMsgID is the Nats-Msg-Id of a dead letter's record: the same event, endpoint and first
// attempt is recorded once however many times it is written within the duplicate window.
func deadMsgID(dl DeadLetter) string {
	return dl.EndpointID + "-" + strconv.FormatUint(dl.EventSeq, 10) + "-" + strconv.FormatInt(dl.FirstAttempt.UnixNano(), 10)
}

// oneLine makes s safe as a header value: one line, bounded.
func oneLine(s string, n int) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func fromDeadMsg(m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	dl := DeadLetter{
		Seq: m.Sequence, EndpointID: h.Get(hdrEndpoint), EventID: h.Get(hdrEventID), Subject: h.Get(hdrSubject),
		Entity: h.Get(subjects.HeaderEntity), LastError: h.Get(hdrError), Reason: h.Get(hdrReason), DeadAt: m.Time, Body: m.Data,
	}
	dl.Origin = h.Get(subjects.HeaderOrigin)
	if dl.Origin == "" && !strings.HasPrefix(dl.Subject, subjects.ReplayPrefix+".") { // recorded before the header
		dl.Origin = dl.Subject
	}
	dl.EventSeq, _ = strconv.ParseUint(h.Get(hdrEventSeq), 10, 64)
	dl.Attempts, _ = strconv.Atoi(h.Get(hdrAttempts))
	dl.LastStatus, _ = strconv.Atoi(h.Get(hdrStatus))
	dl.FirstAttempt, _ = time.Parse(time.RFC3339Nano, h.Get(hdrFirstTried))
	if _, _, typ, err := subjects.ParseAny(dl.Subject); err == nil {
		dl.Type = typ
	}
	return dl
}

// deadLetter records it in the dead-letter stream, then acks it so its entity moves on. Until the
// record is stored the event is not acked; it returns false only if the worker stops first.
func (w *worker) deadLetter(ctx context.Context, it *item, attempts int, first time.Time, out Outcome, reason string) bool {
	if w.fenced() { // its next owner decides
		<-w.stop
		return false
	}
	ep := w.ep.Load()
	dl := DeadLetter{
		EndpointID: ep.ID, Tenant: ep.Tenant, EventID: it.env.ID, EventSeq: it.seq, Subject: it.subject, Entity: it.env.Entity,
		Attempts: attempts, LastStatus: out.Status, Reason: reason, FirstAttempt: first, Body: it.body, Origin: it.subject,
	}
	if strings.HasPrefix(it.subject, subjects.ReplayPrefix+".") { // a replay's original, which quaycast named
		dl.Origin = it.header.Get(subjects.HeaderOrigin)
	}
	if out.Err != nil {
		dl.LastError = out.Err.Error()
	}
	msgID := deadMsgID(dl)
	retry := jsRetry()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.js.PublishMsg(pctx, newDeadMsg(dl), jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			break
		}
		w.log.Error().Err(err).Str("event_id", it.env.ID).Msg("record dead letter: will retry")
		if !backoff.Wait(w.stop, retry.Next()) {
			return false
		}
	}
	w.log.Warn().Str("event_id", it.env.ID).Str("entity", it.env.Entity).Int("attempt", attempts).
		Int("status", out.Status).Str("reason", reason).Msg("dead-lettered")
	if w.onDead != nil {
		w.onDead(dl)
	}
	w.finish(ctx, it, time.Now())
	return true
}

// DeadLetters lists, replays and purges dead letters.
type DeadLetters struct {
	js     jetstream.JetStream
	dead   jetstream.Stream
	events jetstream.Stream
}

// NewDeadLetters opens the dead-letter store (Setup creates its stream).
func NewDeadLetters(ctx context.Context, js jetstream.JetStream, events jetstream.Stream) (*DeadLetters, error) {
	dead, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", DeadStream, err)
	}
	return &DeadLetters{js: js, dead: dead, events: events}, nil
}

// List returns up to limit dead letters of an endpoint with Seq > after, oldest first, and the
// cursor for the next page (0 when there is none).
func (d *DeadLetters) List(ctx context.Context, endpointID string, after uint64, limit int) ([]DeadLetter, uint64, error) {
	var out []DeadLetter
	seq := after + 1
	for len(out) < limit {
		m, err := d.dead.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(deadSubject(endpointID)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read dead letters of %s: %w", endpointID, err)
		}
		out = append(out, fromDeadMsg(m))
		seq = m.Sequence + 1
	}
	// One more look tells whether a next page exists.
	if _, err := d.dead.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(deadSubject(endpointID))); err == nil {
		return out, out[len(out)-1].Seq, nil
	}
	return out, 0, nil
}

// ReplayFilter picks dead letters to replay; its zero value picks all. A dead letter is picked
// when it passes every part given.
type ReplayFilter struct {
	EventIDs     []string  // its event id is one of these
	Entities     []string  // its entity is one of these
	Since, Until time.Time // it was dead-lettered at or after Since, before Until
}

func (f ReplayFilter) picks(dl DeadLetter) bool {
	return (len(f.EventIDs) == 0 || slices.Contains(f.EventIDs, dl.EventID)) &&
		(len(f.Entities) == 0 || slices.Contains(f.Entities, dl.Entity)) &&
		(f.Since.IsZero() || !dl.DeadAt.Before(f.Since)) &&
		(f.Until.IsZero() || dl.DeadAt.Before(f.Until))
}

// Replay delivers an endpoint's dead letters again — all of them, or those f picks — in their
// original order: each is published back into the events stream on the endpoint's replay
// subject (so only this endpoint gets it, through its normal lanes), then removed from the dead
// letters. It returns how many were replayed.
func (d *DeadLetters) Replay(ctx context.Context, endpointID string, f ReplayFilter) (int, error) {
	n := 0
	for after := uint64(0); ; {
		page, next, err := d.List(ctx, endpointID, after, 256)
		if err != nil {
			return n, err
		}
		for _, dl := range page {
			if !f.picks(dl) {
				continue
			}
			if err := d.replayOne(ctx, dl); err != nil {
				return n, err
			}
			n++
		}
		if next == 0 {
			return n, nil
		}
		after = next
	}
}

func (d *DeadLetters) replayOne(ctx context.Context, dl DeadLetter) error {
	_, source, typ, err := subjects.ParseAny(dl.Subject)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", dl.Seq, err)
	}
	subj, err := subjects.ReplaySubject(dl.EndpointID, source, typ)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", dl.Seq, err)
	}
	m := nats.NewMsg(subj)
	m.Data = dl.Body
	m.Header.Set(subjects.HeaderEntity, dl.Entity)
	if dl.Origin != "" { // without it, a replay of an operator event is set aside
		m.Header.Set(subjects.HeaderOrigin, dl.Origin)
	}
	// The id makes a replay that is retried after a crash publish once.
	if _, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID("replay-"+strconv.FormatUint(dl.Seq, 10))); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", dl.Seq, err)
	}
	if err := d.dead.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove replayed dead letter %d: %w", dl.Seq, err)
	}
	return nil
}

// Purge deletes every dead letter of an endpoint.
func (d *DeadLetters) Purge(ctx context.Context, endpointID string) error {
	if err := d.dead.Purge(ctx, jetstream.WithPurgeSubject(deadSubject(endpointID))); err != nil {
		return fmt.Errorf("purge dead letters of %s: %w", endpointID, err)
	}
	return nil
}

// Count is how many dead letters an endpoint has.
func (d *DeadLetters) Count(ctx context.Context, endpointID string) (uint64, error) {
	info, err := d.dead.Info(ctx, jetstream.WithSubjectFilter(deadSubject(endpointID)))
	if err != nil {
		return 0, fmt.Errorf("count dead letters of %s: %w", endpointID, err)
	}
	return info.State.Subjects[deadSubject(endpointID)], nil
}

// Counts is how many dead letters each endpoint has, from one request; endpoints without any are
// not in the map.
func (d *DeadLetters) Counts(ctx context.Context) (map[string]uint64, error) {
	info, err := d.dead.Info(ctx, jetstream.WithSubjectFilter(deadSubjects))
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if id, err := subjects.DecodeToken(strings.TrimPrefix(subj, "quaycast.dead.")); err == nil {
			out[id] = n
		}
	}
	return out, nil
}
