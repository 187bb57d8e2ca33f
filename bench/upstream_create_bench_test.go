package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// BenchmarkNATSEndpointRequests times, one after another as quaycast makes them, the JetStream
// requests a new endpoint costs, on a server that already holds `existing` durable consumers of
// the stream (no quaycast code): to answer the create, the stream's info (its last sequence is
// the endpoint's start) and the registry KV write; to apply it, the consumer's create (on every
// gateway) and, owned, its info (is anything pending: may it sleep); supervised, the ownership
// claim (KV create), the last delivery mark of the endpoint and the park stream's info for it.
// Each sub-benchmark reports ms per request of that kind.
//
//	go test -run '^$' -bench NATSEndpointRequests -benchtime 1x ./bench/
func BenchmarkNATSEndpointRequests(b *testing.B) {
	const n = 500 // endpoints timed per run
	for _, existing := range []int{0, 5000} {
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			s := natstest.Start(b)
			_, js := natstest.ConnectJetStream(b, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"evt.>"}, MaxConsumers: existing + 2*n + 10})
			if err != nil {
				b.Fatal(err)
			}
			marks, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MARKS", Subjects: []string{"marks.>"}})
			if err != nil {
				b.Fatal(err)
			}
			park, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PARK", Subjects: []string{"park.>"}})
			if err != nil {
				b.Fatal(err)
			}
			reg, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "endpoints"})
			if err != nil {
				b.Fatal(err)
			}
			owners, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "owners"})
			if err != nil {
				b.Fatal(err)
			}
			config := func(name string) jetstream.ConsumerConfig {
				return jetstream.ConsumerConfig{Durable: name, FilterSubjects: []string{"evt.*." + name, "replay." + name + ".>"},
					DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 1, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1}
			}
			for i := range existing {
				if _, err := stream.CreateOrUpdateConsumer(ctx, config(fmt.Sprintf("old%d", i))); err != nil {
					b.Fatal(err)
				}
			}
			steps := []struct {
				name string
				do   func(name string) error
			}{
				{"stream_info", func(string) error { _, err := stream.Info(ctx); return err }},
				{"kv_create", func(name string) error {
					_, err := reg.Create(ctx, name, []byte(`{"url":"http://127.0.0.1:9/"}`))
					return err
				}},
				{"consumer_create", func(name string) error { _, err := stream.CreateOrUpdateConsumer(ctx, config(name)); return err }},
				{"consumer_info", func(name string) error { _, err := stream.Consumer(ctx, name); return err }},
				{"claim_kv_create", func(name string) error { _, err := owners.Create(ctx, name, []byte(`{"member":"m"}`)); return err }},
				{"last_mark", func(name string) error {
					_, err := marks.GetLastMsgForSubject(ctx, "marks."+name)
					if err == jetstream.ErrMsgNotFound {
						err = nil
					}
					return err
				}},
				{"park_info", func(name string) error {
					_, err := park.Info(ctx, jetstream.WithSubjectFilter("park."+name+".>"))
					return err
				}},
			}
			took := make([]time.Duration, len(steps))
			round := 0
			for b.Loop() {
				round++
				for i := range n {
					name := fmt.Sprintf("ep%d_%d", round, i)
					for k, st := range steps {
						t0 := time.Now()
						if err := st.do(name); err != nil {
							b.Fatalf("%s: %v", st.name, err)
						}
						took[k] += time.Since(t0)
					}
				}
			}
			var all time.Duration
			for k, st := range steps {
				b.ReportMetric(float64(took[k].Microseconds())/1000/float64(b.N*n), st.name+"_ms")
				all += took[k]
			}
			b.ReportMetric(float64(all.Microseconds())/1000/float64(b.N*n), "all_ms/endpoint")
		})
	}
}

// BenchmarkNATSConsumerCreateParallel creates 2,000 durable consumers on one stream from 1, 8 or
// 32 goroutines at once: whether the server creates them faster when asked in parallel, or
// the create is its own bound. Reports ms per consumer (wall time / consumers).
//
//	go test -run '^$' -bench NATSConsumerCreateParallel -benchtime 1x ./bench/
func BenchmarkNATSConsumerCreateParallel(b *testing.B) {
	const n = 2000
	for _, par := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("parallel=%d", par), func(b *testing.B) {
			s := natstest.Start(b)
			_, js := natstest.ConnectJetStream(b, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"evt.>"}, MaxConsumers: 3 * n})
			if err != nil {
				b.Fatal(err)
			}
			round := 0
			for b.Loop() {
				round++
				next := make(chan int)
				var wg sync.WaitGroup
				var failed atomic.Pointer[error]
				for range par {
					wg.Go(func() {
						for i := range next {
							if failed.Load() != nil {
								continue // drain: another failed
							}
							name := fmt.Sprintf("c%d_%d", round, i)
							if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, FilterSubjects: []string{"evt.*." + name, "replay." + name + ".>"},
								DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 1, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1}); err != nil {
								failed.CompareAndSwap(nil, &err)
							}
						}
					})
				}
				for i := range n {
					next <- i
				}
				close(next)
				wg.Wait()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*n), "ms/consumer")
		})
	}
}
