package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
)

// Target kinds.
const (
	TargetChild     = "child"      // `quaycast serve` started by the harness: CPU and memory measured
	TargetRemote    = "remote"     // a gateway already running at --api and --nats-url
	TargetInProcess = "in-process" // gateway.New in the harness's own process (tests)
)

// target is a gateway under test, or a NATS node the harness started for a cluster of gateways.
type target struct {
	kind     string
	name     string // in messages: "gateway", "gateway gw2", "NATS node n1"
	member   string // in a cluster: its name there (a gateway's --name, as GET /v1/cluster shows it)
	api      string
	nats     string
	client   *gateway.Client
	pub      []nats.Option // how the publisher authenticates
	sub      []nats.Option // how the baseline's consumers authenticate
	pid      int           // child only
	exited   chan struct{} // child only: closed when it exited
	exitErr  error         // child only: how it exited, once exited is closed
	stopTook time.Duration // child only: from SIGTERM to its exit, once stopped
	stop     func() error
	logs     *tail
}

// gone returns an error if the process has exited.
func (t *target) gone() error {
	if t.exited == nil {
		return nil
	}
	select {
	case <-t.exited:
		return fmt.Errorf("the %s (pid %d) exited during the run; its last log lines:\n%s", t.name, t.pid, t.logs)
	default:
		return nil
	}
}

// procStats reads the target's figures; ok is false when it is not a process of ours.
func (t *target) procStats() (ProcStats, bool) {
	if t.pid == 0 {
		return ProcStats{}, false
	}
	ps, err := readProc(t.pid)
	return ps, err == nil
}

// startTarget finds the gateways under test — the ones at Options.APIURL, a cluster of the
// harness's own, or one gateway of its own — and checks that their APIs answer. The endpoints
// are registered through the first.
func (r *runner) startTarget(ctx context.Context) error {
	switch {
	case r.o.APIURL != "":
		access, err := gateway.ClientOptions(r.o.NATS)
		if err != nil {
			return err
		}
		for i, api := range strings.Split(r.o.APIURL, ",") {
			name := "gateway"
			if strings.Contains(r.o.APIURL, ",") {
				name = fmt.Sprintf("gateway %d (%s)", i+1, strings.TrimSpace(api))
			}
			r.gws = append(r.gws, &target{kind: TargetRemote, name: name, api: strings.TrimRight(strings.TrimSpace(api), "/"), nats: r.o.NATSURL, pub: access, sub: access})
		}
	case len(r.sc.Gateways) > 0:
		if err := r.startCluster(ctx); err != nil {
			return err
		}
	default:
		t, err := r.startOwnGateway(ctx)
		if err != nil {
			return err
		}
		r.gws = []*target{t}
	}
	r.tgt = r.gws[0]
	for _, t := range r.gws {
		if err := r.checkAPI(ctx, t); err != nil {
			return err
		}
	}
	r.api = r.tgt.client
	return nil
}

// checkAPI gives t its API client and checks that the API answers.
func (r *runner) checkAPI(ctx context.Context, t *target) error {
	t.client = gateway.NewClient(t.api)
	t.client.Token = r.o.APIToken
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.client.Do(hctx, "GET", "/healthz", nil, nil); err != nil {
		return fmt.Errorf("gateway API at %s: %w", t.api, err)
	}
	return nil
}

// startOwnGateway starts a gateway of the harness's own, a child process or (without an
// Executable) one in this process, on a temporary data dir removed when it stops.
func (r *runner) startOwnGateway(ctx context.Context) (*target, error) {
	dir, err := os.MkdirTemp("", "quaycast-bench-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var t *target
	switch {
	case r.o.NATSURL != "": // a child on an external NATS, reached with the access given
		t, err = r.startExternalNATSGateway(ctx, dir)
	case r.o.Executable != "":
		t, err = startGateway(ctx, childGateway{exe: r.o.Executable, name: "gateway", dataDir: dir, logLevel: r.o.GatewayLogLevel, extra: r.sc.GatewayArgs})
	default:
		t, err = startInProcess(ctx, r.inProcessConfig(dir), r.o.Log)
	}
	if err == nil && r.o.NATSURL == "" { // its embedded NATS: reached with the data dir's credentials
		err = t.localAccess(dir, r.o.NATS.CA)
	}
	if err != nil {
		if t != nil {
			_ = t.stop()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	stop := t.stop
	t.stop = func() error {
		err := stop()
		os.RemoveAll(dir)
		return err
	}
	return t, nil
}

// startExternalNATSGateway starts a gateway child on the external NATS at Options.NATSURL, with
// a fresh secret key (its endpoints' secrets are encrypted with it) and the NATS access given
// (--nats-token, --nats-creds, --nats-ca), which the harness also publishes with.
func (r *runner) startExternalNATSGateway(ctx context.Context, dir string) (*target, error) {
	args := []string{"--nats-url", r.o.NATSURL}
	env := []string{"QUAYCAST_SECRET_KEY=" + newSecretKey()}
	if r.o.NATS.Token != "" { // in its environment, not its command line, which any process can read
		env = append(env, "QUAYCAST_NATS_TOKEN="+r.o.NATS.Token)
	}
	if r.o.NATS.Creds != "" {
		args = append(args, "--nats-creds", r.o.NATS.Creds)
	}
	if r.o.NATS.CA != "" {
		args = append(args, "--nats-ca", r.o.NATS.CA)
	}
	t, err := startGateway(ctx, childGateway{exe: r.o.Executable, name: "gateway", dataDir: dir, logLevel: r.o.GatewayLogLevel,
		natsArgs: args, natsURL: r.o.NATSURL, extra: r.sc.GatewayArgs,
		env: env})
	if err != nil {
		return nil, err
	}
	access, err := gateway.ClientOptions(r.o.NATS)
	if err != nil {
		_ = t.stop()
		return nil, err
	}
	t.pub, t.sub = access, access
	return t, nil
}

// newSecretKey is a fresh --secret-key for the gateways the harness starts: base64 of 32 random
// bytes.
func newSecretKey() string {
	var key [32]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read does not fail (it crashes the program instead)
	return base64.StdEncoding.EncodeToString(key[:])
}

// inProcessConfig is the configuration of a gateway in this process: the defaults on loopback
// ports and dir, loopback receivers allowed, then Options.Configure.
func (r *runner) inProcessConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.NATSListen, cfg.Listen = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.AllowTargets = []string{"127.0.0.1"} // the receivers are on loopback
	if r.o.Configure != nil {
		r.o.Configure(&cfg)
	}
	return cfg
}

// freeAddr returns a loopback address free at the time of the call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// childGateway is how a gateway child is started.
type childGateway struct {
	exe, name, dataDir, logLevel string
	// natsArgs are the flags of its NATS: --nats-url and the cluster's flags; without them it
	// runs an embedded NATS on a free loopback port, which natsURL then names.
	natsArgs []string
	natsURL  string
	extra    []string // Scenario.GatewayArgs
	env      []string // added to its environment (the cluster's secret key)
}

// startGateway runs `exe serve` on loopback with its own data dir, and waits until its API answers.
func startGateway(ctx context.Context, g childGateway) (*target, error) {
	t, err := launchGateway(g)
	if err != nil {
		return nil, err
	}
	if err := t.waitHealthy(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return t, nil
}

// launchGateway starts `exe serve` on a free loopback port.
func launchGateway(g childGateway) (*target, error) {
	if g.natsArgs == nil {
		natsAddr, err := freeAddr()
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		g.natsArgs, g.natsURL = []string{"--nats-listen", natsAddr}, "nats://"+natsAddr
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	args := append([]string{"serve", "--data-dir", g.dataDir}, g.natsArgs...)
	args = append(append(args, "--listen", apiAddr,
		"--log-format", "json", "--log-level", g.logLevel,
		"--allow-target", "127.0.0.1", // the receivers are on loopback, which the gateway refuses by default
	), g.extra...)
	t, err := launch(g.name, g.exe, args, g.env)
	if err != nil {
		return nil, err
	}
	t.api, t.nats = "http://"+apiAddr, g.natsURL
	return t, nil
}

// launch starts exe with args as a child; what it writes to stderr is kept in the target's log
// tail.
func launch(name, exe string, args, env []string) (*target, error) {
	cmd := exec.Command(exe, args...)
	// The child is configured by its flags and env only: a QUAYCAST_NATS_URL in our environment
	// must not point it elsewhere.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUAYCAST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", name, exe, err)
	}
	t := &target{kind: TargetChild, name: name, pid: cmd.Process.Pid, logs: &tail{}, exited: make(chan struct{})}
	go t.follow(cmd, stderr)
	t.stop = func() error { return t.stopChild(cmd.Process) }
	return t, nil
}

// follow keeps the child's stderr lines, then waits for it to exit.
func (t *target) follow(cmd *exec.Cmd, stderr io.Reader) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t.logs.add(sc.Text())
	}
	_, _ = io.Copy(io.Discard, stderr)
	t.exitErr = cmd.Wait()
	if t.exitErr != nil {
		t.logs.add("exit: " + t.exitErr.Error())
	}
	close(t.exited)
}

// stopChild asks the child to stop with SIGTERM, and kills it after 30 s.
func (t *target) stopChild(p *os.Process) error {
	_ = p.Signal(syscall.SIGTERM)
	start := time.Now()
	defer func() { t.stopTook = time.Since(start) }()
	select {
	case <-t.exited:
	case <-time.After(30 * time.Second):
		_ = p.Kill()
		<-t.exited
		return fmt.Errorf("%s pid %d did not stop within 30s of SIGTERM: killed", t.name, t.pid)
	}
	if t.exitErr != nil {
		return fmt.Errorf("%s exited: %w", t.name, t.exitErr)
	}
	return nil
}

// waitHealthy waits until the child's API answers; a child that does not within the given time,
// or before ctx ends, is stopped.
func (t *target) waitHealthy(ctx context.Context, within time.Duration) error {
	c := gateway.NewClient(t.api)
	deadline := time.Now().Add(within)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Do(hctx, "GET", "/healthz", nil, nil)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-t.exited:
			return fmt.Errorf("%s exited at start: %v\n%s", t.name, t.exitErr, t.logs)
		case <-ctx.Done():
			_ = t.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = t.stop()
			return fmt.Errorf("gateway not answering on %s within %.0fs\n%s", t.api, within.Seconds(), t.logs)
		}
	}
}

// startInProcess runs a gateway with cfg in this process.
func startInProcess(ctx context.Context, cfg config.Config, log zerolog.Logger) (*target, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	g := gateway.New(cfg, log)
	stop, err := g.Start(sctx)
	if err != nil {
		return nil, err
	}
	return &target{kind: TargetInProcess, name: "gateway", api: g.APIURL(), nats: g.NATSURL(), stop: stop}, nil
}

// localAccess reads the credentials a gateway the harness started keeps in its data dir: the local
// publisher's to publish, quaycast's own for the baseline, so that both go through the same
// authentication (and, with ca, TLS) as the gateway's own traffic.
func (t *target) localAccess(dataDir, ca string) error {
	for _, c := range []struct {
		file string
		to   *[]nats.Option
	}{{natsauth.PublisherFile, &t.pub}, {natsauth.InternalFile, &t.sub}} {
		b, err := os.ReadFile(natsauth.Path(dataDir, c.file))
		if err != nil {
			return fmt.Errorf("gateway credentials: %w", err)
		}
		*c.to = []nats.Option{nats.Token(strings.TrimSpace(string(b)))}
		if ca != "" {
			*c.to = append(*c.to, nats.RootCAs(ca))
		}
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
