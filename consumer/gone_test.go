package consumer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// publishNumbered publishes n cargo_loaded events evt-<from>... over four entities, and returns
// their ids.
func (e *env) publishNumbered(t *testing.T, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("evt-%d", i)
		e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: fmt.Sprintf("MSCU%d", i%4)})
		ids = append(ids, id)
	}
	return ids
}

// A consumer deleted under its endpoint — by hand, or as the orphan race of 7f05036 did — is
// made again, awake or asleep: everything published after the deletion is delivered, and what
// was delivered before is not sent again (the marks skip it).
func TestManagerMakesADeletedConsumerAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    consumer.Options
	}{
		{"awake", consumer.Options{ShutdownTimeout: 2 * time.Second}}, // its pull request waits 10 s
		{"asleep", sleepy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ep := e.createEndpoint(t, "cargo_loaded")
			rec := newRecorder(nil)
			m := startManager(t, e, rec, tc.o)
			var want []string
			publish := func(from, n int) {
				want = append(want, e.publishNumbered(t, from, n)...)
				testwait.For(t, 20*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, want...) })
			}
			publish(0, 12)
			if tc.name == "asleep" {
				testwait.For(t, 10*time.Second, "asleep", func() bool { return e.asleep(t, m, ep.ID, 1) })
			}

			if err := e.stream.DeleteConsumer(t.Context(), ep.ConsumerName()); err != nil {
				t.Fatal(err)
			}
			publish(12, 12)
			if !e.hasConsumer(t, ep.ID) {
				t.Error("the consumer was not made again")
			}
			got := rec.delivered(ep.ID)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("delivered %v, want each of %v once", got, want)
			}
		})
	}
}

// A consumer that cannot be made again at once (here a file where its store directory goes; in
// the wild the server's "error creating store for consumer" right after a delete) is made once it
// can be: the endpoint does not stay without one. Before, the next worker's reset waited for an
// answer no one gives, and failed so for ever.
func TestManagerMakesADeletedConsumerOnceItCan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	m := startManager(t, e, rec, sleepy)
	want := e.publishNumbered(t, 0, 6)
	testwait.For(t, 20*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, want...) })
	testwait.For(t, 10*time.Second, "asleep", func() bool { return e.asleep(t, m, ep.ID, 1) })

	if err := e.stream.DeleteConsumer(t.Context(), ep.ConsumerName()); err != nil {
		t.Fatal(err)
	}
	obs, _ := filepath.Glob(filepath.Join(e.srv.JetStreamConfig().StoreDir, "*", "streams", e.stream.CachedInfo().Config.Name, "obs"))
	if len(obs) != 1 {
		t.Fatalf("the stream's consumer directory: found %v", obs)
	}
	block := filepath.Join(obs[0], ep.ConsumerName())
	testwait.For(t, 10*time.Second, "the consumer's directory removed", func() bool {
		_, err := os.Stat(block)
		return os.IsNotExist(err)
	})
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The endpoint wakes, finds no consumer, and cannot make one: its tries fail meanwhile.
	want = append(want, e.publishNumbered(t, 6, 6)...)
	time.Sleep(3 * time.Second)
	if e.hasConsumer(t, ep.ID) {
		t.Fatal("the consumer was made in spite of the file in its place: the test proves nothing")
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "every event delivered", func() bool { return rec.hasDelivered(ep.ID, want...) })
	got := rec.delivered(ep.ID)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want each of %v once", got, want)
	}
}
