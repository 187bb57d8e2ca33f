package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/defaults"
)

// The buckets the cluster lives in (see the package documentation).
const (
	MembersBucket = "quaycast_members"
	OwnersBucket  = "quaycast_owners"
)

// DefaultLeaseTTL is how long a member that stopped renewing stays a member. Its renew deadline
// (3/4 of it) must outlast a NATS leader election (4 to 9 s after the leader's last heartbeat),
// or losing one node of three would move endpoints.
const DefaultLeaseTTL = defaults.LeaseTTL

// Options configure this gateway as a member.
type Options struct {
	Name     string        // shown to operators; every session of one gateway shares it
	API      string        // the gateway's API URL, shown in GET /v1/cluster
	LeaseTTL time.Duration // 0 = DefaultLeaseTTL
	Replicas int           // of the two buckets; 0 = 1
	// Leases is the JetStream the lease is renewed through; nil: the one New is given. A
	// connection of its own keeps the renewal from queueing behind a gateway's other traffic:
	// waking 10,000 endpoints at once made it miss its deadline and fence.
	Leases jetstream.JetStream
}

// RenewEvery is how often a member renews its lease.
func (o Options) RenewEvery() time.Duration { return o.ttl() / 10 }

// RenewDeadline is how long after sending its last successful renewal a member may still start
// a POST: past it, it stops (fencing).
func (o Options) RenewDeadline() time.Duration { return o.ttl() * 3 / 4 }

func (o Options) ttl() time.Duration {
	if o.LeaseTTL <= 0 {
		return DefaultLeaseTTL
	}
	return o.LeaseTTL
}

// Engine is the delivery side the supervisor drives (consumer.Manager): it runs an endpoint's
// consumer only while told to own it.
type Engine interface {
	// Endpoints are the ids of every registered endpoint, as the engine last saw the registry.
	Endpoints() []string
	// Own starts delivering to an endpoint here, from the durable record of what was delivered.
	Own(ctx context.Context, id string) error
	// Disown stops delivering to it; the channel closes once its deliveries in flight have ended
	// and what was delivered is written down.
	Disown(id string) <-chan struct{}
	// Fence stops every endpoint at once, cancelling the POSTs in flight, and returns once all
	// have stopped.
	Fence()
}

// Jobs is what an Engine implements when it has work beside the endpoints that must run on one
// gateway at a time (the tenant router): each job is claimed and handed over like an endpoint,
// but goes to the live member that ranks highest for it, outside the endpoints' even spread, and
// is listed apart (MemberView.Jobs).
type Jobs interface {
	Jobs() []string
}

// Member is a gateway session as every gateway sees it.
type Member struct {
	ID      string    `json:"id"` // this session: a gateway that lost its lease joins again as a new one
	Name    string    `json:"name"`
	API     string    `json:"api,omitempty"`
	Started time.Time `json:"started"`
	Leaving bool      `json:"leaving,omitempty"` // shutting down: it takes nothing new
	// Heartbeat is when NATS stored its last renewal.
	Heartbeat time.Time `json:"-"`
}

// claim is an endpoint's owner, as stored in the owners bucket.
type claim struct {
	Member string    `json:"member"`
	Name   string    `json:"name"`
	Since  time.Time `json:"since"`
	rev    uint64
}

// Supervisor is this gateway's membership, and the one component that decides which endpoints'
// consumers it runs.
type Supervisor struct {
	members, owners jetstream.KeyValue
	leases          jetstream.KeyValue // the members bucket as renew writes it (Options.Leases)
	engine          Engine
	log             zerolog.Logger
	o               Options

	base  time.Time    // monotonic origin of lease
	lease atomic.Int64 // nanoseconds since base until which POSTs may start

	turn sync.Mutex // one reconcile, or the fence, at a time

	mu        sync.Mutex
	self      Member
	selfRev   uint64
	view      map[string]Member // live sessions, by id
	claims    map[string]claim  // by endpoint
	running   map[string]bool   // endpoints this session runs
	releasing map[string]bool   // stopping here: claim deleted once stopped
	jobs      map[string]bool   // the engine's jobs (Jobs), as of the last reconcile
	lost      bool              // our own key went away: fence at once
	// Both buckets read through since the watches started: until then a live member's claim
	// looks like a dead session's, and reconcile would take or delete it.
	membersRead, claimsRead bool
	stopRec                 context.CancelFunc
	fences                  int

	kick      chan struct{}
	renewSoon chan struct{} // a leave tells the others at once
	watchers  sync.WaitGroup
	handovers sync.WaitGroup
}

// New creates (or opens) the buckets and returns a supervisor for engine; Run joins.
func New(ctx context.Context, js jetstream.JetStream, engine Engine, log zerolog.Logger, o Options) (*Supervisor, error) {
	o.LeaseTTL = o.ttl()
	members, owners, err := Setup(ctx, js, o.LeaseTTL, o.Replicas)
	if err != nil {
		return nil, err
	}
	leases := members
	if o.Leases != nil {
		if leases, err = o.Leases.KeyValue(ctx, MembersBucket); err != nil {
			return nil, fmt.Errorf("open bucket %s for leases: %w", MembersBucket, err)
		}
	}
	s := &Supervisor{members: members, owners: owners, leases: leases, engine: engine, log: log.With().Str("component", "cluster").Logger(), o: o,
		base: time.Now(), view: make(map[string]Member), claims: make(map[string]claim),
		running: make(map[string]bool), releasing: make(map[string]bool), kick: make(chan struct{}, 1), renewSoon: make(chan struct{}, 1)}
	s.self = s.newSession()
	return s, nil
}

// Setup ensures the members bucket (keys expire ttl after their last renewal, with a delete
// marker that watchers see) and the owners bucket.
func Setup(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (members, owners jetstream.KeyValue, err error) {
	members, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: MembersBucket, Description: "quaycast: gateways delivering, one key per session, renewed while it lives",
		History: 1, TTL: ttl, LimitMarkerTTL: max(ttl, time.Minute), Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure bucket %s: %w", MembersBucket, err)
	}
	owners, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: OwnersBucket, Description: "quaycast: which gateway session delivers to each endpoint",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure bucket %s: %w", OwnersBucket, err)
	}
	return members, owners, nil
}

func (s *Supervisor) newSession() Member {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return Member{ID: hex.EncodeToString(b), Name: s.o.Name, API: s.o.API, Started: time.Now().UTC()}
}

// Kick asks for a reconcile soon: the registry changed.
func (s *Supervisor) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run joins, keeps the lease and the endpoints this gateway should own until ctx ends, then
// leaves: it takes nothing new, hands each endpoint over as soon as its deliveries in flight
// have ended, and removes itself.
func (s *Supervisor) Run(ctx context.Context) error {
	// The lease outlives ctx: it must stay valid while the endpoints are handed over.
	lctx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLease()
	if err := s.watch(lctx); err != nil {
		return err
	}
	var renewing sync.WaitGroup
	renewing.Go(func() { s.renew(lctx) })
	defer func() {
		stopLease()
		renewing.Wait()
		s.watchers.Wait()
		s.handovers.Wait()
		// Gone at once rather than when the key expires: what it owned is handed over.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.members.Delete(dctx, s.Self().ID)
	}()

	tick := time.NewTicker(s.o.RenewEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.leave(lctx)
			return nil
		case <-s.kick:
		case <-tick.C:
		}
		s.reconcile(ctx)
	}
}

// reconcile converges what this session runs on what assign says it should: it releases what
// moved away and claims what moved here once free.
func (s *Supervisor) reconcile(ctx context.Context) {
	s.turn.Lock()
	defer s.turn.Unlock()
	if !s.Held() {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if !s.membersRead || !s.claimsRead {
		s.mu.Unlock()
		return // the watches kick once they have read the buckets through
	}
	s.stopRec = cancel
	self := s.self
	var active []string
	live := make(map[string]bool, len(s.view))
	for id, m := range s.view {
		live[id] = true
		if !m.Leaving {
			active = append(active, id)
		}
	}
	if self.Leaving {
		active = slices.DeleteFunc(active, func(id string) bool { return id == self.ID })
	}
	claims := make(map[string]claim, len(s.claims))
	held := make(map[string]string, len(s.claims))
	for ep, c := range s.claims {
		claims[ep] = c
		if live[c.Member] {
			held[ep] = c.Member
		}
	}
	running := make(map[string]bool, len(s.running))
	for ep := range s.running {
		running[ep] = true
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stopRec = nil
		s.mu.Unlock()
	}()

	eps := s.engine.Endpoints()
	target := assign(active, eps, held)
	if j, ok := s.engine.(Jobs); ok && eps != nil {
		jobs := j.Jobs()
		s.mu.Lock()
		s.jobs = make(map[string]bool, len(jobs))
		for _, id := range jobs {
			s.jobs[id] = true
		}
		s.mu.Unlock()
		for _, id := range jobs {
			if m := top(active, id); m != "" {
				target[id] = m
			}
		}
		eps = append(slices.Clone(eps), jobs...)
	}
	known := make(map[string]bool, len(eps))
	for _, ep := range eps {
		known[ep] = true
	}
	for ep := range running {
		if target[ep] != self.ID || claims[ep].Member != self.ID {
			s.release(ep)
		}
	}
	for _, ep := range eps {
		if target[ep] != self.ID || running[ep] || ctx.Err() != nil || !s.Held() {
			continue
		}
		s.mu.Lock()
		busy := s.releasing[ep]
		s.mu.Unlock()
		if busy {
			continue // its last run here is still stopping
		}
		c, claimed := claims[ep]
		if claimed && c.Member != self.ID && live[c.Member] {
			continue // its owner hands it over once its deliveries in flight have ended
		}
		if err := s.take(ctx, self, ep, c, claimed); err != nil {
			s.log.Debug().Err(err).Str("endpoint_id", ep).Msg("claim endpoint")
		}
	}
	// Claims of deleted endpoints, left by sessions that are gone. Not before the registry has
	// been read: until then every endpoint looks deleted.
	for ep, c := range claims {
		if eps != nil && !known[ep] && !live[c.Member] {
			dctx, cancel := context.WithTimeout(ctx, s.o.RenewEvery())
			_ = s.owners.Delete(dctx, ep, jetstream.LastRevision(c.rev))
			cancel()
		}
	}
}

// take claims ep for this session and starts it.
func (s *Supervisor) take(ctx context.Context, self Member, ep string, c claim, claimed bool) error {
	mine := claim{Member: self.ID, Name: self.Name, Since: time.Now().UTC()}
	b, _ := json.Marshal(mine)
	cctx, cancel := context.WithTimeout(ctx, 2*s.o.RenewEvery())
	defer cancel()
	// Written even when the claim seen is this session's own: it may have been deleted by a
	// handover whose delete the watch has not brought yet, and then the write fails.
	var rev uint64
	var err error
	if claimed { // this session's, or a gone session's: its key expired, so it has stopped
		rev, err = s.owners.Update(cctx, ep, b, c.rev)
	} else {
		rev, err = s.owners.Create(cctx, ep, b)
	}
	if err != nil {
		return err
	}
	// Known here before the watch brings it: a reconcile in between must not take this
	// session's new claim for someone else's and release the endpoint.
	s.mu.Lock()
	if cur, ok := s.claims[ep]; !ok || cur.rev < rev {
		mine.rev = rev
		s.claims[ep] = mine
	}
	s.mu.Unlock()
	// Between the claim and the start the lease may have run out: the fence waits for this
	// reconcile (turn), and Own's worker checks Held before each POST.
	if err := s.engine.Own(ctx, ep); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.RenewEvery())
		defer cancel()
		if rev, gerr := s.owners.Get(dctx, ep); gerr == nil {
			_ = s.owners.Delete(dctx, ep, jetstream.LastRevision(rev.Revision()))
		}
		return fmt.Errorf("start delivery: %w", err)
	}
	s.mu.Lock()
	s.running[ep] = true
	s.mu.Unlock()
	s.log.Info().Str("endpoint_id", ep).Str("from", c.Name).Msg("endpoint owned here")
	return nil
}

// release stops ep here and, once its deliveries in flight have ended, deletes the claim so the
// next owner may start.
func (s *Supervisor) release(ep string) {
	s.mu.Lock()
	delete(s.running, ep)
	s.releasing[ep] = true
	self := s.self.ID
	s.mu.Unlock()
	done := s.engine.Disown(ep)
	s.handovers.Go(func() {
		<-done
		s.mu.Lock()
		c, ok := s.claims[ep]
		s.mu.Unlock()
		if ok && c.Member == self {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.owners.Delete(ctx, ep, jetstream.LastRevision(c.rev)); err != nil {
				s.log.Warn().Err(err).Str("endpoint_id", ep).Msg("hand endpoint over: others take it once this gateway's lease expires")
			}
			cancel()
		}
		s.mu.Lock()
		delete(s.releasing, ep)
		s.mu.Unlock()
		s.log.Info().Str("endpoint_id", ep).Msg("endpoint handed over")
		s.Kick()
	})
}

// leave tells the others it is leaving (so they stop counting it) and hands every endpoint over.
func (s *Supervisor) leave(ctx context.Context) {
	s.mu.Lock()
	s.self.Leaving = true
	rev := s.selfRev
	var eps []string
	for ep := range s.running {
		eps = append(eps, ep)
	}
	s.mu.Unlock()
	if rev != 0 { // wait for the renewal that says so, briefly: the handover works without it
		select {
		case s.renewSoon <- struct{}{}:
		default:
		}
		for deadline := time.Now().Add(2 * s.o.RenewEvery()); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			s.mu.Lock()
			renewed := s.selfRev != rev
			s.mu.Unlock()
			if renewed {
				break
			}
		}
	}
	s.log.Info().Int("endpoints", len(eps)).Msg("leaving the cluster: handing endpoints over")
	s.turn.Lock()
	for _, ep := range eps {
		s.release(ep)
	}
	s.turn.Unlock()
	s.handovers.Wait()
}
