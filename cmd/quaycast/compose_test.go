package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// docker-compose.yml is checked as Docker would load it — there is no Docker engine here — with
// compose-go, the loader of `docker compose` itself, and the nats-server configuration it mounts
// with nats-server's own option parser.

// composeSamples is a value for every variable docker-compose.yml reads from the environment.
func composeSamples() map[string]string {
	return map[string]string{
		"QUAYCAST_ADMIN_TOKEN":        sampleAdminToken,
		"QUAYCAST_SECRET_KEY":         sampleSecretKey,
		"QUAYCAST_NATS_PASSWORD":      "sample-gateway-password",
		"TOS_ROTTERDAM_NATS_PASSWORD": "sample-publisher-password",
		"WEBHOOK_SECRET":              "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
}

// loadCompose loads docker-compose.yml as `docker compose [--profile ...] config` does: validated
// against the Compose schema, interpolated, checked for consistency (depends_on, networks,
// volumes), without the services of profiles not asked for. The variables are env alone, not
// this process's environment or an .env file.
func loadCompose(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	file, err := filepath.Abs("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	opts, err := composecli.NewProjectOptions([]string{file},
		composecli.WithWorkingDirectory(filepath.Dir(file)),
		composecli.WithEnv(vars),
		composecli.WithProfiles(profiles),
		composecli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(t.Context())
}

// composeStack is the compose project's services by role.
type composeStack struct {
	project  *types.Project
	nats     []types.ServiceConfig // nats-server nodes
	gateways []types.ServiceConfig // built from this repository's Dockerfile
	receiver *types.ServiceConfig  // the demo receiver (profile demo)
}

func stackOf(t *testing.T, p *types.Project) composeStack {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s := composeStack{project: p}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	}) {
		svc := p.Services[name]
		switch {
		case svc.Build != nil:
			if svc.Build.Context != root || (svc.Build.Dockerfile != "" && svc.Build.Dockerfile != "Dockerfile") {
				t.Errorf("service %s builds %s/%s, not quaycast's Dockerfile", name, svc.Build.Context, svc.Build.Dockerfile)
			}
			s.gateways = append(s.gateways, svc)
		case strings.HasPrefix(svc.Image, "nats:"):
			s.nats = append(s.nats, svc)
		case strings.HasPrefix(svc.Image, "python:") && s.receiver == nil:
			s.receiver = &svc
		default:
			t.Errorf("service %s (image %s): not a NATS node, a gateway or the receiver; extend this test", name, svc.Image)
		}
	}
	return s
}

// The stack: three NATS nodes and two gateways; the demo receiver only with --profile demo. Each
// required variable stops the load naming it; the receiver's secret is not one of them, since a
// required variable is required with or without the profile.
func TestComposeProfilesAndVariables(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, composeSamples())
	if err != nil {
		t.Fatalf("docker compose config with the required variables set: %v", err)
	}
	s := stackOf(t, p)
	if len(s.nats) != 3 || len(s.gateways) != 2 || s.receiver != nil {
		t.Errorf("docker compose up: %d NATS nodes, %d gateways, receiver %v; want 3, 2 and none", len(s.nats), len(s.gateways), s.receiver != nil)
	}
	p, err = loadCompose(t, composeSamples(), "demo")
	if err != nil {
		t.Fatalf("docker compose --profile demo config: %v", err)
	}
	if s := stackOf(t, p); len(s.nats) != 3 || len(s.gateways) != 2 || s.receiver == nil {
		t.Errorf("docker compose --profile demo up: %d NATS nodes, %d gateways, receiver %v; want 3, 2 and one", len(s.nats), len(s.gateways), s.receiver != nil)
	}

	for _, v := range []string{"QUAYCAST_ADMIN_TOKEN", "QUAYCAST_SECRET_KEY", "QUAYCAST_NATS_PASSWORD", "TOS_ROTTERDAM_NATS_PASSWORD"} {
		env := composeSamples()
		delete(env, v)
		if _, err := loadCompose(t, env); err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("docker compose config without %s: %v, want an error naming it", v, err)
		}
	}
	env := composeSamples()
	delete(env, "WEBHOOK_SECRET")
	if _, err := loadCompose(t, env); err != nil {
		t.Errorf("docker compose config without WEBHOOK_SECRET (only the demo receiver needs it): %v", err)
	}
}

// Every service has a health check, and what waits for a service's health waits for one that has
// a health check: the gateways start once every NATS node is healthy.
func TestComposeHealthChecks(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, composeSamples(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	s := stackOf(t, p)
	for name, svc := range p.Services {
		if svc.HealthCheck == nil || svc.HealthCheck.Disable || len(svc.HealthCheck.Test) < 2 || svc.HealthCheck.Test[0] != "CMD" {
			t.Errorf("service %s: health check %+v, want one in the exec form [\"CMD\", ...] (the images have no shell to run a string)", name, svc.HealthCheck)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition == types.ServiceConditionHealthy && p.Services[dep].HealthCheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
	}
	for _, gw := range s.gateways {
		for _, n := range s.nats {
			if d, ok := gw.DependsOn[n.Name]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("gateway %s does not wait for %s to be healthy (depends_on %+v)", gw.Name, n.Name, gw.DependsOn)
			}
		}
	}
}

// The cluster as docker compose would run it, one subtest per role. Not parallel: nats-server
// reads the passwords in its configuration from the environment, so the test sets it.
func TestComposeCluster(t *testing.T) {
	p, err := loadCompose(t, composeSamples(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	s := stackOf(t, p)
	if len(s.nats) == 0 || len(s.gateways) == 0 || s.receiver == nil {
		t.Fatalf("no NATS node, gateway or receiver: %+v", s)
	}
	nodes := map[string]*server.Options{}
	t.Run("nats", func(t *testing.T) {
		for _, svc := range s.nats {
			nodes[svc.Name] = checkNATSNode(t, s, svc)
		}
		var names, clusters []string
		for _, o := range nodes {
			names = append(names, o.ServerName)
			clusters = append(clusters, o.Cluster.Name)
		}
		slices.Sort(names)
		if len(slices.Compact(names)) != len(s.nats) || slices.Contains(names, "") {
			t.Errorf("server names %q: each node needs its own (JetStream in a cluster requires it)", names)
		}
		if clusters = slices.Compact(slices.Sorted(slices.Values(clusters))); len(clusters) != 1 || clusters[0] == "" {
			t.Errorf("cluster names %q: want one, the same on every node", clusters)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("gateways", func(t *testing.T) { checkGateways(t, s, nodes) })
	t.Run("receiver", func(t *testing.T) { checkReceiver(t, s) })
}

// checkNATSNode parses a NATS service's command and the configuration it mounts as nats-server
// would, and checks that the node is one of a cluster of all the NATS services, with JetStream
// on a volume of its own, quaycast's accounts exactly as `quaycast nats-config` prints them, and
// a health check on its monitoring port.
func checkNATSNode(t *testing.T, s composeStack, svc types.ServiceConfig) *server.Options {
	where := "docker-compose.yml service " + svc.Name

	// The image: the nats-server release whose parser this test uses, in the variant with wget
	// for the health check (the default image has no shell and no tools).
	nsVersion := moduleVersion(t, "github.com/nats-io/nats-server/v2")
	minor := strings.Join(strings.SplitN(strings.TrimPrefix(nsVersion, "v"), ".", 3)[:2], ".")
	if _, tag, _ := strings.Cut(svc.Image, ":"); !strings.HasPrefix(tag, minor) || !strings.Contains(tag, "alpine") {
		t.Errorf("%s: image %s, want nats:%s-alpine (the nats-server of go.mod is %s)", where, svc.Image, minor, nsVersion)
	}

	args, binds, confFile, confTarget := natsCommand(t, svc)
	// An include resolves beside the including file: on the host and in the container alike.
	text := string(mustRead(t, confFile))
	for _, m := range regexp.MustCompile(`(?m)^\s*include\s+"?([^"\s;]+)`).FindAllStringSubmatch(text, -1) {
		inContainer, onHost := path.Join(path.Dir(confTarget), m[1]), filepath.Join(filepath.Dir(confFile), m[1])
		if b, ok := binds[inContainer]; !ok || b.Source != onHost {
			t.Errorf("%s: %s includes %s, which the container does not have at %s from %s", where, confTarget, m[1], inContainer, onHost)
		}
		text += string(mustRead(t, onHost))
	}

	// nats-server's environment: the service's, and nothing of this process's that the
	// configuration reads.
	for _, m := range regexp.MustCompile(`(?m):\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*$`).FindAllStringSubmatch(text, -1) {
		t.Setenv(m[1], "")
		os.Unsetenv(m[1])
	}
	for k, v := range svc.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	unexpected := func() { t.Fatalf("%s: command %q asks nats-server for help or its version", where, svc.Command) }
	o, err := server.ConfigureOptions(fs, args, unexpected, unexpected, unexpected)
	if err != nil {
		t.Fatalf("%s: nats-server %q: %v", where, args, err)
	}

	// A cluster of every NATS service, by their names on a network they share.
	var routeHosts, want []string
	for _, r := range o.Routes {
		routeHosts = append(routeHosts, r.Hostname())
		if r.Port() != strconv.Itoa(o.Cluster.Port) {
			t.Errorf("%s: route %s, but the nodes listen for routes on %d", where, r, o.Cluster.Port)
		}
	}
	for _, n := range s.nats {
		want = append(want, n.Name)
		if !shareNetwork(svc, n) {
			t.Errorf("%s: on no network with %s", where, n.Name)
		}
	}
	slices.Sort(routeHosts)
	if !slices.Equal(routeHosts, want) || o.Cluster.Port <= 0 {
		t.Errorf("%s: routes %q on port %d, want one to each of %q", where, routeHosts, o.Cluster.Port, want)
	}

	// JetStream, its store on a named volume of this node's own.
	if !o.JetStream {
		t.Errorf("%s: JetStream is off", where)
	}
	var store *types.ServiceVolumeConfig
	for _, v := range svc.Volumes {
		if v.Target == o.StoreDir && v.Type == types.VolumeTypeVolume {
			store = &v
		}
	}
	if store == nil {
		t.Errorf("%s: the JetStream store %q is not a named volume", where, o.StoreDir)
	} else {
		for _, n := range s.nats {
			for _, v := range n.Volumes {
				if n.Name != svc.Name && v.Source == store.Source {
					t.Errorf("%s: shares the volume %s with %s", where, v.Source, n.Name)
				}
			}
		}
	}

	// Publishers reach it on the host's loopback only.
	if len(svc.Ports) == 0 {
		t.Errorf("%s: publishes no client port", where)
	}
	for _, p := range svc.Ports {
		if p.HostIP != "127.0.0.1" || int(p.Target) != o.Port {
			t.Errorf("%s: port %s:%s->%d, want 127.0.0.1 to the client port %d", where, p.HostIP, p.Published, p.Target, o.Port)
		}
	}

	// The health check asks the monitoring port whether JetStream is on.
	u, err := url.Parse(svc.HealthCheck.Test[len(svc.HealthCheck.Test)-1])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(o.HTTPPort) || u.Path != "/healthz" || u.Query().Get("js-enabled-only") != "true" {
		t.Errorf("%s: health check %q, want http://127.0.0.1:%d/healthz?js-enabled-only=true", where, svc.HealthCheck.Test, o.HTTPPort)
	}
	if o.HTTPHost != "" && o.HTTPHost != "0.0.0.0" && o.HTTPHost != "127.0.0.1" {
		t.Errorf("%s: monitoring listens on %s, where the health check cannot reach it", where, o.HTTPHost)
	}

	// The accounts: what `quaycast nats-config` prints, parsed alike.
	printed := filepath.Join(t.TempDir(), "printed.conf")
	if err := os.WriteFile(printed, []byte(run(t, "nats-config")), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := conf.ParseFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	wantAccounts, err := conf.ParseFile(printed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got["accounts"], wantAccounts["accounts"]) {
		t.Errorf("%s: the accounts of %s differ from what `quaycast nats-config` prints: run go test ./natsauth -update", where, confTarget)
	}
	// ... with the passwords of the service's environment.
	for user, env := range map[string]string{"quaycast": "QUAYCAST_NATS_PASSWORD", "tos-rotterdam": "TOS_ROTTERDAM_NATS_PASSWORD"} {
		i := slices.IndexFunc(o.Users, func(u *server.User) bool { return u.Username == user })
		if i < 0 || o.Users[i].Password != composeSamples()[env] {
			t.Errorf("%s: the NATS user %s has not the password of %s", where, user, env)
		}
	}

	// And nats-server accepts the options as a whole (what it checks before it starts).
	srv, err := server.NewServer(o)
	if err != nil {
		t.Errorf("%s: nats-server refuses its options: %v", where, err)
	} else {
		srv.Shutdown()
	}
	return o
}

// checkGateways: each gateway runs `quaycast serve` with flags and variables the binary has, a
// valid configuration, every NATS node as the accounts' quaycast user, R3, its own name, the
// same keys as the other, its API on a host port of its own on loopback, and a health check
// on that API's /readyz that the image can run.
func checkGateways(t *testing.T, s composeStack, nodes map[string]*server.Options) {
	image := readDockerfile(t, "../../Dockerfile")
	var names, published, tokens, keys []string
	for _, svc := range s.gateways {
		where := "docker-compose.yml service " + svc.Name
		if svc.Entrypoint != nil {
			t.Errorf("%s: entrypoint %q replaces the image's", where, svc.Entrypoint)
		}
		args := []string(svc.Command)
		if args == nil {
			args = image.cmd
		}
		c, err := serveConfig(t, where, args, gatewayEnv(image, svc))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", where, err)
		}

		// NATS: every node, by a name on a network they share, at its client port.
		var hosts, want []string
		for _, raw := range strings.Split(c.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || u.Scheme != "nats" {
				t.Errorf("%s: --nats-url %q: %q is not a nats:// URL", where, c.NATSURL, raw)
				continue
			}
			hosts = append(hosts, u.Hostname())
			if n := nodes[u.Hostname()]; n != nil && u.Port() != strconv.Itoa(n.Port) {
				t.Errorf("%s: %s, but %s listens for clients on %d", where, raw, u.Hostname(), n.Port)
			}
		}
		for _, n := range s.nats {
			want = append(want, n.Name)
			if !shareNetwork(svc, n) {
				t.Errorf("%s: on no network with %s", where, n.Name)
			}
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, want) {
			t.Errorf("%s: --nats-url %q, want every node: %q", where, c.NATSURL, want)
		}
		if c.Replicas != len(s.nats) {
			t.Errorf("%s: --replicas %d on %d NATS nodes", where, c.Replicas, len(s.nats))
		}
		for name, n := range nodes {
			i := slices.IndexFunc(n.Users, func(u *server.User) bool { return u.Username == c.NATSUser })
			if i < 0 || n.Users[i].Password != c.NATSPassword || n.Users[i].Account == nil || n.Users[i].Account.Name != "QUAYCAST" {
				t.Errorf("%s: NATS user %q with its password is not quaycast's user on %s", where, c.NATSUser, name)
			}
		}
		if !c.Deliver {
			t.Errorf("%s: --deliver=false", where)
		}
		names = append(names, c.Name)
		tokens = append(tokens, c.AdminToken)
		keys = append(keys, c.SecretKey)

		// The API on a host port of its own, on loopback.
		apiPort := portOf(t, c.Listen)
		for _, p := range svc.Ports {
			if p.HostIP != "127.0.0.1" || strconv.Itoa(int(p.Target)) != apiPort {
				t.Errorf("%s: port %s:%s->%d, want 127.0.0.1 to the API's port %s", where, p.HostIP, p.Published, p.Target, apiPort)
			}
			published = append(published, p.Published)
		}
		if len(svc.Ports) != 1 {
			t.Errorf("%s: ports %+v, want the API's alone", where, svc.Ports)
		}

		// The health check: the image's binary probing the API's /readyz from inside.
		test := []string(svc.HealthCheck.Test)
		if len(test) < 3 || len(image.entrypoint) == 0 || test[1] != image.entrypoint[0] {
			t.Errorf("%s: health check %q, want [\"CMD\", %q, \"healthcheck\", ...]", where, test, image.entrypoint)
		} else {
			var hc cli
			parser, err := newParser(&hc, kong.Exit(func(code int) { t.Fatalf("%s: kong exited with %d", where, code) }))
			if err != nil {
				t.Fatal(err)
			}
			k, err := parser.Parse(test[2:])
			if err != nil || k.Command() != "healthcheck" {
				t.Errorf("%s: health check %q: %v, want quaycast healthcheck", where, test, err)
			} else if u, err := url.Parse(hc.Healthcheck.URL); err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() != apiPort || u.Path != "/readyz" {
				t.Errorf("%s: health check of %s, want http://127.0.0.1:%s/readyz", where, hc.Healthcheck.URL, apiPort)
			}
		}
		if svc.StopGracePeriod == nil || *svc.StopGracePeriod <= types.Duration(c.ShutdownTimeout) {
			t.Errorf("%s: stop_grace_period %v is not longer than --shutdown-timeout %s: Docker would kill it mid-shutdown", where, svc.StopGracePeriod, c.ShutdownTimeout)
		}
		if svc.Restart == "" || svc.Restart == types.RestartPolicyNo {
			t.Errorf("%s: restart %q: a gateway that started before the cluster had a JetStream leader stays down", where, svc.Restart)
		}
	}
	for what, vals := range map[string][]string{"--name": names, "published API port": published} {
		if len(slices.Compact(slices.Sorted(slices.Values(vals)))) != len(vals) || slices.Contains(vals, "") {
			t.Errorf("gateways' %s %q: want one of its own each", what, vals)
		}
	}
	for what, vals := range map[string][]string{"QUAYCAST_ADMIN_TOKEN": tokens, "QUAYCAST_SECRET_KEY": keys} {
		if len(slices.Compact(slices.Clone(vals))) != 1 || vals[0] == "" {
			t.Errorf("gateways' %s differ or are empty: every gateway of one NATS needs the same", what)
		}
	}
}

// checkReceiver: the demo receiver runs examples/receiver.py, reachable from every gateway at a
// fixed address that they allow — the only one, outside the range Docker gives out, so no
// other container becomes a webhook target — and on no network with NATS.
func checkReceiver(t *testing.T, s composeStack) {
	r := *s.receiver
	where := "docker-compose.yml service " + r.Name
	script, err := filepath.Abs("../../examples/receiver.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := []string(r.Command)
	i := slices.IndexFunc(cmd, func(a string) bool { return strings.HasSuffix(a, ".py") })
	if i < 0 || i+1 >= len(cmd) {
		t.Fatalf("%s: command %q runs no script with a port", where, cmd)
	}
	if !slices.ContainsFunc(r.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Target == cmd[i] && v.Source == script && v.ReadOnly
	}) {
		t.Errorf("%s: %s is not examples/receiver.py mounted read-only", where, cmd[i])
	}
	port := cmd[i+1]
	if _, err := strconv.Atoi(port); err != nil || !slices.Contains(cmd, "0.0.0.0") {
		t.Errorf("%s: command %q: want a port and --host 0.0.0.0", where, cmd)
	}
	if !slices.ContainsFunc(r.HealthCheck.Test, func(a string) bool { return strings.Contains(a, port) }) {
		t.Errorf("%s: health check %q does not probe port %s", where, r.HealthCheck.Test, port)
	}
	if _, ok := r.Environment["WEBHOOK_SECRET"]; !ok {
		t.Errorf("%s: no WEBHOOK_SECRET for receiver.py", where)
	}

	var addr netip.Addr
	var netName string
	for name, n := range r.Networks {
		if n != nil && n.Ipv4Address != "" {
			addr, netName = netip.MustParseAddr(n.Ipv4Address), name
		}
	}
	if !addr.IsValid() {
		t.Fatalf("%s: no fixed ipv4_address for the gateways to allow", where)
	}
	ipam := s.project.Networks[netName].Ipam.Config
	if len(ipam) != 1 {
		t.Fatalf("network %s: ipam %+v, want one subnet", netName, ipam)
	}
	subnet, err1 := netip.ParsePrefix(ipam[0].Subnet)
	dynamic, err2 := netip.ParsePrefix(ipam[0].IPRange)
	if err1 != nil || err2 != nil || !subnet.Contains(addr) || dynamic.Contains(addr) {
		t.Errorf("network %s: %s in subnet %q, outside ip_range %q? want so", netName, addr, ipam[0].Subnet, ipam[0].IPRange)
	}
	for _, n := range s.nats {
		if shareNetwork(r, n) {
			t.Errorf("%s: on a network with %s", where, n.Name)
		}
	}
	image := readDockerfile(t, "../../Dockerfile")
	for _, gw := range s.gateways {
		if _, ok := gw.Networks[netName]; !ok {
			t.Errorf("service %s: not on %s, the receiver's network", gw.Name, netName)
		}
		c, err := serveConfig(t, "service "+gw.Name, gw.Command, gatewayEnv(image, gw))
		if err != nil {
			t.Fatal(err)
		}
		allowed := false
		for _, a := range c.AllowTargets {
			pre, err := netip.ParsePrefix(a)
			if err != nil {
				pre = netip.PrefixFrom(netip.MustParseAddr(a), 32)
			}
			allowed = allowed || pre.Contains(addr)
			if pre.Overlaps(dynamic) {
				t.Errorf("service %s: --allow-target %s lets deliveries reach addresses Docker gives to containers (%s)", gw.Name, a, dynamic)
			}
		}
		if !allowed {
			t.Errorf("service %s: --allow-target %q does not allow the receiver at %s", gw.Name, c.AllowTargets, addr)
		}
	}
}

// natsCommand is a NATS service's command as nats-server's arguments (the image's entrypoint runs
// nats-server with them), the files it names in the container replaced by those mounted there;
// with the bind mounts by target, and the configuration file on the host and in the container.
func natsCommand(t *testing.T, svc types.ServiceConfig) (args []string, binds map[string]types.ServiceVolumeConfig, confFile, confTarget string) {
	t.Helper()
	where := "docker-compose.yml service " + svc.Name
	args = slices.Clone([]string(svc.Command))
	if len(args) > 0 && args[0] == "nats-server" {
		args = args[1:]
	}
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		t.Fatalf("%s: command %q: want nats-server's flags", where, svc.Command)
	}
	binds = map[string]types.ServiceVolumeConfig{}
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeBind {
			binds[v.Target] = v
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted writable; mount configuration read-only", where, v.Target)
			}
		}
	}
	for i, a := range args {
		if b, ok := binds[a]; ok {
			args[i] = b.Source
			if i > 0 && slices.Contains([]string{"-c", "--config", "-config"}, args[i-1]) {
				confFile, confTarget = b.Source, b.Target
			}
		}
	}
	if confFile == "" {
		t.Fatalf("%s: command %q gives no --config mounted into the container", where, svc.Command)
	}
	return args, binds, confFile, confTarget
}

// gatewayEnv is a gateway service's environment: the image's, then the service's.
func gatewayEnv(image dockerfile, svc types.ServiceConfig) map[string]string {
	env := merged(image.env, nil)
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// moduleVersion is the version of a module this test binary was built with.
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	if ok {
		for _, d := range bi.Deps {
			if d.Path == module {
				return d.Version
			}
		}
	}
	t.Fatalf("no build information for %s", module)
	return ""
}

// The stack run on loopback, as far as it can be without Docker: each node runs nats-server with
// its service's command, the files it mounts and its environment, only its addresses replaced
// (ports, store, and the routes' host names); each gateway runs `quaycast serve` with its
// service's command and environment, the nodes' names replaced by those addresses. The nodes
// form a cluster and pass their health check; both gateways join it and pass theirs; every
// stream and bucket quaycast made has a replica on each node; and an event the example publisher
// account publishes on one node reaches an endpoint registered on a gateway.
//
// Not parallel: five processes would crowd the fault tests' timing on two cores.
func TestComposeStackOnLoopback(t *testing.T) {
	p, err := loadCompose(t, composeSamples())
	if err != nil {
		t.Fatal(err)
	}
	s := stackOf(t, p)
	samples := composeSamples()
	asQuaycast := nats.UserInfo("quaycast", samples["QUAYCAST_NATS_PASSWORD"])

	type node struct {
		svc                   types.ServiceConfig
		client, route, health int
		proc                  *natsProcess
	}
	var nodes []*node
	var routes []string
	clientURL := map[string]string{} // by service name
	ports := freePorts(t, 3*len(s.nats))
	for i, svc := range s.nats {
		n := &node{svc: svc, client: ports[3*i], route: ports[3*i+1], health: ports[3*i+2]}
		nodes = append(nodes, n)
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(n.route))
		clientURL[svc.Name] = "nats://127.0.0.1:" + strconv.Itoa(n.client)
	}
	storeDir := regexp.MustCompile(`(?m)^(\s*store_dir:\s*).*$`)
	for _, n := range nodes {
		args, binds, confFile, confTarget := natsCommand(t, n.svc)
		// nats-server refuses --store_dir beside a store_dir in the file: the file's folder is
		// copied with only that line changed.
		dir := t.TempDir()
		for target, b := range binds {
			if path.Dir(target) != path.Dir(confTarget) {
				continue
			}
			text := mustRead(t, b.Source)
			if target == confTarget {
				if len(storeDir.FindAll(text, -1)) != 1 {
					t.Fatalf("%s: no single store_dir to replace", confFile)
				}
				text = storeDir.ReplaceAll(text, []byte(`${1}"`+filepath.Join(dir, "store")+`"`))
			}
			if err := os.WriteFile(filepath.Join(dir, path.Base(target)), text, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args[slices.Index(args, confFile)] = filepath.Join(dir, path.Base(confTarget))
		args = append(args, "--addr", "127.0.0.1", "--port", strconv.Itoa(n.client), "--http_port", strconv.Itoa(n.health),
			"--cluster", "nats://127.0.0.1:"+strconv.Itoa(n.route), "--routes", strings.Join(routes, ","))
		var env []string
		for k, v := range n.svc.Environment {
			if v != nil {
				env = append(env, k+"="+*v)
			}
		}
		n.proc = startNATSProcess(t, env, args...)
	}
	httpc := &http.Client{Timeout: 5 * time.Second}
	for _, n := range nodes {
		test := n.svc.HealthCheck.Test
		u, err := url.Parse(test[len(test)-1])
		if err != nil {
			t.Fatal(err)
		}
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(n.health))
		testwait.For(t, 60*time.Second, n.svc.Name+"'s health check "+u.String(), func() bool {
			resp, err := httpc.Get(u.String())
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		n.proc.waitJetStream(t, clientURL[n.svc.Name], asQuaycast)
	}

	// The gateways, on the nodes' loopback addresses.
	onLoopback := func(urls string) string {
		var out []string
		for _, raw := range strings.Split(urls, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || clientURL[u.Hostname()] == "" {
				t.Fatalf("NATS URL %q names no NATS service", raw)
			}
			out = append(out, clientURL[u.Hostname()])
		}
		return strings.Join(out, ",")
	}
	image := readDockerfile(t, "../../Dockerfile")
	var gws []*proc
	var names []string
	for _, svc := range s.gateways {
		args := slices.Clone([]string(svc.Command))
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("service %s: command %q", svc.Name, args)
		}
		args = args[1:]
		for i := 1; i < len(args); i++ {
			if args[i-1] == "--nats-url" {
				args[i] = onLoopback(args[i])
			}
			if args[i-1] == "--name" {
				names = append(names, args[i])
			}
		}
		env := gatewayEnv(image, svc)
		for _, k := range []string{"QUAYCAST_LISTEN", "QUAYCAST_DATA_DIR", "QUAYCAST_NATS_LISTEN"} {
			delete(env, k) // the container's addresses and folder: the test gives its own
		}
		if u, ok := env["QUAYCAST_NATS_URL"]; ok {
			env["QUAYCAST_NATS_URL"] = onLoopback(u)
		}
		args = append(append(args, envFlags(t, svc.Name, env)...), "--data-dir", t.TempDir())
		gws = append(gws, serve(t, args...))
	}
	for i, gw := range gws {
		waitReady(t, gw.api)
		// The service's health check, aimed at this gateway's API.
		test := s.gateways[i].HealthCheck.Test
		if len(test) < 3 || test[2] != "healthcheck" {
			t.Fatalf("service %s: health check %q", s.gateways[i].Name, test)
		}
		hc := slices.Clone([]string(test[3:])) // after CMD /quaycast healthcheck
		for j, a := range hc {
			if u, err := url.Parse(a); err == nil && u.Scheme == "http" {
				u.Host = strings.TrimPrefix(gw.api, "http://")
				hc[j] = u.String()
			}
		}
		if out, code := probe(t, hc...); code != 0 {
			t.Errorf("service %s: health check %q: exit %d\n%s", s.gateways[i].Name, hc, code, out)
		}
	}
	api := gateway.NewClient(gws[0].api)
	api.Token = samples["QUAYCAST_ADMIN_TOKEN"]
	testwait.For(t, 60*time.Second, fmt.Sprintf("members %q in GET /v1/cluster", names), func() bool {
		var v struct{ Members []struct{ Name string } }
		if err := api.Do(t.Context(), "GET", "/v1/cluster", nil, &v); err != nil {
			return false
		}
		var got []string
		for _, m := range v.Members {
			got = append(got, m.Name)
		}
		slices.Sort(got)
		return slices.Equal(got, slices.Sorted(slices.Values(names)))
	})

	// An endpoint registered on one gateway; an event published as the example upstream system
	// on the last node.
	got := make(chan string, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("webhook-id"):
		default:
		}
	}))
	t.Cleanup(recv.Close)
	var ep struct{ ID string }
	api = gateway.NewClient(gws[len(gws)-1].api)
	api.Token = samples["QUAYCAST_ADMIN_TOKEN"]
	if err := api.Do(t.Context(), "POST", "/v1/endpoints", map[string]any{"url": recv.URL + "/hook", "event_types": []string{"cargo_gated_in"}}, &ep); err != nil {
		t.Fatal(err)
	}
	const source, id = "tos-rotterdam", "compose-0001"
	pub, err := nats.Connect(clientURL[nodes[len(nodes)-1].svc.Name], nats.UserInfo(source, samples["TOS_ROTTERDAM_NATS_PASSWORD"]))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	js, _ := jetstream.New(pub)
	msg := nats.NewMsg("evt." + source + ".cargo_gated_in")
	msg.Data = fmt.Appendf(nil, `{"id":%q,"type":"cargo_gated_in","source":%q,"entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"gate":"G3"}}`, id, source)
	msg.Header.Set(subjects.HeaderMsgID, id)
	msg.Header.Set(subjects.HeaderEntity, "MSCU1234567")
	testwait.For(t, 30*time.Second, "JetStream to store the event published as "+source, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, msg)
		return err == nil
	})
	select {
	case gotID := <-got:
		if gotID != id {
			t.Errorf("delivered %q, want %q", gotID, id)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("event %s not delivered to endpoint %s within 60s", id, ep.ID)
	}

	// Every stream and bucket quaycast made has a copy on each node.
	nc, err := nats.Connect(clientURL[nodes[0].svc.Name], asQuaycast)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	qjs, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var streams []string
	for name := range qjs.StreamNames(ctx).Name() {
		streams = append(streams, name)
		st, err := qjs.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != len(nodes) {
			t.Errorf("stream %s: %d replicas on %d nodes", name, r, len(nodes))
		}
	}
	if !slices.Contains(streams, consumer.EventsStream) {
		t.Errorf("streams %q: no %s", streams, consumer.EventsStream)
	}
}
