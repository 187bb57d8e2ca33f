package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/internal/memtrim"
)

type cli struct {
	Serve       serveCmd       `cmd:"" help:"Run the gateway (embedded NATS unless --nats-url is given)."`
	Publish     publishCmd     `cmd:"" help:"Publish one event to NATS, from flags or a file."`
	Endpoints   endpointsCmd   `cmd:"" help:"Manage webhook endpoints through the API."`
	DeadLetters deadLettersCmd `cmd:"" name:"dead-letters" help:"List, replay and purge an endpoint's dead letters."`
	Events      eventsCmd      `cmd:"" help:"The event catalogue."`
	Bench       benchCmd       `cmd:"" help:"Run a bounded load scenario on loopback and report throughput, latency and the delivery verdict."`
	BenchNode   natsNodeCmd    `cmd:"" name:"bench-nats-node" hidden:"" help:"A NATS node of the cluster bench --gateways starts (started by the harness)."`
	Verify      verifyCmd      `cmd:"" help:"Check a saved webhook request's signature against a secret, as a receiver would."`
	Tokens      tokensCmd      `cmd:"" help:"Manage API tokens (with the admin token)."`
	Tenants     tenantsCmd     `cmd:"" help:"Manage tenants, the customers whose events reach only their own endpoints."`
	Publishers  publishersCmd  `cmd:"" help:"Manage the NATS credentials of upstream systems on the embedded NATS (with the admin token)."`
	NATSConfig  natsConfigCmd  `cmd:"" name:"nats-config" help:"Print the accounts block an external nats-server needs for quaycast and one publisher."`
	Healthcheck healthcheckCmd `cmd:"" help:"Exit 0 if a URL (the gateway's /readyz) answers 200, 1 otherwise: a container's health check."`
}

type serveCmd struct {
	config.Config `embed:""`
}

func (s *serveCmd) Run(ctx context.Context) error {
	log := newLogger(s.LogLevel, s.LogFormat)
	// OpenTelemetry reports a failed span export through a process-wide handler, by default to the
	// standard logger: a line that would not be JSON. Once a minute is enough to say a collector
	// is unreachable.
	spanLog := log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		spanLog.Warn().Err(err).Msg("export spans (more may follow)")
	}))
	// The heap a burst grew (10,000 endpoints woken) is given back once the process is quiet.
	trimCtx, stopTrim := context.WithCancel(ctx)
	defer stopTrim()
	go memtrim.Run(trimCtx, 10*time.Second, log)
	if err := gateway.New(s.Config, log).Run(ctx); err != nil {
		// In the log, so that with --log-format json every line on stderr is JSON (a container's
		// log shows why it stopped); main maps it to the exit code without printing it again.
		log.Error().Err(err).Msg("quaycast stopped")
		return loggedError{err}
	}
	return nil
}

// loggedError is an error the command has logged already.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

func newLogger(level, format string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" { // "": flags not parsed yet
		lvl = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if format == "console" || (format == "auto" || format == "") && isatty.IsTerminal(os.Stderr.Fd()) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	} else {
		// Milliseconds: a cluster's gateways log handovers a few milliseconds apart.
		zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Logger()
}

// newParser is the command line's grammar; tests parse with it too.
func newParser(c *cli, options ...kong.Option) (*kong.Kong, error) {
	return kong.New(c, append([]kong.Option{
		kong.Name("quaycast"),
		kong.Description("Webhook fan-out gateway for logistics events on NATS JetStream."),
		kong.UsageOnError(),
		kong.Vars(config.Vars()), // the flags' defaults: `default:"${retry_schedule}"`
	}, options...)...)
}

func main() {
	var c cli
	parser, err := newParser(&c)
	if err != nil {
		panic(err) // the grammar is wrong: a programming error
	}
	k, err := parser.Parse(os.Args[1:])
	if err != nil { // a bad flag or setting: say which, exit 2 as usage errors do
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil && pe.Context.Selected().Target.Type() == reflect.TypeFor[serveCmd]() {
			// serve says it in its log, so that a container's log (JSON unless on a terminal)
			// shows why it stopped, in the format of its other lines
			log := newLogger(c.Serve.LogLevel, c.Serve.LogFormat)
			log.Error().Err(err).Msg("quaycast cannot start")
		} else {
			fmt.Fprintln(os.Stderr, "quaycast:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	k.BindTo(ctx, (*context.Context)(nil))
	err = k.Run()
	stop()
	if err == nil {
		return
	}
	if !errors.As(err, new(loggedError)) {
		fmt.Fprintln(os.Stderr, "quaycast:", err)
	}
	var fe *fielderr.Error
	var ae *gateway.APIError
	switch {
	case errors.As(err, &fe) && fe.Flag: // a bad flag or setting, as kong's own
		os.Exit(2)
	case errors.As(err, &ae) && ae.Status == 404:
		os.Exit(3)
	}
	os.Exit(1)
}
