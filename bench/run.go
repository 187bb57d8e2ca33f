package bench

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
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

func (o *Options) setDefaults() {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.GatewayLogLevel == "" {
		o.GatewayLogLevel = "warn"
	}
}

func (o Options) validate() error {
	if err := o.Scenario.Validate(); err != nil {
		return err
	}
	switch {
	case (o.APIURL == "") != (o.NATSURL == ""):
		if o.APIURL == "" {
			return fielderr.Flag("api", "is needed with --nats-url (both name an existing gateway)")
		}
		return fielderr.Flag("nats-url", "is needed with --api (both name an existing gateway)")
	case o.Timeout < 0 || o.Timeout > 2*time.Hour:
		return fielderr.Flag("timeout", "must be between 1s and 2h")
	case o.APIURL != "" && len(o.Scenario.GatewayArgs) > 0:
		return fielderr.Flag("gateway-arg", "only applies to a gateway the harness starts, not with --api")
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

// loopbackURL checks that raw is a URL on a loopback address: the harness sends traffic to
// loopback only.
func loopbackURL(field, raw string) error {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return fielderr.Flag(field, fmt.Sprintf("%q is not a URL", one))
		}
		h := u.Hostname()
		if h == "localhost" {
			continue
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fielderr.Flag(field, fmt.Sprintf("%q is not a loopback address: the harness sends traffic to loopback only", h))
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
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &runner{o: o, sc: o.Scenario, run: runID(), epoch: time.Now(), bar: newProgress(o.Progress)}
	res := &Result{
		Scenario: r.sc, Run: r.run, Started: r.epoch.UTC(),
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Notes:   slices.Clone(o.Notes),
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var err error
	if r.rec, err = newReceivers(r.sc, r.epoch, o.Verify); err != nil {
		return nil, err
	}
	defer r.rec.close()
	r.bar.phase("starting the gateway", 0)
	if err := r.startTarget(ctx); err != nil {
		r.bar.done()
		return nil, err
	}
	defer r.stopTarget(res)
	r.noteTarget(res)
	if err := r.connect(ctx); err != nil {
		r.bar.done()
		return nil, err
	}
	r.ev = newEvents(r.sc)

	err = r.rounds(ctx, res)
	r.bar.done()
	r.finish(ctx, res)
	return res, r.verdict(ctx, res, err)
}

func runID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// noteTarget records which gateway is under test and its figures at start, or says why there
// are none.
func (r *runner) noteTarget(res *Result) {
	res.Target, res.GatewayPID = r.tgt.kind, r.tgt.pid
	if ps, ok := r.tgt.procStats(); ok {
		res.GatewayStart = usage(ps, 0)
	}
	switch r.tgt.kind {
	case TargetRemote:
		res.Notes = append(res.Notes, "gateway at "+r.o.APIURL+" is not a process of this harness: no gateway CPU or memory figures")
	case TargetInProcess:
		res.Notes = append(res.Notes, "gateway runs inside the harness: no gateway CPU or memory figures")
	}
}

// rounds runs the baseline (if asked for), the gateway without the hanging endpoints (if there
// are any) and the gateway with every endpoint, until one fails or the run's time is up.
func (r *runner) rounds(ctx context.Context, res *Result) error {
	add := func(rd Round, err error) error {
		res.Rounds = append(res.Rounds, rd)
		return err
	}
	healthy := slices.DeleteFunc(slices.Clone(r.rec.eps), func(e *endpoint) bool { return e.behaviour == hanging })
	if r.o.Baseline {
		if err := add(r.baselineRound(ctx, "baseline", "b", healthy)); err != nil {
			return err
		}
	}
	if ctx.Err() == nil && r.sc.Hanging > 0 {
		if err := add(r.gatewayRound(ctx, "gateway, no hanging endpoint", "h", healthy, true)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return add(r.gatewayRound(ctx, "gateway", "g", r.rec.eps, r.tgt.kind == TargetRemote))
}

// stopTarget closes the harness's connections, then stops a gateway of its own; it may be called
// again.
func (r *runner) stopTarget(res *Result) {
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

// finish reads the gateway's last figures and its log's counts, leaves an existing gateway as it
// was found, stops one of the harness's own, and judges the result.
func (r *runner) finish(ctx context.Context, res *Result) {
	if ps, ok := r.tgt.procStats(); ok {
		res.GatewayEnd = usage(ps, 0)
	}
	res.GatewayLog.Warnings, res.GatewayLog.Errors, res.GatewayLog.Lines = r.tgt.logs.counts()
	if r.tgt.kind == TargetRemote {
		r.rec.letGo()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		r.deleteEndpoints(cctx, r.rec.eps)
		cancel()
	}
	r.stopTarget(res)
	res.Strays = r.rec.strays.Load()
	res.ReceiverErrors, res.NATSErrors = r.rec.errs.summary(), r.natsErrs.summary()
	res.Seconds = time.Since(r.epoch).Seconds()
	res.compare()
	res.judge()
}

// verdict is the error Run returns with res: the rounds' error (with the gateway's last log lines
// unless it is a verdict), a timeout, or why res is not OK.
func (r *runner) verdict(ctx context.Context, res *Result, roundsErr error) error {
	switch {
	case roundsErr != nil && r.tgt.logs != nil && !errors.Is(roundsErr, ErrVerdict):
		return fmt.Errorf("%w\ngateway log (last lines):\n%s", roundsErr, r.tgt.logs)
	case roundsErr != nil:
		return roundsErr
	case ctx.Err() != nil:
		return fmt.Errorf("%w: the run did not finish within --timeout %s", ErrVerdict, r.o.Timeout)
	case !res.OK:
		return fmt.Errorf("%w: %s", ErrVerdict, res.problem())
	}
	return nil
}
