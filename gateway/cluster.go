package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/service"
)

// clustered reports whether this gateway shares its endpoints with others: with an external
// NATS, any number of gateways may deliver from it, each endpoint by one at a time. The embedded
// server is this process's own.
func (g *Gateway) clustered() bool { return g.cfg.NATSURL != "" && g.cfg.Deliver }

// memberName is this gateway's name among the members: --name, or host name and API port.
func (g *Gateway) memberName(ln net.Listener) string {
	if g.cfg.Name != "" {
		return g.cfg.Name
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "quaycast"
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return net.JoinHostPort(host, strconv.Itoa(a.Port))
	}
	return host
}

// errLeaseLost is the outcome of a POST not made: this gateway's lease ran out.
var errLeaseLost = errors.New("not posted: this gateway's cluster lease ran out")

// fenced is the deliverer of a clustered gateway: no POST starts once its lease has run out,
// even in the moments before the supervisor has stopped the endpoint's worker (a process that
// was stopped, SIGSTOP or a long GC pause, resumes with its lanes mid-loop). The worker retries
// it later; by then it is stopped and another gateway owns the endpoint.
type fenced struct {
	consumer.Deliverer
	lease *cluster.Supervisor
}

func (f fenced) Deliver(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
	if !f.lease.Held() {
		<-ctx.Done() // the fence cancels the deliveries of every worker it stops
		return consumer.Outcome{Result: consumer.Retry, Err: errLeaseLost}
	}
	return f.Deliverer.Deliver(ctx, d)
}

// memberView is a gateway of the cluster as the API shows it.
type memberView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	API       string     `json:"api,omitempty"`
	Started   *time.Time `json:"started,omitempty"`
	Heartbeat *time.Time `json:"heartbeat,omitempty"`
	Leaving   bool       `json:"leaving,omitempty"`
	Self      bool       `json:"self,omitempty"`
	Endpoints []string   `json:"endpoints,omitempty"`
}

func (a *api) clusterView(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.ClusterMembers(r.Context(), callerOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	members := make([]memberView, len(v.Members))
	for i, m := range v.Members {
		members[i] = memberView{ID: m.ID, Name: m.Name, API: m.API, Started: &m.Started, Heartbeat: &m.Heartbeat,
			Leaving: m.Leaving, Self: m.Self, Endpoints: m.Endpoints}
		if members[i].Endpoints == nil {
			members[i].Endpoints = []string{}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"clustered": v.Clustered, "members": members})
}

// clusterOrNil keeps a nil supervisor a nil interface.
func clusterOrNil(s *cluster.Supervisor) service.Cluster {
	if s == nil {
		return nil
	}
	return s
}
