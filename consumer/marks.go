package consumer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// MarksStream is the durable delivery record: per endpoint, a log of its entities' marks (the
// last event delivered or dead-lettered, see progress) on the subject quaycast.marks.<endpoint>.
// Each flush appends one message per endpoint holding every mark that changed — a few writes a
// second however many entities move, where a key per entity cost a write per delivery. Now and
// then a snapshot of all an endpoint's marks is appended and everything before it on its subject
// purged, so reading the log back at start stays proportional to the marks. Messages older than
// the events stream's max age expire with it: their events are gone.
const MarksStream = "QUAYCAST_MARKS"

const marksSubjects = "quaycast.marks.>"

// LegacyMarksBucket held one key per (endpoint, entity) before the log; read once and deleted.
const LegacyMarksBucket = "quaycast_delivery"

// maxMarksChunk bounds one message of the log (the server's default max payload is 1 MiB).
const maxMarksChunk = 256 << 10

// Marks writes and reads the durable delivery record. A nil *Marks keeps marks in memory only.
type Marks struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	every  time.Duration
	maxAge time.Duration
	log    zerolog.Logger

	flushing sync.Mutex // one writer at a time, so an endpoint's entries land in the order taken

	mu      sync.Mutex
	sources map[*progress]*logSize // every endpoint's marks, whose changes flush writes
	dirty   map[*progress]struct{} // those changed since the last flush: all a flush walks
	// releases are handovers waiting for the writer: the next to write takes them all.
	releases []*markWrite
	pruned   time.Time // when marks whose events left the stream were last forgotten
}

// pruneEvery is how often a flush also forgets, over every endpoint, the marks whose events
// have left the stream (hours or days after they were set): walking every mark each flush cost
// 4–37 ms a second at 10,000 endpoints or 200,000 entities (BenchmarkMarksFlush).
const pruneEvery = time.Minute

// logSize is how many entries an endpoint's log holds since its last snapshot.
type logSize struct{ entries int }

// markEntry is one entity's state in the log; a later entry for the entity replaces it.
type markEntry struct {
	Entity   string    `json:"e"`
	Seq      uint64    `json:"s,omitempty"`
	ID       string    `json:"i,omitempty"`
	At       int64     `json:"t,omitempty"`
	Head     uint64    `json:"h,omitempty"`
	Attempts int       `json:"a,omitempty"`
	First    time.Time `json:"f,omitzero"`
}

// NewMarks opens (creating if needed) the record's stream; entries older than maxAge expire (the
// events stream keeps nothing older). every is the flush interval.
func NewMarks(ctx context.Context, js jetstream.JetStream, maxAge, every time.Duration, replicas int, log zerolog.Logger) (*Marks, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: MarksStream, Description: "quaycast: per endpoint, the last event delivered of each entity",
		Subjects: []string{marksSubjects}, Storage: jetstream.FileStorage, MaxAge: maxAge,
		Replicas: max(replicas, 1), AllowRollup: true, MaxMsgSize: 2 * maxMarksChunk,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", MarksStream, err)
	}
	return &Marks{js: js, stream: s, every: every, maxAge: maxAge, log: log,
		sources: make(map[*progress]*logSize), dirty: make(map[*progress]struct{}), pruned: time.Now()}, nil
}

func marksSubject(endpointID string) string { return "quaycast.marks." + endpointID }

// register has flush write d's changes; unregister stops it (the endpoint was deleted).
func (m *Marks) register(d *progress) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources[d] = &logSize{}
	m.mu.Unlock()
}

func (m *Marks) unregister(d *progress) {
	if m == nil || d == nil {
		return
	}
	m.mu.Lock()
	delete(m.sources, d)
	delete(m.dirty, d)
	m.mu.Unlock()
}

// changed notes that d has changes to write. d calls it under its own lock, on its first
// change since its last flush: the lock order is progress, then Marks.
func (m *Marks) changed(d *progress) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if _, ok := m.sources[d]; ok {
		m.dirty[d] = struct{}{}
	}
	m.mu.Unlock()
}

// forget deletes a deleted endpoint's log.
func (m *Marks) forget(ctx context.Context, endpointID string) error {
	if m == nil {
		return nil
	}
	if err := m.stream.Purge(ctx, jetstream.WithPurgeSubject(marksSubject(endpointID))); err != nil {
		return fmt.Errorf("purge delivery marks of %s: %w", endpointID, err)
	}
	return nil
}

// recorded is what load read back: per endpoint, per entity, the last entry.
type recorded map[string]*endpointLog

// endpointLog is an endpoint's marks as read back, and how many entries its log holds.
type endpointLog struct {
	entries map[string]markEntry
	logged  int
}

func (r recorded) put(endpointID string, e markEntry) {
	l := r[endpointID]
	if l == nil {
		l = &endpointLog{entries: make(map[string]markEntry)}
		r[endpointID] = l
	}
	l.entries[e.Entity] = e
	l.logged++
}

// load reads every endpoint's log, once at start, with one ordered consumer.
func (m *Marks) load(ctx context.Context) (recorded, error) {
	out := make(recorded)
	if m == nil {
		return out, nil
	}
	if err := m.migrate(ctx); err != nil { // duplicates at worst: the log is read all the same
		m.log.Warn().Err(err).Msg("delivery marks of the previous release not moved: events delivered before may be sent again")
	}
	info, err := m.stream.Info(ctx)
	if err != nil {
		return out, fmt.Errorf("read delivery marks: %w", err)
	}
	if info.State.Msgs > 0 {
		if err := m.read(ctx, marksSubjects, info.State.LastSeq, out); err != nil {
			return out, err
		}
	}
	m.pruneLoaded(out)
	return out, nil
}

// loadEndpoint reads one endpoint's log: when a gateway takes an endpoint over from another, what
// that one delivered since this one started.
func (m *Marks) loadEndpoint(ctx context.Context, endpointID string) (*endpointLog, error) {
	if m == nil {
		return nil, nil
	}
	last, err := m.stream.GetLastMsgForSubject(ctx, marksSubject(endpointID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery marks of %s: %w", endpointID, err)
	}
	out := make(recorded)
	if err := m.read(ctx, marksSubject(endpointID), last.Sequence, out); err != nil {
		return nil, err
	}
	m.pruneLoaded(out)
	return out[endpointID], nil
}

// read puts the entries of the log on filter, up to sequence last, into out.
func (m *Marks) read(ctx context.Context, filter string, last uint64, out recorded) error {
	cons, err := m.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("read delivery marks: %w", err)
	}
	for seq := uint64(0); seq < last; {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read delivery marks: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			if meta, err := msg.Metadata(); err == nil {
				seq = meta.Sequence.Stream
			}
			endpointID := strings.TrimPrefix(msg.Subject(), "quaycast.marks.")
			var entries []markEntry
			if json.Unmarshal(msg.Data(), &entries) != nil {
				entries = nil // not ours to read: it expires
			}
			for _, e := range entries {
				out.put(endpointID, e)
			}
			if seq >= last {
				break // the last one: do not wait for the fetch to expire
			}
		}
		if seq >= last {
			break
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read delivery marks: %w", err)
		}
		if n == 0 {
			break // the rest expired meanwhile
		}
	}
	return nil
}

// pruneLoaded drops marks whose events have left the stream.
func (m *Marks) pruneLoaded(out recorded) {
	cutoff := time.Now().Add(-m.maxAge).Unix()
	for _, l := range out {
		for entity, e := range l.entries {
			if e.At < cutoff && e.Head == 0 {
				delete(l.entries, entity)
			}
		}
	}
}

// migrate moves the bucket of the release before the log (one key per endpoint and entity) into
// the log, then deletes it.
func (m *Marks) migrate(ctx context.Context) error {
	kv, err := m.js.KeyValue(ctx, LegacyMarksBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read old delivery marks: %w", err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read old delivery marks: %w", err)
	}
	defer func() { _ = w.Stop() }()
	old := make(map[string][]markEntry)
	for e := range w.Updates() {
		if e == nil {
			break
		}
		ep, b64, ok := strings.Cut(e.Key(), ".")
		entity, err := base64.RawURLEncoding.DecodeString(b64)
		var r struct {
			Seq, Head uint64
			Attempts  int
			First     time.Time
		}
		if !ok || err != nil || json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		old[ep] = append(old[ep], markEntry{Entity: string(entity), Seq: r.Seq, At: e.Created().Unix(), Head: r.Head, Attempts: r.Attempts, First: r.First})
	}
	for ep, entries := range old {
		if err := m.write(ctx, ep, entries, false); err != nil {
			return fmt.Errorf("move old delivery marks: %w", err)
		}
	}
	if err := m.js.DeleteKeyValue(ctx, LegacyMarksBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("delete old delivery marks: %w", err)
	}
	m.log.Info().Int("endpoints", len(old)).Msg("delivery marks moved from the old bucket to the log")
	return nil
}

// restoreInto puts an endpoint's marks read by load into d.
func restoreInto(d *progress, l *endpointLog) {
	if l == nil {
		return
	}
	for entity, e := range l.entries {
		d.set(entity, e)
	}
	d.durable.logged(d, l.logged)
}

// logged records that an endpoint's log already holds n entries (read back at start), so that
// a crash loop cannot grow it without a snapshot.
func (m *Marks) logged(d *progress, n int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if s := m.sources[d]; s != nil {
		s.entries = n
	}
	m.mu.Unlock()
}

// Run writes the marks every flush interval until ctx ends, then once more.
func (m *Marks) Run(ctx context.Context) {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			m.flush(fctx)
			cancel()
			return
		}
	}
}

// flush appends, per endpoint changed since the last flush, what changed — or, when the log has
// grown to twice its marks, a snapshot of them all that replaces the log. What fails is kept for
// the next flush. Every pruneEvery it first forgets, everywhere, the marks of events that have
// left the stream.
func (m *Marks) flush(ctx context.Context) {
	m.flushing.Lock()
	defer m.flushing.Unlock()
	cutoff := time.Now().Add(-m.maxAge).Unix()
	m.mu.Lock()
	var all []*progress
	if time.Since(m.pruned) >= pruneEvery {
		m.pruned = time.Now()
		all = make([]*progress, 0, len(m.sources))
		for d := range m.sources {
			all = append(all, d)
		}
	}
	m.mu.Unlock()
	for _, d := range all { // not under m.mu: prune takes d's lock, which comes first
		d.prune(cutoff)
	}
	m.mu.Lock()
	ws := make([]*markWrite, 0, len(m.dirty))
	for d := range m.dirty {
		if n := m.sources[d]; n != nil {
			ws = append(ws, &markWrite{d: d, logged: n.entries})
		}
	}
	clear(m.dirty)
	m.mu.Unlock()
	m.writeAll(ctx, ws)
	failed := 0
	for _, w := range ws {
		if w.err != nil {
			failed++
			m.log.Debug().Err(w.err).Str("endpoint_id", w.d.endpointID).Msg("write delivery marks")
		}
	}
	if failed > 0 {
		m.log.Warn().Int("endpoints", failed).Msg("write delivery marks: kept for the next flush")
	}
}

// release writes what changed in d's marks, then stops writing them: the endpoint is handed to
// another gateway, which reads them back. Releases that come together are written together (a
// gateway that stops releases all its endpoints at once): the first to write takes all those
// waiting.
func (m *Marks) release(ctx context.Context, d *progress) error {
	if m == nil || d == nil {
		return nil
	}
	mine := &markWrite{d: d, released: make(chan struct{})}
	m.mu.Lock()
	if m.sources[d] == nil {
		m.mu.Unlock()
		return nil
	}
	m.releases = append(m.releases, mine)
	m.mu.Unlock()

	m.flushing.Lock()
	m.mu.Lock()
	batch := m.releases
	m.releases = nil
	ws := make([]*markWrite, 0, len(batch))
	for _, w := range batch {
		if n := m.sources[w.d]; n != nil { // not unregistered meanwhile (its endpoint deleted)
			w.logged = n.entries
			ws = append(ws, w)
		}
	}
	m.mu.Unlock()
	cutoff := time.Now().Add(-m.maxAge).Unix()
	for _, w := range ws {
		w.d.prune(cutoff)
	}
	// The batch is every waiting caller's, not only this one's: its own deadline, not this
	// caller's, which may have run down while it waited for the writer.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	m.writeAll(bctx, ws)
	cancel()
	for _, w := range batch {
		m.unregister(w.d)
		close(w.released)
	}
	m.flushing.Unlock()
	<-mine.released // by this call or by one before it, which took it in its batch
	return mine.err
}

// releaseTimeout bounds the writing of one batch of handovers (10,000 endpoints: about a second).
const releaseTimeout = 10 * time.Second

// markWrite is one endpoint's changes on their way to its log.
type markWrite struct {
	d        *progress
	logged   int // entries its log holds
	entries  []markEntry
	snapshot bool
	acks     []jetstream.PubAckFuture
	dropped  bool // no longer registered when its window came: not written
	err      error
	released chan struct{} // a release's: closed once written, or not
}

// marksWindow is how many endpoints' changes are published before their acks are awaited: one
// round trip per window, not per endpoint (a flush after a burst to 10,000 endpoints, or their
// handover at a stop, took seconds awaiting each in turn).
const marksWindow = 256

// writeAll writes the changes of each of ws's endpoints: what changed since the last write or,
// when its log has grown to twice its marks, a snapshot of them all that replaces the log. What
// fails is kept for the next flush (w.err says why).
func (m *Marks) writeAll(ctx context.Context, ws []*markWrite) {
	for window := range slices.Chunk(ws, marksWindow) {
		m.mu.Lock()
		for _, w := range window {
			// Unregistered while earlier windows were written (its endpoint deleted, or the
			// gateway fenced): its marks are no longer this gateway's to write.
			w.dropped = m.sources[w.d] == nil
		}
		m.mu.Unlock()
		for _, w := range window {
			if w.dropped {
				continue
			}
			w.entries = w.d.takeDirty()
			if len(w.entries) == 0 {
				continue
			}
			if w.snapshot = w.logged+len(w.entries) > 2*w.d.len()+1000; w.snapshot {
				w.entries = w.d.snapshot()
			}
			w.acks, w.err = m.publish(w.d.endpointID, w.entries)
		}
		for _, w := range window {
			if len(w.entries) == 0 {
				continue
			}
			if w.err == nil {
				w.err = m.confirm(ctx, w.d.endpointID, w.acks, w.snapshot)
			}
			if w.err != nil {
				w.d.redirty(w.entries)
				continue
			}
			m.mu.Lock()
			if n := m.sources[w.d]; n != nil {
				if w.snapshot {
					n.entries = 0
				}
				n.entries += len(w.entries)
			}
			m.mu.Unlock()
		}
	}
}

// write appends entries to an endpoint's log and waits until it holds them.
func (m *Marks) write(ctx context.Context, endpointID string, entries []markEntry, snapshot bool) error {
	acks, err := m.publish(endpointID, entries)
	if err != nil {
		return err
	}
	return m.confirm(ctx, endpointID, acks, snapshot)
}

// publish appends entries to an endpoint's log in messages of at most maxMarksChunk, without
// waiting for their acks.
func (m *Marks) publish(endpointID string, entries []markEntry) ([]jetstream.PubAckFuture, error) {
	subject := marksSubject(endpointID)
	var acks []jetstream.PubAckFuture
	for chunk := range chunks(entries) {
		f, err := m.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: chunk})
		if err != nil {
			return nil, err
		}
		acks = append(acks, f)
	}
	return acks, nil
}

// confirm waits for a write's acks; a snapshot then purges what came before its first message.
func (m *Marks) confirm(ctx context.Context, endpointID string, acks []jetstream.PubAckFuture, snapshot bool) error {
	var first uint64
	for _, f := range acks {
		select {
		case ack := <-f.Ok():
			if first == 0 {
				first = ack.Sequence
			}
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if snapshot && first > 0 {
		// Entries replace earlier ones, so a crash before this purge leaves a longer log, not a
		// wrong one.
		return m.stream.Purge(ctx, jetstream.WithPurgeSubject(marksSubject(endpointID)), jetstream.WithPurgeSequence(first))
	}
	return nil
}

// chunks encodes entries as JSON arrays of at most maxMarksChunk bytes each.
func chunks(entries []markEntry) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		buf := []byte{'['}
		for _, e := range entries {
			b, _ := json.Marshal(e) // strings, numbers and a time always marshal
			if len(buf)+len(b) >= maxMarksChunk && len(buf) > 1 {
				buf[len(buf)-1] = ']'
				if !yield(buf) {
					return
				}
				buf = []byte{'['}
			}
			buf = append(append(buf, b...), ',')
		}
		if len(buf) > 1 {
			buf[len(buf)-1] = ']'
			yield(buf)
		}
	}
}
