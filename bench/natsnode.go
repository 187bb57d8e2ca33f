package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// NATSNode is one node of the NATS cluster the harness starts for Scenario.Gateways: a JetStream
// server on loopback with a store of its own, routed to the other nodes.
type NATSNode struct {
	Name     string
	Listen   string   // host:port of its clients
	Cluster  string   // host:port of its routes
	Routes   []string // host:port of every node's routes, its own included
	StoreDir string
}

// natsClusterName names the cluster the harness's nodes form.
const natsClusterName = "quaycast-bench"

func (n NATSNode) options() (*natsserver.Options, error) {
	host, port, err := splitLoopback(n.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	chost, cport, err := splitLoopback(n.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	routes := make([]string, len(n.Routes))
	for i, r := range n.Routes {
		if _, _, err := splitLoopback(r); err != nil {
			return nil, fmt.Errorf("routes: %w", err)
		}
		routes[i] = "nats-route://" + r
	}
	return &natsserver.Options{
		ServerName: n.Name, Host: host, Port: port,
		JetStream: true, StoreDir: n.StoreDir,
		Cluster: natsserver.ClusterOpts{Name: natsClusterName, Host: chost, Port: cport},
		Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")),
		NoSigs:  true, NoLog: true,
	}, nil
}

// splitLoopback splits a loopback host:port: the nodes serve the harness on this machine only.
func splitLoopback(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || port <= 0 {
		return "", 0, fmt.Errorf("%q: want a loopback IP and a port", addr)
	}
	return host, port, nil
}

// RunNATSNode runs the node until ctx ends. The harness starts each node as a child of its own
// (`quaycast bench-nats-node`), so that the report has each node's CPU time and memory.
func RunNATSNode(ctx context.Context, n NATSNode) error {
	opts, err := n.options()
	if err != nil {
		return err
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats node %s: %w", n.Name, err)
	}
	s.Start()
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	if !s.ReadyForConnections(30 * time.Second) {
		return errors.New("nats node " + n.Name + ": not ready for connections within 30s")
	}
	<-ctx.Done()
	return nil
}
