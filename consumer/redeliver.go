package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// Redeliver: an endpoint asks for its events again, from a stream sequence or a time on — a
// receiver that lost its database. Each event its consumer's filters match is copied, in stream
// order, to the endpoint's replay subject with HeaderRedelivery, as a replayed dead letter is: it
// reaches only this endpoint, through its normal lanes, beside live traffic. A copy has a
// sequence of its own, above every mark of the durable delivery record, so the record does not
// skip it, and its delivery raises an entity's mark only over events already delivered (an
// entity's events go out in stream order).

// HeaderRedelivery marks a redelivered copy: its value is the original's stream sequence.
const HeaderRedelivery = "Quaycast-Redelivery"

// MaxRedeliver bounds the events one redeliver request copies; the answer says where to go on.
const MaxRedeliver = 100_000

// RedeliverFrom picks the events a redeliver copies: from Seq, or from the first event stored at
// or after Since, through the stream's last event when the request began; only Entities' events
// if any are named; at most Limit (1..MaxRedeliver).
type RedeliverFrom struct {
	Seq      uint64
	Since    time.Time
	Entities []string
	Limit    int
}

// Redelivered is what a redeliver did: how many events it copied and examined, and the sequence
// to go on from when it stopped at its limit (0 when it reached the end).
type Redelivered struct {
	Copied  int    `json:"redelivered"`
	Scanned int    `json:"scanned"`
	NextSeq uint64 `json:"next_seq"`
}

// Redeliverer copies an endpoint's events back into the events stream for it.
type Redeliverer struct {
	js     jetstream.JetStream
	events jetstream.Stream
}

// NewRedeliverer redelivers from the events stream.
func NewRedeliverer(js jetstream.JetStream, events jetstream.Stream) *Redeliverer {
	return &Redeliverer{js: js, events: events}
}

// Redeliver copies the events of endpoint ep that from picks. The filters are those of the
// endpoint's consumer, so exactly what it would deliver is copied.
func (r *Redeliverer) Redeliver(ctx context.Context, ep *Endpoint, from RedeliverFrom) (Redelivered, error) {
	var done Redelivered
	info, err := r.events.Info(ctx)
	if err != nil {
		return done, fmt.Errorf("read events stream: %w", err)
	}
	last := info.State.LastSeq
	cons, err := r.events.Consumer(ctx, ep.ConsumerName())
	if err != nil {
		return done, fmt.Errorf("read consumer of %s: %w", ep.ID, err)
	}
	filters := slices.DeleteFunc(slices.Clone(cons.CachedInfo().Config.FilterSubjects), func(f string) bool {
		return f == subjects.ReplayFilter(ep.ID) // replays and earlier redeliveries are not events
	})
	if len(filters) == 0 || last == 0 || from.Seq > last {
		return done, nil
	}
	// An ephemeral reader of its own, without acks: read once, removed at the end (or by the
	// server once idle, if this process dies first).
	cfg := jetstream.ConsumerConfig{Name: "quaycast_redeliver_" + randomID(), FilterSubjects: filters, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(from.Seq, 1), InactiveThreshold: time.Minute}
	if !from.Since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &from.Since
	}
	reader, err := r.events.CreateConsumer(ctx, cfg)
	if err != nil {
		return done, fmt.Errorf("read events of %s: %w", ep.ID, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.events.DeleteConsumer(dctx, cfg.Name)
	}()
	if reader.CachedInfo().NumPending == 0 {
		return done, nil
	}
	request := randomID()
	limit := min(max(from.Limit, 1), MaxRedeliver)
	for {
		batch, err := reader.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return done, fmt.Errorf("read events of %s: %w", ep.ID, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return done, fmt.Errorf("read events of %s: %w", ep.ID, err)
			}
			seq := meta.Sequence.Stream
			if seq > last {
				return done, nil
			}
			if done.Copied == limit {
				done.NextSeq = seq
				return done, nil
			}
			done.Scanned++
			if len(from.Entities) > 0 && !slices.Contains(from.Entities, entityOf(msg)) {
				continue
			}
			copied, err := r.copy(ctx, ep.ID, msg, seq, request)
			if err != nil {
				return done, err
			}
			if copied {
				done.Copied++
			}
			if seq == last || meta.NumPending == 0 {
				return done, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return done, fmt.Errorf("read events of %s: %w", ep.ID, err)
		}
		if n == 0 { // nothing more within the wait: the rest left the stream (max age)
			return done, nil
		}
	}
}

// copy publishes one event again on the endpoint's replay subject, its headers kept (entity,
// trace context), HeaderRedelivery and the original's subject (subjects.HeaderOrigin) set. An
// event the checks set aside is not copied (false): its subject does not parse, or it claims to
// be an operator event where only quaycast stores them — a copy on a replay subject must not
// launder it.
func (r *Redeliverer) copy(ctx context.Context, endpointID string, msg jetstream.Msg, seq uint64, request string) (bool, error) {
	_, source, typ, err := subjects.ParseAny(msg.Subject())
	if err != nil || subjects.ReservedReason(msg.Subject(), source, typ) != "" {
		return false, nil
	}
	subj, err := subjects.ReplaySubject(endpointID, source, typ)
	if err != nil {
		return false, nil
	}
	m := copyMsg(subj, msg.Data(), msg.Headers())
	m.Header.Set(HeaderRedelivery, strconv.FormatUint(seq, 10))
	m.Header.Set(subjects.HeaderOrigin, msg.Subject()) // replaces one a publisher may have put on its event
	// The id makes a publish that nats.go retries store once.
	if _, err := r.js.PublishMsg(ctx, m, jetstream.WithMsgID("redeliver-"+request+"-"+strconv.FormatUint(seq, 10))); err != nil {
		return false, fmt.Errorf("redeliver event %d: %w", seq, err)
	}
	return true, nil
}

// isRedelivery tells a redelivered copy by its subject and headers (only replay subjects carry one).
func isRedelivery(subject string, h nats.Header) bool {
	return strings.HasPrefix(subject, subjects.ReplayPrefix+".") && h.Get(HeaderRedelivery) != ""
}

// entityOf is an event's entity: its header, or the envelope's field.
func entityOf(msg jetstream.Msg) string {
	if e := msg.Headers().Get(subjects.HeaderEntity); e != "" {
		return e
	}
	var env struct {
		Entity string `json:"entity"`
	}
	_ = json.Unmarshal(msg.Data(), &env)
	return env.Entity
}
