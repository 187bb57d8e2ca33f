package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/subjects"
)

// Manager keeps one durable consumer and one worker per enabled endpoint, following the
// registry: it creates, updates and deletes consumers as endpoints come, change and go, whichever
// gateway made the change.
type Manager struct {
	js          jetstream.JetStream
	stream      jetstream.Stream
	reg         *Registry
	deliver     Deliverer
	log         zerolog.Logger
	o           Options
	onDead      func(dl DeadLetter)
	onDisabled  func(ep *Endpoint)
	onInvalid   func(endpointID, reason string)
	onCondition func(endpointID string, err error)
	checked     *checked // verdicts on recent events, shared by the workers
	catalogue   Catalogue
	// catalogueChanged asks Run to re-apply the endpoints' filters (CatalogueChanged).
	catalogueChanged chan struct{}

	mu       sync.Mutex
	running  map[string]*runningWorker
	stopping map[string]chan struct{}   // workers told to stop, closed once they have
	failed   map[string]*Endpoint       // endpoints whose consumer could not be set up: retried
	marks    recorded                   // read at start, taken by each endpoint's first worker
	memory   map[string]*progress       // per endpoint, kept while it is disabled and enabled again
	conds    map[string]*conditionStats // per endpoint, across its workers
	sweepers map[string]*sweeper        // disabled endpoints' expiry sweeps: no worker fetches their events
	ready    atomic.Bool
	seen     revision       // the registry's newest revision applied
	bg       sync.WaitGroup // stops and deletions off the watch loop
	park     jetstream.Stream
	// reconnects counts Reconnected calls: a worker that reset its consumer before the last one
	// routes nothing more (reconnect.go).
	reconnects  atomic.Uint64
	pulls       pulls      // what the workers together ask the server for at once (pull.go)
	parkedLanes laneBudget // lane goroutines parked across the workers (lanes.go)

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter // per tenant (tenantrate.go)

	// Ownership (ownership.go): with several gateways, only the endpoints this one was told to own.
	supervised bool
	lease      Lease                      // supervised: checked before anything another owner must know of
	onChange   func()                     // the set of endpoints changed
	defs       map[string]*Endpoint       // every endpoint in the registry; nil: unreadable
	owned      map[string]bool            // supervised: the endpoints this gateway delivers to
	abort      chan struct{}              // closed by Fence: workers stopping cancel their POSTs at once
	do         chan func(context.Context) // run on Run's goroutine, with its context

	// Sleep (sleep.go): endpoints caught up and quiet have no worker until an event comes.
	watch      *watcher
	parked     map[string]bool // endpoints that may have events parked: they start awake (under mu)
	parksKnown bool            // parked has been read; until then every endpoint starts awake (under mu)
	wakeMu     sync.Mutex
	wakeQ      []string        // endpoints the watcher woke, for runWakes
	wakeSig    chan struct{}   // wakeQ has grown
	opening    chan struct{}   // bounds the workers opening their consumer at once (worker.run)
	removing   chan struct{}   // bounds the removals of deleted endpoints at once (remove)
	onSleep    func(stage int) // tests only: called at each point of sleep; set before Run
}

// runningWorker is an endpoint delivering on this gateway: its worker runs, or it sleeps
// (sleep.go). Its fields are guarded by Manager.mu.
type runningWorker struct {
	w        *worker   // the current worker; nil while none runs (prepared, asleep: see rest)
	ep       *Endpoint // the definition while w is nil
	filters  []string
	progress *progress
	restart  chan struct{} // a worker restart is asked for
	state    int           // awake, dozing or asleep
	clean    *cleanSleep   // where its consumer stood when its last worker ended, if clean (sleep.go)
	// reconnects is the connection's count when it was prepared (sleep.go, cleanSleep).
	reconnects uint64
	cancel     context.CancelFunc
	done       chan struct{} // closed once its goroutine has ended (closed while asleep)
}

// NewManager wires a manager; Run starts it.
func NewManager(js jetstream.JetStream, stream jetstream.Stream, reg *Registry, d Deliverer, log zerolog.Logger, o Options) *Manager {
	o = o.withDefaults()
	m := &Manager{js: js, stream: stream, reg: reg, deliver: d, log: log, o: o, running: make(map[string]*runningWorker),
		stopping: make(map[string]chan struct{}), failed: make(map[string]*Endpoint), memory: make(map[string]*progress), conds: make(map[string]*conditionStats), sweepers: make(map[string]*sweeper), checked: newChecked(),
		catalogue: o.Catalogue, catalogueChanged: make(chan struct{}, 1),
		defs: make(map[string]*Endpoint), do: make(chan func(context.Context)), parked: make(map[string]bool), wakeSig: make(chan struct{}, 1),
		opening: make(chan struct{}, maxOpening), removing: make(chan struct{}, maxRemoving), limiters: make(map[string]*rate.Limiter)}
	m.watch = newWatcher(m.wakeAsync, log)
	return m
}

// OnDeadLetter sets a function called after each dead letter is recorded (for metrics). Call it
// before Run.
func (m *Manager) OnDeadLetter(f func(dl DeadLetter)) { m.onDead = f }

// OnDisabled sets a function called after the gateway disabled an endpoint itself (a 410 Gone),
// with the endpoint as stored then. Call it before Run.
func (m *Manager) OnDisabled(f func(ep *Endpoint)) { m.onDisabled = f }

// OnInvalid sets a function called after each invalid event is set aside (for metrics). Call it
// before Run.
func (m *Manager) OnInvalid(f func(endpointID, reason string)) { m.onInvalid = f }

// Ready reports whether every endpoint that existed at start has its consumer running.
func (m *Manager) Ready() bool { return m.ready.Load() }

// Workers is the number of endpoints being delivered to.
func (m *Manager) Workers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running)
}

// parkStream is the park stream (Setup made it), looked up once for every worker.
func (m *Manager) parkStream(ctx context.Context) (jetstream.Stream, error) {
	m.mu.Lock()
	park := m.park
	m.mu.Unlock()
	if park != nil {
		return park, nil
	}
	park, err := m.js.Stream(ctx, ParkStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", ParkStream, err)
	}
	m.mu.Lock()
	m.park = park
	m.mu.Unlock()
	return park, nil
}

// Stuck says what holds up an endpoint's entities on this gateway, naming the longest stuck;
// zero when it has no worker here.
func (m *Manager) Stuck(id string) Stuck {
	if w := m.worker(id); w != nil {
		return w.stuckView(true)
	}
	return Stuck{}
}

// StuckCounts is Stuck without the names, for every endpoint delivering on this gateway.
func (m *Manager) StuckCounts() map[string]Stuck {
	m.mu.Lock()
	workers := make(map[string]*worker, len(m.running))
	for id, rw := range m.running {
		workers[id] = rw.w
	}
	m.mu.Unlock()
	out := make(map[string]Stuck, len(workers))
	for id, w := range workers {
		if w == nil { // asleep: nothing stuck
			out[id] = Stuck{}
			continue
		}
		out[id] = w.stuckView(false)
	}
	return out
}

// worker is an endpoint's current worker, if it runs here.
func (m *Manager) worker(id string) *worker {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rw := m.running[id]; rw != nil {
		return rw.w // replaced under m.mu when the worker restarts; nil while asleep
	}
	return nil
}

// Delivery states of an endpoint on this gateway, as State reports them.
const (
	StateDelivering = "delivering" // its worker runs
	StateDegraded   = "degraded"   // its consumer could not be set up: being retried
	StateStopped    = "stopped"    // disabled, or its secret or record cannot be read
)

// State is an endpoint's delivery state on this gateway.
func (m *Manager) State(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.failed[id] != nil:
		return StateDegraded
	case m.running[id] != nil:
		return StateDelivering
	}
	return StateStopped
}

// Degraded lists the endpoints whose consumer could not be set up (being retried), sorted.
func (m *Manager) Degraded() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.AppendSeq(make([]string, 0, len(m.failed)), maps.Keys(m.failed)) // [] rather than null in JSON
	slices.Sort(out)
	return out
}

// ackTimeout is how long the server may take to answer the connection's ping (watchAcks).
const ackTimeout = 5 * time.Second

// watchAcks pings the server every second. Acks are sent without waiting for an answer
// (worker.ack); the ping's answer says the server has read everything sent before it, the acks
// included. One that takes longer than ackTimeout is logged, a line a minute: acks and pull
// requests then wait behind a busy connection.
func (m *Manager) watchAcks(ctx context.Context) {
	log := m.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	nc := m.js.Conn()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !nc.IsConnected() {
			continue // a reconnect is logged as such
		}
		if err := nc.FlushTimeout(ackTimeout); err != nil && ctx.Err() == nil && nc.IsConnected() {
			log.Warn().Err(err).Dur("timeout", ackTimeout).Msg("acks not confirmed in time: the NATS server did not answer a ping (acks and pull requests wait behind a busy connection)")
		}
	}
}

// Run follows the registry until ctx ends, then stops every worker (each finishing its in-flight
// deliveries within ShutdownTimeout) and returns. It reconciles level-based: an endpoint whose
// consumer could not be created or updated (a timeout, the consumer limit) is tried again every
// ReconcileEvery until it converges, without anyone editing it.
func (m *Manager) Run(ctx context.Context) error {
	if m.o.Marks != nil { // written until every worker has stopped, then once more
		mctx, stopMarks := context.WithCancel(context.WithoutCancel(ctx))
		flushed := make(chan struct{})
		go func() { m.o.Marks.Run(mctx); close(flushed) }()
		defer func() { <-flushed }()
		defer stopMarks()
	}
	defer m.stopAll()
	if !m.supervised { // supervised, each endpoint's marks are read when it is owned here
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		marks, err := m.o.Marks.load(lctx)
		cancel()
		if err != nil {
			m.log.Warn().Err(err).Msg("read delivery marks: events delivered before this start may be sent again")
		}
		m.mu.Lock()
		m.marks = marks
		m.mu.Unlock()
	}
	if !m.supervised || m.lease != nil { // a gateway that delivers: idle endpoints sleep (sleep.go)
		wctx, stopWatch := context.WithCancel(ctx)
		var watching sync.WaitGroup
		watching.Go(func() { m.watch.run(wctx, m.stream) })
		watching.Go(func() { m.runWakes(wctx) })
		watching.Go(func() { m.watchAcks(wctx) })
		defer watching.Wait() // before stopAll: nothing is woken while it stops every worker
		defer stopWatch()
		select { // endpoints applied before it follows the stream start awake
		case <-m.watch.started:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
	}
	if !m.supervised { // supervised, each endpoint's parks are read when it is owned here
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		m.readParks(pctx)
		cancel()
	}
	changes, err := m.reg.watch(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(m.o.ReconcileEvery)
	defer tick.Stop()
	known := make(map[string]bool)
	for {
		select {
		case <-tick.C:
			m.retryFailed(ctx)
			continue
		case f := <-m.do:
			f(ctx)
		case <-m.catalogueChanged:
			m.reapply(ctx)
		case c, ok := <-changes:
			if !ok {
				return nil
			}
			m.change(ctx, c, known)
			m.defined(c)
		}
	}
}

func (m *Manager) change(ctx context.Context, c Change, known map[string]bool) {
	if c.ID != "" {
		m.mu.Lock()
		delete(m.failed, c.ID) // the newest definition decides
		m.mu.Unlock()
	}
	switch {
	case c.ID == "": // every endpoint that existed at start has been applied
		m.removeOrphans(ctx, known)
		m.ready.Store(true)
		m.log.Info().Int("endpoints", m.Workers()).Msg("delivering")
	case c.Err != nil:
		known[c.ID] = true // keep its consumer and position until the record is repaired
		m.stopAsync(c.ID)
		m.log.Error().Err(c.Err).Str("endpoint_id", c.ID).Msg("unreadable endpoint definition: not delivering to it")
	case c.Endpoint == nil:
		delete(known, c.ID)
		m.remove(ctx, c.ID)
	case c.Endpoint.SecretErr != nil:
		known[c.ID] = true // keep its consumer and position
		m.stopAsync(c.ID)
		m.log.Error().Err(c.Endpoint.SecretErr).Str("endpoint_id", c.ID).Msg("endpoint secret unreadable: not delivering to it")
	default:
		known[c.ID] = true
		m.applyOrRetry(ctx, c.Endpoint)
	}
}

// applyOrRetry applies an endpoint, or keeps it to be tried again.
func (m *Manager) applyOrRetry(ctx context.Context, ep *Endpoint) {
	err := m.apply(ctx, ep)
	m.mu.Lock()
	if err != nil {
		m.failed[ep.ID] = ep
	} else {
		delete(m.failed, ep.ID)
	}
	m.mu.Unlock()
	if err != nil {
		m.log.Error().Err(err).Str("endpoint_id", ep.ID).Dur("retry_in", m.o.ReconcileEvery).Msg("apply endpoint")
	}
}

func (m *Manager) retryFailed(ctx context.Context) {
	m.mu.Lock()
	eps := make([]*Endpoint, 0, len(m.failed))
	for _, ep := range m.failed {
		eps = append(eps, ep)
	}
	m.mu.Unlock()
	for _, ep := range eps {
		m.applyOrRetry(ctx, ep)
	}
}

// consumerLikelyExists says whether an endpoint that starts here most likely has its consumer
// already, so that apply reads it before creating it: while the endpoints that existed at start
// are applied (each has had one since it was created), and under supervision, where every
// change of an endpoint creates or updates its consumer whoever owns it, and owning it comes
// after. An endpoint created while this gateway runs alone has none yet: reading first would
// only add a request.
func (m *Manager) consumerLikelyExists() bool { return m.supervised || !m.ready.Load() }

// existingConsumer reads ep's consumer and returns its info if it is as consumerConfig would
// make it with filters (nothing to update); nil if it differs, is missing or cannot be read,
// and then the caller creates or updates it. The info is read afresh from the consumer's leader,
// as pendingInfo's is.
func (m *Manager) existingConsumer(ctx context.Context, ep *Endpoint, filters []string) *jetstream.ConsumerInfo {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := m.stream.Consumer(cctx, ep.ConsumerName())
	if err != nil {
		return nil
	}
	info := cons.CachedInfo()
	if info == nil || !sameConsumer(info.Config, m.consumerConfig(ep, filters)) {
		return nil
	}
	return info
}

// sameConsumer reports whether a consumer configured as got needs no update to be want: the
// fields consumerConfig sets that an update may change. (The start position cannot change; the
// server adds metadata of its own.)
func sameConsumer(got, want jetstream.ConsumerConfig) bool {
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			return false
		}
	}
	return got.Durable == want.Durable && slices.Equal(filtersOf(got), filtersOf(want)) && got.Description == want.Description &&
		got.AckPolicy == want.AckPolicy && got.AckWait == want.AckWait && got.MaxDeliver == want.MaxDeliver &&
		got.MaxAckPending == want.MaxAckPending && got.DeliverPolicy == want.DeliverPolicy
}

// filtersOf is c's filter subjects, however set: the server keeps a single filter in FilterSubject.
func filtersOf(c jetstream.ConsumerConfig) []string {
	if len(c.FilterSubjects) == 0 && c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return c.FilterSubjects
}

// consumerConfig is the durable consumer of an endpoint.
func (m *Manager) consumerConfig(ep *Endpoint, filters []string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ep.ConsumerName(),
		Description:    "quaycast endpoint " + ep.ID,
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    max(ep.StartSeq, 1),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        m.o.AckWait,
		MaxDeliver:     -1, // retries and dead letters are ours: JetStream would drop silently
		MaxAckPending:  m.o.MaxAckPending,
		Metadata:       map[string]string{"quaycast_endpoint": ep.ID},
	}
}

// endpointFilters are the filter subjects of ep's consumer with catalogue c: its types, over its
// tenant's copies and operator events for a tenant's endpoint (so the server never hands it
// another tenant's event), every tenant's operator events for an operator's endpoint that opted
// in to tenants' events, and its replayed dead letters.
func endpointFilters(c *subjects.Catalogue, ep *Endpoint) ([]string, error) {
	filters, err := c.Filters(ep.EventTypes)
	if err != nil {
		return nil, err
	}
	switch {
	case ep.Tenant != "":
		filters = subjects.TenantFilters(ep.Tenant, filters)
	case ep.TenantEvents:
		filters = subjects.OpsTenantFilters(filters)
	}
	return append(filters, subjects.ReplayFilter(ep.ID)), nil
}

func (m *Manager) apply(ctx context.Context, ep *Endpoint) error {
	filters, err := WithCatalogue(ctx, m.catalogue, func(c *subjects.Catalogue) ([]string, error) { return endpointFilters(c, ep) })
	if err != nil {
		return fmt.Errorf("filters: %w", err)
	}
	m.mu.Lock()
	rw := m.running[ep.ID]
	changed := rw == nil || !slices.Equal(rw.filters, filters)
	if rw != nil && ep.Enabled {
		// Before the filters change, so that every event they let through goes out with the
		// definition that subscribed to it.
		rw.setEndpoint(ep)
	}
	m.mu.Unlock()

	var fresh *runningWorker // it starts here: registered with the watcher before its consumer's info is read
	if rw == nil && ep.Enabled && m.owns(ep.ID) {
		m.stopSweep(ep.ID)
		fresh = m.prepare(ep, filters)
	}
	var info *jetstream.ConsumerInfo
	if changed && fresh != nil && m.consumerLikelyExists() {
		// Read first: a consumer already as wanted needs no update, and its info read now
		// (after prepare registered the endpoint with the watcher) is what launch decides on.
		// One JetStream API request where the update and the read of pending are two.
		if got := m.existingConsumer(ctx, ep, filters); got != nil {
			changed, info = false, got
		}
	}
	if changed {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := m.stream.CreateOrUpdateConsumer(cctx, m.consumerConfig(ep, filters))
		cancel()
		if err != nil {
			if fresh != nil {
				m.unprepare(ep.ID, fresh)
			}
			return fmt.Errorf("create consumer %s: %w", ep.ConsumerName(), err)
		}
		info = cons.CachedInfo()
		if fresh != nil && m.dozing(fresh) {
			info = pendingInfo(ctx, cons)
		}
	}
	switch {
	case !ep.Enabled:
		if rw != nil {
			m.stopAsync(ep.ID)
			m.log.Info().Str("endpoint_id", ep.ID).Msg("endpoint disabled: delivery paused, position kept")
		}
		if m.owns(ep.ID) {
			m.sweepDisabled(ctx, ep)
		}
	case rw != nil: // a running endpoint changed: later attempts use the new definition (stored above)
		m.mu.Lock()
		rw.filters = filters
		if changed && m.running[ep.ID] == rw { // a sleeping one wakes: its new filters may match stored events
			m.wakeLocked(ctx, ep.ID, rw)
		}
		m.mu.Unlock()
	case fresh != nil:
		m.launch(ctx, ep, fresh, info)
	}
	return nil
}

// progressLocked is an endpoint's progress (delivery marks, retry state), read from the durable
// record the first time. Callers hold m.mu.
func (m *Manager) progressLocked(id string) *progress {
	p := m.memory[id]
	if p == nil {
		p = newProgress(id, m.o.Marks)
		restoreInto(p, m.marks[id])
		delete(m.marks, id)
		m.memory[id] = p
	}
	return p
}

// sweeper is the expiry sweep of a disabled endpoint.
type sweeper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// sweepDisabled runs the expiry sweep of a disabled endpoint (expiry.go) until it is enabled or
// deleted: its events wait on its consumer, and one about to leave the stream is dead-lettered
// rather than dropped. It starts once the endpoint's last worker has stopped.
func (m *Manager) sweepDisabled(ctx context.Context, ep *Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sweepers[ep.ID] != nil {
		return
	}
	w := newWorker(ep, m, m.progressLocked(ep.ID))
	ctx, cancel := context.WithCancel(ctx)
	sw := &sweeper{cancel: cancel, done: make(chan struct{})}
	m.sweepers[ep.ID] = sw
	previous := m.stopping[ep.ID]
	go func() {
		defer close(sw.done)
		if previous != nil {
			select {
			case <-previous:
			case <-ctx.Done():
				<-previous // what starts next waits for sw.done: it must not start beside the worker
				return
			}
		}
		w.sweep(ctx)
	}()
}

// stopSweep ends a disabled endpoint's sweep; a worker started next waits for it (m.stopping),
// and so for the worker the sweep waited for.
func (m *Manager) stopSweep(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sw := m.sweepers[id]
	if sw == nil {
		return
	}
	delete(m.sweepers, id)
	sw.cancel()
	m.stoppingLocked(id, sw.done)
}

// stoppingLocked records that id's worker or sweep stops until done closes, so that whatever
// starts next for it waits. Callers hold m.mu.
func (m *Manager) stoppingLocked(id string, done chan struct{}) {
	m.stopping[id] = done
	m.bg.Go(func() {
		<-done
		m.mu.Lock()
		if m.stopping[id] == done {
			delete(m.stopping, id)
		}
		m.mu.Unlock()
	})
}

// runWorker runs an endpoint's worker, a new one after each end, until ctx ends or it sleeps;
// then it closes done. It waits for previous first: one worker per consumer at a time — also
// when it is stopped before it started, since what starts next waits only for done.
func (m *Manager) runWorker(ctx context.Context, id string, rw *runningWorker, done chan struct{}, previous <-chan struct{}) {
	defer close(done)
	defer m.pulls.awake.Add(-1) // counted by runLocked
	if previous != nil {
		select {
		case <-previous:
		case <-ctx.Done():
			<-previous
			return
		}
	}
	m.mu.Lock()
	w := rw.w
	m.mu.Unlock()
	retry := jsRetry()
	for {
		err := m.runOnce(ctx, w, rw.restart)
		if ctx.Err() != nil {
			m.ranQuiet(id, false)
			return
		}
		m.ranQuiet(id, errors.Is(err, errIdle))
		switch {
		case errors.Is(err, errIdle):
			retry.Reset()
			if m.sleep(ctx, id, rw, w.ep.Load().ConsumerName(), w.noPullLeft) {
				return
			}
		case errors.Is(err, errDiverted): // the other subscriber's pull requests expire soon
			if backoff.Sleep(ctx, divertedWait) != nil {
				return
			}
		case errors.Is(err, errConsumerGone):
			// No worker starts before the consumer is made again: its reset would find no one to
			// answer. Waits after success too: a consumer deleted again at once must not make a
			// busy loop.
			for {
				wait := retry.Next()
				rerr := m.remake(ctx, id, rw)
				if rerr != nil {
					w.log.Error().Err(rerr).Dur("retry_in", wait).Msg("make the deleted consumer again")
				}
				if backoff.Sleep(ctx, wait) != nil {
					return
				}
				if rerr == nil {
					break
				}
			}
		case err != nil: // could not open or consume: wait, then try again
			wait := retry.Next()
			w.log.Error().Err(err).Dur("retry_in", wait).Msg("endpoint worker stopped")
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
		default:
			retry.Reset()
		}
		m.mu.Lock()
		w = newWorker(w.ep.Load(), m, rw.progress)
		w.noParks = m.parksKnown && !m.parked[id]
		w.woken = m.cleanWakeLocked(rw) // set by a sleep that did not happen: woken meanwhile
		rw.w = w
		m.mu.Unlock()
	}
}

// ranQuiet notes how a run of id's worker ended: quiet, it left nothing parked; otherwise it may
// have, and the endpoint starts awake next time (sleep.go).
func (m *Manager) ranQuiet(id string, quiet bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if quiet {
		delete(m.parked, id)
	} else {
		m.parked[id] = true
	}
}

// runOnce runs w until ctx ends, w fails, or a restart is asked for.
func (m *Manager) runOnce(ctx context.Context, w *worker, restart <-chan struct{}) error {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	result := make(chan error, 1)
	go func() { result <- w.run(wctx) }()
	select {
	case err := <-result:
		return err
	case <-restart:
		stop()
		return <-result
	}
}

// stopAsync tells an endpoint's worker to stop without waiting for it: a worker whose receiver
// hangs takes up to ShutdownTimeout, and other endpoints' changes must not wait behind it. The
// returned channel is closed once it has stopped (nil if none ran).
func (m *Manager) stopAsync(id string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	rw := m.running[id]
	if rw == nil {
		return m.stopping[id]
	}
	delete(m.running, id)
	m.watch.remove(id)
	rw.cancel()
	m.stoppingLocked(id, rw.done)
	return rw.done
}

// remove stops an endpoint's worker and, once it has stopped, deletes its consumer — off the
// watch loop.
func (m *Manager) remove(ctx context.Context, id string) {
	m.stopSweep(id)
	done := m.stopAsync(id)
	m.mu.Lock()
	m.o.Marks.unregister(m.memory[id])
	delete(m.memory, id)
	delete(m.parked, id)
	delete(m.conds, id)
	m.mu.Unlock()
	m.bg.Go(func() {
		if done != nil {
			<-done
		}
		select {
		case m.removing <- struct{}{}:
			defer func() { <-m.removing }()
		case <-ctx.Done(): // shutting down: the next start removes its consumer as an orphan
			return
		}
		ctx := context.WithoutCancel(ctx)
		if err := withTimeout(ctx, removeTimeout, func(ctx context.Context) error { return m.stream.DeleteConsumer(ctx, id) }); err != nil && !isNotFound(err) {
			m.log.Error().Err(err).Str("endpoint_id", id).Msg("delete consumer")
			return
		}
		if err := withTimeout(ctx, removeTimeout, func(ctx context.Context) error { return m.o.Marks.forget(ctx, id) }); err != nil {
			m.log.Warn().Err(err).Str("endpoint_id", id).Msg("delete delivery marks") // they expire with the events otherwise
		}
		if err := withTimeout(ctx, removeTimeout, func(ctx context.Context) error {
			park, err := m.parkStream(ctx)
			if err == nil {
				err = park.Purge(ctx, jetstream.WithPurgeSubject(parkFilter(id)))
			}
			return err
		}); err != nil {
			m.log.Error().Err(err).Str("endpoint_id", id).Msg("purge parked events")
		}
		m.log.Info().Str("endpoint_id", id).Msg("endpoint removed")
	})
}

// maxRemoving bounds the removals of deleted endpoints at once: deleting thousands (a tenant
// leaving, a clean-up script) sent three JetStream API requests each all together, the server
// answers them one at a time, and most timed out — with the acks of the endpoints still
// delivering queued behind them.
const maxRemoving = 8

// removeTimeout bounds each of a removal's requests.
const removeTimeout = 10 * time.Second

// withTimeout runs f with ctx bounded by d.
func withTimeout(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// removeOrphans deletes endpoint consumers whose endpoint was deleted while no gateway watched.
// known holds the endpoints of the registry's snapshot, but the consumers are listed later: one
// created meanwhile (another gateway applying an endpoint made after the snapshot) is listed and
// not known. So each candidate is looked up again, after the listing, and removed only if its
// record is gone — a consumer is made only once its record is stored.
func (m *Manager) removeOrphans(ctx context.Context, known map[string]bool) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	names := m.stream.ConsumerNames(lctx)
	var candidates []string
	for name := range names.Name() {
		if strings.HasPrefix(name, "ep_") && !known[name] {
			candidates = append(candidates, name)
		}
	}
	if err := names.Err(); err != nil {
		m.log.Warn().Err(err).Msg("list consumers")
	}
	for _, name := range candidates {
		_, err := m.reg.Get(lctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			m.remove(ctx, name)
		case err != nil: // unreadable, or not answered: kept, as a known endpoint's would be
			m.log.Warn().Err(err).Str("endpoint_id", name).Msg("look up a consumer's endpoint: its consumer is kept")
		}
	}
}

// stopAll stops every worker at once, so that shutdown takes one ShutdownTimeout, not one each.
func (m *Manager) stopAll() {
	m.mu.Lock()
	all := m.running
	m.running = make(map[string]*runningWorker)
	m.mu.Unlock()
	for _, rw := range all {
		rw.cancel()
	}
	for _, rw := range all {
		<-rw.done
	}
	m.mu.Lock()
	sweeps := m.sweepers
	m.sweepers = make(map[string]*sweeper)
	m.mu.Unlock()
	for _, sw := range sweeps {
		sw.cancel()
		<-sw.done
	}
	m.bg.Wait()
}
