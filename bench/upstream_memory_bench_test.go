package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// BenchmarkNATSConsumerMemory is a reproduction for nats-server, with no quaycast code: what
// one durable pull consumer holds in a process that embeds the server, once every collection is
// done — its heap, its goroutines' stacks and how many goroutines. The consumers are configured as
// quaycast's endpoints' are (two filter subjects, explicit acks, metadata), and none is pulled
// from. In nats-server 2.15 a file-stored consumer holds ~37 KiB of heap (its internal client
// alone ~13 KiB) and four goroutines (~10 KiB of stacks): ~470 MiB at 10,000 endpoints before the
// gateway's own, against the single binary's 500 MiB goal. Memory-stored consumers (three
// goroutines) are the comparison; quaycast cannot use them (the position must survive a restart).
//
//	go test -run '^$' -bench NATSConsumerMemory -benchtime 1x ./bench/
func BenchmarkNATSConsumerMemory(b *testing.B) {
	const n = 2000
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		b.Run(fmt.Sprintf("storage=%s", storage), func(b *testing.B) {
			var heap, stack, goroutines float64
			for b.Loop() {
				s := natstest.Start(b)
				nc, js := natstest.ConnectJetStream(b, s)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"evt.>", "replay.>"}, MaxConsumers: n + 1})
				if err != nil {
					b.Fatal(err)
				}
				before := collected()
				for i := range n {
					name := fmt.Sprintf("ep%d", i)
					cfg := jetstream.ConsumerConfig{Durable: name, Description: "quaycast endpoint " + name,
						FilterSubjects: []string{"evt.*." + name, "replay." + name + ".>"},
						DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: 1, AckPolicy: jetstream.AckExplicitPolicy,
						AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 1000, Metadata: map[string]string{"quaycast_endpoint": name},
						MemoryStorage: storage == jetstream.MemoryStorage}
					if _, err := stream.CreateOrUpdateConsumer(ctx, cfg); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				after := collected()
				heap += float64(after.heap-before.heap) / n / 1024
				stack += float64(after.stack-before.stack) / n / 1024
				goroutines += float64(after.goroutines-before.goroutines) / n
				nc.Close()
				natstest.Stop(s)
			}
			b.ReportMetric(heap/float64(b.N), "heap-KiB/consumer")
			b.ReportMetric(stack/float64(b.N), "stack-KiB/consumer")
			b.ReportMetric(goroutines/float64(b.N), "goroutines/consumer")
		})
	}
}

// footprint is the process's heap in use, goroutine stacks and goroutines.
type footprint struct {
	heap, stack uint64
	goroutines  int
}

// collected is the footprint once the collector has run twice (what was let go of is gone).
func collected() footprint {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return footprint{heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}
