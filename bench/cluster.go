package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterNodes is how many NATS nodes the harness starts for a cluster of gateways, and the
// replicas of every stream and bucket on it: R3, as the README recommends for a cluster.
const clusterNodes = 3

// clustered reports whether the run has several gateways sharing the endpoints: a cluster of the
// harness's own, or several at --api. Readiness is then read from GET /v1/cluster.
func (r *runner) clustered() bool { return len(r.gws) > 1 || len(r.nodes) > 0 }

// startCluster starts the NATS nodes, each a child `quaycast bench-nats-node` on free loopback
// ports with a store of its own, waits until JetStream has a leader, and starts the first round's
// gateways on it. What it started is in r.nodes and r.gws, for stopProcesses, also on an error.
func (r *runner) startCluster(ctx context.Context) (err error) {
	if r.clusterDir, err = os.MkdirTemp("", "quaycast-bench-cluster-"); err != nil {
		return fmt.Errorf("cluster dir: %w", err)
	}
	r.secretKey = newSecretKey()
	nodes := make([]NATSNode, clusterNodes)
	var routes []string
	for i := range nodes {
		n := &nodes[i]
		n.Name, n.StoreDir = fmt.Sprintf("n%d", i+1), filepath.Join(r.clusterDir, fmt.Sprintf("n%d", i+1))
		if n.Listen, err = freeAddr(); err != nil {
			return fmt.Errorf("free port: %w", err)
		}
		if n.Cluster, err = freeAddr(); err != nil {
			return fmt.Errorf("free port: %w", err)
		}
		routes = append(routes, n.Cluster)
	}
	var urls []string
	for _, n := range nodes {
		t, err := launch("NATS node "+n.Name, r.o.Executable, []string{"bench-nats-node", "--name", n.Name,
			"--listen", n.Listen, "--cluster", n.Cluster, "--routes", strings.Join(routes, ","), "--store-dir", n.StoreDir}, nil)
		if err != nil {
			return err
		}
		t.member, t.nats = n.Name, "nats://"+n.Listen
		r.nodes = append(r.nodes, t)
		urls = append(urls, t.nats)
	}
	r.natsURL = strings.Join(urls, ",")
	if err := r.waitJetStream(ctx, 60*time.Second); err != nil {
		return err
	}
	return r.addGateways(ctx, r.sc.Gateways[0])
}

// waitJetStream waits until the cluster answers JetStream requests: its nodes found each other
// and elected a meta leader.
func (r *runner) waitJetStream(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := jetStreamAnswers(ctx, r.natsURL)
		if err == nil {
			return nil
		}
		if gerr := r.gone(); gerr != nil {
			return gerr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS cluster %s has no JetStream within %.0fs: %w", r.natsURL, within.Seconds(), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func jetStreamAnswers(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.Name("quaycast-bench"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// addGateways starts gateways until n run, each a child `quaycast serve` on the cluster with
// --replicas 3, its own name and data dir, and the cluster's secret key (in its environment, not
// on its command line).
func (r *runner) addGateways(ctx context.Context, n int) error {
	for i := len(r.gws); i < n; i++ {
		name := fmt.Sprintf("gw%d", i+1)
		t, err := startGateway(ctx, childGateway{
			exe: r.o.Executable, name: "gateway " + name, dataDir: filepath.Join(r.clusterDir, name), logLevel: r.o.GatewayLogLevel,
			natsArgs: []string{"--nats-url", r.natsURL, "--replicas", strconv.Itoa(clusterNodes), "--name", name},
			natsURL:  r.natsURL, extra: r.sc.GatewayArgs, env: []string{"QUAYCAST_SECRET_KEY=" + r.secretKey},
		})
		if err != nil {
			return err
		}
		t.member = name
		r.gws = append(r.gws, t)
		if err := r.checkAPI(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// stopProcesses stops the gateways, then the NATS nodes, each group in parallel, and removes the
// cluster's dir; it returns what went wrong. It may be called again.
func (r *runner) stopProcesses() []string {
	var mu sync.Mutex
	var problems []string
	stopAll := func(ts []*target) {
		var wg sync.WaitGroup
		for _, t := range ts {
			stop := t.stop
			t.stop = nil
			if stop == nil {
				continue
			}
			wg.Go(func() {
				if err := stop(); err != nil {
					mu.Lock()
					problems = append(problems, err.Error())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	stopAll(r.gws) // first: they hand their endpoints over through NATS
	stopAll(r.nodes)
	if r.clusterDir != "" {
		os.RemoveAll(r.clusterDir)
		r.clusterDir = ""
	}
	return problems
}

// clusterView is a gateway's GET /v1/cluster.
type clusterView struct {
	Clustered bool `json:"clustered"`
	Members   []struct {
		Name      string   `json:"name"`
		Self      bool     `json:"self"`
		Leaving   bool     `json:"leaving"`
		Endpoints []string `json:"endpoints"`
	} `json:"members"`
}

// waitOwned waits until every gateway under test sees each of ids owned (present) or none of
// them (after a delete), runs a worker for exactly the endpoints it owns, and, in a cluster of
// the harness's own, sees every gateway as a member with the endpoints spread evenly.
func (r *runner) waitOwned(ctx context.Context, ids []string, present bool) error {
	var why string
	var fatal error
	err := r.poll(ctx, func() bool {
		var owned int
		var done bool
		done, owned, why, fatal = r.settled(ctx, ids, present)
		r.bar.set(int64(owned))
		return done || fatal != nil
	}, func() string { return why })
	if fatal != nil {
		return fatal
	}
	return err
}

// settled is one look for waitOwned: whether it is done, how many of ids the first gateway sees
// owned, what is not settled yet, and an error when waiting makes no sense.
func (r *runner) settled(ctx context.Context, ids []string, present bool) (done bool, owned int, why string, err error) {
	for i, t := range r.gws {
		var v clusterView
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		verr := t.client.Do(vctx, "GET", "/v1/cluster", nil, &v)
		cancel()
		if verr != nil {
			return false, owned, fmt.Sprintf("%s: GET /v1/cluster: %v", t.name, verr), nil
		}
		if !v.Clustered {
			return false, 0, "", fmt.Errorf("the %s at %s shares no endpoints with others (GET /v1/cluster: not clustered): give several gateways only when they deliver from one NATS", t.name, t.api)
		}
		owner := map[string]string{}
		self, counts := 0, map[string]int{}
		for _, m := range v.Members {
			if m.Self {
				self = len(m.Endpoints)
				if t.member == "" {
					t.member = m.Name
				}
			}
			counts[m.Name] = len(m.Endpoints)
			if m.Leaving {
				return false, owned, fmt.Sprintf("%s sees %s leaving", t.name, m.Name), nil
			}
			for _, ep := range m.Endpoints {
				owner[ep] = m.Name
			}
		}
		n := 0
		for _, id := range ids {
			if owner[id] != "" {
				n++
			}
		}
		if i == 0 {
			owned = n
		}
		switch {
		case present && n < len(ids):
			return false, owned, fmt.Sprintf("%s sees %d of %d endpoints owned", t.name, n, len(ids)), nil
		case !present && n > 0:
			return false, owned, fmt.Sprintf("%s sees %d deleted endpoints still owned", t.name, n), nil
		}
		if w := r.workersOf(ctx, t); w != self {
			return false, owned, fmt.Sprintf("%s delivers to %d endpoints and owns %d", t.name, w, self), nil
		}
		if len(r.nodes) == 0 {
			continue // gateways at --api: the cluster may have members the harness does not know
		}
		if len(v.Members) != len(r.gws) {
			return false, owned, fmt.Sprintf("%s sees %d members, want %d", t.name, len(v.Members), len(r.gws)), nil
		}
		if lo, hi, ok := ownedSpread(counts, len(ids)); !ok {
			return false, owned, fmt.Sprintf("%s sees the endpoints spread unevenly: %d to %d per gateway", t.name, lo, hi), nil
		}
	}
	return true, owned, "", nil
}

// ownedSpread is the fewest and most endpoints a member owns, and whether that is within the
// tolerance the cluster promises once settled: max − min ≤ 20 % of N/G + 1.
func ownedSpread(counts map[string]int, endpoints int) (lo, hi int, ok bool) {
	if len(counts) == 0 {
		return 0, 0, true
	}
	lo = math.MaxInt
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	return lo, hi, float64(hi-lo) <= 0.2*float64(endpoints)/float64(len(counts))+1
}

// workersOf is how many endpoints t delivers to, from its /readyz; -1 while it is not ready.
func (r *runner) workersOf(ctx context.Context, t *target) int {
	var out struct {
		Endpoints int `json:"endpoints"`
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.client.Do(rctx, "GET", "/readyz", nil, &out); err != nil {
		return -1
	}
	return out.Endpoints
}

// clusterFigures fills in the round's figures per NATS node and, unless the round is the
// baseline's, per gateway: its deliveries (the increase of its delivered counter since the round
// started, over the round's delivery time), the delivery-log records it dropped (added up in the
// round's), what it owns at the end, its process.
func (r *runner) clusterFigures(ctx context.Context, rd *Round, m *meter, deliveries int) {
	rc := &RoundCluster{}
	rd.Cluster = rc
	for i, t := range r.nodes {
		rc.NATSNodes = append(rc.NATSNodes, NodeFigures{Name: t.member, Process: sumUsage(m.nodes[i:i+1], deliveries)})
	}
	rc.NATS = sumUsage(m.nodes, deliveries)
	if rd.Pipeline == "baseline" {
		return // the gateways stood by: only the NATS nodes worked
	}
	gws := r.gws[:len(m.gws)]
	end := make([]*gatewayMetrics, len(gws))
	// A gateway counts a delivery once the receiver's answer is read, just after the receiver
	// counted it: read until the counters add up to what the receivers saw, for at most 5 s.
	for deadline := time.Now().Add(5 * time.Second); ; {
		total := 0.0
		for i, t := range gws {
			end[i] = nil
			if gm, err := scrape(ctx, t.client); err == nil {
				end[i] = &gm
				if m.counters[i] != nil {
					total += gm.delivered - m.counters[i].delivered
				}
			}
		}
		if total >= float64(rd.Delivered) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
	}
	rc.Gateways = len(gws)
	owned := map[string]int{}
	for i, t := range gws {
		g := GatewayFigures{Name: t.member}
		if end[i] != nil && m.counters[i] != nil {
			g.Deliveries = max(0, int(end[i].delivered-m.counters[i].delivered))
			g.DeliveryLogDropped = max(0, int(end[i].logDropped-m.counters[i].logDropped))
			rd.DeliveryLogDropped += g.DeliveryLogDropped
			g.Owned = int(end[i].owned)
			if rd.DeliverSeconds > 0 {
				g.DeliveriesPerSec = float64(g.Deliveries) / rd.DeliverSeconds
			}
		} else {
			rd.Notes = append(rd.Notes, t.name+": its /metrics could not be read: no delivery figures of its own")
		}
		g.Process = sumUsage(m.gws[i:i+1], g.Deliveries)
		owned[g.Name] = g.Owned
		rc.PerGateway = append(rc.PerGateway, g)
	}
	lo, hi, _ := ownedSpread(owned, 0)
	rc.OwnedSpread = hi - lo
}

func endpointIDs(eps []*endpoint) []string {
	ids := make([]string, 0, len(eps))
	for _, ep := range eps {
		if ep.id != "" {
			ids = append(ids, ep.id)
		}
	}
	return ids
}
