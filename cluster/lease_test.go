package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
)

// noEndpoints is an engine with nothing to deliver: the lease alone is under test.
type noEndpoints struct{}

func (noEndpoints) Endpoints() []string               { return nil }
func (noEndpoints) Own(context.Context, string) error { return nil }
func (noEndpoints) Disown(string) <-chan struct{}     { c := make(chan struct{}); close(c); return c }
func (noEndpoints) Fence()                            {}

// joined runs a supervisor with a 2 s lease (renewed every 200 ms) until the test ends, on its
// own connection for leases, and returns it once it holds its lease, with the members bucket.
func joined(t *testing.T) (*Supervisor, jetstream.KeyValue) {
	t.Helper()
	srv := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	leases, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), js, noEndpoints{}, zerolog.Nop(), Options{Name: "gw", LeaseTTL: 2 * time.Second, Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testwait.For(t, 10*time.Second, "joined", s.Held)
	return s, s.members
}

// A renewal whose write landed but whose answer was lost (a reconnect, a leader election) makes
// the next one meet a revision it did not expect: the key still holds this session, so the lease
// stands. A key changed by anyone else still loses it.
func TestRenewalAfterALostAnswerKeepsTheLease(t *testing.T) {
	t.Parallel()
	s, members := joined(t)
	id := s.Self().ID
	e, err := members.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := members.Update(t.Context(), id, e.Value(), e.Revision()); err != nil { // the lost answer's write
		t.Fatal(err)
	}
	time.Sleep(10 * s.o.RenewEvery()) // ten renewals
	if n := s.Fences(); n != 0 || !s.Held() || s.Self().ID != id {
		t.Fatalf("after a renewal's lost answer: %d fences, lease held %v, session %s (was %s); want the lease kept", n, s.Held(), s.Self().ID, id)
	}

	e, err = members.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := members.Update(t.Context(), id, []byte(`{"id":"someone else"}`), e.Revision()); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the lease lost to another writer", func() bool { return s.Fences() == 1 })
}
