package memtrim

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestWorth(t *testing.T) {
	const mib = 1 << 20
	quiet := sample{allocs: 1000 * mib}
	tests := []struct {
		name string
		now  sample
		want bool
	}{
		{"spare past both bounds", sample{allocs: 1001 * mib, live: 200 * mib, held: 300 * mib}, true},
		{"busy: allocating fast", sample{allocs: 1011 * mib, live: 200 * mib, held: 300 * mib}, false},
		{"spare under 64 MiB", sample{allocs: 1001 * mib, live: 100 * mib, held: 160 * mib}, false},
		{"spare under a quarter of live", sample{allocs: 1001 * mib, live: 400 * mib, held: 490 * mib}, false},
		{"held under live (garbage counted live)", sample{allocs: 1000 * mib, live: 300 * mib, held: 290 * mib}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := worth(quiet, tt.now, 10*time.Second); got != tt.want {
				t.Errorf("worth = %v, want %v", got, tt.want)
			}
		})
	}
}

var sink [][]byte

// After a burst of 256 MiB, now garbage, a quiet check gives the spare heap back; the next
// check, with nothing more to give, does not collect again.
func TestCheckGivesBackWhatABurstLeft(t *testing.T) {
	// No collection but those asked for: the runtime's own would keep (or release) the freed
	// heap on its schedule, not the test's.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for range 256 {
		sink = append(sink, make([]byte, 1<<20))
	}
	tr := newTrimmer()
	sink = nil
	runtime.GC() // the burst is garbage: its spans are free, still held
	before, after, trimmed := tr.check(10 * time.Second)
	if !trimmed {
		t.Fatalf("not trimmed: held %d MiB, live %d MiB", before.held>>20, before.live>>20)
	}
	if spare := int64(after.held) - int64(after.live); spare >= minSpare {
		t.Errorf("after the trim %d MiB held beyond the live heap (%d MiB), want under %d", spare>>20, after.live>>20, minSpare>>20)
	}
	if _, _, again := tr.check(10 * time.Second); again {
		t.Error("trimmed again with nothing more to give back")
	}
}
