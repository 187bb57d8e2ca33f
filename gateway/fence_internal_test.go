package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/subjects"
)

// A clustered gateway's sender writes nothing to a receiver once its lease has run out, also on a
// connection it opened while the lease held: the check is on every write.
func TestSenderWritesNothingOnceTheLeaseRanOut(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	targets, err := ParseTargetPolicy([]string{"127.0.0.0/8"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	held.Store(true)
	s := NewSender(zerolog.Nop(), SenderOptions{Targets: targets, Fence: held.Load})
	ep := &consumer.Endpoint{ID: "ep_fenced", URL: rcv.URL, EventTypes: []string{"*"}, Enabled: true, Revision: 1,
		Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	send := func(id string) consumer.Outcome {
		env := subjects.Envelope{ID: id, Type: "voyage_updated", Source: "tos", Entity: "V1", OccurredAt: time.Now().UTC(), Data: []byte(`{}`)}
		return s.Deliver(t.Context(), &consumer.Delivery{Endpoint: ep, Event: env, Body: []byte(`{}`), Attempt: 1})
	}
	if out := send("evt-1"); out.Result != consumer.Delivered {
		t.Fatalf("with the lease: %v %v", out.Result, out.Err)
	}
	held.Store(false)
	out := send("evt-2") // the idle connection of evt-1 is reused, or a new one dialled: neither writes
	if out.Result == consumer.Delivered || !errors.Is(out.Err, errLeaseLost) {
		t.Fatalf("after the lease ran out: %v, err %v; want a failure for errLeaseLost", out.Result, out.Err)
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests, want 1 (none after the lease ran out)", n)
	}
}
