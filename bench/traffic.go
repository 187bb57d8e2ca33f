package bench

import (
	"context"
	"slices"
	"time"
)

// roundTraffic is one round's events on their way: where each is expected, the publishing, and
// what the receivers got.
type roundTraffic struct {
	r        *runner
	rd       *Round
	eps      []*endpoint
	prefix   string // of the round's event ids
	sink     *sink
	byType   map[string][]*endpoint // the endpoints an event of the type should reach
	expected int                    // deliveries
	pub      *publishing            // set when pubDone is closed
	pubDone  chan struct{}
	upAt     time.Duration // when the down endpoints were brought up; 0: there are none
	gone     error         // the gateway exited before everything was delivered
}

// traffic publishes the round's events, brings down endpoints up once publishing is done, waits
// until every expected delivery arrived (or ctx ends), and fills in the round's figures.
func (r *runner) traffic(ctx context.Context, rd *Round, letter string, eps []*endpoint, up func(context.Context) error) error {
	t := r.newRoundTraffic(rd, letter, eps)
	r.rec.sink.Store(t.sink)
	m := r.startMeter(ctx)
	r.bar.phase(rd.Name+": publishing", int64(t.expected))
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	t.start(pubCtx)
	verdict, err := t.await(ctx, stopPublishing, up, m)
	if err != nil {
		return err
	}
	end := r.rec.now()
	m.sample(t.sink)
	m.fill(rd, t.expected)
	t.fill(verdict, end)
	switch {
	case r.clustered():
		r.clusterFigures(ctx, rd, m, t.expected)
	case rd.Pipeline == "gateway":
		gatewayFigures(ctx, rd, m)
	}
	return t.gone
}

// gatewayFigures fills in what a lone gateway's /metrics says of the round: the delivery-log
// records it dropped. A round that timed out is read too: it is the one most likely to have
// dropped some.
func gatewayFigures(ctx context.Context, rd *Round, m *meter) {
	end, err := scrape(context.WithoutCancel(ctx), m.clients[0])
	if err != nil || m.counters[0] == nil {
		rd.Notes = append(rd.Notes, "the gateway's /metrics could not be read: no count of the delivery-log records it dropped")
		return
	}
	rd.DeliveryLogDropped = max(0, int(end.logDropped-m.counters[0].logDropped))
}

// newRoundTraffic works out which endpoints each event type reaches (hanging endpoints are
// expected to get nothing) and how many deliveries that makes.
func (r *runner) newRoundTraffic(rd *Round, letter string, eps []*endpoint) *roundTraffic {
	t := &roundTraffic{r: r, rd: rd, eps: eps, prefix: "bn" + r.run + letter + "-", byType: map[string][]*endpoint{}, pubDone: make(chan struct{})}
	t.sink = &sink{prefix: t.prefix, checker: NewChecker(), stats: make([]*epStats, len(r.rec.eps))}
	for _, ep := range eps {
		t.sink.stats[ep.index] = &epStats{}
		if ep.behaviour == hanging {
			continue // never answers: not expected to get anything
		}
		rd.Checked++
		for _, typ := range r.sc.Types {
			if slices.Contains(ep.selectors, typ) || slices.Contains(ep.selectors, "*") {
				t.byType[typ] = append(t.byType[typ], ep)
			}
		}
	}
	for i := range r.sc.Events {
		for _, ep := range t.byType[r.ev.typ(i)] {
			if ep.tenant == r.ev.tenant(i) {
				t.expected++
			}
		}
	}
	rd.Endpoints, rd.Events, rd.Deliveries = len(eps), r.sc.Events, t.expected
	return t
}

// start publishes the round's events in the background, telling the checker of each before it
// goes; pubDone is closed when publishing is over.
func (t *roundTraffic) start(ctx context.Context) {
	ev, checker := t.r.ev, t.sink.checker
	go func() {
		defer close(t.pubDone)
		t.pub = publish(ctx, t.r.pubJS, ev, t.prefix, t.r.rec.now, func(i int, id, entity string) {
			checker.Published(id, entity)
			for _, ep := range t.byType[ev.typ(i)] {
				if ep.tenant == ev.tenant(i) { // "" == "" without tenants
					checker.Expect(ep.name, id)
				}
			}
		})
	}()
}

// await follows the round until every expected delivery arrived with none lost, the gateway
// exited (t.gone), or ctx ended (the round timed out), and returns the checker's verdict. Once
// publishing is done it brings the down endpoints up with up, whose error it returns. It samples
// the processes and the deliveries for the timeline every second.
func (t *roundTraffic) await(ctx context.Context, stopPublishing context.CancelFunc, up func(context.Context) error, m *meter) (Report, error) {
	tick := time.NewTicker(awaitTick)
	defer tick.Stop()
	sending := true
	var ticks int
	for {
		if sending {
			select {
			case <-t.pubDone:
				sending = false
				if err := t.published(ctx, up); err != nil {
					return Report{}, err
				}
			default:
			}
		}
		t.r.bar.set(t.sink.total.Load())
		if !sending && t.sink.total.Load() >= int64(t.expected) {
			if verdict := t.sink.checker.Report(); verdict.Lost == 0 {
				return verdict, nil
			}
		}
		if t.gone = t.r.gone(); t.gone != nil {
			t.rd.Notes = append(t.rd.Notes, "the gateway exited before everything was delivered")
			stopPublishing()
			<-t.pubDone
			return t.sink.checker.Report(), nil
		}
		select {
		case <-tick.C:
			if ticks++; ticks%int(sampleEvery/awaitTick) == 0 {
				m.sample(t.sink)
			}
			continue
		case <-ctx.Done():
		}
		t.rd.TimedOut = true
		<-t.pubDone
		return t.sink.checker.Report(), nil
	}
}

// awaitTick is how often await looks at the deliveries.
const awaitTick = 200 * time.Millisecond

// published is the turn from publishing to delivering: the down endpoints come up.
func (t *roundTraffic) published(ctx context.Context, up func(context.Context) error) error {
	t.r.bar.describe(t.rd.Name + ": delivering")
	if len(downEndpoints(t.eps)) == 0 {
		return nil
	}
	t.upAt = t.r.rec.now()
	return up(ctx)
}

// fill writes the round's publishing and delivery figures and the checker's verdict.
func (t *roundTraffic) fill(verdict Report, end time.Duration) {
	rd, pub := t.rd, t.pub
	rd.Published = int(pub.count.Load())
	rd.PublishSeconds = (pub.end - pub.start).Seconds()
	rd.PublishRate = pub.rate()
	rd.PublishRetries, rd.PublishFailures = pub.retried, pub.failed
	if pub.lastErr != nil {
		rd.Notes = append(rd.Notes, "publish: "+pub.lastErr.Error())
	}
	rd.figures(t.r.rec.eps, t.sink, pub.start, end, t.upAt)
	rd.Verdict = newVerdict(verdict)
}
