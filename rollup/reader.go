package rollup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// maxRecords bounds one read: an hour of 10,000 busy endpoints is 600,000 records; beyond this
// the read stops and says so.
const maxRecords = 200_000

// ErrTooMany is a read that stopped at maxRecords.
var ErrTooMany = errors.New("more delivery figures than one read takes")

// cacheFor is how long a read of every endpoint's hour is reused: pages that list endpoints are
// opened often, the figures change once a minute.
const cacheFor = 10 * time.Second

// Reader reads the minute records, on any gateway.
type Reader struct {
	js jetstream.JetStream

	mu       sync.Mutex
	cached   []Minute
	cachedAt time.Time
}

// NewReader returns a reader over js (Setup creates the stream).
func NewReader(js jetstream.JetStream) *Reader { return &Reader{js: js} }

// Hour is every record of the last hour, of one endpoint, or of all when endpointID is empty
// (those reused for a few seconds), oldest first.
func (r *Reader) Hour(ctx context.Context, endpointID string) ([]Minute, error) {
	now := time.Now()
	since := now.Add(-time.Hour).Truncate(time.Minute)
	if endpointID != "" {
		return r.read(ctx, since, subject(endpointID))
	}
	r.mu.Lock()
	if !r.cachedAt.IsZero() && now.Sub(r.cachedAt) < cacheFor {
		out := r.cached
		r.mu.Unlock()
		return trim(out, since), nil
	}
	r.mu.Unlock()
	recs, err := r.read(ctx, since, subjectPrefix+">")
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cached, r.cachedAt = recs, now
	r.mu.Unlock()
	return recs, nil
}

// trim drops records of minutes before since.
func trim(recs []Minute, since time.Time) []Minute {
	i := 0
	for i < len(recs) && recs[i].Start.Before(since) {
		i++
	}
	return recs[i:]
}

// read takes the records on filter stored since, through a consumer of its own that acknowledges
// nothing and is deleted after.
func (r *Reader) read(ctx context.Context, since time.Time, filter string) ([]Minute, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := since
	cons, err := r.js.CreateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("read delivery figures: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.js.DeleteConsumer(dctx, Stream, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	var out []Minute
	for empty := 0; pending > 0; {
		if len(out) >= maxRecords {
			return nil, ErrTooMany
		}
		batch, err := cons.FetchNoWait(int(min(pending, 1000)))
		if err != nil {
			return nil, fmt.Errorf("read delivery figures: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var rec Minute
			if json.Unmarshal(m.Data(), &rec) == nil && rec.EndpointID != "" {
				out = append(out, rec)
			}
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read delivery figures: %w", err)
		}
		if n == 0 {
			// Counted pending but none came: the server is still catching up. A bounded wait.
			if empty++; empty == 50 {
				return nil, fmt.Errorf("read delivery figures: %d records pending, none delivered", pending)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("read delivery figures: %w", ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Minute) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// Totals adds the records up per endpoint.
func Totals(recs []Minute) map[string]*Minute {
	out := map[string]*Minute{}
	for i := range recs {
		m := out[recs[i].EndpointID]
		if m == nil {
			m = &Minute{EndpointID: recs[i].EndpointID, Start: recs[i].Start}
			out[recs[i].EndpointID] = m
		}
		m.Merge(&recs[i])
	}
	return out
}

// PerMinute adds the records of one endpoint up per minute (gateways that shared the minute, as
// at a handover, together), for the 60 minutes before the current one: a zero Minute for a
// minute without traffic.
func PerMinute(recs []Minute, endpointID string, now time.Time) []Minute {
	first := now.UTC().Truncate(time.Minute).Add(-time.Hour)
	out := make([]Minute, 60)
	for i := range out {
		out[i] = Minute{EndpointID: endpointID, Start: first.Add(time.Duration(i) * time.Minute)}
	}
	for i := range recs {
		if recs[i].EndpointID != endpointID {
			continue
		}
		k := int(recs[i].Start.Sub(first) / time.Minute)
		if k >= 0 && k < len(out) {
			out[k].Merge(&recs[i])
		}
	}
	return out
}
