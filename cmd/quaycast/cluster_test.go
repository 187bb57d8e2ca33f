package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/defaults"
)

// These tests run quaycast as a cluster, as an operator would: a three-node nats-server cluster
// (R3) and three gateway processes sharing the endpoints, then faults — a gateway killed, a
// rolling restart, a NATS node killed, a gateway joining, a gateway frozen past its lease —
// judged by the checker at the receivers: nothing lost, nothing out of order per endpoint and
// entity, duplicates within the bound, ownership spread evenly.

// clusterTTL is the gateways' --lease-ttl: short, so failovers take seconds, and long enough
// that a loaded machine renews in time (it renews every TTL/10 and fences at 3/4). The NATS-node test uses the default:
// a leader election outlasts a short TTL's renew deadline.
const clusterTTL = 4 * time.Second

// natsNode is one nats-server process of a cluster, restartable on the same ports and store.
type natsNode struct {
	name            string
	port, routePort int
	dir             string
	proc            *natsProcess
}

type natsCluster struct {
	nodes []*natsNode
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{}
	ports := freePorts(t, 6)
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{name: fmt.Sprintf("n%d", i), port: ports[2*i], routePort: ports[2*i+1], dir: t.TempDir()})
	}
	for _, n := range c.nodes {
		c.start(t, n)
	}
	c.nodes[0].proc.waitJetStream(t, c.url(), nats.Name("test")) // a JetStream meta leader
	return c
}

func (c *natsCluster) start(t *testing.T, n *natsNode) {
	t.Helper()
	var routes []string
	for _, o := range c.nodes {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(o.routePort))
	}
	n.proc = startNATSProcess(t, nil, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-n", n.name, "-js", "-sd", n.dir,
		"--cluster_name", "qc", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(n.routePort), "--routes", strings.Join(routes, ","))
}

func (c *natsCluster) url() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(n.port))
	}
	return strings.Join(urls, ",")
}

// clusterRig is the cluster, its gateways and the rig of endpoints they deliver to.
type clusterRig struct {
	*rig
	nats *natsCluster
	key  string
	ttl  time.Duration // --lease-ttl
	gws  []*proc
}

// newClusterRig starts NATS and three gateways and registers six endpoints, two per gateway.
func newClusterRig(t *testing.T, ttl time.Duration) *clusterRig {
	t.Helper()
	r := newRig(t, flaky(0.2, 13)) // "all", "gate", "loads-and-holds": one flaky receiver each
	r.add(t, "all-healthy", []string{"*"}, nil)
	r.add(t, "holds", []string{"group:hold"}, nil)
	r.add(t, "reefers", []string{"reefer_plugged_in", "cargo_gated_in"}, nil)
	r.events = 1000 // six tests of six processes each: the package must stay within go test's timeout on a loaded machine
	c := &clusterRig{rig: r, nats: startNATSCluster(t), ttl: ttl, key: base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))}
	for i := range 3 {
		c.startGateway(t, i)
	}
	r.register(t, c.gws[0].api)
	c.waitSpread(t, 3)
	return c
}

// startGateway starts (or restarts) gateway i on its own data dir.
func (c *clusterRig) startGateway(t *testing.T, i int) *proc {
	t.Helper()
	args := append([]string{"--nats-url", c.nats.url(), "--replicas", "3", "--lease-ttl", c.ttl.String(),
		"--name", fmt.Sprintf("gw%d", i), "--secret-key", c.key, "--data-dir", t.TempDir(), "--max-in-flight", "16"}, faultArgs...)
	p := serve(t, args...)
	if i < len(c.gws) {
		c.gws[i] = p
	} else {
		c.gws = append(c.gws, p)
	}
	return p
}

// live is a gateway still running.
func (c *clusterRig) live() *proc {
	for _, p := range c.gws {
		select {
		case <-p.exited:
		default:
			if p.cmd.Process.Signal(syscall.Signal(0)) == nil {
				return p
			}
		}
	}
	return nil
}

type clusterMembers struct {
	Members []struct {
		ID        string   `json:"id"`
		Name      string   `json:"name"`
		Endpoints []string `json:"endpoints"`
	} `json:"members"`
}

func (c *clusterRig) view(t *testing.T, p *proc) clusterMembers {
	t.Helper()
	var v clusterMembers
	if err := gateway.NewClient(p.api).Do(context.Background(), "GET", "/v1/cluster", nil, &v); err != nil {
		t.Fatalf("GET /v1/cluster: %v", err)
	}
	return v
}

// owners maps each endpoint id to the name of the gateway delivering to it, as p sees it.
func (c *clusterRig) owners(t *testing.T, p *proc) map[string]string {
	out := map[string]string{}
	for _, m := range c.view(t, p).Members {
		for _, ep := range m.Endpoints {
			out[ep] = m.Name
		}
	}
	return out
}

// waitSpread waits until a live gateway sees members gateways owning every endpoint once, the
// counts within max − min ≤ 20 % of N/G + 1 (the tolerance), and returns the owners.
func (c *clusterRig) waitSpread(t *testing.T, members int) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := c.view(t, c.live())
		owned, lo, hi := 0, len(c.endpoints), 0
		for _, m := range v.Members {
			owned += len(m.Endpoints)
			lo, hi = min(lo, len(m.Endpoints)), max(hi, len(m.Endpoints))
		}
		tolerance := 0.2*float64(len(c.endpoints))/float64(members) + 1
		if len(v.Members) == members && owned == len(c.endpoints) && float64(hi-lo) <= tolerance {
			return c.owners(t, c.live())
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints not spread over %d gateways within 60s: %+v", members, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// natsConn connects to the cluster as the test's observer.
func (c *clusterRig) natsURL() string { return c.nats.url() }

// (a) A gateway killed with SIGKILL mid-stream: its endpoints resume on the others within the
// lease TTL and a little more, and the duplicates stay within what the loss-path bound allows.
func TestClusterGatewayKilled(t *testing.T) {
	t.Parallel()
	c := newClusterRig(t, clusterTTL)
	var killAt time.Time
	var victim string
	var moved []*rigEndpoint
	c.publish(t, c.natsURL(), func(n int) {
		if n != c.events/2 {
			return
		}
		for c.delivered() < c.expectedTotal()/3 {
			time.Sleep(5 * time.Millisecond)
		}
		owners := c.owners(t, c.gws[0])
		victim = "gw1"
		for _, ep := range c.endpoints {
			if owners[ep.id] == victim {
				moved = append(moved, ep)
			}
		}
		killAt = time.Now()
		_ = c.gws[1].cmd.Process.Signal(syscall.SIGKILL)
		<-c.gws[1].exited
	})
	rep := c.wait(t, c.natsURL())
	assertPromise(t, rep, len(c.endpoints)*(1000+16))
	c.waitSpread(t, 2)
	for _, ep := range moved {
		resumed := ep.firstAcceptedAfter(killAt)
		t.Logf("%s (owned by the killed %s): resumed %v after the kill (lease TTL %s)", ep.name, victim, resumed.Sub(killAt).Round(10*time.Millisecond), clusterTTL)
	}
	const inFlight, flush = 16, time.Second
	for _, ep := range c.endpoints {
		recent := ep.arrivedBetween(killAt.Add(-2*flush), killAt)
		if dup := rep.Endpoints[ep.name].Duplicates; dup > inFlight+recent {
			t.Errorf("%s: %d duplicates, want at most %d in flight + %d delivered within the last flush", ep.name, dup, inFlight, recent)
		}
	}
}

// firstAcceptedAfter is the first accepted arrival after t (zero if none).
func (ep *rigEndpoint) firstAcceptedAfter(t time.Time) time.Time {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, at := range ep.accepted {
		if at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// (b) A rolling restart: each gateway in turn stopped with SIGTERM and started again. Endpoints
// move as their deliveries in flight end; nothing is sent twice but what was in flight.
func TestClusterRollingRestart(t *testing.T) {
	t.Parallel()
	c := newClusterRig(t, clusterTTL)
	restarted := 0
	c.publish(t, c.natsURL(), func(n int) {
		if restarted == 3 || n != (restarted+1)*c.events/4 {
			return
		}
		name, other := fmt.Sprintf("gw%d", restarted), c.gws[(restarted+1)%3]
		sent := time.Now()
		if err := c.gws[restarted].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		moved := c.waitMovedFrom(t, other, name)
		t.Logf("SIGTERM to %s: its endpoints owned by the others %v later", name, moved.Sub(sent).Round(time.Millisecond))
		select {
		case <-c.gws[restarted].exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still running 30s after SIGTERM", name)
		}
		c.waitSpread(t, 2)
		c.startGateway(t, restarted)
		c.waitSpread(t, 3)
		restarted++
	})
	rep := c.wait(t, c.natsURL())
	assertPromise(t, rep, len(c.endpoints)*3*16)
	t.Logf("rolling restart of 3 gateways: %d duplicates over %d endpoints", rep.Duplicates, len(c.endpoints))
}

// waitMovedFrom waits until p sees no endpoint owned by the gateway named name, and returns when.
func (c *clusterRig) waitMovedFrom(t *testing.T, p *proc, name string) time.Time {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		owners := c.owners(t, p)
		left := len(owners) == len(c.endpoints)
		for _, owner := range owners {
			left = left && owner != name
		}
		if left {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints of %s not taken over within 60s: %v", name, owners)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// (c) One NATS node of three killed with SIGKILL and brought back: R3 keeps every stream and
// bucket, and the lease outlasts the leader elections, so no endpoint changes owner.
func TestClusterNATSNodeKilled(t *testing.T) {
	t.Parallel()
	c := newClusterRig(t, defaults.LeaseTTL)
	before := c.view(t, c.gws[0])
	c.publish(t, c.natsURL(), func(n int) {
		if n != c.events/2 {
			return
		}
		for c.delivered() < c.expectedTotal()/3 {
			time.Sleep(5 * time.Millisecond)
		}
		c.nats.nodes[0].proc.kill()
		t.Logf("killed nats node n0 after %d deliveries", c.delivered())
		time.Sleep(3 * time.Second)
		c.nats.start(t, c.nats.nodes[0])
	})
	rep := c.wait(t, c.natsURL())
	assertPromise(t, rep, len(c.endpoints)*(1000+16))
	after := c.view(t, c.gws[0])
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("ownership changed when one NATS node of three was killed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// (d) A fourth gateway joins mid-stream: it takes its share, only from the others' surplus.
func TestClusterGatewayJoins(t *testing.T) {
	t.Parallel()
	c := newClusterRig(t, clusterTTL)
	before := c.owners(t, c.gws[0])
	var after map[string]string
	c.publish(t, c.natsURL(), func(n int) {
		if n != c.events/2 {
			return
		}
		c.startGateway(t, 3)
		after = c.waitSpread(t, 4)
	})
	rep := c.wait(t, c.natsURL())
	assertPromise(t, rep, len(c.endpoints)*16)
	for ep, was := range before {
		if now := after[ep]; now != was && now != "gw3" {
			t.Errorf("endpoint %s moved from %s to %s, not to the newcomer", ep, was, now)
		}
	}
}

// (e) The partitioned owner: a gateway frozen with SIGSTOP past its lease while it holds fetched
// events. The others take its endpoints over and deliver; when it resumes (SIGCONT) it makes no
// POST — its lease ran out — and joins again as a new member.
func TestClusterFrozenOwnerMakesNoPOSTAfterItsLease(t *testing.T) {
	t.Parallel()
	c := newClusterRig(t, clusterTTL)
	frozen := c.gws[2]
	pids := func() map[int]bool { return map[int]bool{frozen.cmd.Process.Pid: true} }
	for _, ep := range c.endpoints {
		ep.trackSenders(pids)
	}
	var stopAt, contAt time.Time
	c.publish(t, c.natsURL(), func(n int) {
		if n != c.events/2 {
			return
		}
		for c.delivered() < c.expectedTotal()/3 {
			time.Sleep(5 * time.Millisecond)
		}
		stopAt = time.Now()
		_ = frozen.cmd.Process.Signal(syscall.SIGSTOP)
		c.waitSpreadWithout(t, frozen)
		time.Sleep(clusterTTL) // the new owners deliver meanwhile
		contAt = time.Now()
		_ = frozen.cmd.Process.Signal(syscall.SIGCONT)
	})
	rep := c.wait(t, c.natsURL())
	assertPromise(t, rep, len(c.endpoints)*(1000+16))
	c.waitSpread(t, 3) // it joined again
	// Its old session's POSTs, if any, come before it owns anything again as a new session:
	// Fence stops every worker before the new session joins.
	fenced, owned := frozen.loggedAfter(t, "lease not renewed in time", stopAt), time.Time{}
	if fenced.IsZero() {
		t.Fatalf("the frozen gateway did not log that it fenced itself")
	}
	if owned = frozen.loggedAfter(t, "endpoint owned here", fenced); owned.IsZero() {
		owned = time.Now()
	}
	late := 0
	for _, ep := range c.endpoints {
		late += ep.sentBy(frozen.cmd.Process.Pid, stopAt.Add(time.Second), owned)
	}
	t.Logf("frozen %v (SIGSTOP to SIGCONT), lease TTL %s; fenced %v after SIGCONT, owned endpoints again %v after; %d POSTs from the frozen gateway between its lease running out and then",
		contAt.Sub(stopAt).Round(time.Millisecond), clusterTTL, fenced.Sub(contAt).Round(time.Millisecond), owned.Sub(contAt).Round(time.Millisecond), late)
	if late > 0 {
		t.Errorf("the frozen gateway made %d POSTs after its lease ran out", late)
	}
}

// loggedAfter is the time of the first log line with message msg at or after t (zero if none).
func (p *proc) loggedAfter(t *testing.T, msg string, after time.Time) time.Time {
	t.Helper()
	for _, line := range strings.Split(p.output(), "\n") {
		var l struct {
			Message string
			Time    time.Time
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Message, msg) && !l.Time.Before(after) {
			return l.Time
		}
	}
	return time.Time{}
}

// waitSpreadWithout waits until the live gateways other than gone own every endpoint.
func (c *clusterRig) waitSpreadWithout(t *testing.T, gone *proc) {
	t.Helper()
	var other *proc
	for _, p := range c.gws {
		if p != gone {
			other = p
			break
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := c.view(t, other)
		owned := 0
		for _, m := range v.Members {
			owned += len(m.Endpoints)
		}
		if len(v.Members) == len(c.gws)-1 && owned == len(c.endpoints) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints not taken over within 60s: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trackSenders makes the receiver note, for each request, whether a process in pids sent it:
// the connection's socket is looked up in /proc when it is accepted.
func (ep *rigEndpoint) trackSenders(pids func() map[int]bool) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.senderOf = func(c net.Conn) int {
		for pid := range pids() {
			if ownsSocket(pid, c) {
				return pid
			}
		}
		return 0
	}
}

// sentBy counts requests sent by pid that arrived between from and to.
func (ep *rigEndpoint) sentBy(pid int, from, to time.Time) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	n := 0
	for _, a := range ep.arrivals {
		if a.pid == pid && a.at.After(from) && a.at.Before(to) {
			n++
		}
	}
	return n
}

// ownsSocket reports whether process pid holds the client side of c (a loopback TCP connection
// accepted here): its inode, found in /proc/net/tcp by the two ports, is one of pid's fds.
func ownsSocket(pid int, c net.Conn) bool {
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", remote.Port)
	peer := fmt.Sprintf(":%04X", local.Port)
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && strings.HasSuffix(fields[1], want) && strings.HasSuffix(fields[2], peer) {
			inode = fields[9]
			break
		}
	}
	if inode == "" {
		return false
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// Storage made with --replicas 1 on a three-node cluster becomes R3 when the gateways restart
// with --replicas 3: every stream and bucket gets three replicas, and every endpoint's consumer
// keeps its position (nothing delivered before is sent again, nothing is skipped).
func TestClusterUpgradeToThreeReplicas(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.events = 600
	nc := startNATSCluster(t)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	args := func(replicas string) []string {
		return append([]string{"--nats-url", nc.url(), "--replicas", replicas, "--lease-ttl", clusterTTL.String(),
			"--secret-key", key, "--data-dir", t.TempDir()}, faultArgs...)
	}
	p := serve(t, args("1")...)
	r.register(t, p.api)
	upgraded := false
	r.publish(t, nc.url(), func(n int) {
		if n != r.events/2 {
			return
		}
		for r.delivered() < r.expectedTotal()*9/10 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
		assertReplicas(t, nc.url(), 1)
		p = serve(t, args("3")...)
		waitReady(t, p.api)
		upgraded = true
	})
	if !upgraded {
		t.Fatal("the gateway was not restarted")
	}
	rep := r.wait(t, nc.url())
	assertPromise(t, rep, 0) // a graceful restart: nothing sent twice
	assertReplicas(t, nc.url(), 3)
}

// assertReplicas checks that every stream quaycast made (buckets included) and every consumer
// on the events stream has n replicas. The server scales a durable consumer after its stream, in
// the background: it is given a minute to get there.
func assertReplicas(t *testing.T, url string, n int) {
	t.Helper()
	var problems []string
	deadline := time.Now().Add(time.Minute)
	for {
		problems = replicaProblems(t, url, n)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// replicaProblems lists the streams and consumers without n replicas.
func replicaProblems(t *testing.T, url string, n int) []string {
	t.Helper()
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := jetstream.New(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var problems []string
	streams := js.ListStreams(ctx)
	seen := 0
	for info := range streams.Info() {
		seen++
		if info.Config.Replicas != n {
			problems = append(problems, fmt.Sprintf("stream %s has %d replicas, want %d", info.Config.Name, info.Config.Replicas, n))
		}
		s, err := js.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for ci := range s.ListConsumers(ctx).Info() {
			if ci.Config.Durable == "" {
				continue // an ordered consumer of a watcher: memory only
			}
			got := 1
			if ci.Cluster != nil {
				got += len(ci.Cluster.Replicas)
			}
			if got != n {
				problems = append(problems, fmt.Sprintf("consumer %s of %s has %d replicas, want %d", ci.Name, info.Config.Name, got, n))
			}
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	if seen < 8 {
		problems = append(problems, fmt.Sprintf("%d streams, want every stream and bucket of quaycast", seen))
	}
	return problems
}
