package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/service"
)

// Gateway is one quaycast process: NATS (embedded or external), the delivery workers and the API.
type Gateway struct {
	cfg config.Config
	log zerolog.Logger

	ready   chan struct{}
	mu      sync.Mutex
	apiURL  string
	natsURL string
}

// New returns a gateway for cfg; Run starts it.
func New(cfg config.Config, log zerolog.Logger) *Gateway {
	return &Gateway{cfg: cfg, log: log, ready: make(chan struct{})}
}

// Ready is closed once the API accepts requests and delivery has started.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// APIURL is the base URL of the HTTP API (after Ready).
func (g *Gateway) APIURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.apiURL
}

// NATSURL is where publishers reach NATS (after Ready).
func (g *Gateway) NATSURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.natsURL
}

// Run serves until ctx ends, then shuts down in order: stop fetching, let in-flight deliveries
// finish within the shutdown timeout (the rest stays unacknowledged for redelivery), stop the HTTP
// server, drain the NATS connection, stop the embedded server.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.cfg.Validate(); err != nil {
		return err
	}
	var (
		srv     *server.Server
		authn   *natsauth.Embedded
		connect = []nats.Option{nats.Name("quaycast"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
		url     = g.cfg.NATSURL
		err     error
	)
	key, err := g.secretKey()
	if err != nil {
		return err
	}
	if url == "" {
		internal, _, err := seal.ReadOrCreate(natsauth.Path(g.cfg.DataDir, natsauth.InternalFile), natsauth.NewInternalToken)
		if err != nil {
			return err
		}
		authn = natsauth.NewEmbedded(internal, g.log.With().Str("component", "nats-auth").Logger())
		srv, err = g.startEmbedded(authn)
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
			g.log.Info().Msg("embedded NATS stopped")
		}()
		url = srv.ClientURL()
		connect = append(connect, nats.InProcessServer(srv), nats.Token(internal))
	} else {
		access, err := g.externalOptions()
		if err != nil {
			return err
		}
		connect = append(append(connect, access...), nats.RetryOnFailedConnect(true))
	}
	dial := url
	if srv != nil { // in-process: no socket, so no TLS either (the server offers it, we need not)
		dial = strings.Replace(url, "tls://", "nats://", 1)
	}
	// nats.go's own messages go to the log; and an authorization error while reconnecting (a
	// credential being changed on the server) does not end quaycast's connection for good.
	connect = append(connect, nats.IgnoreAuthErrorAbort())
	connect = append(connect, natsClientOptions(g.log)...)
	nc, err := nats.Connect(dial, append(connect,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				g.log.Warn().Err(err).Msg("NATS disconnected")
			}
		}),
	)...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", url, err)
	}
	defer g.drain(nc)
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer func() { stopBackground(); background.Wait() }() // before the drain

	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	events, kv, err := g.setup(ctx, js)
	if err != nil {
		return err
	}

	reg, err := consumer.NewRegistry(kv, events, consumer.RegistryOptions{Key: key})
	if err != nil {
		return err
	}
	tokens, err := consumer.NewTokens(ctx, js, 1, key)
	if err != nil {
		return err
	}
	if err := g.checkKey(ctx, js, reg, tokens); err != nil {
		return err
	}
	var pubs *natsauth.Publishers
	if authn != nil {
		if pubs, err = g.loadPublishers(bgCtx, &background, js, authn, key); err != nil {
			return err
		}
	}
	attempts, err := consumer.NewAttemptLog(ctx, nc)
	if err != nil {
		return err
	}
	targets, err := ParseTargetPolicy(g.cfg.AllowTargets, g.cfg.RequireHTTPS)
	if err != nil {
		return err
	}
	m := newMetrics()
	logTo := attempts // the API reads the log even when this gateway writes none
	if g.cfg.DeliveryLog == "off" {
		logTo = nil
	}
	sender := NewSender(g.log, SenderOptions{
		Targets:          targets,
		Log:              logTo,
		LogFailuresOnly:  g.cfg.DeliveryLog == "failures",
		OnLogDropped:     m.logDropped.Inc,
		MaxInFlight:      g.cfg.MaxInFlightTotal,
		MaxResponseBytes: int64(g.cfg.MaxReplyBytes),
		MaxReplyMemory:   int64(g.cfg.ReplyMemory),
		Replies:          js,
		OnAttempt:        m.attempt,
		Timeout:          g.cfg.DeliveryTimeout,
		Breaker: BreakerOptions{
			ConsecutiveFailures: g.cfg.BreakerFailures,
			FailureRatio:        g.cfg.BreakerRatio,
			MinRequests:         g.cfg.BreakerMinRequests,
			Window:              g.cfg.BreakerWindow,
			Cooldown:            g.cfg.BreakerCooldown,
		},
		OnBreakerChange: func(ev BreakerEvent) {
			m.breakerChanged(ev)
			g.breakerChanged(nc, ev)
		},
	})
	dead, err := consumer.NewDeadLetters(ctx, js, events)
	if err != nil {
		return err
	}
	marks, err := consumer.NewMarks(ctx, js, g.cfg.StreamMaxAge, g.cfg.MarksFlush, 1, g.log)
	if err != nil {
		return err
	}
	manager := consumer.NewManager(js, events, reg, sender, g.log, consumer.Options{
		Marks:           marks,
		MaxInFlight:     g.cfg.MaxInFlight,
		MaxAckPending:   g.cfg.MaxAckPending,
		AckWait:         g.cfg.AckWait,
		RetrySchedule:   g.cfg.RetrySchedule,
		MaxAttempts:     g.cfg.MaxAttempts,
		MaxRetryAge:     g.cfg.MaxRetryAge,
		ShutdownTimeout: g.cfg.ShutdownTimeout,
	})

	manager.OnDeadLetter(func(id string) { m.dead.WithLabelValues(id).Inc() })
	m.countDegraded(manager.Degraded)
	manager.OnInvalid(func(string, string) { m.invalid.Inc() })
	nc.SetReconnectHandler(func(*nats.Conn) { manager.Reconnected() })

	tlsCfg, err := g.serverTLS()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return listenError("listen", err)
	}
	defer ln.Close() // on every error path; Shutdown closes it too
	if g.cfg.AdminToken == "" {
		g.log.Warn().Str("listen", g.cfg.Listen).Msg("NO ACCESS CONTROL: no --admin-token, so every API request is allowed; serving on loopback only")
	}
	svc := service.New(service.Deps{
		Registry: reg, DeadLetters: dead, Attempts: attempts, Tokens: tokens, Publishers: pubs, NATSAuth: authn,
		Sender: serviceSender{sender}, Rules: endpointRules{targets}, States: manager,
		AdminToken: g.cfg.AdminToken, Log: g.log,
	})
	a := &api{svc: svc, js: js, nc: nc, manager: manager, metrics: m, log: g.log, postTimeout: g.cfg.DeliveryTimeout}
	httpSrv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: tlsCfg}
	serveErr := make(chan error, 1)
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
		go func() { serveErr <- httpSrv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- httpSrv.Serve(ln) }()
	}

	managerCtx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	managerDone := make(chan error, 1)
	go func() { managerDone <- manager.Run(managerCtx) }()
	go m.watchStreams(managerCtx, events, 15*time.Second, g.log)

	g.mu.Lock()
	g.apiURL = scheme + ln.Addr().String()
	g.natsURL = url
	g.mu.Unlock()
	close(g.ready)
	g.log.Info().Str("api", g.apiURL).Str("nats", url).Bool("embedded", srv != nil).Msg("quaycast started")

	var runErr error
	select {
	case <-ctx.Done():
		g.log.Info().Msg("shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve API: %w", err)
	case err := <-managerDone:
		managerDone <- err
		runErr = fmt.Errorf("delivery stopped: %w", err)
	}
	stopManager()
	<-managerDone
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Warn().Err(err).Msg("shut down API")
	}
	return runErr
}

// BreakerSubject is where breaker transitions are published, as JSON BreakerEvents:
// quaycast.sys.breaker.<endpoint id>.
const BreakerSubject = "quaycast.sys.breaker."

// breakerChanged logs a breaker transition and publishes it for operators and upstream systems.
func (g *Gateway) breakerChanged(nc *nats.Conn, ev BreakerEvent) {
	log := g.log.Info()
	if ev.To == "open" {
		log = g.log.Warn()
	}
	log.Str("endpoint_id", ev.EndpointID).Str("from", ev.From).Str("to", ev.To).Msg("circuit breaker")
	b, _ := json.Marshal(ev)
	if err := nc.Publish(BreakerSubject+ev.EndpointID, b); err != nil {
		g.log.Warn().Err(err).Str("endpoint_id", ev.EndpointID).Msg("publish breaker change")
	}
}

// setup ensures streams and bucket, retrying while NATS is not reachable yet.
func (g *Gateway) setup(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, jetstream.KeyValue, error) {
	o := consumer.StreamOptions{
		MaxAge:       g.cfg.StreamMaxAge,
		MaxBytes:     int64(g.cfg.StreamMaxBytes),
		Duplicates:   g.cfg.DuplicateWindow,
		MaxConsumers: g.cfg.MaxEndpoints,
		LogMaxAge:    g.cfg.LogMaxAge,
	}
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		events, kv, err := consumer.Setup(sctx, js, o)
		cancel()
		if err == nil {
			return events, kv, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("set up JetStream: %w", err)
		}
		g.log.Warn().Err(err).Dur("retry_in", wait).Msg("set up JetStream")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
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
