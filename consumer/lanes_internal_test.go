package consumer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// laneItem is an event of entity at seq, with a message handle of its own.
func laneItem(entity string, seq uint64) *item {
	return &item{seq: seq, msg: &benchMsg{}, env: &subjects.Envelope{Entity: entity}}
}

// seqs are the sequences of entity's queue, head first.
func seqs(l *lanes, entity string) []uint64 {
	sh := l.shard(entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []uint64
	for _, it := range sh.queued(entity) {
		out = append(out, it.seq)
	}
	return out
}

// hold is route's part: it is queued in its entity's shard, and its lane scheduled if it was
// idle (start: the caller would start its goroutine).
func hold(l *lanes, it *item) (start bool) {
	sh := l.shard(it.env.Entity)
	sh.mu.Lock()
	claimed := sh.hold(it)
	sh.mu.Unlock()
	if claimed == nil {
		return false
	}
	return give(l, l.schedule(claimed))
}

// give is worker.launch without goroutines: a lane handed to a parked goroutine is sent on
// handoff; start says the caller would have started one.
func give(l *lanes, lc launch) (start bool) {
	if lc.ln != nil && lc.parked {
		l.handoff <- lc.ln
		l.sending.Add(-1)
	}
	return lc.ln != nil && !lc.parked
}

// claim is lanes.claim, launched (give).
func claim(l *lanes, entity string) (start bool) { return give(l, l.claim(entity)) }

// idle is next's part when entity's lane has nothing left.
func idle(l *lanes, entity string) (next string, park bool) {
	sh := l.shard(entity)
	sh.mu.Lock()
	sh.idle(sh.lanes[entity])
	sh.mu.Unlock()
	ln, park := l.idle()
	return laneEntity(ln), park
}

// laneEntity is ln's entity, "" for none.
func laneEntity(ln *lane) string {
	if ln == nil {
		return ""
	}
	return ln.entity
}

// headOf is entity's head, done and remove let go of it, as next and parkOne do.
func headOf(l *lanes, entity string) *item {
	sh := l.shard(entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ln := sh.lanes[entity]; ln != nil {
		return ln.head()
	}
	return nil
}

func done(l *lanes, it *item) {
	sh := l.shard(it.env.Entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.done(sh.lanes[it.env.Entity], it)
}

func remove(l *lanes, it *item) {
	sh := l.shard(it.env.Entity)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.remove(it)
}

// heldN counts the events l holds, across its shards.
func heldN(l *lanes) int {
	n := 0
	for i := range l.shards {
		for _, ln := range l.shards[i].lanes {
			n += len(ln.q) - ln.first
		}
	}
	return n
}

// Each entity's events queue in arrival order behind its head, entities apart; a lane is claimed
// (its goroutine to be started) once while it runs, and again after it went idle.
func TestLanesQueuePerEntity(t *testing.T) {
	t.Parallel()
	l := newLanes(64, nil)
	a1, b1, a2, a3 := laneItem("A", 1), laneItem("B", 2), laneItem("A", 3), laneItem("A", 4)
	for _, step := range []struct {
		it        *item
		wantStart bool
	}{{a1, true}, {b1, true}, {a2, false}, {a3, false}} {
		if start := hold(l, step.it); start != step.wantStart {
			t.Fatalf("hold %s/%d = start %v; want start %v", step.it.env.Entity, step.it.seq, start, step.wantStart)
		}
	}
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Errorf("queue A = %v, want [1 3 4]", got)
	}
	if headOf(l, "B") != b1 || headOf(l, "C") != nil {
		t.Errorf("heads: B %v, C %v; want B's event, none for C", headOf(l, "B"), headOf(l, "C"))
	}
	if it, ok := l.lookup("A", 3); !ok || it != a2 {
		t.Errorf("lookup(3) = %v, %v; want A's second event", it, ok)
	}

	done(l, a1)
	if headOf(l, "A") != a2 {
		t.Errorf("after the head is done, head A = seq %d, want 3", headOf(l, "A").seq)
	}
	if _, ok := l.lookup("A", 1); ok {
		t.Error("an event done is still held")
	}
	remove(l, a3) // parked from behind the head
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("after removing 4, queue A = %v, want [3]", got)
	}
	done(l, a2)
	if len(seqs(l, "A")) > 0 || headOf(l, "A") != nil {
		t.Errorf("entity A still has a queue after its last event: %v", seqs(l, "A"))
	}
	if claim(l, "A") {
		t.Error("A's lane claimed twice while it runs")
	}
	if _, park := idle(l, "A"); !park {
		t.Error("A's goroutine, idle with nothing ready, ends; want it parked")
	}
	if start := hold(l, laneItem("A", 5)); start {
		t.Error("an event for an idle entity started a goroutine; want its lane claimed again, by the parked goroutine")
	}
	if got := handedOff(l); got != "A" {
		t.Errorf("handed to the parked goroutine: %q, want A", got)
	}
	if n := heldN(l); n != 2 {
		t.Errorf("held %d events, want 2 (B's and A's newest)", n)
	}
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{5}) { // A's lane, ended, is used again: empty
		t.Errorf("queue A = %v after its lane ended and was claimed again, want [5]", got)
	}
	if _, ok := l.lookup("A", 3); ok {
		t.Error("an event done is found in A's lane used again")
	}
	l.wg.Add(-2) // the goroutines claimed for A and B: none ran
	waitGroupDone(t, l)
}

// handedOff is the entity handed to a parked goroutine, "" if none is pending.
func handedOff(l *lanes) string {
	select {
	case ln := <-l.handoff:
		return laneEntity(ln)
	default:
		return "\x00none"
	}
}

// done of an event that is not its entity's head (none is: a lane delivers its head) still lets
// go of it and keeps the rest in order.
func TestLanesDoneNotHead(t *testing.T) {
	t.Parallel()
	l := newLanes(64, nil)
	a1, a2, a3 := laneItem("A", 1), laneItem("A", 2), laneItem("A", 3)
	for _, it := range []*item{a1, a2, a3} {
		hold(l, it)
	}
	done(l, a2)
	if got := seqs(l, "A"); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("queue A = %v, want [1 3]", got)
	}
	l.wg.Done()
}

// Once stopping, no lane is claimed or scheduled, so wg.Wait is never raced by an Add (route
// takes nothing on: TestRouteStartsNoLaneOnceStopping).
func TestLanesStopping(t *testing.T) {
	t.Parallel()
	l := newLanes(64, nil)
	hold(l, laneItem("A", 1))
	l.stop()
	if start := hold(l, laneItem("B", 2)); start {
		t.Error("a lane was scheduled while stopping")
	}
	if _, park := idle(l, "A"); park {
		t.Error("A's goroutine parked while stopping: want it to end")
	}
	if claim(l, "A") {
		t.Error("a lane claimed while stopping")
	}
	l.wg.Done() // A's first claim
	waitGroupDone(t, l)
}

// handles are the newest handle of every event held: a redelivery replaces the handle.
func TestLanesHandles(t *testing.T) {
	t.Parallel()
	l := newLanes(64, nil)
	a1, b1 := laneItem("A", 1), laneItem("B", 2)
	hold(l, a1)
	hold(l, b1)
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
// whose entity has nothing left, and a lane that waits out a retry lets a ready one start, and
// back from its wait takes the next place given up. A goroutine with nothing left and nothing
// ready parks, and takes the next lane claimed; at most maxActive park.
func TestLanesBoundTheirGoroutines(t *testing.T) {
	t.Parallel()
	l := newLanes(2, nil)
	for _, c := range []struct {
		entity string
		want   bool
	}{{"A", true}, {"B", true}, {"C", false}, {"D", false}, {"A", false}} {
		if got := claim(l, c.entity); got != c.want {
			t.Fatalf("claim %s = %v, want %v", c.entity, got, c.want)
		}
	}
	if next, park := idle(l, "A"); park || next != "C" {
		t.Fatalf("A's goroutine, idle: %q, park %v; want it to go on with C", next, park)
	}
	if start := l.waiting(); laneEntity(start.ln) != "D" || !give(l, start) {
		t.Fatalf("B waits out a retry: start %q; want D started in its place", laneEntity(start.ln))
	}
	resumedB := make(chan bool, 1) // B back from its wait: C and D deliver, it waits its turn
	go func() { resumedB <- l.resumed(nil) }()
	testwait.For(t, 5*time.Second, "B's turn queued", func() bool { return l.waiters.Load() == 1 })
	select {
	case <-resumedB:
		t.Fatal("B got a place beside C and D")
	case <-time.After(20 * time.Millisecond):
	}
	if next, park := idle(l, "C"); next != "" || !park {
		t.Fatalf("C's goroutine, idle with B's turn waiting: %q, park %v; want its place given to B and it parked", next, park)
	}
	if !<-resumedB {
		t.Fatal("B's turn ended without a place")
	}
	if claim(l, "E") {
		t.Fatal("E got a goroutine of its own beside B and D")
	}
	if next, park := idle(l, "D"); park || next != "E" {
		t.Fatalf("D's goroutine, idle: %q, park %v; want it to go on with E", next, park)
	}
	if claim(l, "A") { // idle before, claimed again
		t.Fatal("A got a goroutine beside B and E")
	}
	if next, _ := idle(l, "B"); next != "A" {
		t.Fatalf("B's goroutine, idle: %q; want it to go on with A", next)
	}
	if _, park := idle(l, "E"); !park {
		t.Fatal("E's goroutine, idle beside one parked: ends; want it parked, the second of two")
	}
	if next, park := idle(l, "A"); next != "" || park {
		t.Fatalf("A's goroutine, idle beside two parked: %q, park %v; want it to end (maxActive park at most)", next, park)
	}
	if claim(l, "F") || handedOff(l) != "F" {
		t.Fatal("F claimed with goroutines parked: want it handed to one, none started")
	}
	if _, park := idle(l, "F"); !park {
		t.Fatal("F's goroutine, idle beside one parked: ends; want it parked")
	}
	l.stop()
	for i := range 2 { // E's and F's
		if got := handedOff(l); got != "" {
			t.Fatalf("after stop parked goroutine %d receives %q; want nil, to end", i, got)
		}
	}
	if got := handedOff(l); got != "\x00none" || l.parked != 0 {
		t.Fatalf("after stop a third goroutine receives %q; want nothing: two were parked", got)
	}
}

// Parked goroutines that no claim needed for a whole laneLinger end; those a claim took in the
// meantime stay parked for the next one.
func TestLanesRetireGoroutinesNotNeeded(t *testing.T) {
	t.Parallel()
	l := newLanes(4, nil)
	for _, e := range []string{"A", "B", "C"} {
		claim(l, e)
	}
	for _, e := range []string{"A", "B", "C"} {
		if _, park := idle(l, e); !park {
			t.Fatalf("%s's goroutine did not park", e)
		}
	}
	start := time.Now()
	l.retire(start) // the first: a window starts with three parked
	if got := handedOff(l); got != "\x00none" {
		t.Fatalf("retire at the start of the window handed %q", got)
	}
	if claim(l, "D") || handedOff(l) != "D" {
		t.Fatal("D was not handed to a parked goroutine")
	}
	l.retire(start.Add(laneLinger / 2)) // too soon: nothing ends
	if got := handedOff(l); got != "\x00none" {
		t.Fatalf("retire within laneLinger handed %q", got)
	}
	l.retire(start.Add(laneLinger)) // two of three were never needed
	for i := range 2 {
		if got := handedOff(l); got != "" {
			t.Fatalf("retire %d: handed %q, want the end of a parked goroutine", i, got)
		}
	}
	if got := handedOff(l); got != "\x00none" || l.parked != 0 {
		t.Fatalf("after retiring two: %q pending, %d parked; want nothing more, none parked", got, l.parked)
	}
	if _, park := idle(l, "D"); !park {
		t.Fatal("D's goroutine did not park")
	}
	l.retire(start.Add(2 * laneLinger)) // D's goroutine parked after the window began: kept
	if got := handedOff(l); got != "\x00none" {
		t.Fatalf("retire ended a goroutine parked within the window: %q", got)
	}
	l.retire(start.Add(3 * laneLinger)) // and not needed for the whole next one: ended
	if got := handedOff(l); got != "" {
		t.Fatalf("a goroutine unneeded for a whole window: %q, want it ended", got)
	}
	l.wg.Add(-3)
	waitGroupDone(t, l)
}

// entityDeliverer reports the entity of every event, and takes it once that was received.
type entityDeliverer chan string

func (d entityDeliverer) Deliver(_ context.Context, dl *Delivery) Outcome {
	d <- dl.Event.Entity
	return Outcome{Result: Delivered, Status: 204}
}

// A lane goroutine whose entity has nothing left parks, and the next lane claimed is handed to it
// instead of a goroutine of its own; stopping the worker's lanes ends the parked goroutines.
func TestLaneGoroutinesParkAndTakeTheNextLane(t *testing.T) {
	t.Parallel()
	b := newBareConsumer(t)
	delivered := make(entityDeliverer) // a POST lasts until the test takes its event
	_, w := bareWorker(t, b, delivered)
	parked := func() int {
		w.lanes.mu.Lock()
		defer w.lanes.mu.Unlock()
		return w.lanes.parked
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 10 s: %s", what)
			}
		}
	}
	receive := func(want string) {
		t.Helper()
		select {
		case got := <-delivered:
			if got != want {
				t.Fatalf("delivered an event of %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s's event not delivered within 10 s", want)
		}
	}

	for i, entity := range []string{"A", "B", "C"} {
		w.route(t.Context(), b.next(t, "ev"+entity, entity), uint64(i+1), time.Now())
	}
	got := []string{<-delivered, <-delivered, <-delivered}
	slices.Sort(got)
	if !slices.Equal(got, []string{"A", "B", "C"}) {
		t.Fatalf("delivered %v, want A, B and C", got)
	}
	waitFor("the three lane goroutines parked", func() bool { return parked() == 3 })

	w.route(t.Context(), b.next(t, "evD", "D"), 4, time.Now())
	if n := parked(); n != 2 {
		t.Fatalf("D's lane claimed: %d goroutines parked, want 2 (one took D's lane, none was started)", n)
	}
	receive("D")
	waitFor("D's goroutine parked again", func() bool { return parked() == 3 })

	stopped := make(chan struct{})
	go func() { stopLanes(w); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the parked lane goroutines did not end when the lanes stopped")
	}
}

// The lane goroutines parked across a manager's workers stay within its budget: one that would
// park beyond it ends instead; a claim that takes a parked goroutine, and a stop, give the
// places back.
func TestLanesParkWithinTheBudget(t *testing.T) {
	t.Parallel()
	var budget laneBudget
	budget.parked.Store(maxParkedLanes - 1) // other endpoints' parked goroutines
	a, b := newLanes(4, &budget), newLanes(4, &budget)
	claim(a, "A")
	claim(b, "B")
	if _, park := idle(a, "A"); !park {
		t.Fatal("A's goroutine, with one place left in the budget: ends; want it parked")
	}
	if _, park := idle(b, "B"); park {
		t.Fatal("B's goroutine parked beyond the budget: want it to end")
	}
	if claim(a, "C") || handedOff(a) != "C" {
		t.Fatal("C was not handed to the parked goroutine")
	}
	if n := budget.parked.Load(); n != maxParkedLanes-1 {
		t.Fatalf("budget after the parked goroutine took C: %d, want %d", n, maxParkedLanes-1)
	}
	claim(b, "D")
	if _, park := idle(b, "D"); !park {
		t.Fatal("D's goroutine, with the place given back: ends; want it parked")
	}
	b.stop()
	if n := budget.parked.Load(); n != maxParkedLanes-1 {
		t.Fatalf("budget after the lanes stopped: %d, want %d", n, maxParkedLanes-1)
	}
	a.wg.Add(-1)
	b.wg.Add(-2)
	waitGroupDone(t, a)
	waitGroupDone(t, b)
}

// A run holds at most an eighth of the endpoint's MaxAckPending, and at most 16: its acks wait
// for its end.
func TestRunLength(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ maxAckPending, want int }{{1, 1}, {8, 1}, {64, 8}, {1000, 16}} {
		if got := runLength(c.maxAckPending); got != c.want {
			t.Errorf("runLength(%d) = %d, want %d", c.maxAckPending, got, c.want)
		}
	}
}

// A lane that ends stays in its shard, idle, and its entity's next event takes it up again; when
// a new entity comes with more than maxIdle idle lanes in the shard they all go, a running one
// stays, and busy counts none of them.
func TestLanesIdleStayUntilSwept(t *testing.T) {
	t.Parallel()
	var sh laneShard
	a := sh.claim("A")
	sh.idle(a)
	if !a.idle || sh.idleN != 1 || sh.lanes["A"] != a {
		t.Fatalf("A's lane, ended: idle %v, %d idle in the shard, kept %v; want it kept, idle", a.idle, sh.idleN, sh.lanes["A"] == a)
	}
	if again := sh.claim("A"); again != a || a.idle || sh.idleN != 0 {
		t.Fatalf("A claimed again: the same lane %v, idle %v, %d idle; want the same, no longer idle", again == a, a.idle, sh.idleN)
	}
	sh.idle(a)
	running := sh.claim("R")
	for i := range maxIdle {
		sh.idle(sh.claim(fmt.Sprintf("E%d", i)))
	}
	if len(sh.lanes) != maxIdle+2 || sh.idleN != maxIdle+1 {
		t.Fatalf("after %d lanes ended: %d lanes, %d idle; want them kept until a new entity comes", maxIdle+1, len(sh.lanes), sh.idleN)
	}
	if again := sh.claim("E0"); again == nil || sh.idleN != maxIdle {
		t.Fatalf("E0 claimed again: %v, %d idle; want its lane, without a sweep", again, sh.idleN)
	}
	sh.idle(sh.lanes["E0"])
	reused := sh.lane("B") // a new entity: the idle lanes go first
	if len(sh.lanes) != 2 || sh.lanes["R"] != running || sh.lanes["B"] != reused || sh.idleN != 0 {
		t.Fatalf("after B came: %d lanes, %d idle; want R's, running, and B's", len(sh.lanes), sh.idleN)
	}
	if want := min(maxSpare, maxIdle+1) - 1; len(sh.spare) != want {
		t.Fatalf("%d lanes kept for reuse, want %d (one of them B's now)", len(sh.spare), want)
	}
	if reused.entity != "B" || len(reused.q) != 0 || reused.idle {
		t.Fatalf("a lane reused for B: %+v; want B's, empty, not idle", reused)
	}

	l := newLanes(4, nil)
	claim(l, "A")
	idle(l, "A")
	if l.busy() {
		t.Fatal("lanes with only an idle lane are busy")
	}
	hold(l, laneItem("A", 1))
	if !l.busy() {
		t.Fatal("lanes holding an event are not busy")
	}
}

// Goroutines waiting for a place get one in the order they came, ahead of the ready lanes, and
// the lanes that deliver never number more than maxActive: one back from a retry wait takes the
// place of a goroutine that yields it between two POSTs, which then waits behind the others.
// A stop ends a wait without a place.
func TestLanesGivePlacesInTurn(t *testing.T) {
	t.Parallel()
	l := newLanes(1, nil)
	if !claim(l, "A") || claim(l, "B") {
		t.Fatal("want A started and B ready, with one place")
	}
	got := make(chan string, 3)
	wait := func(name string, f func() bool) {
		go func() {
			if f() {
				got <- name
			}
		}()
	}
	wait("R1", func() bool { return l.resumed(nil) })
	testwait.For(t, 5*time.Second, "R1's turn queued", func() bool { return l.waiters.Load() == 1 })
	wait("R2", func() bool { return l.resumed(nil) })
	testwait.For(t, 5*time.Second, "R2's turn queued", func() bool { return l.waiters.Load() == 2 })
	wait("A", func() bool { return l.yield(nil) }) // A's goroutine between two POSTs: R1's turn, A's queued
	placed := func(want string) {
		t.Helper()
		select {
		case name := <-got:
			if name != want {
				t.Fatalf("%s got the place, want %s", name, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no place given; want %s's", want)
		}
		l.mu.Lock()
		active := l.active
		l.mu.Unlock()
		if active != 1 {
			t.Fatalf("%d lanes deliver, want 1", active)
		}
	}
	placed("R1")
	if n := l.waiters.Load(); n != 2 {
		t.Fatalf("%d turns waiting once A yielded, want 2: R2's and A's", n)
	}
	if next, park := l.idle(); next != nil || !park { // R1's lane has nothing left
		t.Fatalf("R1's goroutine, idle with turns waiting: %q, park %v; want its place passed on", laneEntity(next), park)
	}
	placed("R2")
	if start := l.waiting(); start.ln != nil { // R2 fails again
		t.Fatalf("R2 waits out a retry: %q started; want its place passed to A's turn", laneEntity(start.ln))
	}
	placed("A")
	if next, _ := l.idle(); laneEntity(next) != "B" {
		t.Fatalf("A's goroutine, idle: %q; want it to go on with B, ready", laneEntity(next))
	}

	stop := make(chan struct{})
	ended := make(chan bool)
	go func() { ended <- l.resumed(stop) }()
	testwait.For(t, 5*time.Second, "a turn queued", func() bool { return l.waiters.Load() == 1 })
	close(stop)
	if <-ended {
		t.Fatal("a turn ended by stop reports a place")
	}
	if n := l.waiters.Load(); n != 0 {
		t.Errorf("%d turns left waiting after stop, want 0", n)
	}
}
