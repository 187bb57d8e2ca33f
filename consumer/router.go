package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/subjects"
)

// The router copies every event that names tenants, once per tenant, to
// tnt.<tenant>.<source>.<type> in the events stream, where only that tenant's endpoints'
// consumers look (subjects.TenantFilters): the server itself keeps a tenant's events from
// another tenant's endpoints, and an endpoint reads only its tenant's share of the stream
// instead of every event of its types.
//
// It reads the events in stream order (an ordered consumer from its position), publishes each
// copy and waits for it to be stored before the next, so a tenant's copies keep the stream's
// order, and per entity the publish order. Its position (the last stream sequence whose copies
// are stored) is written to KV every second and when it stops; after a crash it reads again from
// there, and the copies it makes again carry the same Nats-Msg-Id (tenant and the original's
// sequence), which the stream's duplicate window drops. One gateway at a time runs it: the one
// that owns RouterID in a cluster. Its position is written with the revision it read, so a second
// router that runs by mistake stops at its next write.

// RouterID is the router's name among the endpoints a cluster spreads over its gateways, and its
// position's key in the tenants bucket (no tenant id has a '.').
const RouterID = "quaycast.router"

// HeaderSourceSeq is the stream sequence of the event a tenant copy was made from.
const HeaderSourceSeq = "Quaycast-Source-Seq"

// TenantSet says whether a tenant exists (tenants.Store).
type TenantSet interface {
	Known(ctx context.Context, id string) (bool, error)
	// Any reports whether at least one tenant exists.
	Any(ctx context.Context) (bool, error)
}

// idleEvery is how often a router with no tenant to route to moves its position to the stream's
// end.
const idleEvery = 2 * time.Second

// RouterOptions are the router's optional callbacks.
type RouterOptions struct {
	OnCopy    func(tenant string) // a copy was stored
	OnUnknown func()              // an event named a tenant the registry does not know: not routed
}

// Router copies events naming tenants to their tenants' subjects.
type Router struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	kv      jetstream.KeyValue // holds the position under RouterID
	tenants TenantSet
	log     zerolog.Logger
	o       RouterOptions

	pos atomic.Uint64 // last sequence whose copies are stored
}

// NewRouter returns the router of stream, its position kept in kv.
func NewRouter(js jetstream.JetStream, stream jetstream.Stream, kv jetstream.KeyValue, tenants TenantSet, log zerolog.Logger, o RouterOptions) *Router {
	return &Router{js: js, stream: stream, kv: kv, tenants: tenants, log: log.With().Str("component", "router").Logger(), o: o}
}

// Position is the last stream sequence whose copies are stored.
func (r *Router) Position() uint64 { return r.pos.Load() }

// errRouterMoved ends a router whose position another wrote.
var errRouterMoved = errors.New("the router's position was written by another router")

// Run routes until ctx ends, starting again from its stored position after an error.
func (r *Router) Run(ctx context.Context) error {
	retry := backoff.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := r.idle(ctx)
		if err == nil {
			err = r.runOnce(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRouterMoved) {
			r.log.Error().Err(err).Msg("router stopped")
			return err
		}
		wait := retry.Next()
		r.log.Warn().Err(err).Dur("retry_in", wait).Msg("route tenant events")
		if backoff.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// idle returns once a tenant exists (nil), keeping the position at the stream's end until then:
// a gateway without tenants does not read every event a second time. The end is read before
// the tenants are: an event stored before that read, while no tenant exists after it, names only
// tenants that do not exist (any more), which are not routed.
func (r *Router) idle(ctx context.Context) error {
	for {
		pos, rev, err := r.load(ctx)
		if err != nil {
			return err
		}
		r.pos.Store(pos)
		// Each step says what it waited for: under a fan-out's load the server may answer its
		// API after the 10 s, and the retry that follows is all it takes.
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		info, err := r.stream.Info(ictx)
		if err != nil {
			err = fmt.Errorf("read the stream's end: %w", err)
		}
		var some bool
		if err == nil {
			if some, err = r.tenants.Any(ictx); err != nil {
				err = fmt.Errorf("look for tenants: %w", err)
			}
		}
		if err == nil && !some && info.State.LastSeq > pos {
			_, err = r.kv.Update(ictx, RouterID, []byte(strconv.FormatUint(info.State.LastSeq, 10)), rev)
			switch {
			case errors.Is(err, jetstream.ErrKeyExists):
				err = errRouterMoved
			case err != nil:
				err = fmt.Errorf("move the position to the stream's end: %w", err)
			default:
				r.pos.Store(info.State.LastSeq)
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("router idle: %w", err)
		}
		if some {
			return nil
		}
		if backoff.Sleep(ctx, idleEvery) != nil {
			return ctx.Err()
		}
	}
}

// Begin makes the router's position at the stream's end unless it has one. Every gateway calls
// it when it opens, before it serves the API, so a tenant is created after the position exists
// and every event that can name it is after the position. Made by the router's first run
// instead, it would skip the events stored since the tenants were created (the run can come
// seconds later, after a handover).
func (r *Router) Begin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.kv.Get(ctx, RouterID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		if err != nil {
			return fmt.Errorf("read router position: %w", err)
		}
		return nil
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	_, err = r.kv.Create(ctx, RouterID, []byte(strconv.FormatUint(info.State.LastSeq, 10)))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) { // another gateway's Begin
		return fmt.Errorf("store router position: %w", err)
	}
	return nil
}

// load reads the position; one that is missing (removed by hand since Begin) is made again at
// the stream's end.
func (r *Router) load(ctx context.Context) (pos, rev uint64, err error) {
	for range 2 {
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		entry, err := r.kv.Get(gctx, RouterID)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			r.log.Warn().Msg("router position missing: made again at the stream's end, so events stored before now are not routed")
			if err := r.Begin(ctx); err != nil {
				return 0, 0, err
			}
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read router position: %w", err)
		}
		pos, err = strconv.ParseUint(string(entry.Value()), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("router position %q: %w", entry.Value(), err)
		}
		return pos, entry.Revision(), nil
	}
	return 0, 0, errors.New("router position removed again as soon as it was made")
}

func (r *Router) runOnce(ctx context.Context) error {
	pos, rev, err := r.load(ctx)
	if err != nil {
		return err
	}
	r.pos.Store(pos)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := r.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.StreamSubjects},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    pos + 1,
		NamePrefix:     "quaycast_router_" + randomID(), // the last run's may linger until it expires
	})
	cancel()
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	defer it.Stop()

	// The position is written beside the loop, every second, and once more when it ends.
	saved := pos
	save := func(ctx context.Context) error {
		cur := r.pos.Load()
		if cur == saved {
			return nil
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		next, err := r.kv.Update(sctx, RouterID, []byte(strconv.FormatUint(cur, 10)), rev)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errRouterMoved
		}
		if err != nil {
			return fmt.Errorf("store router position: %w", err)
		}
		saved, rev = cur, next
		return nil
	}
	saveErr := make(chan error, 1)
	stopSaving := make(chan struct{})
	saving := make(chan struct{})
	go func() {
		defer close(saving)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSaving:
				return
			case <-t.C:
				if err := save(ctx); err != nil {
					saveErr <- err
					it.Stop()
					return
				}
			}
		}
	}()
	defer func() {
		close(stopSaving)
		<-saving
		if err := save(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, errRouterMoved) {
			r.log.Warn().Err(err).Msg("store router position at stop")
		}
	}()
	ended := make(chan struct{})
	defer close(ended)
	go func() { // Next blocks: the end of ctx stops it
		select {
		case <-ctx.Done():
			it.Stop()
		case <-ended:
		}
	}()

	for {
		msg, err := it.Next()
		if err != nil {
			select {
			case serr := <-saveErr:
				return serr
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("event metadata: %w", err)
		}
		if err := r.route(ctx, msg, meta.Sequence.Stream); err != nil {
			return err
		}
		r.pos.Store(meta.Sequence.Stream)
	}
}

// route stores msg's copies for each tenant it names that exists. An event whose tenants cannot
// be read, or whose subject is not an event's, is left to the endpoints' checks, which set it
// aside: its copies would be refused the same way.
func (r *Router) route(ctx context.Context, msg jetstream.Msg, seq uint64) error {
	ts := subjects.ParseTenantsHeader(msg.Headers().Get(subjects.HeaderTenants))
	if ts == nil {
		var err error
		if ts, err = subjects.PeekTenants(msg.Data()); err != nil {
			return nil
		}
	}
	if len(ts) == 0 {
		return nil
	}
	source, typ, err := subjects.Parse(msg.Subject())
	if err != nil {
		return nil
	}
	for _, t := range ts {
		if !subjects.ValidTenant(t) {
			continue
		}
		known, err := r.tenants.Known(ctx, t)
		if err != nil {
			return fmt.Errorf("look up tenant %s: %w", t, err)
		}
		if !known {
			if r.o.OnUnknown != nil {
				r.o.OnUnknown()
			}
			r.log.Debug().Uint64("seq", seq).Str("tenant", t).Msg("event names an unknown tenant: not routed")
			continue
		}
		if err := r.copy(ctx, msg, seq, t, source, typ); err != nil {
			return err
		}
		if r.o.OnCopy != nil {
			r.o.OnCopy(t)
		}
	}
	return nil
}

// copy stores one tenant's copy of msg and returns once the stream has it.
func (r *Router) copy(ctx context.Context, msg jetstream.Msg, seq uint64, tenant, source, typ string) error {
	c := copyMsg(subjects.TenantSubject(tenant, source, typ), msg.Data(), msg.Headers())
	id := "tnt." + tenant + "." + strconv.FormatUint(seq, 10)
	c.Header.Set(subjects.HeaderMsgID, id)
	c.Header.Set(subjects.HeaderTenant, tenant)
	c.Header.Set(HeaderSourceSeq, strconv.FormatUint(seq, 10))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, c, jetstream.WithExpectStream(EventsStream)); err != nil {
		return fmt.Errorf("copy event %d for tenant %s: %w", seq, tenant, err)
	}
	return nil
}
