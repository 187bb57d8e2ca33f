package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/quaycast/quaycast/bench"
	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/internal/profiling"
)

type benchCmd struct {
	Preset   string `name:"preset" help:"Named scenario to start from: smoke, standard (the default), latency, fanout, many-entities, hot-entity, flaky, slow, hanging, backlog, cluster, endpoints-10k. --list-presets says what each does."`
	Scenario string `name:"scenario" type:"existingfile" help:"YAML file of scenario values (keys as the flags, with underscores; 'preset: NAME' to start from a preset). Flags override it."`
	List     bool   `name:"list-presets" help:"Print the presets and exit."`

	bench.Overrides
	GatewayArg []string `name:"gateway-arg" sep:"none" help:"Extra flag for the gateway the harness starts, e.g. --gateway-arg=--max-in-flight=128 (repeatable)."`

	Baseline    bool          `name:"baseline" help:"Also run the minimal pipeline (consume, sign, POST, ack) over the same events and receivers first, and report the gateway as a ratio of it."`
	BaseClient  string        `name:"baseline-client" default:"net/http" enum:"net/http,fasthttp" help:"The HTTP client the minimal pipeline POSTs with: net/http's (what the goals are measured against), or fasthttp's, which the gateway uses for receivers reached directly (the client alike on both sides)."`
	NATSURL     string        `name:"nats-url" help:"NATS of an existing gateway (with --api), comma-separated URLs for a cluster; without --api, an external NATS the gateway the harness starts connects to (its figures are then quaycast's own); by default the harness starts a gateway of its own with an embedded NATS."`
	API         string        `name:"api" help:"API of an existing gateway (with --nats-url); comma-separated, several gateways of one cluster (endpoints are registered through the first)."`
	NATSToken   string        `name:"nats-token" env:"QUAYCAST_NATS_TOKEN" help:"NATS credential for an existing gateway: a publisher credential, or with --baseline one with JetStream access (embedded NATS: <data-dir>/auth/internal.token)." placeholder:"TOKEN"`
	NATSCreds   string        `name:"nats-creds" env:"QUAYCAST_NATS_CREDS" help:"A .creds file for an existing gateway's external NATS (as --nats-token)." placeholder:"FILE"`
	NATSCA      string        `name:"nats-ca" env:"QUAYCAST_NATS_CA" help:"PEM CA of the NATS server's TLS certificate (an existing gateway's, or one started with --gateway-arg=--nats-tls-cert=...)." placeholder:"FILE"`
	Token       string        `name:"token" env:"QUAYCAST_TOKEN" help:"API token of an existing gateway that has access control (it needs endpoints:write and endpoints:delete). Prefer the environment variable."`
	GatewayLog  string        `name:"gateway-log-level" default:"warn" enum:"debug,info,warn,error" help:"Log level of the gateway the harness starts (its warnings and errors are counted)."`
	Timeout     time.Duration `name:"timeout" help:"The whole run ends by then, delivered or not (default 5m; a soak: 5m + twice --soak)."`
	Verify      bool          `name:"verify-signatures" help:"Receivers verify every signature (costs the harness CPU)."`
	JSON        bool          `name:"json" help:"Print the result as JSON."`
	HTML        string        `name:"html" type:"path" placeholder:"FILE" help:"Also write the report as one self-contained HTML page (charts in inline SVG; opens offline) to FILE."`
	FromJSON    string        `name:"from-json" type:"existingfile" placeholder:"FILE" help:"Run nothing: report the result a run saved with --json (the text, --json or --html from it)."`
	NoProgress  bool          `name:"no-progress" help:"No progress bar (there is none when stdout is not a terminal)."`
	PprofListen string        `name:"pprof-listen" placeholder:"ADDR" help:"Serve the harness's own Go profiles (net/http/pprof: the baseline pipeline, the receivers, the publisher) on this loopback address while it runs, e.g. 127.0.0.1:6061; the URL is printed on stderr. The gateway's: --gateway-arg=--pprof-listen=ADDR."`
}

func (c *benchCmd) Run(ctx context.Context) error {
	if c.List {
		for _, p := range bench.Presets() {
			fmt.Println(p)
		}
		return nil
	}
	if c.FromJSON != "" {
		return c.report()
	}
	var file []byte
	if c.Scenario != "" {
		var err error
		if file, err = os.ReadFile(c.Scenario); err != nil {
			return fielderr.Flag("scenario", err.Error())
		}
	}
	sc, err := bench.Resolve(c.Preset, file, c.Overrides)
	if err != nil {
		return err
	}
	sc.GatewayArgs = append(sc.GatewayArgs, c.GatewayArg...)
	if c.Timeout != 0 && c.Timeout < time.Second {
		return fielderr.Flag("timeout", "must be at least 1s")
	}
	o := bench.Options{
		Scenario: sc, APIURL: c.API, NATSURL: c.NATSURL, GatewayLogLevel: c.GatewayLog,
		Baseline: c.Baseline, BaselineClient: c.BaseClient, Timeout: c.Timeout, Verify: c.Verify, APIToken: c.Token,
		NATS: gateway.NATSAccess{Token: c.NATSToken, Creds: c.NATSCreds, CA: c.NATSCA},
	}
	if c.API == "" {
		if o.Executable, err = os.Executable(); err != nil {
			return fmt.Errorf("find the quaycast binary to start the gateway: %w", err)
		}
	}
	if c.PprofListen != "" {
		if err := config.CheckPprofListen(c.PprofListen); err != nil {
			return err
		}
		p, err := profiling.Serve(c.PprofListen, func(err error) { fmt.Fprintf(os.Stderr, "bench: the profiles' listener: %v\n", err) })
		if err != nil {
			return fielderr.Flag("pprof-listen", err.Error())
		}
		defer p.Close()
		fmt.Fprintf(os.Stderr, "bench: the harness's profiles: %s/debug/pprof/\n", p.URL())
	}
	if from, to, err := bench.RaiseOpenFileLimit(); err == nil && to > from {
		o.Notes = append(o.Notes, fmt.Sprintf("open-file limit raised from %d to %d for the harness and the gateway it starts", from, to))
	}
	if !c.NoProgress && isatty.IsTerminal(os.Stdout.Fd()) && isatty.IsTerminal(os.Stderr.Fd()) {
		o.Progress = os.Stderr
	}
	res, err := bench.Run(ctx, o)
	if res != nil {
		if perr := c.print(os.Stdout, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil && !errors.Is(err, bench.ErrVerdict) && ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

// print writes the result to w as text or JSON, then as HTML to the --html file.
func (c *benchCmd) print(w io.Writer, res *bench.Result) error {
	var err error
	if c.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteText(w)
	}
	if c.HTML != "" && err == nil {
		err = writeHTML(c.HTML, res)
	}
	return err
}

func writeHTML(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write the HTML report: %w", err)
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		return fmt.Errorf("write the HTML report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the HTML report %s: %w", path, err)
	}
	return nil
}

// report prints a result saved with --json, as a run would have: the flags of a run do not apply.
func (c *benchCmd) report() error {
	if c.Preset != "" || c.Scenario != "" || c.List || !reflect.ValueOf(c.Overrides).IsZero() || len(c.GatewayArg) > 0 ||
		c.Baseline || c.API != "" || c.NATSURL != "" || c.PprofListen != "" {
		return fielderr.Flag("from-json", "reports a saved result: the flags of a run (--preset, --scenario, the scenario's values, --baseline, --api, --nats-url, --gateway-arg, --pprof-listen, --list-presets) do not apply")
	}
	b, err := os.ReadFile(c.FromJSON)
	if err != nil {
		return fielderr.Flag("from-json", err.Error())
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return fielderr.Flag("from-json", "not a result of `quaycast bench --json`: "+err.Error())
	}
	if len(res.Rounds) == 0 {
		return fielderr.Flag("from-json", "not a result of `quaycast bench --json`: it has no rounds")
	}
	return c.print(os.Stdout, &res)
}

// natsNodeCmd is one NATS node of the cluster `quaycast bench --gateways` starts: a process of
// its own, so that the report has each node's CPU time and memory.
type natsNodeCmd struct {
	Name     string   `name:"name" required:"" help:"Server name."`
	Listen   string   `name:"listen" required:"" help:"Loopback host:port of its clients."`
	Cluster  string   `name:"cluster" required:"" help:"Loopback host:port of its routes."`
	Routes   []string `name:"routes" required:"" help:"host:port of every node's routes, its own included."`
	StoreDir string   `name:"store-dir" required:"" help:"Its JetStream store."`
}

func (c *natsNodeCmd) Run(ctx context.Context) error {
	return bench.RunNATSNode(ctx, bench.NATSNode{Name: c.Name, Listen: c.Listen, Cluster: c.Cluster, Routes: c.Routes, StoreDir: c.StoreDir})
}
