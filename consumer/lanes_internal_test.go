package consumer

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// laneItem is an event of entity at seq, with a message handle of its own.
func laneItem(entity string, seq uint64) *item {
	return &item{seq: seq, msg: &benchMsg{}, env: subjects.Envelope{Entity: entity}}
}

// seqs are the sequences of entity's queue, head first.
func seqs(l *lanes, entity string) []uint64 {
	var out []uint64
	for _, it := range l.queued(entity) {
		out = append(out, it.seq)
	}
	return out
}

// Each entity's events queue in arrival order behind its head, entities apart; a lane is claimed
// (its goroutine to be started) once while it runs, and again after it went idle.
func TestLanesQueuePerEntity(t *testing.T) {
	t.Parallel()
	l := newLanes(64)
	a1, b1, a2, a3 := laneItem("A", 1), laneItem("B", 2), laneItem("A", 3), laneItem("A", 4)
	for _, step := range []struct {
		it        *item
		wantStart bool
	}{{a1, true}, {b1, true}, {a2, false}, {a3, false}} {
		ok, start := l.hold(step.it)
		if !ok || start != step.wantStart {
			t.Fatalf("hold %s/%d = ok %v, start %v; want ok, start %v", step.it.env.Entity, step.it.seq, ok, start, step.wantStart)
		}
	}
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Errorf("queue A = %v, want [1 3 4]", got)
	}
	if l.head("B") != b1 || l.head("C") != nil {
		t.Errorf("heads: B %v, C %v; want B's event, none for C", l.head("B"), l.head("C"))
	}
	if it, ok := l.lookup(3); !ok || it != a2 {
		t.Errorf("lookup(3) = %v, %v; want A's second event", it, ok)
	}

	l.done(a1)
	if l.head("A") != a2 {
		t.Errorf("after the head is done, head A = seq %d, want 3", l.head("A").seq)
	}
	if _, ok := l.lookup(1); ok {
		t.Error("an event done is still held")
	}
	l.remove(a3) // parked from behind the head
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("after removing 4, queue A = %v, want [3]", got)
	}
	l.done(a2)
	if _, ok := l.queues["A"]; ok || l.head("A") != nil {
		t.Errorf("entity A still has a queue after its last event: %v", seqs(l, "A"))
	}
	if l.claim("A") {
		t.Error("A's lane claimed twice while it runs")
	}
	l.idle("A")
	if ok, start := l.hold(laneItem("A", 5)); !ok || !start {
		t.Errorf("an event for an idle entity: ok %v, start %v; want its lane claimed again", ok, start)
	}
	if len(l.held) != 2 {
		t.Errorf("held %d events, want 2 (B's and A's newest)", len(l.held))
	}
	l.wg.Add(-3) // the claims of A, B and A again: no goroutine ran them
	waitGroupDone(t, l)
}

// done of an event that is not its entity's head (none is: a lane delivers its head) still lets
// go of it and keeps the rest in order.
func TestLanesDoneNotHead(t *testing.T) {
	t.Parallel()
	l := newLanes(64)
	a1, a2, a3 := laneItem("A", 1), laneItem("A", 2), laneItem("A", 3)
	for _, it := range []*item{a1, a2, a3} {
		l.hold(it)
	}
	l.done(a2)
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("queue A = %v, want [1 3]", got)
	}
	l.wg.Done()
}

// Once stopping, nothing is taken on and no lane is claimed, so wg.Wait is never raced by an Add.
func TestLanesStopping(t *testing.T) {
	t.Parallel()
	l := newLanes(64)
	l.hold(laneItem("A", 1))
	l.stop()
	if ok, start := l.hold(laneItem("B", 2)); ok || start {
		t.Errorf("hold while stopping = ok %v, start %v; want neither", ok, start)
	}
	if _, held := l.lookup(2); held || l.head("B") != nil {
		t.Error("an event offered while stopping was taken on")
	}
	l.idle("A")
	if l.claim("A") {
		t.Error("a lane claimed while stopping")
	}
	l.wg.Done() // A's first claim
	waitGroupDone(t, l)
}

// handles are the newest handle of every event held: a redelivery replaces the handle.
func TestLanesHandles(t *testing.T) {
	t.Parallel()
	l := newLanes(64)
	a1, b1 := laneItem("A", 1), laneItem("B", 2)
	l.hold(a1)
	l.hold(b1)
	newer := &benchMsg{subject: "redelivered"}
	a1.msg = newer
	got := l.handles()
	if len(got) != 2 || !slices.Contains(got, jetstream.Msg(newer)) || !slices.Contains(got, b1.msg) {
		t.Errorf("handles = %v, want A's newer handle and B's", got)
	}
	l.wg.Add(-2)
}

// waitGroupDone fails the test unless l's lanes are all accounted for.
func waitGroupDone(t *testing.T, l *lanes) {
	t.Helper()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lanes' wait group not back to zero")
	}
}

// At most maxActive lanes have a goroutine; the others wait ready, oldest first, for a goroutine
// whose entity has nothing left, and a lane that waits out a retry lets a ready one start.
func TestLanesBoundTheirGoroutines(t *testing.T) {
	t.Parallel()
	l := newLanes(2)
	for _, c := range []struct {
		entity string
		want   bool
	}{{"A", true}, {"B", true}, {"C", false}, {"D", false}, {"A", false}} {
		if got := l.claim(c.entity); got != c.want {
			t.Fatalf("claim %s = %v, want %v", c.entity, got, c.want)
		}
	}
	if next, ok := l.idle("A"); !ok || next != "C" {
		t.Fatalf("A's goroutine, idle: %q, %v; want it to go on with C", next, ok)
	}
	if start, ok := l.waiting(); !ok || start != "D" {
		t.Fatalf("B waits out a retry: start %q, %v; want D started in its place", start, ok)
	}
	l.resumed() // B again, beside C and D
	if next, ok := l.idle("C"); ok {
		t.Fatalf("C's goroutine, idle with nothing ready: %q; want it to end", next)
	}
	if l.claim("E") {
		t.Fatal("E got a goroutine of its own beside B and D")
	}
	if next, ok := l.idle("D"); !ok || next != "E" {
		t.Fatalf("D's goroutine, idle: %q, %v; want it to go on with E", next, ok)
	}
	if l.claim("A") { // idle before, claimed again
		t.Fatal("A got a goroutine beside B and E")
	}
	l.stop()
	if next, ok := l.idle("B"); ok {
		t.Fatalf("B's goroutine, idle while stopping: went on with %q; want it to end", next)
	}
}
