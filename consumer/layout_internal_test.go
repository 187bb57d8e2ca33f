package consumer

import (
	"testing"
	"unsafe"
)

// cacheLine is the unit a core takes a field in: two fields written on different cores must not
// share one (the lanes' dispatch lost a fifth of its time to that at 1,024 entities).
const cacheLine = 64

// The hot structures keep their cache lines apart: each lane and progress shard on a line of its
// own from the start of the line, the lanes' mu on one line with what it guards, the worker's mu
// with nothing beside it, and an item in two.
func TestLanesLayout(t *testing.T) {
	t.Parallel()
	var l lanes
	var p progress
	var w worker
	for _, c := range []struct {
		name string
		got  uintptr
		ok   bool
	}{
		{"lanes.shards offset", unsafe.Offsetof(l.shards), unsafe.Offsetof(l.shards)%cacheLine == 0},
		{"laneShard size", unsafe.Sizeof(laneShard{}), unsafe.Sizeof(laneShard{}) == cacheLine},
		{"lanes.mu offset", unsafe.Offsetof(l.mu), unsafe.Offsetof(l.mu)%cacheLine == 0},
		{"lanes.fewest on mu's line", unsafe.Offsetof(l.fewest), unsafe.Offsetof(l.fewest)+unsafe.Sizeof(l.fewest) <= unsafe.Offsetof(l.mu)+cacheLine},
		{"progress.shards offset", unsafe.Offsetof(p.shards), unsafe.Offsetof(p.shards)%cacheLine == 0},
		{"progressShard size", unsafe.Sizeof(progressShard{}), unsafe.Sizeof(progressShard{}) == cacheLine},
		{"worker.mu after paused", unsafe.Offsetof(w.mu), unsafe.Offsetof(w.mu)-(unsafe.Offsetof(w.paused)+unsafe.Sizeof(w.paused)) >= cacheLine-unsafe.Sizeof(w.mu)},
		{"worker.pausedUntil after mu", unsafe.Offsetof(w.pausedUntil), unsafe.Offsetof(w.pausedUntil)-(unsafe.Offsetof(w.mu)+unsafe.Sizeof(w.mu)) >= cacheLine-unsafe.Sizeof(w.mu)},
		{"item size", unsafe.Sizeof(item{}), unsafe.Sizeof(item{}) <= 2*cacheLine},
	} {
		if !c.ok {
			t.Errorf("%s: %d", c.name, c.got)
		}
	}
}
