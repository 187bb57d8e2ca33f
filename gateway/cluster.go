package gateway

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quaycast/quaycast/cluster"
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

// fencedConn is a connection to a receiver that writes only while this gateway's lease is held.
// The check sits as close to the socket as it can: a gateway frozen (SIGSTOP, a long pause)
// between deciding to POST and writing resumes here, past its lease, and sends nothing.
type fencedConn struct {
	net.Conn
	held func() bool
}

func (c fencedConn) Write(b []byte) (int, error) {
	if !c.held() {
		return 0, errLeaseLost
	}
	return c.Conn.Write(b)
}

// errLeaseLost fails a write to a receiver once this gateway's lease ran out.
var errLeaseLost = errors.New("not sent: this gateway's cluster lease ran out")
