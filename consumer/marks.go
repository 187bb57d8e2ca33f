package consumer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// MarksBucket is the durable delivery record: per (endpoint, entity), the highest stream sequence
// delivered or dead-lettered. Delivery is strictly ordered per (endpoint, entity), so that one
// number recognises every event of the entity already done when JetStream sends it again after a
// gateway restart (ResetConsumer restarts at the ack floor and resends what was acked above it).
// Marks are written in batches every flush interval, so a crash resends at most what was in
// flight and what was delivered within the last interval. Keys expire with the events stream.
const MarksBucket = "quaycast_delivery"

// Marks stores delivery marks. A nil *Marks keeps them in memory only.
type Marks struct {
	kv    jetstream.KeyValue
	js    jetstream.JetStream
	every time.Duration
	log   zerolog.Logger

	mu      sync.Mutex
	sources map[*delivered]struct{} // every endpoint's marks, whose changes flush writes
	floor   func(endpointID string) uint64
}

// markRecord is a stored mark: the highest sequence done and, while the entity's head is being
// retried, its attempts and the time of the first (the retry budget survives restarts).
type markRecord struct {
	Seq      uint64    `json:"seq,omitempty"`
	Head     uint64    `json:"head,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	First    time.Time `json:"first,omitzero"`
}

// NewMarks opens (creating if needed) the bucket; records older than maxAge expire (the events
// stream keeps nothing older). every is the flush interval.
func NewMarks(ctx context.Context, js jetstream.JetStream, maxAge, every time.Duration, replicas int, log zerolog.Logger) (*Marks, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: MarksBucket, Description: "quaycast: per endpoint and entity, the highest sequence delivered",
		History: 1, TTL: maxAge, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", MarksBucket, err)
	}
	return &Marks{kv: kv, js: js, every: every, log: log, sources: make(map[*delivered]struct{})}, nil
}

// markKey is the bucket key of an entity's mark: the endpoint id, a dot, the entity in base64url
// (entities may hold any UTF-8; keys may not).
func markKey(endpointID, entity string) string {
	return endpointID + "." + base64.RawURLEncoding.EncodeToString([]byte(entity))
}

// register has flush write d's changes; unregister stops it (the endpoint was deleted).
func (m *Marks) register(d *delivered) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources[d] = struct{}{}
	m.mu.Unlock()
}

func (m *Marks) unregister(d *delivered) {
	if m == nil || d == nil {
		return
	}
	m.mu.Lock()
	delete(m.sources, d)
	m.mu.Unlock()
}

// markRecordOf is what is stored for a mark.
func markRecordOf(mk mark) markRecord {
	r := markRecord{Seq: mk.seq}
	if mk.head > mk.seq {
		r.Head, r.Attempts, r.First = mk.head, mk.attempts, mk.first
	}
	return r
}

// load reads every endpoint's marks, by endpoint id: once at start, with one watch rather than one
// per endpoint.
func (m *Marks) load(ctx context.Context) (map[string]map[string]markRecord, error) {
	out := make(map[string]map[string]markRecord)
	if m == nil {
		return out, nil
	}
	w, err := m.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read delivery marks: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("read delivery marks: watch stopped")
			}
			if e == nil {
				return out, nil
			}
			ep, b64, ok := strings.Cut(e.Key(), ".")
			entity, err := base64.RawURLEncoding.DecodeString(b64)
			var r markRecord
			if !ok || err != nil || json.Unmarshal(e.Value(), &r) != nil {
				continue // not ours to read: it expires
			}
			if out[ep] == nil {
				out[ep] = make(map[string]markRecord)
			}
			out[ep][string(entity)] = r
		}
	}
}

// restoreInto puts marks read by load into d.
func restoreInto(d *delivered, marks map[string]markRecord) {
	for entity, r := range marks {
		d.restore(entity, r.Seq)
		if r.Head > r.Seq {
			d.restoreHead(entity, r.Head, r.Attempts, r.First)
		}
	}
}

// Run writes the marks every flush interval until ctx ends, then once more. floor gives, per
// endpoint, the lowest stream sequence it may still be sent again after a reset (0: any): marks
// below it are not written — in a healthy flow that is nearly all of them, so the record costs
// writes only where a restart would resend.
func (m *Marks) Run(ctx context.Context, floor func(endpointID string) uint64) {
	m.floor = floor
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

// flush writes what changed since the last flush, all at once; what fails is kept for the next.
func (m *Marks) flush(ctx context.Context) {
	m.mu.Lock()
	sources := make([]*delivered, 0, len(m.sources))
	for d := range m.sources {
		sources = append(sources, d)
	}
	m.mu.Unlock()
	type pending struct {
		d      *delivered
		entity string
		f      jetstream.PubAckFuture
	}
	var futures []pending
	for _, d := range sources {
		changed := d.takeDirty()
		if len(changed) == 0 {
			continue
		}
		floor := m.floor(d.endpointID)
		for entity, mk := range changed {
			r := markRecordOf(mk)
			if r.Head == 0 && r.Seq < floor {
				continue // acknowledged below the ack floor: never sent again
			}
			b, _ := json.Marshal(r) // numbers and a time always marshal
			f, err := m.js.PublishAsync("$KV."+MarksBucket+"."+markKey(d.endpointID, entity), b)
			if err != nil {
				d.redirty(entity)
				continue
			}
			futures = append(futures, pending{d, entity, f})
		}
	}
	failed := 0
	for _, p := range futures {
		select {
		case <-p.f.Ok():
			continue
		case <-p.f.Err():
		case <-ctx.Done():
		}
		p.d.redirty(p.entity)
		failed++
	}
	if failed > 0 {
		m.log.Warn().Int("failed", failed).Int("written", len(futures)-failed).Msg("write delivery marks: kept for the next flush")
	}
}
