package bench

import (
	"fmt"
	"sort"
	"sync"
)

// Checker compares what was published with what each endpoint's receiver got. Feed it as
// things happen — Published in publish order, Expect for each endpoint an event should reach,
// Received from receivers (safe for concurrent use) — then read Report.
//
// Per endpoint and entity, events must arrive in publish order: an event arriving for the first
// time after a later event of its entity is out of order. A second arrival of an event is a
// duplicate (at-least-once allows them; the report counts them). An expected event that never
// arrived is lost.
type Checker struct {
	mu       sync.Mutex
	events   map[string]published // event id -> where it stands
	perCount map[string]int       // entity -> events published so far
	expected map[string][]string  // endpoint -> event ids it should get
	arrivals map[string]*arrivals // endpoint -> what it got
	unknown  map[string]int       // endpoint -> arrivals of events never published
}

type published struct {
	entity string
	index  int // position among its entity's events, from 0
}

type arrivals struct {
	count   map[string]int // event id -> times received
	highest map[string]int // entity -> highest index received so far
	late    int            // first arrivals behind a later event of the same entity
	example []string
}

// NewChecker returns an empty checker.
func NewChecker() *Checker {
	return &Checker{
		events: map[string]published{}, perCount: map[string]int{}, expected: map[string][]string{},
		arrivals: map[string]*arrivals{}, unknown: map[string]int{},
	}
}

// Published records an event, in publish order.
func (c *Checker) Published(id, entity string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[id] = published{entity: entity, index: c.perCount[entity]}
	c.perCount[entity]++
}

// Expect records that endpoint should receive event id.
func (c *Checker) Expect(endpoint, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expected[endpoint] = append(c.expected[endpoint], id)
}

// Received records that endpoint's receiver got event id (and answered 2xx).
func (c *Checker) Received(endpoint, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.arrivals[endpoint]
	if a == nil {
		a = &arrivals{count: map[string]int{}, highest: map[string]int{}}
		c.arrivals[endpoint] = a
	}
	ev, ok := c.events[id]
	if !ok {
		c.unknown[endpoint]++
		return
	}
	a.count[id]++
	if a.count[id] > 1 {
		return // a duplicate: order is judged on first arrivals
	}
	if h, seen := a.highest[ev.entity]; seen && ev.index < h {
		a.late++
		if len(a.example) < 5 {
			a.example = append(a.example, fmt.Sprintf("%s (#%d of %s) after #%d", id, ev.index, ev.entity, h))
		}
		return
	}
	a.highest[ev.entity] = ev.index
}

// EndpointReport is the verdict for one endpoint.
type EndpointReport struct {
	Expected   int      `json:"expected"`
	Delivered  int      `json:"delivered"` // distinct expected events received
	Lost       int      `json:"lost"`
	Duplicates int      `json:"duplicates"`
	OutOfOrder int      `json:"out_of_order"`
	Unexpected int      `json:"unexpected"` // received but not meant for this endpoint
	Examples   []string `json:"examples,omitempty"`
	// LostExamples name up to five lost events, earliest published first: where to start looking.
	LostExamples []string `json:"lost_examples,omitempty"`
}

// Report is the verdict over all endpoints.
type Report struct {
	Endpoints  map[string]EndpointReport `json:"endpoints"`
	Lost       int                       `json:"lost"`
	Duplicates int                       `json:"duplicates"`
	OutOfOrder int                       `json:"out_of_order"`
	Unexpected int                       `json:"unexpected"`
}

// OK reports a run with nothing lost, out of order or unexpected.
func (r Report) OK() bool { return r.Lost == 0 && r.OutOfOrder == 0 && r.Unexpected == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("lost %d, duplicates %d, out of order %d, unexpected %d", r.Lost, r.Duplicates, r.OutOfOrder, r.Unexpected)
	names := make([]string, 0, len(r.Endpoints))
	for n := range r.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := r.Endpoints[n]
		s += fmt.Sprintf("\n  %s: expected %d, delivered %d, lost %d, duplicates %d, out of order %d, unexpected %d %v",
			n, e.Expected, e.Delivered, e.Lost, e.Duplicates, e.OutOfOrder, e.Unexpected, e.Examples)
		if len(e.LostExamples) > 0 {
			s += fmt.Sprintf(" lost: %v", e.LostExamples)
		}
	}
	return s
}

// Report computes the verdict so far.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Endpoints: map[string]EndpointReport{}}
	names := map[string]bool{}
	for n := range c.expected {
		names[n] = true
	}
	for n := range c.arrivals {
		names[n] = true
	}
	for n := range names {
		a := c.arrivals[n]
		if a == nil {
			a = &arrivals{count: map[string]int{}}
		}
		e := EndpointReport{Expected: len(c.expected[n]), OutOfOrder: a.late, Unexpected: c.unknown[n], Examples: a.example}
		want := map[string]bool{}
		for _, id := range c.expected[n] {
			want[id] = true
			if a.count[id] > 0 {
				e.Delivered++
			} else {
				e.Lost++
				if len(e.LostExamples) < 5 {
					ev := c.events[id]
					e.LostExamples = append(e.LostExamples, fmt.Sprintf("%s (#%d of %s)", id, ev.index, ev.entity))
				}
			}
		}
		for id, k := range a.count {
			e.Duplicates += k - 1
			if !want[id] {
				e.Unexpected++
			}
		}
		r.Endpoints[n] = e
		r.Lost += e.Lost
		r.Duplicates += e.Duplicates
		r.OutOfOrder += e.OutOfOrder
		r.Unexpected += e.Unexpected
	}
	return r
}
