package bench

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
)

// Options configure a run. The gateway under test is, in this order: the one at APIURL and
// NATSURL (both or neither); a child `Executable serve ...` on loopback with a temporary data
// dir, whose CPU time and memory are measured; or, when Executable is empty, a gateway.New in
// this process (for tests: no CPU or memory figures).
type Options struct {
	Scenario Scenario
	APIURL   string
	NATSURL  string

	Executable      string
	GatewayLogLevel string // of a child gateway: warn unless set

	Baseline bool          // also run the minimal pipeline, before the gateway, for ratios
	Timeout  time.Duration // of the whole run: 5m unless set
	Verify   bool          // receivers verify every signature (costs the harness CPU)
	Progress io.Writer     // where the progress bar goes; nil: none
	Notes    []string      // added to the result's notes
	APIToken string        // bearer token for the API of an existing gateway, if it asks for one

	// NATS is how to authenticate to the NATS of an existing gateway (with APIURL and NATSURL):
	// the publisher's credential, also used by the baseline's consumers, which need JetStream
	// access (for the embedded NATS: quaycast's own credential, <data-dir>/auth/internal.token).
	// A gateway the harness starts is reached with the credentials in its data dir: the local
	// publisher's to publish, quaycast's own for the baseline. CA applies to both.
	NATS gateway.NATSAccess

	// For a gateway in this process: its logger, and a change to its configuration (defaults,
	// loopback ports, a temporary data dir, loopback receivers allowed).
	Log       zerolog.Logger
	Configure func(*config.Config)
}

// ErrVerdict is returned (wrapped) with the result when a run lost, duplicated or reordered
// deliveries, or did not finish within its timeout.
var ErrVerdict = errors.New("bench verdict")

func (o Options) validate() error {
	if err := o.Scenario.Validate(); err != nil {
		return err
	}
	switch {
	case (o.APIURL == "") != (o.NATSURL == ""):
		if o.APIURL == "" {
			return &config.FieldError{Field: "api", Reason: "is needed with --nats-url (both name an existing gateway)"}
		}
		return &config.FieldError{Field: "nats-url", Reason: "is needed with --api (both name an existing gateway)"}
	case o.Timeout < 0 || o.Timeout > 2*time.Hour:
		return &config.FieldError{Field: "timeout", Reason: "must be between 1s and 2h"}
	case o.APIURL != "" && len(o.Scenario.GatewayArgs) > 0:
		return &config.FieldError{Field: "gateway-arg", Reason: "only applies to a gateway the harness starts, not with --api"}
	}
	if o.APIURL != "" {
		if err := loopbackURL("api", o.APIURL); err != nil {
			return err
		}
		if err := loopbackURL("nats-url", o.NATSURL); err != nil {
			return err
		}
	}
	return nil
}

// runner holds what the rounds of one run share.
type runner struct {
	o        Options
	sc       Scenario
	run      string // random run id: event ids and consumer names carry it
	epoch    time.Time
	tgt      *target
	rec      *receivers
	ev       *events
	pubJS    jetstream.JetStream
	subJS    jetstream.JetStream
	stream   jetstream.Stream
	api      *gateway.Client
	bar      *progress
	conns    []*nats.Conn
	natsErrs errorLog
}

// Run runs the scenario and returns its result. The error wraps ErrVerdict when the result is
// not clean; the result is then still returned, with what was measured.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.GatewayLogLevel == "" {
		o.GatewayLogLevel = "warn"
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	sc := o.Scenario
	r := &runner{o: o, sc: sc, run: runID(), epoch: time.Now(), bar: newProgress(o.Progress)}
	res := &Result{
		Scenario: sc, Run: r.run, Started: r.epoch.UTC(),
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Notes:   slices.Clone(o.Notes),
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var err error
	r.rec, err = newReceivers(sc, r.epoch, o.Verify)
	if err != nil {
		return nil, err
	}
	defer r.rec.close()

	r.bar.phase("starting the gateway", 0)
	if err := r.startTarget(ctx); err != nil {
		r.bar.done()
		return nil, err
	}
	res.Target, res.GatewayPID = r.tgt.kind, r.tgt.pid
	stopTarget := func() {
		for _, nc := range r.conns { // ours first, before the server goes
			nc.Close()
		}
		r.conns = nil
		if r.tgt.stop == nil {
			return
		}
		r.rec.letGo() // hanging requests would hold the gateway's shutdown
		if err := r.tgt.stop(); err != nil {
			res.Notes = append(res.Notes, "gateway stop: "+err.Error())
		}
		r.tgt.stop = nil
	}
	defer stopTarget()
	if ps, ok := r.tgt.procStats(); ok {
		res.GatewayStart = usage(ps, 0)
	}
	switch r.tgt.kind {
	case TargetRemote:
		res.Notes = append(res.Notes, "gateway at "+o.APIURL+" is not a process of this harness: no gateway CPU or memory figures")
	case TargetInProcess:
		res.Notes = append(res.Notes, "gateway runs inside the harness: no gateway CPU or memory figures")
	}

	if err := r.connect(ctx); err != nil {
		r.bar.done()
		return nil, err
	}
	r.ev = newEvents(sc)

	healthyEps := slices.DeleteFunc(slices.Clone(r.rec.eps), func(e *endpoint) bool { return e.behaviour == hanging })
	var runErr error
	if o.Baseline {
		round, err := r.baselineRound(ctx, "baseline", "b", healthyEps)
		res.Rounds = append(res.Rounds, round)
		runErr = err
	}
	if runErr == nil && ctx.Err() == nil && sc.Hanging > 0 {
		round, err := r.gatewayRound(ctx, "gateway, no hanging endpoint", "h", healthyEps, true)
		res.Rounds = append(res.Rounds, round)
		runErr = err
	}
	if runErr == nil && ctx.Err() == nil {
		round, err := r.gatewayRound(ctx, "gateway", "g", r.rec.eps, r.tgt.kind == TargetRemote)
		res.Rounds = append(res.Rounds, round)
		runErr = err
	}
	r.bar.done()

	if ps, ok := r.tgt.procStats(); ok {
		res.GatewayEnd = usage(ps, 0)
	}
	res.GatewayLog.Warnings, res.GatewayLog.Errors, res.GatewayLog.Lines = r.tgt.logs.counts()
	if r.tgt.kind == TargetRemote { // leave the gateway as we found it
		r.rec.letGo()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		r.deleteEndpoints(cctx, r.rec.eps)
		cancel()
	}
	stopTarget()
	res.Strays = r.rec.strays.Load()
	res.ReceiverErrors, res.NATSErrors = r.rec.errs.summary(), r.natsErrs.summary()
	res.Seconds = time.Since(r.epoch).Seconds()
	res.compare()
	res.judge()
	if ctx.Err() != nil && runErr == nil {
		runErr = fmt.Errorf("%w: the run did not finish within --timeout %s", ErrVerdict, o.Timeout)
	}
	if runErr != nil {
		if r.tgt.logs != nil && !errors.Is(runErr, ErrVerdict) {
			runErr = fmt.Errorf("%w\ngateway log (last lines):\n%s", runErr, r.tgt.logs)
		}
		return res, runErr
	}
	if !res.OK {
		return res, fmt.Errorf("%w: %s", ErrVerdict, res.problem())
	}
	return res, nil
}

func runID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func (r *runner) startTarget(ctx context.Context) error {
	switch {
	case r.o.APIURL != "":
		access, err := gateway.ClientOptions(r.o.NATS)
		if err != nil {
			return err
		}
		r.tgt = &target{kind: TargetRemote, api: strings.TrimRight(r.o.APIURL, "/"), nats: r.o.NATSURL, pub: access, sub: access}
	default: // a gateway of our own, on a temporary data dir removed when it stops
		dir, err := os.MkdirTemp("", "quaycast-bench-")
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		var t *target
		if r.o.Executable != "" {
			t, err = startChild(ctx, r.o.Executable, dir, r.o.GatewayLogLevel, r.sc.GatewayArgs)
		} else {
			cfg := config.Default()
			cfg.DataDir, cfg.NATSListen, cfg.Listen = dir, "127.0.0.1:0", "127.0.0.1:0"
			cfg.AllowTargets = []string{"127.0.0.1"} // the receivers are on loopback
			if r.o.Configure != nil {
				r.o.Configure(&cfg)
			}
			t, err = startInProcess(ctx, cfg, r.o.Log)
		}
		if err == nil {
			err = t.localAccess(dir, r.o.NATS.CA)
		}
		if err != nil {
			if t != nil {
				_ = t.stop()
			}
			os.RemoveAll(dir)
			return err
		}
		stop := t.stop
		t.stop = func() error {
			err := stop()
			os.RemoveAll(dir)
			return err
		}
		r.tgt = t
	}
	r.api = gateway.NewClient(r.tgt.api)
	r.api.Token = r.o.APIToken
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.api.Do(hctx, "GET", "/healthz", nil, nil); err != nil {
		return fmt.Errorf("gateway API at %s: %w", r.tgt.api, err)
	}
	return nil
}

// connect opens one NATS connection for publishing and one for the baseline's consumers, and
// finds the events stream.
func (r *runner) connect(ctx context.Context) error {
	opts := []nats.Option{nats.Name("quaycast-bench"), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { r.natsErrs.add(err.Error()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				r.natsErrs.add("disconnected: " + err.Error())
			}
		}),
	}
	pub, err := nats.Connect(r.tgt.nats, append(opts, r.tgt.pub...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", r.tgt.nats, err)
	}
	r.conns = append(r.conns, pub)
	sub, err := nats.Connect(r.tgt.nats, append(opts, r.tgt.sub...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", r.tgt.nats, err)
	}
	r.conns = append(r.conns, sub)
	if r.pubJS, err = jetstream.New(pub, jetstream.WithPublishAsyncMaxPending(2*r.sc.Window), jetstream.WithPublishAsyncTimeout(30*time.Second)); err != nil {
		return err
	}
	if r.subJS, err = jetstream.New(sub); err != nil {
		return err
	}
	if r.o.Baseline {
		r.stream, err = streamOf(ctx, r.subJS, r.sc.Types[0])
	}
	return err
}

// workers reads how many endpoints the gateway delivers to, from /readyz; -1 while it is not
// ready.
func (r *runner) workers(ctx context.Context) int {
	var out struct {
		Endpoints int `json:"endpoints"`
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.api.Do(rctx, "GET", "/readyz", nil, &out); err != nil {
		return -1
	}
	return out.Endpoints
}

// waitWorkers waits until the gateway delivers to n endpoints.
func (r *runner) waitWorkers(ctx context.Context, n int) error {
	for {
		w := r.workers(ctx)
		r.bar.set(int64(max(w, 0)))
		if w == n {
			return nil
		}
		if err := r.tgt.gone(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway delivering to %d endpoints, want %d: %w", w, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parallel runs f for every endpoint, 8 at a time, and returns the first error.
func parallel(ctx context.Context, eps []*endpoint, f func(context.Context, *endpoint) error, done func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *endpoint)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ep := range work {
				if err := f(ctx, ep); err != nil {
					cancel(err)
					continue
				}
				done()
			}
		})
	}
	for _, ep := range eps {
		select {
		case work <- ep:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// register creates the endpoints through the API.
func (r *runner) register(ctx context.Context, eps []*endpoint) error {
	var n atomic.Int64
	return parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		var out struct{ ID, Secret string }
		body := map[string]any{"url": ep.url, "event_types": ep.selectors, "description": "quaycast bench " + r.run + " " + ep.name}
		if err := r.api.Do(ctx, "POST", "/v1/endpoints", body, &out); err != nil {
			var ae *gateway.APIError
			if errors.As(err, &ae) && ae.Field == "url" && r.tgt.kind == TargetRemote {
				return fmt.Errorf("register %s: %w (start the gateway with --allow-target 127.0.0.1: the harness's receivers are on loopback)", ep.name, err)
			}
			return fmt.Errorf("register %s: %w", ep.name, err)
		}
		ep.id, ep.secret = out.ID, out.Secret
		return nil
	}, func() { r.bar.set(n.Add(1)) })
}

// deleteEndpoints removes what register created; errors are left to the report's notes.
func (r *runner) deleteEndpoints(ctx context.Context, eps []*endpoint) {
	_ = parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		if ep.id == "" {
			return nil
		}
		var ae *gateway.APIError
		if err := r.api.Do(ctx, "DELETE", "/v1/endpoints/"+ep.id, nil, nil); err != nil && !(errors.As(err, &ae) && ae.Status == 404) {
			return err
		}
		ep.id = ""
		return nil
	}, func() {})
}

// gatewayRound registers eps, measures the gateway idle, sends the round's traffic through it,
// and, if cleanup, deletes the endpoints again.
func (r *runner) gatewayRound(ctx context.Context, name, letter string, eps []*endpoint, cleanup bool) (Round, error) {
	rd := Round{Name: name, Pipeline: "gateway"}
	before := r.workers(ctx)
	if before < 0 {
		if err := r.waitReady(ctx); err != nil {
			return rd, err
		}
		before = r.workers(ctx)
	}
	r.bar.phase(name+": registering endpoints", int64(len(eps)))
	start := time.Now()
	if err := r.register(ctx, eps); err != nil {
		return rd, err
	}
	reg := &Registration{Endpoints: len(eps), Seconds: time.Since(start).Seconds()}
	reg.PerEndpointMs = reg.Seconds * 1000 / float64(len(eps))
	r.bar.phase(name+": waiting for the gateway to deliver to every endpoint", int64(before+len(eps)))
	if err := r.waitWorkers(ctx, before+len(eps)); err != nil {
		return rd, err
	}
	reg.ReadySeconds = time.Since(start).Seconds()
	rd.Registration = reg

	if idle := time.Duration(r.sc.Idle); idle > 0 {
		r.bar.phase(fmt.Sprintf("%s: idle for %s", name, idle), 0)
		ps0, ok := r.tgt.procStats()
		select {
		case <-time.After(idle):
		case <-ctx.Done():
			return rd, ctx.Err()
		}
		if ps1, ok1 := r.tgt.procStats(); ok && ok1 {
			rd.Idle = &Idle{Seconds: idle.Seconds(), CPUPercent: 100 * (ps1.CPU - ps0.CPU).Seconds() / idle.Seconds(), RSSMiB: mib(ps1.RSS), PeakRSSMiB: mib(ps1.PeakRSS)}
		}
	}

	downs := downEndpoints(eps)
	for _, ep := range downs {
		ep.srv.close()
	}
	err := r.traffic(ctx, &rd, letter, eps, func(ctx context.Context) error {
		for _, ep := range downs {
			if err := ep.srv.up(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if cleanup && ctx.Err() == nil {
		r.bar.phase(name+": deleting endpoints", 0)
		r.deleteEndpoints(ctx, eps)
		if err == nil {
			err = r.waitWorkers(ctx, before)
		}
	}
	return rd, err
}

func (r *runner) waitReady(ctx context.Context) error {
	for r.workers(ctx) < 0 {
		if err := r.tgt.gone(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func downEndpoints(eps []*endpoint) []*endpoint {
	var out []*endpoint
	for _, ep := range eps {
		if ep.behaviour == down {
			out = append(out, ep)
		}
	}
	return out
}

// baselineRound sends the round's traffic through the minimal pipeline.
func (r *runner) baselineRound(ctx context.Context, name, letter string, eps []*endpoint) (Round, error) {
	rd := Round{Name: name, Pipeline: "baseline"}
	r.bar.phase(name+": creating consumers", int64(len(eps)))
	info, err := r.stream.Info(ctx)
	if err != nil {
		return rd, fmt.Errorf("events stream: %w", err)
	}
	b := newBaseline(r.subJS, r.stream, r.run)
	defer func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := b.close(c); err != nil {
			rd.Notes = append(rd.Notes, err.Error())
		}
		for e, n := range b.errs {
			rd.Notes = append(rd.Notes, fmt.Sprintf("consume error ×%d: %s", n, e))
		}
	}()
	rctx, cancelDeliveries := context.WithCancel(ctx)
	defer cancelDeliveries()
	parts := min(baselineInFlight, r.sc.Entities)
	var (
		mu    sync.Mutex
		later []*baselineEndpoint
		n     atomic.Int64
	)
	start := time.Now()
	err = parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		be, err := b.add(ctx, ep, info.State.LastSeq+1, parts)
		if err != nil {
			return err
		}
		if ep.behaviour == down { // consumes only once publishing is done: the drain
			mu.Lock()
			later = append(later, be)
			mu.Unlock()
			return nil
		}
		return be.start(rctx)
	}, func() { r.bar.set(n.Add(1)) })
	if err != nil {
		return rd, err
	}
	reg := &Registration{Endpoints: len(eps), Seconds: time.Since(start).Seconds()}
	reg.PerEndpointMs, reg.ReadySeconds = reg.Seconds*1000/float64(len(eps)), reg.Seconds
	rd.Registration = reg
	err = r.traffic(ctx, &rd, letter, eps, func(context.Context) error {
		for _, be := range later {
			if err := be.start(rctx); err != nil {
				return err
			}
		}
		return nil
	})
	return rd, err
}

// traffic publishes the round's events, brings down endpoints up once publishing is done, waits
// until every expected delivery arrived (or ctx ends), and fills in the round's figures.
func (r *runner) traffic(ctx context.Context, rd *Round, letter string, eps []*endpoint, up func(context.Context) error) error {
	prefix := "bn" + r.run + letter + "-"
	s := &sink{prefix: prefix, checker: NewChecker(), stats: make([]*epStats, len(r.rec.eps))}
	byType := map[string][]*endpoint{}
	for _, ep := range eps {
		s.stats[ep.index] = &epStats{}
		if ep.behaviour == hanging {
			continue // never answers: not expected to get anything
		}
		for _, t := range r.sc.Types {
			if slices.Contains(ep.selectors, t) || slices.Contains(ep.selectors, "*") {
				byType[t] = append(byType[t], ep)
			}
		}
	}
	expected := 0
	for i := range r.sc.Events {
		expected += len(byType[r.ev.typ(i)])
	}
	rd.Endpoints, rd.Events, rd.Deliveries = len(eps), r.sc.Events, expected
	for _, ep := range eps {
		if ep.behaviour != hanging {
			rd.Checked++
		}
	}
	r.rec.sink.Store(s)

	gw0, gwOK := r.tgt.procStats()
	self0, selfErr := readProc(os.Getpid())
	r.bar.phase(rd.Name+": publishing", int64(expected))
	var pub *publishing
	pubDone := make(chan struct{})
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	go func() {
		defer close(pubDone)
		pub = publish(pubCtx, r.pubJS, r.ev, prefix, r.rec.now, func(i int, id, entity string) {
			s.checker.Published(id, entity)
			for _, ep := range byType[r.ev.typ(i)] {
				s.checker.Expect(ep.name, id)
			}
		})
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var gwFDs, selfFDs, ticks int
	gwLast := gw0 // the last figures read, for when the gateway is gone at the end
	sampleFDs := func() {
		if r.tgt.pid != 0 {
			gwFDs = max(gwFDs, openFiles(r.tgt.pid))
			if ps, ok := r.tgt.procStats(); ok {
				gwLast = ps
			}
		}
		selfFDs = max(selfFDs, openFiles(os.Getpid()))
	}
	sending := true
	var upAt time.Duration
	var upErr, loopErr error
	var verdict Report
	for {
		if sending {
			select {
			case <-pubDone:
				sending = false
				r.bar.describe(rd.Name + ": delivering")
				if downs := downEndpoints(eps); len(downs) > 0 {
					upAt = r.rec.now()
					upErr = up(ctx)
				}
			default:
			}
		}
		r.bar.set(s.total.Load())
		if !sending && s.total.Load() >= int64(expected) {
			if verdict = s.checker.Report(); verdict.Lost == 0 {
				break
			}
		}
		if upErr != nil {
			return upErr
		}
		if loopErr = r.tgt.gone(); loopErr != nil {
			rd.Notes = append(rd.Notes, "the gateway exited before everything was delivered")
			stopPublishing()
			<-pubDone
			verdict = s.checker.Report()
			break
		}
		select {
		case <-tick.C:
			if ticks++; ticks%5 == 0 {
				sampleFDs()
			}
			continue
		case <-ctx.Done():
		}
		rd.TimedOut = true
		<-pubDone
		verdict = s.checker.Report()
		break
	}
	end := r.rec.now()
	sampleFDs()

	if gwOK {
		gw1 := gwLast
		u := usage(gw1, gw1.CPU-gw0.CPU)
		if expected > 0 {
			u.CPUMsPer1k = 1e6 * u.CPUSeconds / float64(expected)
		}
		u.PeakFDs = gwFDs
		rd.Gateway = u
	}
	if self1, err := readProc(os.Getpid()); err == nil && selfErr == nil && r.tgt.kind != TargetInProcess {
		rd.Harness = &Usage{CPUSeconds: (self1.CPU - self0.CPU).Seconds(), PeakFDs: selfFDs}
	}
	rd.Published = int(pub.count.Load())
	rd.PublishSeconds = (pub.end - pub.start).Seconds()
	rd.PublishRate = pub.rate()
	rd.PublishRetries, rd.PublishFailures = pub.retried, pub.failed
	if pub.lastErr != nil {
		rd.Notes = append(rd.Notes, "publish: "+pub.lastErr.Error())
	}
	rd.figures(r.rec.eps, s, pub.start, end, upAt)
	rd.Verdict = newVerdict(verdict)
	return loopErr
}
