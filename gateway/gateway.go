package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/console"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

// Gateway is one quaycast process: NATS (embedded or external), the delivery workers and the API.
type Gateway struct {
	cfg config.Config
	log zerolog.Logger
	o   Options

	ready    chan struct{}
	mu       sync.Mutex
	apiURL   string
	natsURL  string
	pprofURL string
}

// Options are what a gateway takes beside its config, for embedding it. The zero value is the
// default.
type Options struct {
	// TracerProvider makes the spans of delivery attempts (a test's in-memory exporter); nil: one
	// exporting over OTLP when --otlp-endpoint is set, else no spans.
	TracerProvider trace.TracerProvider
}

// New returns a gateway for cfg; Run starts it.
func New(cfg config.Config, log zerolog.Logger) *Gateway {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(cfg config.Config, log zerolog.Logger, o Options) *Gateway {
	return &Gateway{cfg: cfg, log: log, o: o, ready: make(chan struct{})}
}

// Ready is closed once the API accepts requests and delivery has started.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// APIURL is the base URL of the HTTP API (after Ready).
func (g *Gateway) APIURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.apiURL
}

// PprofURL is the base URL of the profiles' own listener (--pprof-listen), from early in Run on
// (at the latest once Ready); empty when it is off.
func (g *Gateway) PprofURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pprofURL
}

// NATSURL is where publishers reach NATS (after Ready).
func (g *Gateway) NATSURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.natsURL
}

// Run serves until ctx ends, then shuts down in order: stop fetching, let in-flight deliveries
// finish within the shutdown timeout (the rest stays unacknowledged for redelivery), stop the HTTP
// server, drain the NATS connection, stop the embedded server. It returns only once every
// goroutine it started has ended, and closes what it opened — the API's listener and the
// profiles' (--pprof-listen) first among them — on every path, a failed start included.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.cfg.Validate(); err != nil {
		return err
	}
	var closers undo
	defer closers.run()
	o, err := g.open(ctx, &closers)
	if err != nil {
		return err
	}
	w, err := g.wire(ctx, o)
	if err != nil {
		return err
	}
	err = g.serve(ctx, o, w)
	closing := time.Now()
	closers.run()
	closers = nil
	g.log.Info().Dur("took_ms", time.Since(closing)).Msg("stop: NATS drained and closed")
	return err
}

// undo closes what Run opened, last opened first.
type undo []func()

func (u *undo) push(f func()) { *u = append(*u, f) }

// run is deferred before anything is pushed: a pointer receiver, so it sees what is pushed later.
func (u *undo) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
}

// opened is what open brings up: the API's listener, NATS, and quaycast's stores on it.
type opened struct {
	ln       net.Listener
	tls      *tls.Config // nil: plain HTTP
	embedded bool
	natsURL  string // where publishers reach NATS
	nc       *nats.Conn
	// dial makes another connection like nc, named name: for work that would otherwise queue
	// with the deliveries' acks for nc's lock.
	dial     func(name string) (*nats.Conn, error)
	leases   jetstream.JetStream // clustered: the lease's connection
	js       jetstream.JetStream
	events   jetstream.Stream
	reg      *consumer.Registry
	types    *eventtypes.Store // the live event catalogue
	tokens   *tokens.Store
	tenants  *tenants.Store
	portal   *portal.Store
	attempts *attempts.Log
	pubs     *natsauth.Publishers // nil with an external NATS
	authn    *natsauth.Embedded   // nil with an external NATS
	tracing  trace.TracerProvider // nil: no spans
}

// open listens on the API's address first — a busy port fails before NATS starts — then starts
// the embedded NATS server or dials the operator's, sets JetStream up and opens the stores. What
// it opens is pushed on closers, to be closed when Run returns.
func (g *Gateway) open(ctx context.Context, closers *undo) (*opened, error) {
	o := &opened{embedded: g.cfg.NATSURL == ""}
	var err error
	if o.tls, err = g.serverTLS(); err != nil {
		return nil, err
	}
	if o.ln, err = net.Listen("tcp", g.cfg.Listen); err != nil {
		return nil, listenError("listen", err)
	}
	closers.push(func() { o.ln.Close() }) // Shutdown closes it too; a second Close does nothing
	if err := g.servePprof(closers); err != nil {
		return nil, err
	}
	// Shut down (its last spans flushed) when everything after it has stopped.
	if o.tracing, err = g.tracerProvider(closers); err != nil {
		return nil, err
	}
	key, err := g.secretKey()
	if err != nil {
		return nil, err
	}
	if err := g.connect(o, closers); err != nil {
		return nil, err
	}

	if o.js, err = jetstream.New(o.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var kv jetstream.KeyValue
	if o.events, kv, err = g.setup(ctx, o.js); err != nil {
		return nil, err
	}
	if o.types, err = eventtypes.Open(ctx, o.js, g.cfg.Replicas, g.log.With().Str("component", "event-types").Logger()); err != nil {
		return nil, err
	}
	typesCtx, stopTypes := context.WithCancel(ctx)
	var typesWatch sync.WaitGroup
	typesWatch.Go(func() { _ = o.types.Run(typesCtx) })
	closers.push(func() { stopTypes(); typesWatch.Wait() })
	if o.reg, err = consumer.NewRegistry(kv, o.events, consumer.RegistryOptions{Key: key, Catalogue: o.types}); err != nil {
		return nil, err
	}
	if o.tokens, err = tokens.New(ctx, o.js, g.cfg.Replicas, key); err != nil {
		return nil, err
	}
	if o.tenants, err = tenants.Open(ctx, o.js, g.cfg.Replicas); err != nil {
		return nil, err
	}
	if o.portal, err = portal.Open(ctx, o.js, g.cfg.Replicas); err != nil {
		return nil, err
	}
	if err := g.checkKey(ctx, o.js, o.reg, o.tokens); err != nil {
		return nil, err
	}
	if o.embedded {
		// Followed until Run returns, before the connection is drained.
		bgCtx, stopBackground := context.WithCancel(ctx)
		var background sync.WaitGroup
		closers.push(func() { stopBackground(); background.Wait() })
		if o.pubs, err = g.loadPublishers(bgCtx, &background, o.js, o.authn, key); err != nil {
			return nil, err
		}
	}
	// The delivery log writes a record per POST: on a connection of its own, its publishes do not
	// queue with the deliveries' acks for nc's lock (bench/PERFORMANCE.md, "December 1, fourth
	// session: the delivery log on a connection of its own").
	logNC, err := o.dial("quaycast-delivery-log")
	if err != nil {
		return nil, err
	}
	closers.push(func() { g.drain(logNC) })
	if o.attempts, err = attempts.New(ctx, logNC, attempts.Options{}); err != nil {
		return nil, err
	}
	// Run before the drain above: what is pending in the log's batches is published first.
	closers.push(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		o.attempts.Close(ctx)
	})
	if g.clustered() { // the lease is renewed on a connection of its own (cluster.Options.Leases)
		leaseNC, err := o.dial("quaycast-cluster-lease")
		if err != nil {
			return nil, err
		}
		closers.push(func() { g.drain(leaseNC) })
		if o.leases, err = jetstream.New(leaseNC); err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
	}
	return o, nil
}

// connect starts the embedded NATS server, or takes the operator's, and connects quaycast to it;
// the server stops and the connection drains when Run returns.
func (g *Gateway) connect(o *opened, closers *undo) error {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	dial := g.cfg.NATSURL
	if o.embedded {
		internal, _, err := seal.ReadOrCreate(natsauth.Path(g.cfg.DataDir, natsauth.InternalFile), natsauth.NewInternalToken)
		if err != nil {
			return err
		}
		o.authn = natsauth.NewEmbedded(internal, g.log.With().Str("component", "nats-auth").Logger())
		srv, stop, err := g.startEmbedded(o.authn)
		if err != nil {
			return err
		}
		closers.push(stop) // logs that it stopped, or that it was not waited for
		o.natsURL = srv.ClientURL()
		// In-process: no socket, so no TLS either (the server offers it, we need not).
		dial = strings.Replace(o.natsURL, "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(srv), nats.Token(internal))
	} else {
		access, err := g.externalOptions()
		if err != nil {
			return err
		}
		o.natsURL = g.cfg.NATSURL
		opts = append(append(opts, access...), nats.RetryOnFailedConnect(true))
	}
	// nats.go's own messages go to the log; and an authorization error while reconnecting (a
	// credential being changed on the server) does not end quaycast's connection for good.
	opts = append(opts, nats.IgnoreAuthErrorAbort())
	opts = append(opts, natsClientOptions(g.log)...)
	opts = append(opts, nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
		if err != nil {
			g.log.Warn().Err(err).Str("connection", c.Opts.Name).Msg("NATS disconnected")
		}
	}))
	o.dial = func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(dial, slices.Concat(opts, []nats.Option{nats.Name(name)})...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS %s: %w", o.natsURL, err)
		}
		return nc, nil
	}
	nc, err := o.dial("quaycast")
	if err != nil {
		return err
	}
	o.nc = nc
	closers.push(func() { g.drain(o.nc) })
	return nil
}

// wired is the delivery side and the API over what open brought up, not started yet.
type wired struct {
	ops     *opsEvents
	sender  *Sender
	manager *consumer.Manager
	router  *routerRun          // the tenant router; run by the cluster's choice when clustered
	cluster *cluster.Supervisor // nil unless clustered
	metrics *metrics
	figures *rollup.Recorder
	http    *http.Server
	// cancelRequests ends the contexts of the API's requests: at stop, for those that outlast
	// the server's graceful shutdown.
	cancelRequests context.CancelFunc
}

// wire builds the sender, the delivery manager, the service and the API over o.
func (g *Gateway) wire(ctx context.Context, o *opened) (*wired, error) {
	targets, err := ParseTargetPolicy(g.cfg.AllowTargets, g.cfg.RequireHTTPS)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	logTo := o.attempts // the API reads the log even when this gateway writes none
	if g.cfg.DeliveryLog == "off" {
		logTo = nil
	}
	nc := o.nc
	// The hourly figures per endpoint: counted here for the endpoints this gateway delivers to,
	// whatever the delivery log records.
	figures := rollup.NewRecorder(o.js, g.memberName(o.ln), g.log)
	var sup *cluster.Supervisor // set below when clustered, before anything is sent
	var fence func() bool
	if g.clustered() {
		fence = func() bool { return sup.Held() }
	}
	ops := newOpsEvents(nc, o.js, g.log, m.operatorEvents)
	sender := NewSender(g.log, SenderOptions{
		Fence:            fence,
		Targets:          targets,
		Log:              logTo,
		LogFailuresOnly:  g.cfg.DeliveryLog == "failures",
		OnLogDropped:     func(n int) { m.logDropped.Add(float64(n)) },
		MaxInFlight:      g.cfg.MaxInFlightTotal,
		MaxResponseBytes: int64(g.cfg.MaxReplyBytes),
		MaxReplyMemory:   int64(g.cfg.ReplyMemory),
		Replies:          o.js,
		OnAttempt: func(a *Attempt) {
			m.attempt(a)
			if !a.Test {
				figures.Record(a.EndpointID, a.Outcome, a.DurationMS, a.At)
			}
		},
		Timeout:        g.cfg.DeliveryTimeout,
		Catalogue:      o.types.Current,
		TracerProvider: o.tracing,
		Breaker: BreakerOptions{
			ConsecutiveFailures: g.cfg.BreakerFailures,
			FailureRatio:        g.cfg.BreakerRatio,
			MinRequests:         g.cfg.BreakerMinRequests,
			Window:              g.cfg.BreakerWindow,
			Cooldown:            g.cfg.BreakerCooldown,
		},
		OnBreakerChange: func(ev BreakerEvent) {
			m.breakerChanged(ev)
			g.breakerChanged(nc, ops, ev)
		},
	})
	dead, err := consumer.NewDeadLetters(ctx, o.js, o.events)
	if err != nil {
		return nil, err
	}
	marks, err := consumer.NewMarks(ctx, o.js, g.cfg.StreamMaxAge, g.cfg.MarksFlush, g.cfg.Replicas, g.log)
	if err != nil {
		return nil, err
	}
	manager := consumer.NewManager(o.js, o.events, o.reg, sender, g.log, consumer.Options{
		Marks:           marks,
		MaxInFlight:     g.cfg.MaxInFlight,
		MaxAckPending:   g.cfg.MaxAckPending,
		AckWait:         g.cfg.AckWait,
		RetrySchedule:   g.cfg.RetrySchedule,
		MaxAttempts:     g.cfg.MaxAttempts,
		MaxRetryAge:     g.cfg.MaxRetryAge,
		ShutdownTimeout: g.cfg.ShutdownTimeout,
		Catalogue:       o.types,
		TenantRate:      g.cfg.TenantRate,
		TenantBurst:     g.cfg.TenantBurst,
	})
	router := &routerRun{router: consumer.NewRouter(o.js, o.events, o.tenants.KV(), o.tenants, g.log, consumer.RouterOptions{
		OnCopy:    func(string) { m.copies.Inc() },
		OnUnknown: m.unknown.Inc,
	})}
	if err := router.router.Begin(ctx); err != nil { // before the API serves: see Begin
		return nil, err
	}
	o.types.OnChange(manager.CatalogueChanged)
	manager.OnDeadLetter(func(dl consumer.DeadLetter) {
		m.dead.WithLabelValues(dl.EndpointID).Inc()
		ops.publish(OpsEvent{Kind: OpsDeadLetter, EndpointID: dl.EndpointID, Tenant: dl.Tenant, EventID: dl.EventID, Reason: dl.Reason}, !isOpsEvent(dl.Subject))
	})
	manager.OnDisabled(func(ep *consumer.Endpoint) {
		ops.publish(OpsEvent{Kind: OpsEndpointDisabled, EndpointID: ep.ID, Tenant: ep.Tenant, Reason: ep.DisabledReason}, true)
	})
	m.countDegraded(manager.Degraded)
	m.countConnections(sender.OpenConnections)
	m.countStuck(manager.StuckCounts)
	manager.OnInvalid(func(string, string) { m.invalid.Inc() })
	manager.OnCondition(func(id string, err error) {
		reason := "no_match"
		if err != nil {
			reason = "error"
		}
		m.skipped.WithLabelValues(id, reason).Inc()
	})
	nc.SetReconnectHandler(func(*nats.Conn) { manager.Reconnected() })
	switch {
	case g.clustered():
		scheme := "http://"
		if o.tls != nil {
			scheme = "https://"
		}
		sup, err = cluster.New(ctx, o.js, routedEngine{Manager: manager, router: router, sender: sender}, g.log, cluster.Options{
			Name: g.memberName(o.ln), API: scheme + o.ln.Addr().String(), LeaseTTL: g.cfg.LeaseTTL, Replicas: g.cfg.Replicas,
			Leases: o.leases,
		})
		if err != nil {
			return nil, err
		}
		manager.Supervise(sup, sup.Kick)
		m.countCluster(sup)
	case !g.cfg.Deliver:
		manager.Supervise(nil, nil) // owns nothing: the API only
	}

	svc := service.New(service.Deps{
		Registry: o.reg, DeadLetters: dead, Redeliverer: consumer.NewRedeliverer(o.js, o.events), Attempts: o.attempts, Tokens: o.tokens, Publishers: o.pubs, NATSAuth: o.authn,
		Sender: serviceSender{sender}, Rules: endpointRules{targets}, States: manager, Cluster: clusterOrNil(sup),
		Rollups: rollup.NewReader(o.js), Events: o.events,
		Backlogs:   func(ctx context.Context) (map[string]uint64, error) { return consumer.Backlogs(ctx, o.events) },
		AdminToken: g.cfg.AdminToken, Log: g.log, Types: o.types, Tenants: o.tenants, TenantMaxEndpoints: g.cfg.TenantMaxEndpoints,
		PortalLinks: o.portal, PortalSessionTTL: g.cfg.PortalSessionTTL,
		OnEndpointChange: func(kind service.EndpointChange, ep *consumer.Endpoint) {
			ops.publish(OpsEvent{Kind: opsKinds[kind], EndpointID: ep.ID, Tenant: ep.Tenant}, true)
		},
	})
	ui := console.New(svc, g.log.With().Str("component", "console").Logger(), console.Options{
		AdminToken: g.cfg.AdminToken, ShownHeader: func(name, value string) string { return shownValue(name, value, true) },
		PublicURL: g.cfg.PublicURL, FrameAncestors: g.cfg.ConsoleFrameAncestors,
	})
	a := &api{svc: svc, js: o.js, types: o.types, nc: nc, manager: manager, metrics: m, cluster: sup, log: g.log, postTimeout: sender.o.Timeout, console: ui, publicURL: g.cfg.PublicURL}
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: o.tls,
		BaseContext: func(net.Listener) context.Context { return reqCtx },
	}
	srv.RegisterOnShutdown(ui.Close) // the console's live streams end with the server
	return &wired{
		ops:            ops,
		sender:         sender,
		manager:        manager,
		router:         router,
		cluster:        sup,
		metrics:        m,
		figures:        figures,
		http:           srv,
		cancelRequests: cancelRequests,
	}, nil
}

// serve runs the API and delivery until ctx ends or either fails, then stops them.
func (g *Gateway) serve(ctx context.Context, o *opened, w *wired) error {
	if g.cfg.AdminToken == "" {
		g.log.Warn().Str("listen", g.cfg.Listen).Msg("NO ACCESS CONTROL: no --admin-token, so every API request is allowed; serving on loopback only")
	}
	serveErr := make(chan error, 1)
	scheme := "http://"
	if o.tls != nil {
		scheme = "https://"
		go func() { serveErr <- w.http.ServeTLS(o.ln, "", "") }()
	} else {
		go func() { serveErr <- w.http.Serve(o.ln) }()
	}
	// The operator events are stored until the API and delivery, which make them, have stopped.
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	opsDone := make(chan struct{})
	go func() { w.ops.Run(opsCtx); close(opsDone) }()
	// Delivery stops after the cluster supervisor has handed this gateway's endpoints over.
	managerCtx, stopManager := context.WithCancel(context.WithoutCancel(ctx))
	managerDone := make(chan error, 1)
	go func() { managerDone <- w.manager.Run(managerCtx) }()
	w.router.setBase(managerCtx)
	if g.cfg.Deliver && w.cluster == nil {
		w.router.start() // alone: this gateway routes; clustered, the one that owns consumer.RouterID
	}
	var watchers sync.WaitGroup
	watchers.Go(func() { w.metrics.watchStreams(managerCtx, o.events, 15*time.Second, g.log) })
	// The figures are published until delivery has stopped, its last attempts included.
	figuresCtx, stopFigures := context.WithCancel(context.WithoutCancel(ctx))
	figuresDone := make(chan struct{})
	go func() { w.figures.Run(figuresCtx); close(figuresDone) }()
	clusterCtx, stopCluster := context.WithCancel(ctx)
	defer stopCluster()
	clusterDone := make(chan error, 1)
	if w.cluster != nil {
		go func() { clusterDone <- w.cluster.Run(clusterCtx) }()
	}

	g.mu.Lock()
	g.apiURL = scheme + o.ln.Addr().String()
	g.natsURL = o.natsURL
	g.mu.Unlock()
	close(g.ready)
	g.log.Info().Str("api", g.apiURL).Str("nats", o.natsURL).Bool("embedded", o.embedded).Msg("quaycast started")

	var runErr error
	select {
	case <-ctx.Done():
		g.log.Info().Msg("shutting down")
	case err := <-serveErr:
		serveErr <- err // for stop, which waits for Serve to have returned
		runErr = fmt.Errorf("serve API: %w", err)
	case err := <-managerDone:
		managerDone <- err
		runErr = fmt.Errorf("delivery stopped: %w", err)
	case err := <-clusterDone:
		clusterDone <- err
		runErr = fmt.Errorf("cluster membership: %w", err)
	}
	// Each step of the stop is logged with its time since the stop began, so that a slow stop
	// says where it waited.
	stopping := time.Now()
	stopped := func(step string) { g.log.Info().Dur("after_ms", time.Since(stopping)).Msg(step) }
	if w.cluster != nil {
		stopCluster()
		<-clusterDone
		stopped("stop: endpoints handed over")
	}
	<-w.router.stop()
	stopManager()
	// POSTs still out when --shutdown-timeout has passed end with it: the workers cancel their
	// contexts then, which a POST through fasthttp does not heed (receivers.go).
	abort := time.AfterFunc(g.cfg.ShutdownTimeout, w.sender.Abort)
	<-managerDone
	abort.Stop()
	stopped("stop: delivery stopped")
	stopFigures()
	<-figuresDone
	watchers.Wait()
	stopped("stop: figures published")
	g.stop(ctx, w, serveErr)
	stopOps()
	<-opsDone
	stopped("stop: API and operator events stopped")
	return runErr
}

// stop shuts the API down once delivery has stopped: gracefully, then — for requests that
// outlast that — by ending their contexts; it returns once Serve and every handler have returned.
// Run's closers then drain NATS and stop the embedded server.
func (g *Gateway) stop(ctx context.Context, w *wired, serveErr <-chan error) {
	defer w.cancelRequests()
	shutdown := func(within time.Duration) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), within)
		defer cancel()
		return w.http.Shutdown(sctx)
	}
	if err := shutdown(5 * time.Second); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Warn().Err(err).Msg("shut down API: ending the requests still running")
		w.cancelRequests()
		if err := shutdown(5 * time.Second); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Warn().Err(err).Msg("shut down API: closing its connections")
			_ = w.http.Close()
		}
	}
	<-serveErr
}

// BreakerSubject is where breaker transitions are published, as JSON BreakerEvents:
// quaycast.sys.breaker.<endpoint id>.
const BreakerSubject = "quaycast.sys.breaker."

// breakerChanged logs a breaker transition and publishes it for operators and upstream systems.
// Its operator event names the tenant the breaker was made for, not one looked up by id: an
// endpoint deleted a moment ago is no longer defined, but its worker may still deliver.
func (g *Gateway) breakerChanged(nc *nats.Conn, ops *opsEvents, ev BreakerEvent) {
	log := g.log.Info()
	if ev.To == "open" {
		log = g.log.Warn()
	}
	if ev.Cause != "" {
		log = log.Str("cause", ev.Cause)
	}
	log.Str("endpoint_id", ev.EndpointID).Str("from", ev.From).Str("to", ev.To).Msg("circuit breaker")
	b, _ := json.Marshal(ev)
	if err := nc.Publish(BreakerSubject+ev.EndpointID, b); err != nil {
		g.log.Warn().Err(err).Str("endpoint_id", ev.EndpointID).Msg("publish breaker change")
	}
	switch ev.To {
	case "open":
		ops.publish(OpsEvent{Kind: OpsBreakerOpened, EndpointID: ev.EndpointID, Tenant: ev.Tenant, At: ev.At}, true)
	case "closed":
		ops.publish(OpsEvent{Kind: OpsBreakerClosed, EndpointID: ev.EndpointID, Tenant: ev.Tenant, At: ev.At}, true)
	}
}

// setup ensures the streams and the registry bucket, retrying while NATS is not reachable yet.
func (g *Gateway) setup(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, jetstream.KeyValue, error) {
	o := consumer.StreamOptions{
		MaxAge:       g.cfg.StreamMaxAge,
		MaxBytes:     int64(g.cfg.StreamMaxBytes),
		Duplicates:   g.cfg.DuplicateWindow,
		MaxConsumers: g.cfg.MaxEndpoints,
		Replicas:     g.cfg.Replicas,
	}
	retry := backoff.Backoff{First: time.Second, Max: 15 * time.Second}
	for {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		events, kv, err := consumer.Setup(sctx, js, o)
		if err == nil {
			err = attempts.Setup(sctx, js, attempts.StreamOptions{MaxAge: g.cfg.LogMaxAge, Replicas: g.cfg.Replicas})
		}
		if err == nil {
			err = rollup.Setup(sctx, js, g.cfg.Replicas)
		}
		cancel()
		if err == nil {
			return events, kv, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("set up JetStream: %w", err)
		}
		wait := retry.Next()
		g.log.Warn().Err(err).Dur("retry_in", wait).Msg("set up JetStream")
		if backoff.Sleep(ctx, wait) != nil {
			return nil, nil, fmt.Errorf("set up JetStream: %w", err)
		}
	}
}

func (g *Gateway) drain(nc *nats.Conn) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		nc.Close()
	}
}
