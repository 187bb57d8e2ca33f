package consumer

import (
	"sync"
	"testing"

	"github.com/quaycast/quaycast/subjects"
)

// checked keeps the first verdict on a sequence, gives way to a newer sequence in the same slot
// and not to an older one, and gives every endpoint's condition the same event.
func TestCheckedKeepsRecentVerdicts(t *testing.T) {
	t.Parallel()
	c := newChecked()
	c.put(7, verdict{env: subjects.Envelope{ID: "ev-7"}})
	c.put(7, verdict{reason: "a second verdict"})
	if v, ok := c.get(7); !ok || v.env.ID != "ev-7" || v.reason != "" {
		t.Fatalf("get(7) = %+v, %v; want the first verdict", v, ok)
	}
	if _, ok := c.get(7 + checkedSize); ok {
		t.Fatal("a sequence never put, in 7's slot, has a verdict")
	}
	c.put(7+checkedSize, verdict{env: subjects.Envelope{ID: "ev-newer"}})
	if _, ok := c.get(7); ok {
		t.Fatal("7 still has a verdict after a newer sequence took its slot")
	}
	c.put(7, verdict{env: subjects.Envelope{ID: "ev-7"}}) // an endpoint far behind
	if v, ok := c.get(7 + checkedSize); !ok || v.env.ID != "ev-newer" {
		t.Fatalf("the newer verdict = %+v, %v; want it kept over the older sequence's", v, ok)
	}

	env := subjects.Envelope{ID: "ev-9", Type: "cargo_loaded", Entity: "A"}
	c.put(9, verdict{env: env})
	first, second := c.event(9, env, []byte(`{"data":{}}`)), c.event(9, env, []byte(`{"data":{}}`))
	if first == nil || first != second {
		t.Fatal("two conditions on event 9 got events of their own; want one, parsed once")
	}
	if v, _ := c.get(9); v.env.ID != "ev-9" || v.event != first {
		t.Fatalf("event 9's verdict after its event was made: %+v", v)
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
				id := subjects.Envelope{ID: "ev"}
				if v, ok := c.get(seq); ok && v.env.ID != "ev" {
					t.Errorf("worker %d: get(%d) = %q", g, seq, v.env.ID)
					return
				}
				c.put(seq, verdict{env: id})
				c.event(seq, id, nil)
			}
		}()
	}
	wg.Wait()
	for seq := uint64(1); seq <= 2000; seq++ {
		if v, ok := c.get(seq); !ok || v.event == nil {
			t.Fatalf("get(%d) = %+v, %v after all workers; want its verdict and event", seq, v, ok)
		}
	}
}
