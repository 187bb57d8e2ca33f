package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/nats-io/nats.go/jetstream"
)

// watch follows both buckets into s.view and s.claims.
func (s *Supervisor) watch(ctx context.Context) error {
	mw, err := s.members.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", MembersBucket, err)
	}
	ow, err := s.owners.WatchAll(ctx)
	if err != nil {
		_ = mw.Stop()
		return fmt.Errorf("watch %s: %w", OwnersBucket, err)
	}
	s.watchers.Go(func() {
		defer func() { _ = mw.Stop() }()
		for e := range mw.Updates() {
			if e == nil {
				s.synced(&s.membersRead)
				continue
			}
			s.memberChanged(e)
		}
	})
	s.watchers.Go(func() {
		defer func() { _ = ow.Stop() }()
		for e := range ow.Updates() {
			if e == nil {
				s.synced(&s.claimsRead)
				continue
			}
			s.claimChanged(e)
		}
	})
	return nil
}

// synced marks one bucket as read through (its watch's end of initial values).
func (s *Supervisor) synced(read *bool) {
	s.mu.Lock()
	*read = true
	s.mu.Unlock()
	s.Kick()
}

func (s *Supervisor) memberChanged(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.view, e.Key())
		if e.Key() == s.self.ID && s.selfRev != 0 {
			s.lost = true // expired or removed under us: others may take our endpoints now
		}
	} else {
		var m Member
		if json.Unmarshal(e.Value(), &m) == nil {
			m.ID, m.Heartbeat = e.Key(), e.Created()
			s.view[m.ID] = m
		}
	}
	lost := s.lost
	s.mu.Unlock()
	if lost {
		s.lease.Store(0) // no POST starts from now; renew fences
	}
	s.Kick()
}

func (s *Supervisor) claimChanged(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	if c, ok := s.claims[e.Key()]; ok && c.rev > e.Revision() {
		s.mu.Unlock()
		return // older than a claim take wrote down before its watch brought it
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.claims, e.Key())
	} else {
		var c claim
		if json.Unmarshal(e.Value(), &c) == nil {
			c.rev = e.Revision()
			s.claims[e.Key()] = c
		}
	}
	s.mu.Unlock()
	s.Kick()
}

// MemberView is a member and the endpoints it owns, for operators.
type MemberView struct {
	Member
	Self      bool     `json:"self"`
	Endpoints []string `json:"endpoints"`
	Jobs      []string `json:"jobs,omitempty"` // the engine's jobs it runs (the tenant router)
}

// Members is every live member with what it owns, this gateway's session first.
func (s *Supervisor) Members() []MemberView {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := make(map[string]*MemberView, len(s.view))
	for id, m := range s.view {
		by[id] = &MemberView{Member: m, Self: id == s.self.ID, Endpoints: []string{}}
	}
	for ep, c := range s.claims {
		switch v := by[c.Member]; {
		case v == nil:
		case s.jobs[ep]:
			v.Jobs = append(v.Jobs, ep)
		default:
			v.Endpoints = append(v.Endpoints, ep)
		}
	}
	out := make([]MemberView, 0, len(by))
	for _, v := range by {
		sort.Strings(v.Endpoints)
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b MemberView) int {
		switch {
		case a.Self != b.Self:
			if a.Self {
				return -1
			}
			return 1
		case a.Name != b.Name:
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// Owner is the member that owns an endpoint, if a live one does.
func (s *Supervisor) Owner(endpointID string) (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[endpointID]
	if !ok {
		return Member{}, false
	}
	m, ok := s.view[c.Member]
	return m, ok
}

// Self is this gateway's current session.
func (s *Supervisor) Self() Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

// Owned is how many endpoints this gateway runs, its jobs aside.
func (s *Supervisor) Owned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ep := range s.running {
		if !s.jobs[ep] {
			n++
		}
	}
	return n
}
