package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

const (
	// quietRate is the allocation rate under which the process counts as quiet: an idle gateway
	// allocates a fraction of it, one that delivers a few events a second more.
	quietRate = 1 << 20 // bytes per second
	// minSpare is the least heap held beyond the live one worth a collection to give back.
	minSpare = 64 << 20
)

// sample is what a check reads of the runtime.
type sample struct {
	allocs uint64 // bytes allocated since the start
	live   uint64 // heap in use after the last collection
	held   uint64 // heap held from the system: objects, and spans free or partly free
}

// trimmer reads the runtime's figures at each check.
type trimmer struct {
	ms   []metrics.Sample
	prev sample
}

func newTrimmer() *trimmer {
	names := []string{
		"/gc/heap/allocs:bytes",
		"/gc/heap/live:bytes",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/heap/free:bytes",
	}
	t := &trimmer{ms: make([]metrics.Sample, len(names))}
	for i, n := range names {
		t.ms[i].Name = n
	}
	t.prev = t.read()
	return t
}

func (t *trimmer) read() sample {
	metrics.Read(t.ms)
	v := func(i int) uint64 {
		if t.ms[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.ms[i].Value.Uint64()
	}
	return sample{allocs: v(0), live: v(1), held: v(2) + v(3) + v(4)}
}

// worth reports whether the heap held beyond the live one is worth giving back now: the process
// allocated less than quietRate since the last check (a collection then costs once, not every
// few seconds), and holds at least minSpare and a quarter of the live heap more than it uses.
// Garbage made since the last collection counts as live until the next one, which the runtime
// forces at least every two minutes.
func worth(prev, now sample, since time.Duration) bool {
	if now.allocs-prev.allocs > uint64(since.Seconds()*quietRate) {
		return false
	}
	spare := int64(now.held) - int64(now.live)
	return spare >= minSpare && uint64(spare) >= now.live/4
}

// check gives the spare heap back if worth it, since the check before, since ago; it returns
// the figures before and after, and whether it did.
func (t *trimmer) check(since time.Duration) (before, after sample, trimmed bool) {
	before = t.read()
	after = before
	if worth(t.prev, before, since) {
		debug.FreeOSMemory()
		after, trimmed = t.read(), true
	}
	t.prev = after
	return before, after, trimmed
}

// Run checks every period until ctx ends.
func Run(ctx context.Context, every time.Duration, log zerolog.Logger) {
	t := newTrimmer()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		if before, after, ok := t.check(every); ok {
			log.Debug().Uint64("held_mib", before.held>>20).Uint64("after_mib", after.held>>20).
				Uint64("live_mib", after.live>>20).Dur("took", time.Since(start)).Msg("heap given back to the system")
		}
	}
}
