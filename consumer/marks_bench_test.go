package consumer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// BenchmarkMarksFlush is one flush of the durable delivery record, the work every gateway does
// each --marks-flush (default 1 s) whatever the traffic: "idle" is 10,000 endpoints with 10
// entities' marks each and nothing changed; "many-entities" is 10 endpoints with 20,000
// entities' marks each, 10 changed per endpoint (written to the embedded server).
func BenchmarkMarksFlush(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.ConnectJetStream(b, srv)
	marks, err := NewMarks(b.Context(), js, time.Hour, time.Second, 1, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	fill := func(endpoints, entities int) []*progress {
		ps := make([]*progress, endpoints)
		for i := range ps {
			ps[i] = newProgress(fmt.Sprintf("ep_%05d", i), marks)
			for e := range entities {
				ps[i].add(fmt.Sprintf("ENT%05d", e), uint64(e+1), "ev", time.Now())
			}
		}
		marks.flush(b.Context())
		return ps
	}
	b.Run("idle", func(b *testing.B) {
		ps := fill(10_000, 10)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			marks.flush(b.Context())
		}
		b.StopTimer()
		for _, p := range ps {
			marks.unregister(p)
		}
	})
	// Every endpoint changed: a burst of traffic to all of them, or a gateway handing them over.
	b.Run("all-changed", func(b *testing.B) {
		ps := fill(10_000, 10)
		seq := uint64(1 << 20)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			for _, p := range ps {
				seq++
				p.add("ENT00000", seq, "ev", time.Now())
			}
			marks.flush(b.Context())
		}
		b.StopTimer()
		for _, p := range ps {
			marks.unregister(p)
		}
	})
	// A gateway that stops hands its endpoints over: each one's marks written, all at once.
	b.Run("release-10k", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			ps := fill(10_000, 10)
			for _, p := range ps {
				p.add("ENT00000", 1<<20, "ev", time.Now())
			}
			b.StartTimer()
			var wg sync.WaitGroup
			for _, p := range ps {
				wg.Go(func() {
					if err := marks.release(b.Context(), p); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
	})
	b.Run("many-entities", func(b *testing.B) {
		ps := fill(10, 20_000)
		seq := uint64(1 << 20)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			for _, p := range ps {
				for e := range 10 {
					seq++
					p.add(fmt.Sprintf("ENT%05d", e), seq, "ev", time.Now())
				}
			}
			marks.flush(b.Context())
		}
	})
}
