package consumer

import (
	"sync"
	"testing"

	"github.com/quaycast/quaycast/subjects"
)

// checked keeps the first verdict on an event; gives its slot to another event, newer or older;
// knows an event by its sequence and store time both (a stream made again numbers from 1 again);
// and gives every endpoint's condition the same event.
func TestCheckedKeepsRecentVerdicts(t *testing.T) {
	t.Parallel()
	c := newChecked()
	c.put(7, 100, verdict{env: subjects.Envelope{ID: "ev-7"}})
	c.put(7, 100, verdict{reason: "a second verdict"})
	if v := c.get(7, 100); v == nil || v.env.ID != "ev-7" || v.reason != "" {
		t.Fatalf("get(7) = %+v; want the first verdict", v)
	}
	if c.get(7, 200) != nil {
		t.Fatal("another event at sequence 7 (a stream made again) has 7's verdict")
	}
	if c.get(7+checkedSize, 100) != nil {
		t.Fatal("a sequence never put, in 7's slot, has a verdict")
	}
	c.put(7+checkedSize, 300, verdict{env: subjects.Envelope{ID: "ev-newer"}})
	if c.get(7, 100) != nil {
		t.Fatal("7 still has a verdict after a newer sequence took its slot")
	}
	stored := c.put(7, 200, verdict{env: subjects.Envelope{ID: "ev-7-again"}}) // a stream made again, or an endpoint far behind
	if v := c.get(7, 200); v == nil || v.env.ID != "ev-7-again" || v != stored {
		t.Fatalf("get(7) after the stream was made again = %+v; want its own verdict, as put stored it", v)
	}
	if again := c.put(7, 200, verdict{env: subjects.Envelope{ID: "a second"}}); again != stored {
		t.Fatalf("put of a verdict stored already returned %+v; want the one stored", again)
	}

	env := subjects.Envelope{ID: "ev-9", Type: "cargo_loaded", Entity: "A"}
	c.put(9, 100, verdict{env: env})
	first, second := c.event(9, &env, []byte(`{"data":{}}`)), c.event(9, &env, []byte(`{"data":{}}`))
	if first == nil || first != second {
		t.Fatal("two conditions on event 9 got events of their own; want one, parsed once")
	}
	if v := c.get(9, 100); v.env.ID != "ev-9" || v.event != first {
		t.Fatalf("event 9's verdict after its event was made: %+v", v)
	}
	other := subjects.Envelope{ID: "ev-9-other", Type: "cargo_loaded", Entity: "B"}
	if ev := c.event(9, &other, nil); ev == first {
		t.Fatal("another event at sequence 9 got event 9's condition event")
	}
}

// Workers read and write checked at once without a lock; each reads back the verdict put for
// its sequence (run with -race).
func TestCheckedConcurrent(t *testing.T) {
	t.Parallel()
	c := newChecked()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); seq <= 2000; seq++ {
				env := subjects.Envelope{ID: "ev"}
				if v := c.get(seq, 1); v != nil && v.env.ID != "ev" {
					t.Errorf("worker %d: get(%d) = %q", g, seq, v.env.ID)
					return
				}
				c.put(seq, 1, verdict{env: env})
				c.event(seq, &env, nil)
			}
		}()
	}
	wg.Wait()
	for seq := uint64(1); seq <= 2000; seq++ {
		if v := c.get(seq, 1); v == nil || v.event == nil {
			t.Fatalf("get(%d) = %+v after all workers; want its verdict and event", seq, v)
		}
	}
}
