package bench

import (
	"cmp"
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
	"strconv"
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
// NATSURL (APIURL may list several gateways of one cluster, comma-separated, NATSURL the
// cluster's nodes); with Scenario.Gateways, a cluster the harness starts: three NATS nodes, each
// a child `Executable bench-nats-node ...`, and gateways on them, each a child `Executable serve
// ...`; a child `Executable serve ...` on loopback with a temporary data dir, whose CPU time and
// memory are measured — with NATSURL alone, on that external NATS (reached with the NATS
// access), so that its figures are quaycast's own without the server's; or, when Executable is
// empty, a gateway.New in this process (for tests: no CPU or memory figures).
type Options struct {
	Scenario Scenario
	APIURL   string
	NATSURL  string

	Executable      string
	GatewayLogLevel string // of a child gateway: warn unless set

	Baseline bool // also run the minimal pipeline, before the gateway, for ratios
	// BaselineClient is the HTTP client the minimal pipeline POSTs with: net/http's ("" or
	// "net/http": what the goals are measured against), or "fasthttp", the gateway's own for
	// receivers reached directly, to compare the rest with the client alike.
	BaselineClient string
	Timeout        time.Duration // of the whole run: 5m unless set (a soak: 5m + twice its length)
	Verify         bool          // receivers verify every signature (costs the harness CPU)
	Progress       io.Writer     // where the progress bar goes; nil: none
	Notes          []string      // added to the result's notes
	APIToken       string        // bearer token for the API of an existing gateway, if it asks for one

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
		o.Timeout = 5*time.Minute + 2*time.Duration(o.Scenario.Soak) // a soak: its calibration, then itself
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
	case o.APIURL != "" && o.NATSURL == "":
		return fielderr.Flag("nats-url", "is needed with --api (both name an existing gateway)")
	case o.APIURL == "" && o.NATSURL != "" && o.Executable == "":
		return fielderr.Flag("nats-url", "without --api starts a gateway child on that NATS: it needs the quaycast binary (Options.Executable)")
	case o.APIURL == "" && o.NATSURL != "" && len(o.Scenario.Gateways) > 0:
		return fielderr.Flag("gateways", "starts a cluster of the harness's own NATS nodes, not with --nats-url")
	case o.Timeout < 0 || o.Timeout > 2*time.Hour:
		return fielderr.Flag("timeout", "must be between 1s and 2h")
	case o.APIURL != "" && len(o.Scenario.GatewayArgs) > 0:
		return fielderr.Flag("gateway-arg", "only applies to a gateway the harness starts, not with --api")
	case o.APIURL != "" && len(o.Scenario.Gateways) > 0:
		return fielderr.Flag("gateways", "starts a cluster of the harness's own, not with --api (list the gateways there)")
	case o.Executable == "" && len(o.Scenario.Gateways) > 0:
		return fielderr.Flag("gateways", "needs the quaycast binary (Options.Executable) to start the cluster's processes")
	}
	if o.APIURL != "" {
		if err := loopbackURL("api", o.APIURL); err != nil {
			return err
		}
	}
	if o.NATSURL != "" {
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
	api      *gateway.Client // of tgt
	gws      []*target       // every gateway under test; tgt is the first
	nodes    []*target       // the NATS nodes of a cluster of the harness's own
	natsURL  string          // of those nodes, comma-separated
	bar      *progress
	conns    []*nats.Conn
	natsErrs errorLog

	// clusterDir holds the nodes' stores and the gateways' data dirs; secretKey is the gateways'
	// shared --secret-key.
	clusterDir, secretKey string
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
	if len(r.sc.Gateways) > 0 {
		r.bar.phase("starting the NATS cluster and the gateways", 0)
	} else {
		r.bar.phase("starting the gateway", 0)
	}
	if err := r.startTarget(ctx); err != nil {
		r.bar.done()
		r.stopProcesses() // those that started before the error
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
	res.Target = r.tgt.kind
	if !r.clustered() {
		res.GatewayPID = r.tgt.pid
	}
	if ps, ok := r.gatewayStats(); ok {
		res.GatewayStart = usage(ps, 0)
	}
	switch {
	case r.tgt.kind == TargetRemote && r.clustered():
		res.Notes = append(res.Notes, "gateways at "+r.o.APIURL+" are not processes of this harness: no gateway CPU or memory figures")
	case r.tgt.kind == TargetRemote:
		res.Notes = append(res.Notes, "gateway at "+r.o.APIURL+" is not a process of this harness: no gateway CPU or memory figures")
	case r.tgt.kind == TargetInProcess:
		res.Notes = append(res.Notes, "gateway runs inside the harness: no gateway CPU or memory figures")
	case len(r.nodes) > 0:
		res.Notes = append(res.Notes, "the gateway rows add the gateways up (idle, CPU, memory, open files); the rows named for a gateway or NATS node are its own")
	}
}

// gatewayStats adds up the gateways' figures; ok is false when none is a process of ours.
func (r *runner) gatewayStats() (ProcStats, bool) { return sumStats(r.gws) }

// sumStats adds up the figures of ts; ok is false when none is a process of ours.
func sumStats(ts []*target) (ProcStats, bool) {
	var sum ProcStats
	ok := false
	for _, t := range ts {
		if ps, ok1 := t.procStats(); ok1 {
			sum.CPU += ps.CPU
			sum.RSS += ps.RSS
			sum.PeakRSS += ps.PeakRSS
			ok = true
		}
	}
	return sum, ok
}

// gone returns an error if a gateway or NATS node of the run's own has exited.
func (r *runner) gone() error {
	for _, t := range append(slices.Clone(r.gws), r.nodes...) {
		if err := t.gone(); err != nil {
			return err
		}
	}
	return nil
}

// cluster describes the gateways and the NATS nodes of a run with several gateways.
func (r *runner) cluster() *Cluster {
	if !r.clustered() {
		return nil
	}
	c := &Cluster{}
	for _, t := range r.gws {
		c.Gateways = append(c.Gateways, Process{Name: cmp.Or(t.member, t.api), URL: t.api, PID: t.pid})
	}
	for _, t := range r.nodes {
		c.NATS = append(c.NATS, Process{Name: t.member, URL: t.nats, PID: t.pid})
	}
	if len(r.nodes) > 0 {
		c.Replicas = clusterNodes
	}
	return c
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
	if ctx.Err() != nil {
		return nil
	}
	if r.sc.Hanging > 0 {
		return r.hangingRounds(ctx, add, healthy)
	}
	if len(r.sc.Gateways) > 1 {
		return r.scalingRounds(ctx, add)
	}
	if r.sc.Soak > 0 {
		return r.soakRounds(ctx, add)
	}
	return add(r.gatewayRound(ctx, "gateway", "g", r.rec.eps, r.tgt.kind == TargetRemote))
}

// withoutHanging names the rounds made without the hanging endpoints.
const withoutHanging = "gateway, no hanging endpoint"

// warmUp names the round a hanging comparison starts with and does not count: without a number,
// it pairs with no round.
const warmUp = withoutHanging + ", warm-up"

// hangingRounds runs the gateway without the hanging endpoints, then with them; with Repeat,
// a warm-up round, then that many pairs alternating with, without, with, …, so that warm-up does
// not decide the comparison (Result.Hanging takes the median of the pairs). Without the warm-up
// the first pair's "with" round was a fresh gateway's first, its p99 raised by the start.
func (r *runner) hangingRounds(ctx context.Context, add func(Round, error) error, healthy []*endpoint) error {
	last := r.tgt.kind == TargetRemote // the endpoints of the last round stay for finish to delete
	if r.sc.Repeat <= 1 {
		if err := add(r.gatewayRound(ctx, withoutHanging, "h", healthy, true)); err != nil || ctx.Err() != nil {
			return err
		}
		return add(r.gatewayRound(ctx, "gateway", "g", r.rec.eps, last))
	}
	if err := add(r.gatewayRound(ctx, warmUp, "w", healthy, true)); err != nil || ctx.Err() != nil {
		return err
	}
	for i := 1; i <= r.sc.Repeat; i++ {
		n := strconv.Itoa(i)
		if err := add(r.gatewayRound(ctx, "gateway #"+n, "g"+n, r.rec.eps, true)); err != nil || ctx.Err() != nil {
			return err
		}
		if err := add(r.gatewayRound(ctx, withoutHanging+" #"+n, "h"+n, healthy, i < r.sc.Repeat || last)); err != nil || ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// scalingRounds runs a round per value of Scenario.Gateways on the same cluster, events like each
// other and the same endpoints: the first registers them, each later one adds gateways first.
func (r *runner) scalingRounds(ctx context.Context, add func(Round, error) error) error {
	for i, n := range r.sc.Gateways {
		name := fmt.Sprintf("%d gateways", n)
		if n == 1 {
			name = "1 gateway"
		}
		letter := "g" + strconv.Itoa(n)
		var err error
		if i == 0 {
			err = add(r.gatewayRound(ctx, name, letter, r.rec.eps, false))
		} else {
			err = add(r.joinRound(ctx, name, letter, n))
		}
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// stopTarget closes the harness's connections, then stops the gateways and NATS nodes of its
// own; it may be called again.
func (r *runner) stopTarget(res *Result) {
	for _, nc := range r.conns { // ours first, before the server goes
		nc.Close()
	}
	r.conns = nil
	r.rec.letGo() // hanging requests would hold the gateway's shutdown
	for _, p := range r.stopProcesses() {
		res.Notes = append(res.Notes, "gateway stop: "+p)
	}
	for _, t := range r.gws {
		res.GatewayStopSeconds = max(res.GatewayStopSeconds, t.stopTook.Seconds())
	}
}

// finish reads the gateway's last figures and its log's counts, leaves an existing gateway as it
// was found, stops one of the harness's own, and judges the result.
func (r *runner) finish(ctx context.Context, res *Result) {
	if ps, ok := r.gatewayStats(); ok {
		res.GatewayEnd = usage(ps, 0)
	}
	res.Cluster = r.cluster()
	r.gatewayLogs(res)
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

// gatewayLogs counts the warnings and errors the gateways logged; in a cluster each kind is
// prefixed with the gateway's name.
func (r *runner) gatewayLogs(res *Result) {
	for _, t := range r.gws {
		w, e, lines := t.logs.counts()
		res.GatewayLog.Warnings += w
		res.GatewayLog.Errors += e
		for k, n := range lines {
			if r.clustered() {
				k = t.member + ": " + k
			}
			if res.GatewayLog.Lines == nil {
				res.GatewayLog.Lines = map[string]int{}
			}
			res.GatewayLog.Lines[k] += n
		}
	}
}

// verdict is the error Run returns with res: the rounds' error (with the gateway's last log lines
// unless it is a verdict), a timeout, or why res is not OK.
func (r *runner) verdict(ctx context.Context, res *Result, roundsErr error) error {
	switch {
	case roundsErr != nil && r.tgt.logs != nil && !errors.Is(roundsErr, ErrVerdict) && !r.clustered():
		return fmt.Errorf("%w\ngateway log (last lines):\n%s", roundsErr, r.tgt.logs)
	case roundsErr != nil && r.tgt.logs != nil && !errors.Is(roundsErr, ErrVerdict):
		var b strings.Builder
		for _, t := range append(slices.Clone(r.gws), r.nodes...) {
			fmt.Fprintf(&b, "\n%s log (last lines):\n%s", t.name, t.logs)
		}
		return fmt.Errorf("%w%s", roundsErr, b.String())
	case roundsErr != nil:
		return roundsErr
	case ctx.Err() != nil:
		return fmt.Errorf("%w: the run did not finish within --timeout %s", ErrVerdict, r.o.Timeout)
	case !res.OK:
		return fmt.Errorf("%w: %s", ErrVerdict, res.problem())
	}
	return nil
}
