package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// recording is an engine that remembers what it was told to own.
type recording struct {
	eps []string

	mu    sync.Mutex
	owned map[string]int // times Own was called
	gone  []string       // Disown, in order
}

func (r *recording) Endpoints() []string { return r.eps }
func (r *recording) Own(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owned[id]++
	return nil
}
func (r *recording) Disown(id string) <-chan struct{} {
	r.mu.Lock()
	r.gone = append(r.gone, id)
	r.mu.Unlock()
	c := make(chan struct{})
	close(c)
	return c
}
func (r *recording) Fence() {}

func (r *recording) calls() (map[string]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.owned))
	for k, v := range r.owned {
		out[k] = v
	}
	return out, slices.Clone(r.gone)
}

// unwatched is a supervisor holding its lease, alone in its view, whose watches do not run: the
// test decides what it has read of the buckets.
func unwatched(t *testing.T, eps []string) (*Supervisor, *recording) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	engine := &recording{eps: eps, owned: map[string]int{}}
	s, err := New(t.Context(), js, engine, zerolog.Nop(), Options{Name: "gw", LeaseTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.lease.Store(int64(time.Since(s.base) + time.Hour))
	s.view[s.self.ID] = s.self
	t.Cleanup(s.handovers.Wait)
	return s, engine
}

// A reconcile that runs before the watch has brought this session's new claim back does not
// take the claim for someone else's: it keeps the endpoint (a single gateway handed the tenant
// router over and took it again within its first second, every few runs on a busy machine).
func TestClaimJustTakenIsKept(t *testing.T) {
	t.Parallel()
	s, engine := unwatched(t, []string{"ep_a"})
	s.membersRead, s.claimsRead = true, true
	s.reconcile(t.Context())
	s.reconcile(t.Context())
	owned, gone := engine.calls()
	if owned["ep_a"] != 1 || len(gone) != 0 {
		t.Fatalf("Own called %d times, Disown for %v; want owned once and kept", owned["ep_a"], gone)
	}
	e, err := s.owners.Get(t.Context(), "ep_a")
	if err != nil {
		t.Fatal(err)
	}
	var c claim
	if err := json.Unmarshal(e.Value(), &c); err != nil || c.Member != s.self.ID {
		t.Fatalf("claim %s (%v), want this session's %s", e.Value(), err, s.self.ID)
	}
}

// Until both buckets are read through, a live member's claim looks like a gone session's: a
// gateway just joined neither takes it over nor deletes it (a fourth gateway joining a cluster
// moved endpoints between the other three).
func TestNothingDoneBeforeTheBucketsAreRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		eps  []string // nil: the registry not read yet either
	}{{"endpoint known", []string{"ep_a"}}, {"registry not read", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, engine := unwatched(t, tc.eps)
			theirs, _ := json.Marshal(claim{Member: "live-elsewhere", Name: "gw0"})
			rev, err := s.owners.Create(t.Context(), "ep_a", theirs)
			if err != nil {
				t.Fatal(err)
			}
			s.claims["ep_a"] = claim{Member: "live-elsewhere", Name: "gw0", rev: rev}
			s.claimsRead = true // the members bucket not yet: "live-elsewhere" is not in the view
			s.reconcile(t.Context())
			if e, err := s.owners.Get(t.Context(), "ep_a"); err != nil || e.Revision() != rev {
				t.Fatalf("claim of a live member: %v; want it untouched at revision %d", describe(e, err), rev)
			}
			if owned, _ := engine.calls(); len(owned) != 0 {
				t.Fatalf("owned %v before the members bucket was read", owned)
			}
		})
	}
}

func describe(e jetstream.KeyValueEntry, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s at revision %d", e.Value(), e.Revision())
}
