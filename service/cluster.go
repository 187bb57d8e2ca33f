package service

import (
	"context"

	"github.com/quaycast/quaycast/cluster"
)

// Cluster is the membership of a clustered gateway: the cluster.Supervisor.
type Cluster interface {
	Members() []cluster.MemberView
	Owner(endpointID string) (cluster.Member, bool)
	Self() cluster.Member
}

// StateElsewhere is the delivery state of an endpoint another gateway of the cluster delivers to.
const StateElsewhere = "elsewhere"

// ClusterView is the gateways sharing the endpoints, and what each delivers to.
type ClusterView struct {
	Clustered bool // false: one gateway on its own NATS delivers to every endpoint
	Self      string
	Members   []cluster.MemberView
}

// ClusterMembers tells who delivers to what.
func (s *Service) ClusterMembers(_ context.Context, c Caller) (*ClusterView, error) {
	if err := s.Check(c, OpViewCluster); err != nil {
		return nil, err
	}
	if s.d.Cluster == nil {
		return &ClusterView{Members: []cluster.MemberView{}}, nil
	}
	return &ClusterView{Clustered: true, Self: s.d.Cluster.Self().ID, Members: s.d.Cluster.Members()}, nil
}

// owner is the member delivering to an endpoint and the endpoint's state as seen from here.
func (s *Service) owner(id, state string) (*cluster.Member, string) {
	if s.d.Cluster == nil {
		return nil, state
	}
	m, ok := s.d.Cluster.Owner(id)
	if !ok {
		return nil, state
	}
	if m.ID != s.d.Cluster.Self().ID {
		state = StateElsewhere
	}
	return &m, state
}
