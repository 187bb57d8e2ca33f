package consumer

import (
	"sync"

	"github.com/quaycast/quaycast/subjects"
)

// checked remembers the verdict on recent events by stream sequence. An event that fans out to
// many endpoints reaches each endpoint's consumer as its own copy; parsing and validating the
// envelope once instead of once per endpoint takes that cost off the fan-out.
type checked struct {
	mu      sync.Mutex
	entries map[uint64]verdict
	order   []uint64 // ring of sequences in insertion order
	next    int
}

type verdict struct {
	env    subjects.Envelope // Data left out: the body travels as Delivery.Body
	reason string            // why it cannot be delivered; "" when it can
}

const checkedSize = 8192

func newChecked() *checked {
	return &checked{entries: make(map[uint64]verdict, checkedSize), order: make([]uint64, checkedSize)}
}

func (c *checked) get(seq uint64) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[seq]
	return v, ok
}

func (c *checked) put(seq uint64, v verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[seq]; ok {
		return
	}
	if old := c.order[c.next]; old != 0 {
		delete(c.entries, old)
	}
	c.order[c.next] = seq
	c.next = (c.next + 1) % len(c.order)
	c.entries[seq] = v
}
