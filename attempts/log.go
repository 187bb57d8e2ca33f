package attempts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// Log appends and reads the delivery log: one record per POST made, in LogStream on
// quaycast.attempts.<endpoint>.<bucket of the event id> (see logBuckets), so that both "everything
// sent to this endpoint" and "everything sent for this event" are a subject filter, the latter
// with the id matched in each record's header. The record itself is
// the gateway's JSON; this package only stores and pages.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// New opens the log (Setup creates its stream). It publishes through a JetStream
// context of its own, with a deep queue of unacknowledged publishes and a short stall: when the
// server falls behind, records are dropped (Append fails) rather than deliveries held up.
func New(ctx context.Context, nc *nats.Conn) (*Log, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(ctx, LogStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", LogStream, err)
	}
	return &Log{js: js, stream: st}, nil
}

// logBuckets is how many subjects an endpoint's records are spread over, by their event id. A
// subject per event made the server index one new subject per delivery, kept for the log's max
// age: about 58 bytes of the server's memory per delivery, growing without bound at a steady rate
// (the soak's RSS creep). An event's records share its bucket's subject, and a query for an
// event reads that one and matches the id in each record's header.
const logBuckets = 256

func attemptSubject(endpointID, eventID string) string {
	return "quaycast.attempts." + subjects.EncodeToken(endpointID) + "." + bucket(eventID)
}

// bucket is the event id's bucket, two hex digits of its FNV-1a hash.
func bucket(eventID string) string {
	h := uint32(2166136261)
	for i := 0; i < len(eventID); i++ {
		h = (h ^ uint32(eventID[i])) * 16777619
	}
	const hex = "0123456789abcdef"
	b := h % logBuckets
	return string([]byte{hex[b>>4], hex[b&0xf]})
}

// hdrEventID carries a record's event id, for queries by event within its bucket.
const hdrEventID = "Quaycast-Event-Id"

// Append stores a record without waiting for the server: the log is for people and must not slow
// delivery. A failed append is returned only if it fails at once.
func (l *Log) Append(endpointID, eventID string, record []byte) error {
	m := nats.NewMsg(attemptSubject(endpointID, eventID))
	m.Data = record
	m.Header.Set(hdrEventID, eventID)
	if _, err := l.js.PublishMsgAsync(m, jetstream.WithStallWait(5*time.Millisecond)); err != nil {
		return fmt.Errorf("append attempt of %s to %s: %w", eventID, endpointID, err)
	}
	return nil
}

// Record is one stored record and its position, the pagination cursor.
type Record struct {
	Seq  uint64
	Time time.Time
	Data []byte
}

// Query selects records: of one endpoint, or of one event, or both.
type Query struct {
	EndpointID, EventID string
	After               uint64                 // cursor: records with a greater position
	Since, Until        time.Time              // zero: unbounded
	Match               func(data []byte) bool // nil: every record
	Limit               int
}

// maxScan bounds the records one query reads, so a selective filter over a long log answers in
// bounded time: it then returns fewer than Limit with a cursor to go on from.
const maxScan = 5000

// List returns up to q.Limit matching records, oldest first, and the cursor to continue from
// (0 when the log is exhausted).
func (l *Log) List(ctx context.Context, q Query) ([]Record, uint64, error) {
	ep, ev := "*", "*"
	if q.EndpointID != "" {
		ep = subjects.EncodeToken(q.EndpointID)
	}
	if q.EventID != "" {
		// Records written before the buckets had a subject of the event's own; they expire with
		// the log's max age (72 h by default) and are not found by event meanwhile.
		ev = bucket(q.EventID)
	}
	filter := "quaycast.attempts." + ep + "." + ev
	var out []Record
	seq := q.After + 1
	for scanned := 0; len(out) < q.Limit; scanned++ {
		if scanned == maxScan {
			return out, seq - 1, nil
		}
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read delivery log: %w", err)
		}
		seq = m.Sequence + 1
		if !q.Until.IsZero() && m.Time.After(q.Until) {
			return out, 0, nil // the log is in time order: nothing later matches
		}
		if !q.Since.IsZero() && m.Time.Before(q.Since) || q.Match != nil && !q.Match(m.Data) ||
			q.EventID != "" && m.Header.Get(hdrEventID) != q.EventID { // another event of its bucket
			continue
		}
		out = append(out, Record{Seq: m.Sequence, Time: m.Time, Data: m.Data})
	}
	return out, seq - 1, nil
}

// Last is the position of the newest record in the log (0 when it is empty): a cursor from which
// List follows what comes next.
func (l *Log) Last(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read delivery log: %w", err)
	}
	return info.State.LastSeq, nil
}
