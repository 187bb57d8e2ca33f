package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
)

// BenchmarkFilterSubjects measures what a consumer's number of filter subjects costs when it
// drains a backlog, the moment an endpoint comes back from an outage (notes/jetstream.md §3):
// a stream of 1024 subjects evt.a.t0000 … t1023 with 8 messages each; a pull consumer with the
// first n as exact filters drains its 8n messages. Reported per matched message, beside the same
// drain of all 8192 messages through the single filter evt.> ("n=all,evt.>"), and the time to
// create the consumer.
func BenchmarkFilterSubjects(b *testing.B) {
	const subjects, perSubject = 1024, 8
	srv := natstest.Start(b)
	_, js := natstest.ConnectJetStream(b, srv)
	ctx := b.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILTERS", Subjects: []string{"evt.>"}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range perSubject {
		for s := range subjects {
			if _, err := js.PublishAsync(fmt.Sprintf("evt.a.t%04d", s), []byte(`{"n":1}`)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatalf("round %d: publishes not acknowledged", i)
		}
	}
	for _, n := range []int{1, 16, 64, 256, 1024, 0} {
		name := fmt.Sprintf("n=%d", n)
		filters := make([]string, n)
		for i := range filters {
			filters[i] = fmt.Sprintf("evt.a.t%04d", i)
		}
		want := n * perSubject
		if n == 0 {
			name, filters, want = "n=all,evt.>", []string{"evt.>"}, subjects*perSubject
		}
		b.Run(name, func(b *testing.B) {
			var create time.Duration
			runs := 0
			for b.Loop() {
				start := time.Now()
				cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubjects: filters, AckPolicy: jetstream.AckNonePolicy,
					DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				create += time.Since(start)
				runs++
				drain(ctx, b, cons, want)
				if err := stream.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*want), "ns/matched-msg")
			b.ReportMetric(float64(create.Microseconds())/float64(runs), "µs/create")
		})
	}
}

// drain fetches until want messages came, bounded in rounds.
func drain(ctx context.Context, b *testing.B, cons jetstream.Consumer, want int) {
	got := 0
	for round := 0; got < want; round++ {
		if round > want+100 {
			b.Fatalf("drained %d of %d", got, want)
		}
		batch, err := cons.Fetch(min(1000, want-got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
		if err := batch.Error(); err != nil {
			b.Fatal(err)
		}
	}
	_ = ctx
}
