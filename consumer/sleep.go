package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/subjects"
)

// Sleep: an endpoint that receives nothing costs no goroutine, subscription or pull request.
// Its durable consumer stays (it keeps the position); its worker ends once caught up and quiet
// (two pull expiries in a row brought nothing, and nothing is held, parked, gated or paused),
// and it is started again when an event for it is stored.
//
// One watcher per gateway follows the events stream: an ordered, headers-only consumer of every
// subject, in stream order. It wakes exactly the sleeping endpoints whose filters match each
// event it sees, and it knows how far it has read (pos). That closes the race of an event stored
// while an endpoint goes to sleep, without a timer:
//
//  1. the endpoint is registered as asleep at the watcher's position pos: every event above pos
//     is seen by the watcher after this, and wakes it;
//  2. then its consumer's info is read: every event at or below pos was stored before step 1,
//     so if it is undelivered or unacknowledged, NumPending or NumAckPending says so, and the
//     endpoint wakes at once — or, where the info cannot say so yet, the watcher does: an event
//     it has seen for the endpoint's filters beyond what the consumer delivered keeps it awake
//     (seenSince; on a cluster the consumer's leader may read a copy of the stream that lags the
//     one the watcher reads).
//
// Nothing the watcher does depends on the connection staying up: after a reconnect the ordered
// consumer carries on after the last sequence it saw. If the watcher stops for good, every
// sleeping endpoint is woken and none sleeps again (sleepable).
//
// A woken worker starts as any worker does, resetting its consumer to the ack floor — unless the
// endpoint slept clean (cleanSleep).

// maxOpening bounds the workers opening their consumer at once (one JetStream API request each
// when woken): enough to wake thousands within seconds, few enough not to time out.
const maxOpening = 32

// idleExpiries is how many pull expiries in a row must bring nothing before a quiet worker
// sleeps.
const idleExpiries = 2

// watcher wakes sleeping endpoints when an event for them is stored.
type watcher struct {
	wake func(id string) // called without mu, for each endpoint to wake
	log  zerolog.Logger

	started chan struct{} // closed once it follows the stream

	mu      sync.Mutex
	running bool                           // the watcher follows the stream: endpoints may sleep
	pos     uint64                         // the last stream sequence seen
	keys    map[string]map[string]struct{} // wake key (a filter) -> sleeping endpoints
	asleep  map[string][]string            // sleeping endpoint -> its wake keys
	last    map[string]uint64              // wake key -> the last sequence seen for it
}

func newWatcher(wake func(id string), log zerolog.Logger) *watcher {
	return &watcher{wake: wake, log: log, started: make(chan struct{}), keys: make(map[string]map[string]struct{}), asleep: make(map[string][]string), last: make(map[string]uint64)}
}

// run follows the events stream from its end until ctx ends or the watcher cannot go on; then
// it wakes every sleeping endpoint, and none may sleep after.
func (wt *watcher) run(ctx context.Context, stream jetstream.Stream) {
	defer wt.stop()
	var cc jetstream.ConsumeContext
	for retry := jsRetry(); ctx.Err() == nil; {
		var err error
		if cc, err = wt.start(ctx, stream); err == nil {
			break
		}
		wait := retry.Next()
		wt.log.Warn().Err(err).Dur("retry_in", wait).Msg("watch events stream: idle endpoints stay awake meanwhile")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if cc == nil {
		return
	}
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		if ctx.Err() == nil {
			wt.log.Error().Msg("watch of the events stream ended: idle endpoints stay awake")
		}
	}
	cc.Stop()
}

// start reads where the stream ends and follows it from the next sequence.
func (wt *watcher) start(ctx context.Context, stream jetstream.Stream) (jetstream.ConsumeContext, error) {
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := stream.Info(ictx)
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ictx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   last + 1,
		HeadersOnly:   true,
		NamePrefix:    WatcherPrefix + randomID(),
	})
	if err != nil {
		return nil, fmt.Errorf("watch stream: %w", err)
	}
	wt.mu.Lock()
	wt.pos = last // every event up to last was stored before any endpoint registers
	wt.mu.Unlock()
	cc, err := cons.Consume(wt.saw, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errorsIsClosed(err) {
			wt.log.Debug().Err(err).Msg("watch events stream")
		}
	}))
	if err != nil {
		return nil, fmt.Errorf("watch stream: %w", err)
	}
	wt.mu.Lock()
	wt.running = true
	wt.mu.Unlock()
	close(wt.started)
	return cc, nil
}

// WatcherPrefix starts the name of every gateway's watcher consumer (an ordered, ephemeral
// one): it is no endpoint's.
const WatcherPrefix = "quaycast_watch_"

// WatcherRoom is the room the events stream keeps for them beside the endpoints' consumers
// (StreamOptions.MaxConsumers): one per gateway, one more while a watcher is recreated, and the
// readers of redeliveries in progress (Redeliverer).
const WatcherRoom = 32

// randomID names an ephemeral consumer of this process.
func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func errorsIsClosed(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}

// saw wakes the sleeping endpoints an event is for.
func (wt *watcher) saw(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	wt.sawStored(msg.Subject(), meta.Sequence.Stream)
}

// sawStored wakes the sleeping endpoints an event stored at seq on subject is for.
func (wt *watcher) sawStored(subject string, seq uint64) {
	var woken []string
	wt.mu.Lock()
	wt.pos = max(wt.pos, seq)
	forKeys(subject, func(key string) {
		wt.last[key] = max(wt.last[key], seq)
		for id := range wt.keys[key] {
			woken = append(woken, id)
			wt.removeLocked(id)
		}
	})
	wt.mu.Unlock()
	for _, id := range woken {
		wt.wake(id)
	}
}

// stop wakes every sleeping endpoint; none may sleep after.
func (wt *watcher) stop() {
	wt.mu.Lock()
	wt.running = false
	ids := make([]string, 0, len(wt.asleep))
	for id := range wt.asleep {
		ids = append(ids, id)
		wt.removeLocked(id)
	}
	wt.mu.Unlock()
	for _, id := range ids {
		wt.wake(id)
	}
}

// add registers id as asleep with its consumer's filters, at the watcher's position. It returns
// false when the endpoint cannot sleep: the watcher does not run, or a filter is not one it can
// match.
func (wt *watcher) add(id string, filters []string) bool {
	if !sleepable(filters) {
		return false
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if !wt.running {
		return false
	}
	wt.removeLocked(id)
	wt.asleep[id] = filters
	for _, f := range filters {
		set := wt.keys[f]
		if set == nil {
			set = make(map[string]struct{})
			wt.keys[f] = set
		}
		set[id] = struct{}{}
	}
	return true
}

// seenSince reports whether the watcher has seen an event for filters at seq or after. An
// endpoint whose consumer has delivered nothing from seq on must then not sleep, whatever its
// info counts: on a cluster the info comes from the consumer's leader, whose copy of the stream
// may not hold yet an event the watcher (on another node) has passed — and will not wake it for.
func (wt *watcher) seenSince(filters []string, seq uint64) bool {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	for _, f := range filters {
		if wt.last[f] >= seq {
			return true
		}
	}
	return false
}

// nothingFor reports whether info, read after the endpoint was registered with the watcher,
// shows nothing its consumer has to send: none pending, none unacknowledged, and no event the
// watcher has seen for filters beyond what it delivered.
func (wt *watcher) nothingFor(filters []string, info *jetstream.ConsumerInfo) bool {
	return info != nil && info.NumPending == 0 && info.NumAckPending == 0 && !wt.seenSince(filters, info.Delivered.Stream+1)
}

// remove forgets id, asleep or not.
func (wt *watcher) remove(id string) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.removeLocked(id)
}

func (wt *watcher) removeLocked(id string) {
	for _, f := range wt.asleep[id] {
		if set := wt.keys[f]; set != nil {
			delete(set, id)
			if len(set) == 0 {
				delete(wt.keys, f)
			}
		}
	}
	delete(wt.asleep, id)
}

// sleepers is the number of endpoints asleep.
func (wt *watcher) sleepers() int {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return len(wt.asleep)
}

// The wake keys of a subject are the consumer filters that match it, of the shapes
// subjects.Filters, subjects.TenantFilters, subjects.OpsTenantFilters and subjects.ReplayFilter
// make: evt.> (every event), evt.*.<type>, tnt.<tenant>.>, tnt.<tenant>.*.<type>,
// replay.<endpoint>.>, and of the operator events quaycast.ops.> and, after quaycast.ops., *,
// <type>, *.<type>, <tenant>.* and <tenant>.<type>. An endpoint with a filter of any other shape
// never sleeps.
const (
	allEvents   = subjects.StreamSubjects // evt.>
	eventPrefix = subjects.Prefix + ".*."
	replayStart = subjects.ReplayPrefix + "."
	tenantStart = subjects.TenantPrefix + "."
)

// forKeys calls f with each wake key of subject.
func forKeys(subject string, f func(key string)) {
	switch {
	case strings.HasPrefix(subject, subjects.OpsSubjectPrefix):
		rest := subject[len(subjects.OpsSubjectPrefix):]
		if rest == "" {
			return
		}
		f(subjects.OpsStreamSubjects)
		tenant, kind, two := strings.Cut(rest, ".")
		if !two {
			f(subjects.OpsSubjectPrefix + "*")
			f(subject)
			return
		}
		f(subjects.OpsSubjectPrefix + "*." + kind)
		f(subjects.OpsSubjectPrefix + tenant + ".*")
		f(subject)
	case strings.HasPrefix(subject, subjects.Prefix+"."):
		f(allEvents)
		rest := subject[len(subjects.Prefix)+1:]
		if i := strings.IndexByte(rest, '.'); i > 0 && !strings.Contains(rest[i+1:], ".") && i+1 < len(rest) {
			f(eventPrefix + rest[i+1:])
		}
	case strings.HasPrefix(subject, replayStart):
		rest := subject[len(replayStart):]
		if i := strings.IndexByte(rest, '.'); i > 0 && i+1 < len(rest) {
			f(replayStart + rest[:i] + ".>")
		}
	case strings.HasPrefix(subject, tenantStart): // tnt.<tenant>.<source>.<type>
		rest := subject[len(tenantStart):]
		i := strings.IndexByte(rest, '.')
		if i <= 0 || i+1 >= len(rest) {
			return
		}
		tenant, st := rest[:i], rest[i+1:]
		f(tenantStart + tenant + ".>")
		if j := strings.IndexByte(st, '.'); j > 0 && !strings.Contains(st[j+1:], ".") && j+1 < len(st) {
			f(tenantStart + tenant + ".*." + st[j+1:])
		}
	}
}

// sleepable reports whether every filter has a shape forKeys produces.
func sleepable(filters []string) bool {
	for _, f := range filters {
		switch {
		case f == allEvents:
		case strings.HasPrefix(f, eventPrefix):
			if t := f[len(eventPrefix):]; t == "" || strings.ContainsAny(t, ".*>") {
				return false
			}
		case strings.HasPrefix(f, replayStart) && strings.HasSuffix(f, ".>"):
			if t := f[len(replayStart) : len(f)-2]; t == "" || strings.ContainsAny(t, ".*>") {
				return false
			}
		case strings.HasPrefix(f, tenantStart):
			if !tenantWakeKey(f[len(tenantStart):]) {
				return false
			}
		case strings.HasPrefix(f, subjects.OpsSubjectPrefix):
			if !opsWakeKey(f[len(subjects.OpsSubjectPrefix):]) {
				return false
			}
		default:
			return false
		}
	}
	return len(filters) > 0
}

// tenantWakeKey reports whether rest, a filter after "tnt.", is "<tenant>.>" or
// "<tenant>.*.<type>".
func tenantWakeKey(rest string) bool {
	tenant, tail, ok := strings.Cut(rest, ".")
	if !ok || tenant == "" || strings.ContainsAny(tenant, "*>") {
		return false
	}
	if tail == ">" {
		return true
	}
	t, ok := strings.CutPrefix(tail, "*.")
	return ok && t != "" && !strings.ContainsAny(t, ".*>")
}

// opsWakeKey reports whether rest, a filter after "quaycast.ops.", is one forKeys makes: ">",
// "*", "<type>", "*.<type>", "<tenant>.*" or "<tenant>.<type>".
func opsWakeKey(rest string) bool {
	if rest == ">" {
		return true
	}
	a, b, two := strings.Cut(rest, ".")
	token := func(s string) bool {
		return s != "" && !strings.ContainsAny(s, ".>") && (s == "*" || !strings.Contains(s, "*"))
	}
	if !two {
		return token(a)
	}
	return token(a) && token(b) && !(a == "*" && b == "*")
}

// States of an endpoint's runningWorker.
const (
	awake  = iota // its worker runs (or is about to be started)
	dozing        // registered as asleep, its pending events being read: a wake keeps it awake
	asleep        // no goroutine: the watcher starts it when an event for it is stored
)

// errIdle ends a worker's run that found its endpoint caught up and quiet: the manager puts it
// to sleep, or runs it again if an event came meanwhile.
var errIdle = errors.New("caught up and quiet")

// closedChan is the done channel of a runningWorker without a goroutine.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// wakeAsync asks the waker (runWakes) to start a sleeping endpoint; called by the watcher.
func (m *Manager) wakeAsync(id string) {
	m.wakeMu.Lock()
	m.wakeQ = append(m.wakeQ, id)
	m.wakeMu.Unlock()
	select {
	case m.wakeSig <- struct{}{}:
	default:
	}
}

// runWakes starts the endpoints the watcher wakes until ctx ends: on Run's context, which the
// watcher's callback does not have.
func (m *Manager) runWakes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wakeSig:
		}
		m.wakeMu.Lock()
		ids := m.wakeQ
		m.wakeQ = nil
		m.wakeMu.Unlock()
		for _, id := range ids {
			m.wake(ctx, id)
		}
	}
}

// wake starts a sleeping endpoint's worker, or keeps a dozing one awake.
func (m *Manager) wake(ctx context.Context, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wakeLocked(ctx, id, m.running[id])
}

func (m *Manager) wakeLocked(ctx context.Context, id string, rw *runningWorker) {
	if rw == nil || ctx.Err() != nil {
		return
	}
	m.watch.remove(id)
	switch rw.state {
	case dozing:
		rw.state = awake // the sleep check sees it and runs on
	case asleep:
		m.runLocked(ctx, id, rw)
		m.log.Debug().Str("endpoint_id", id).Msg("woken")
	}
}

// runLocked starts a goroutine running rw's endpoint with a new worker. Callers hold m.mu.
func (m *Manager) runLocked(ctx context.Context, id string, rw *runningWorker) {
	ctx, cancel := context.WithCancel(ctx)
	rw.cancel, rw.done, rw.state = cancel, make(chan struct{}), awake
	rw.w, rw.ep = newWorker(rw.endpoint(), m, rw.progress), nil
	rw.w.noParks = m.parksKnown && !m.parked[id]
	rw.w.woken = m.cleanWakeLocked(rw)
	// Counted before it runs: a wake starts many at once, and the first to pull must see the
	// others that will (pulls). runWorker takes it off.
	m.pulls.awake.Add(1)
	go m.runWorker(ctx, id, rw, rw.done, m.stopping[id])
}

// endpoint is the definition rw delivers with: its worker's, or while none runs (prepared, or
// asleep) the one rw keeps itself. Callers hold m.mu.
func (rw *runningWorker) endpoint() *Endpoint {
	if rw.w == nil {
		return rw.ep
	}
	return rw.w.ep.Load()
}

// setEndpoint changes the definition rw delivers with (the running worker's, whose later
// attempts use it). Callers hold m.mu.
func (rw *runningWorker) setEndpoint(ep *Endpoint) {
	if rw.w == nil {
		rw.ep = ep
		return
	}
	rw.w.ep.Store(ep)
}

// rest keeps rw's definition and drops its worker, which no goroutine runs any more: a sleeping
// endpoint holds no worker (760 bytes) nor its lanes, channels, maps and logger (newWorker's
// 18 MB at 10,000 idle endpoints). runLocked makes a worker from the definition. Callers hold
// m.mu.
func (rw *runningWorker) rest() {
	if rw.w != nil {
		rw.ep, rw.w = rw.w.ep.Load(), nil
	}
}

// prepare puts a starting endpoint in m.running without a goroutine: dozing, registered with
// the watcher, if it may start asleep; awake otherwise. launch decides once its consumer's info
// is read.
func (m *Manager) prepare(ep *Endpoint, filters []string) *runningWorker {
	m.mu.Lock()
	rw := &runningWorker{filters: filters, progress: m.progressLocked(ep.ID), restart: make(chan struct{}, 1), cancel: func() {}, done: closedChan,
		reconnects: m.connReconnects()} // before launch's info is read
	rw.ep = ep // a worker once it runs
	m.running[ep.ID] = rw
	if m.parksKnown && !m.parked[ep.ID] && m.watch.add(ep.ID, filters) { // under m.mu: a wake finds it dozing
		rw.state = dozing
	}
	m.mu.Unlock()
	return rw
}

// unprepare undoes prepare when the consumer could not be set up.
func (m *Manager) unprepare(id string, rw *runningWorker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[id] == rw {
		delete(m.running, id)
	}
	m.watch.remove(id)
}

// launch puts a prepared endpoint to sleep if its consumer has nothing for it (info was read
// after it was registered with the watcher), and starts its worker otherwise.
func (m *Manager) launch(ctx context.Context, ep *Endpoint, rw *runningWorker, info *jetstream.ConsumerInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[ep.ID] != rw {
		return // stopped meanwhile
	}
	if rw.state == dozing && m.watch.nothingFor(rw.filters, info) {
		// No worker of this process has pulled yet: a request the info counts as waiting is
		// another's (a gateway before this one), and makes the sleep unclean.
		rw.state, rw.clean = asleep, sleptClean(info, true, rw.reconnects)
		m.log.Info().Str("endpoint_id", ep.ID).Str("url", ep.URL).Strs("event_types", ep.EventTypes).Msg("endpoint added (asleep until an event comes)")
		return
	}
	m.watch.remove(ep.ID)
	m.runLocked(ctx, ep.ID, rw)
	m.log.Info().Str("endpoint_id", ep.ID).Str("url", ep.URL).Strs("event_types", ep.EventTypes).Msg("endpoint added")
}

// cleanSleep is where an endpoint's consumer stood when its worker ended, if it ended clean:
// every event the consumer sent was acknowledged, and no pull request was left at the server
// (the worker's last one ended by the server, none given up on; and the info says none waits).
// Nothing can then move the consumer but a pull request, so the next worker — woken, or run on
// because an event came while it fell asleep — starts where the consumer stands, if the
// connection has not broken since, and skips the reset: one JetStream API request fewer per
// woken endpoint, which is what waking thousands at once queued on. Should the consumer have
// moved after all, the first delivery's sequence shows it (inSequence), and the worker starts
// again with a reset.
type cleanSleep struct {
	ackFloor   uint64 // the stream sequence of the last event acknowledged
	delivered  uint64 // the consumer's delivery sequence then
	reconnects uint64 // the connection's reconnects, read before info
}

// sleptClean is the cleanSleep info shows, or nil. reconnects is the connection's count read
// before info was.
func sleptClean(info *jetstream.ConsumerInfo, noPullLeft bool, reconnects uint64) *cleanSleep {
	if info == nil || !noPullLeft || info.NumAckPending != 0 || info.NumWaiting != 0 || info.Delivered.Consumer != info.AckFloor.Consumer {
		return nil
	}
	return &cleanSleep{ackFloor: info.AckFloor.Stream, delivered: info.Delivered.Consumer, reconnects: reconnects}
}

// connReconnects is the connection's count of reconnects. nats.go counts one as soon as it is back,
// where Reconnected is called some time later: a wake in between must not trust a clean sleep.
func (m *Manager) connReconnects() uint64 { return m.js.Conn().Stats().Reconnects }

// cleanWakeLocked takes the clean sleep a worker starting now may skip its reset on: none after
// a reconnect. Callers hold m.mu.
func (m *Manager) cleanWakeLocked(rw *runningWorker) *cleanSleep {
	c := rw.clean
	rw.clean = nil
	select { // a reconnect while it slept: reset, whatever the count says
	case <-rw.restart:
		return nil
	default:
	}
	if c == nil || m.connReconnects() != c.reconnects {
		return nil
	}
	return c
}

// sleep puts an endpoint whose worker ended quiet to sleep and reports true, or false if it
// must run on: an event is pending, came meanwhile, or the watcher does not run. noPullLeft says
// whether the worker left no pull request at the server.
func (m *Manager) sleep(ctx context.Context, id string, rw *runningWorker, name string, noPullLeft bool) bool {
	m.mu.Lock()
	if m.running[id] != rw {
		m.mu.Unlock()
		return false
	}
	rw.state = dozing
	filters := rw.filters
	m.mu.Unlock()
	m.sleepHook(sleepRegistering)
	ok := m.watch.add(id, filters)
	m.sleepHook(sleepRegistered)
	reconnects := m.connReconnects()
	var info *jetstream.ConsumerInfo
	if ok {
		info = m.consumerInfo(ctx, name)
		ok = m.watch.nothingFor(filters, info)
	}
	m.sleepHook(sleepChecked)
	m.mu.Lock()
	defer m.mu.Unlock()
	rw.clean = sleptClean(info, noPullLeft, reconnects) // also for a worker that runs on
	if !ok || rw.state != dozing || m.running[id] != rw || ctx.Err() != nil {
		m.watch.remove(id)
		if rw.state == dozing {
			rw.state = awake
		}
		return false
	}
	rw.state = asleep
	rw.rest() // the run's worker has ended: keep its definition only
	m.log.Debug().Str("endpoint_id", id).Bool("clean", rw.clean != nil).Msg("asleep")
	return true
}

// Points of sleep at which a test may act (Manager.onSleep).
const (
	sleepRegistering = iota // before the endpoint is registered with the watcher
	sleepRegistered         // registered, its consumer's info not read yet
	sleepChecked            // the info read, not yet asleep
)

func (m *Manager) sleepHook(stage int) {
	if m.onSleep != nil {
		m.onSleep(stage)
	}
}

// pendingInfo is the info launch decides on: read afresh from the consumer's leader, never the
// create response's. That response can count events still to send as none: the first create of
// a consumer recovered at a server restart answers with a snapshot taken at recovery (events
// stored since are missing; TestCreateResponseUndercountsAfterRestart), and a create retried after
// a timeout on a cluster may be answered by a replica, which counts nothing pending. Either way
// the endpoint would sleep through its backlog. nil (start awake) if the read fails.
func pendingInfo(ctx context.Context, cons jetstream.Consumer) *jetstream.ConsumerInfo {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := cons.Info(cctx)
	if err != nil {
		return nil
	}
	return info
}

// dozing reports whether a prepared endpoint may start asleep, so launch needs its pending count.
func (m *Manager) dozing(rw *runningWorker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return rw.state == dozing
}

// consumerInfo reads a consumer's info (nil if it cannot).
func (m *Manager) consumerInfo(ctx context.Context, name string) *jetstream.ConsumerInfo {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := m.stream.Consumer(cctx, name)
	if err != nil {
		return nil
	}
	return cons.CachedInfo()
}

// readParks notes which endpoints have events parked, before any starts: those start awake to
// drain them. Until it has been read, every endpoint starts awake.
func (m *Manager) readParks(ctx context.Context) {
	park, err := m.parkStream(ctx)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = park.Info(ctx, jetstream.WithSubjectFilter(parkSubjects))
	}
	if err != nil {
		m.log.Warn().Err(err).Msg("read parks: every endpoint starts awake")
		return
	}
	parked := make(map[string]bool)
	for subject := range info.State.Subjects {
		tok, _, _ := strings.Cut(strings.TrimPrefix(subject, parkPrefix), ".")
		if id, err := subjects.DecodeToken(tok); err == nil {
			parked[id] = true
		}
	}
	m.mu.Lock()
	m.parked, m.parksKnown = parked, true
	m.mu.Unlock()
}

// hasParks reads whether an endpoint has events parked (true if it cannot tell).
func (m *Manager) hasParks(ctx context.Context, id string) bool {
	park, err := m.parkStream(ctx)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = park.Info(ctx, jetstream.WithSubjectFilter(parkFilter(id)))
	}
	return err != nil || len(info.State.Subjects) > 0
}

// Sleeping is the number of endpoints asleep on this gateway: caught up, with no goroutine,
// subscription or pull request.
func (m *Manager) Sleeping() int { return m.watch.sleepers() }
