package rollup

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/subjects"
)

// Recorder counts the attempts of the endpoints a gateway delivers to and publishes each
// minute's counts, one record per endpoint with traffic.
type Recorder struct {
	js       jetstream.JetStream
	log      zerolog.Logger
	gateway  string // names the records
	instance string // this process, in the records' message ids

	mu      sync.Mutex
	start   time.Time          // of the minute being counted
	current map[string]*Minute // endpoint id -> its counts this minute; kept while it has traffic
	out     []Minute           // reused by flush
	flushes uint64             // in the records' message ids
}

// NewRecorder returns a recorder publishing through js; gateway names the records' writer.
func NewRecorder(js jetstream.JetStream, gateway string, log zerolog.Logger) *Recorder {
	return &Recorder{
		js: js, log: log, gateway: gateway, instance: nuid.Next(),
		start: time.Now().UTC().Truncate(time.Minute), current: map[string]*Minute{},
	}
}

// Record counts one attempt: its outcome (delivered, retry, permanent, gone), its duration in
// milliseconds and when it started. Cheap on the delivery path: a lock and a map look-up; it
// allocates only for an endpoint's first attempt after an idle minute.
func (r *Recorder) Record(endpointID, outcome string, ms float64, at time.Time) {
	r.mu.Lock()
	m := r.current[endpointID]
	if m == nil {
		m = &Minute{EndpointID: endpointID}
		r.current[endpointID] = m
	}
	m.add(outcome, ms, at)
	r.mu.Unlock()
}

// Run publishes each minute's records at the minute's end until ctx ends, then the counts of the
// minute begun, so that a stopped gateway's last seconds are not lost. It returns when done.
func (r *Recorder) Run(ctx context.Context) {
	for {
		r.mu.Lock()
		next := r.start.Add(time.Minute)
		r.mu.Unlock()
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			r.Flush(ctx)
			return
		case <-t.C:
		}
		r.Flush(ctx)
	}
}

// flushTimeout bounds one flush's publishes together: a stopping gateway, or one whose NATS is
// down, waits at most this long for the minute's figures.
const flushTimeout = 10 * time.Second

// Flush publishes the counts of the minute begun and starts the next minute. The counts are
// taken out before they are published, so a flush is not cut short by ctx's cancellation (a
// shutdown during the minute's flush lost the rest of it); flushTimeout bounds it instead. What
// cannot be published is logged once per flush.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	start := r.start
	r.start = time.Now().UTC().Truncate(time.Minute)
	if !r.start.After(start) { // flushed early (at stop): the records still name their minute
		r.start = start
	}
	r.out = r.out[:0]
	for id, m := range r.current {
		if m.Attempts() == 0 {
			delete(r.current, id) // idle a whole minute: forget it
			continue
		}
		rec := *m
		rec.Start, rec.Gateway = start, r.gateway
		r.out = append(r.out, rec)
		*m = Minute{EndpointID: id}
	}
	out := r.out
	r.flushes++
	flush := r.flushes
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	failed := 0
	var first error
	acks := make([]jetstream.PubAckFuture, 0, min(len(out), publishWindow))
	for window := range slices.Chunk(out, publishWindow) {
		acks = acks[:0]
		for i := range window {
			f, err := r.publish(&window[i], flush)
			if err != nil {
				if failed++; first == nil {
					first = err
				}
				continue
			}
			acks = append(acks, f)
		}
		for _, f := range acks {
			var err error
			select {
			case <-f.Ok():
			case err = <-f.Err():
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				if failed++; first == nil {
					first = err
				}
			}
		}
	}
	if failed > 0 {
		r.log.Warn().Err(first).Int("endpoints", failed).Int("of", len(out)).Time("minute", start).Msg("delivery figures not published")
	}
}

// publishWindow is how many endpoints' figures are published before their acks are awaited:
// one round trip per window, not per endpoint (the last flush of a gateway with 10,000 endpoints
// held its stop for seconds).
const publishWindow = 256

// publish sends one endpoint's minute without waiting for the stream's ack.
func (r *Recorder) publish(m *Minute, flush uint64) (jetstream.PubAckFuture, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subject(m.EndpointID))
	msg.Data = b
	// The id makes a minute published again (a retry, a redelivered flush) count once.
	id := r.instance + "." + strconv.FormatUint(flush, 10) + "." + m.EndpointID
	return r.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
}

func subject(endpointID string) string { return subjectPrefix + subjects.EncodeToken(endpointID) }
