package cluster

import (
	"context"
	"errors"
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
	rewrite(t, members, id, nil)      // the lost answer's write
	time.Sleep(10 * s.o.RenewEvery()) // ten renewals
	if n := s.Fences(); n != 0 || !s.Held() || s.Self().ID != id {
		t.Fatalf("after a renewal's lost answer: %d fences, lease held %v, session %s (was %s); want the lease kept", n, s.Held(), s.Self().ID, id)
	}

	rewrite(t, members, id, []byte(`{"id":"someone else"}`))
	testwait.For(t, 10*time.Second, "the lease lost to another writer", func() bool { return s.Fences() == 1 })
}

// rewrite writes value (nil: the value it holds) over key as the next revision. A renewal of the
// lease may land between the read and the write (a busy machine): it is read again then.
func rewrite(t *testing.T, kv jetstream.KeyValue, key string, value []byte) {
	t.Helper()
	for try := 0; ; try++ {
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		v := value
		if v == nil {
			v = e.Value()
		}
		_, err = kv.Update(t.Context(), key, v, e.Revision())
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || try == 10 {
			t.Fatal(err)
		}
	}
}
