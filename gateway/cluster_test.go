package gateway_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
)

type clusterView struct {
	Clustered bool `json:"clustered"`
	Members   []struct {
		ID        string   `json:"id"`
		Name      string   `json:"name"`
		Self      bool     `json:"self"`
		Endpoints []string `json:"endpoints"`
	} `json:"members"`
}

func (r *running) cluster(t *testing.T) clusterView {
	t.Helper()
	var v clusterView
	if err := r.api.Do(context.Background(), "GET", "/v1/cluster", nil, &v); err != nil {
		t.Fatalf("GET /v1/cluster: %v", err)
	}
	return v
}

// settled reports whether the view shows members gateways owning every one of ids, each once,
// spread within one of each other.
func (v clusterView) settled(members int, ids []string) bool {
	if len(v.Members) != members {
		return false
	}
	var owned []string
	lo, hi := len(ids), 0
	for _, m := range v.Members {
		owned = append(owned, m.Endpoints...)
		lo, hi = min(lo, len(m.Endpoints)), max(hi, len(m.Endpoints))
	}
	slices.Sort(owned)
	want := slices.Sorted(slices.Values(ids))
	return slices.Equal(owned, want) && hi-lo <= 1
}

func clusterConfig(t *testing.T, natsURL string, key string, name string) config.Config {
	cfg := testConfig(t)
	cfg.NATSURL = natsURL
	cfg.SecretKey = key
	cfg.LeaseTTL = 3 * time.Second
	cfg.Name = name
	return cfg
}

// startCluster starts n gateways, gw0, gw1, …, on the NATS at natsURL with one secret key, each
// with its config changed by edit (nil: not).
func startCluster(t *testing.T, natsURL string, n int, edit func(*config.Config)) []*running {
	t.Helper()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	var gws []*running
	for i := range n {
		cfg := clusterConfig(t, natsURL, key, fmt.Sprintf("gw%d", i))
		if edit != nil {
			edit(&cfg)
		}
		gws = append(gws, startGateway(t, cfg))
	}
	return gws
}

// Three gateways on one NATS share the endpoints: each endpoint is delivered to by one of them,
// spread evenly, every event once and in order per entity; when one leaves (SIGTERM, a rolling
// deploy) its endpoints move to the others and nothing is lost, repeated or reordered.
func TestClusterSharesEndpointsAndHandsThemOver(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	gws := startCluster(t, ns.ClientURL(), 3, nil)
	for _, g := range gws {
		g.waitReady(t)
	}
	const endpoints, entities = 6, 4
	var recvs []*receiver
	var ids []string
	for range endpoints {
		rc := newReceiver(t)
		recvs = append(recvs, rc)
		ids = append(ids, gws[0].addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}}).ID)
	}
	for _, g := range gws {
		testwait.For(t, 30*time.Second, "endpoints spread over three gateways", func() bool { return g.cluster(t).settled(3, ids) })
	}
	want := map[string][]string{}
	publish := func(from, to int) {
		publishNATS(t, externalNATS(ns.ClientURL()), spread(want, "ev-%04d", from, to, entities)...)
	}
	check := func(n int) {
		t.Helper()
		for i, rc := range recvs {
			rc.waitCount(t, n)
			if got := rc.byEntity(t); !mapsEqual(got, want) {
				t.Fatalf("endpoint %d: deliveries per entity\n got %v\nwant %v", i, got, want)
			}
		}
	}
	publish(0, 40)
	check(40)

	// A rolling deploy: one gateway stops; its endpoints go to the other two.
	gws[2].Stop(t)
	for _, g := range gws[:2] {
		testwait.For(t, 30*time.Second, "endpoints spread over two gateways", func() bool { return g.cluster(t).settled(2, ids) })
	}
	publish(40, 80)
	check(80)
	waitDrained(t, externalNATS(ns.ClientURL()), ids...)
	for i, rc := range recvs {
		if n := len(rc.accepted()); n != 80 {
			t.Errorf("endpoint %d: %d deliveries, want 80 (none repeated)", i, n)
		}
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
