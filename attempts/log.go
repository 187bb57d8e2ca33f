package attempts

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// Log appends and reads the delivery log. Records are stored in batches: one message holds the
// records of one endpoint whose event ids share a bucket (see logBuckets), one record per line,
// on quaycast.attempts.<endpoint>.<bucket>, so that both "everything sent to this endpoint" and
// "everything sent for this event" are a subject filter, the latter with the id matched against
// the message's header (one value per record). A message per record made the server's store the
// larger part of the log's cost (bench/PERFORMANCE.md, "December 1, fifth session"). The record
// itself is the gateway's JSON, one line; this package only stores and pages.
type Log struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	window   time.Duration
	maxBytes int

	// publishing is held while batches are taken from pending and published, so that they reach
	// the server in the order they were begun (mu alone is held only to append).
	publishing sync.Mutex
	mu         sync.Mutex
	pending    map[string]*batch // by subject
	sizes      map[string]size   // of each subject's last batch: a new one is made that large
	batches    uint64            // made so far: the order to publish them in
	dropped    func(endpointID string, records int, err error)
	closed     bool
	stop       chan struct{}
	done       chan struct{}
}

// size is a batch's length in bytes and records.
type size struct{ bytes, records int }

// maxSizes bounds the remembered sizes (a subject each): past it they are forgotten at once.
const maxSizes = 1 << 16

// batch is the records of one subject not yet published.
type batch struct {
	subject    string
	n          uint64 // the batch's number: batches are published in the order they were begun
	endpointID string
	data       []byte
	events     []string // event id of each record, in order
}

// Batching bounds. A batch is published when it holds batchRecords records or batchBytes
// bytes, or when it is Window old at most: the log's records reach the server that much later.
const (
	DefaultWindow = 200 * time.Millisecond
	batchRecords  = 512
	batchBytes    = 256 << 10
)

// Options tune the log. The zero value is the default.
type Options struct {
	Window time.Duration // how long records wait to be published in a batch: DefaultWindow
}

// New opens the log (Setup creates its stream). It publishes through a JetStream context of its
// own, with a deep queue of unacknowledged publishes and a short stall: when the server falls
// behind, records are dropped (see OnDropped) rather than deliveries held up. Close publishes
// what is pending.
func New(ctx context.Context, nc *nats.Conn, o Options) (*Log, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(ctx, LogStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", LogStream, err)
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	l := &Log{js: js, stream: st, window: o.Window, maxBytes: batchBytes, pending: make(map[string]*batch), sizes: make(map[string]size),
		stop: make(chan struct{}), done: make(chan struct{})}
	if mp := int(nc.MaxPayload()) / 2; mp > 0 && mp < l.maxBytes { // room for the header
		l.maxBytes = mp
	}
	go l.publishEvery()
	return l, nil
}

// OnDropped sets what is told of records that could not be published, for metrics and a log line;
// records are dropped when the server falls behind (a full queue of publishes) or the connection
// is gone.
func (l *Log) OnDropped(f func(endpointID string, records int, err error)) {
	l.mu.Lock()
	l.dropped = f
	l.mu.Unlock()
}

// logBuckets is how many subjects an endpoint's records are spread over, by their event id. A
// subject per event made the server index one new subject per delivery, kept for the log's max
// age: about 58 bytes of the server's memory per delivery, growing without bound at a steady rate
// (the soak's RSS creep). Few buckets make full batches; a query for an event reads its bucket's
// batches and keeps the records of its id.
const logBuckets = 16

func attemptSubject(endpointID, eventID string) string {
	return "quaycast.attempts." + subjects.EncodeToken(endpointID) + "." + bucket(eventID)
}

// bucket is the event id's bucket, a hex digit of its FNV-1a hash.
func bucket(eventID string) string {
	h := uint32(2166136261)
	for i := 0; i < len(eventID); i++ {
		h = (h ^ uint32(eventID[i])) * 16777619
	}
	return string("0123456789abcdef"[h%logBuckets])
}

// hdrEventID carries the event id of each record of a message, in order, for queries by event
// within its bucket.
const hdrEventID = "Quaycast-Event-Id"

// ErrNotOneLine is returned for a record that is not one line: a batch holds one record per line.
var ErrNotOneLine = errors.New("delivery-log record is empty or holds a newline")

// Append adds a record to its batch without waiting for the server: the log is for people and must
// not slow delivery. A record that cannot be published is told to OnDropped's function.
func (l *Log) Append(endpointID, eventID string, record []byte) error {
	if len(record) == 0 || bytes.IndexByte(record, '\n') >= 0 {
		return ErrNotOneLine
	}
	subject := attemptSubject(endpointID, eventID)
	l.mu.Lock()
	b := l.pending[subject]
	if b == nil {
		l.batches++
		// As large as the subject's last batch and a quarter, up to a full one: a batch that
		// grows from small copies itself over and over, twice its size in garbage (most of the
		// log's allocation).
		last := l.sizes[subject]
		b = &batch{subject: subject, n: l.batches, endpointID: endpointID,
			data:   make([]byte, 0, min(max(4*len(record), last.bytes+last.bytes/4), l.maxBytes+len(record))),
			events: make([]string, 0, min(max(4, last.records+last.records/4), batchRecords))}
		l.pending[subject] = b
	}
	if len(b.events) > 0 {
		b.data = append(b.data, '\n')
	}
	b.data = append(b.data, record...)
	b.events = append(b.events, eventID)
	full := len(b.events) >= batchRecords || len(b.data) >= l.maxBytes || l.closed
	l.mu.Unlock()
	if full {
		l.publishFull(b)
	}
	return nil
}

// publishFull publishes a full batch now, unless it has been published meanwhile.
func (l *Log) publishFull(b *batch) {
	l.publishing.Lock()
	defer l.publishing.Unlock()
	l.mu.Lock()
	if l.pending[b.subject] != b {
		l.mu.Unlock()
		return
	}
	delete(l.pending, b.subject)
	l.remember(b)
	dropped := l.dropped
	l.mu.Unlock()
	l.publish(b, dropped)
}

// remember keeps the size of a batch about to be published, for the next of its subject; l.mu
// is held.
func (l *Log) remember(b *batch) {
	if len(l.sizes) >= maxSizes {
		clear(l.sizes)
	}
	l.sizes[b.subject] = size{len(b.data), len(b.events)}
}

// publishEvery publishes the pending batches every window, until Close.
func (l *Log) publishEvery() {
	defer close(l.done)
	t := time.NewTicker(l.window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.publishPending()
		case <-l.stop:
			return
		}
	}
}

// publishPending publishes every pending batch and returns their acknowledgements.
func (l *Log) publishPending() []jetstream.PubAckFuture {
	l.publishing.Lock()
	defer l.publishing.Unlock()
	l.mu.Lock()
	pending, dropped := l.pending, l.dropped
	if len(pending) == 0 {
		l.mu.Unlock()
		return nil
	}
	l.pending = make(map[string]*batch, len(pending))
	for _, b := range pending {
		l.remember(b)
	}
	l.mu.Unlock()
	// In the order they were begun: records of different subjects stay about in the order they
	// were appended (within a window), and a record's attempts, one subject, exactly so.
	batches := slices.SortedFunc(maps.Values(pending), func(a, b *batch) int { return cmp.Compare(a.n, b.n) })
	var acks []jetstream.PubAckFuture
	for _, b := range batches {
		if f := l.publish(b, dropped); f != nil {
			acks = append(acks, f)
		}
	}
	return acks
}

// publish sends one batch; it is told to dropped when the publish fails at once.
func (l *Log) publish(b *batch, dropped func(string, int, error)) jetstream.PubAckFuture {
	m := &nats.Msg{Subject: b.subject, Data: b.data, Header: nats.Header{hdrEventID: b.events}}
	f, err := l.js.PublishMsgAsync(m, jetstream.WithStallWait(5*time.Millisecond))
	if err != nil {
		if dropped != nil {
			dropped(b.endpointID, len(b.events), fmt.Errorf("append %d delivery-log records of %s: %w", len(b.events), b.endpointID, err))
		}
		return nil
	}
	return f
}

// Flush publishes the pending batches and waits until the server has stored them or ctx ends,
// so that a read after it sees every record appended before it.
func (l *Log) Flush(ctx context.Context) {
	for _, f := range l.publishPending() {
		select {
		case <-f.Ok():
		case <-f.Err():
		case <-ctx.Done():
			return
		}
	}
}

// Close publishes what is pending and stops the batching; records appended later are published
// one at a time. It waits for the server's acknowledgements at most until ctx ends.
func (l *Log) Close(ctx context.Context) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.Flush(ctx)
}

// Record is one stored record and its position, the pagination cursor.
type Record struct {
	Pos  uint64    // Position of the record: see Position
	Time time.Time // when its batch was stored
	Data []byte
}

// A record's position is its message's stream sequence and its line in the message: cursors
// and links name one record, and order them as they were stored. A message of one record (all
// that was written before batches) has its record at line 0.
const (
	lineBits = 12 // more than batchRecords lines
	lineMask = 1<<lineBits - 1
)

// Position is the position of line of the message seq.
func Position(seq uint64, line int) uint64 { return seq<<lineBits | uint64(line) }

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
// (0 when the log is exhausted). It first publishes this gateway's pending batches.
func (l *Log) List(ctx context.Context, q Query) ([]Record, uint64, error) {
	if q.Limit <= 0 {
		return nil, q.After, nil
	}
	l.flushForRead(ctx)
	ep, ev := "*", "*"
	if q.EndpointID != "" {
		ep = subjects.EncodeToken(q.EndpointID)
	}
	if q.EventID != "" {
		// Records written before 16 buckets (256 before, and a subject per event before that)
		// are not found by event; they expire with the log's max age (72 h by default).
		ev = bucket(q.EventID)
	}
	filter := "quaycast.attempts." + ep + "." + ev
	var out []Record
	seq, seen := q.After>>lineBits, int(q.After&lineMask) // lines of seq up to seen were returned
	if seq == 0 {
		seq, seen = 1, -1
	}
	last := q.After // position of the last record read
	for scanned := 0; ; {
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read delivery log: %w", err)
		}
		if m.Sequence != seq {
			seen = -1
		}
		if !q.Until.IsZero() && m.Time.After(q.Until) {
			return out, 0, nil // the log is in time order: nothing later matches
		}
		events := m.Header.Values(hdrEventID)
		data := m.Data
		for line := 0; len(data) > 0 || line == 0; line++ {
			rec := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				rec, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if line <= seen {
				continue
			}
			last = Position(m.Sequence, line)
			otherEvent := q.EventID != "" && (line >= len(events) || events[line] != q.EventID) // of its bucket
			if !otherEvent && (q.Since.IsZero() || !m.Time.Before(q.Since)) && (q.Match == nil || q.Match(rec)) {
				out = append(out, Record{Pos: last, Time: m.Time, Data: rec})
			}
			if scanned++; len(out) == q.Limit || scanned == maxScan {
				return out, last, nil
			}
		}
		seq, seen = m.Sequence+1, -1
	}
}

// flushForRead publishes the pending batches before a read, waiting a short while at most.
func (l *Log) flushForRead(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	l.Flush(ctx)
}

// Tail is the cursor from which List returns the newest n records (0 when the log is empty);
// with n 0, the cursor from which List follows what comes next.
func (l *Log) Tail(ctx context.Context, n int) (uint64, error) {
	l.flushForRead(ctx)
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read delivery log: %w", err)
	}
	seq := info.State.LastSeq
	if seq == 0 {
		return 0, nil
	}
	if n == 0 {
		return Position(seq, lineMask), nil
	}
	// Walk back message by message, counting lines, until n records are behind the cursor.
	for ; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := l.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read delivery log: %w", err)
		}
		lines := bytes.Count(m.Data, []byte{'\n'}) + 1
		if lines >= n {
			return Position(seq, lines-n) - 1, nil
		}
		n -= lines
	}
	return 0, nil
}
