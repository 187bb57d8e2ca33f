package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// BenchmarkNATSShutdownConsumers is a reproduction for nats-server, with no quaycast code: how
// long Server.Shutdown takes with N durable pull consumers on one stream. Each file-stored
// consumer's stop waits for its state flusher in steps of 10 ms (consumerFileStore.waitOnFlusher,
// nats-server 2.15), one consumer after another, so a gateway with 10,000 endpoints on its
// embedded server spends ~100 s stopping the server after its own work is done. Memory-stored
// consumers are the comparison.
//
//	go test -run '^$' -bench NATSShutdownConsumers -benchtime 1x -count 3 ./bench/
func BenchmarkNATSShutdownConsumers(b *testing.B) {
	for _, tc := range []struct {
		n       int
		storage jetstream.StorageType
	}{{0, jetstream.FileStorage}, {300, jetstream.FileStorage}, {300, jetstream.MemoryStorage}} {
		b.Run(fmt.Sprintf("consumers=%d/storage=%s", tc.n, tc.storage), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s := natstest.Start(b)
				nc, js := natstest.ConnectJetStream(b, s)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
				if err != nil {
					b.Fatal(err)
				}
				for i := range tc.n {
					name := fmt.Sprintf("c%d", i)
					if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, FilterSubject: "s." + name, AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: tc.storage == jetstream.MemoryStorage}); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				nc.Close()
				b.StartTimer()
				natstest.Stop(s)
			}
			if tc.n > 0 {
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*tc.n), "ms/consumer")
			}
		})
	}
}
