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

// BenchmarkTenantDrain measures the backlog drain (an endpoint back from an outage) with the
// router's tenant copies in the events stream (notes/jetstream.md §3.3: many distinct subjects
// slowed filtered drains 7–20×): 50,000 events of 10 types, each naming one of 1,000 tenants
// (10 events of each type each).
//
//   - "plain/operator": the stream without copies, an operator endpoint of 2 types drains its
//     share; "tenants/operator": the same with a copy of each event on tnt.<tenant>.a.<type>
//     (10,010 subjects): what the copies cost the operator's endpoints.
//   - "tenants/tenant": a tenant's endpoint of the same 2 types drains its copies only (the
//     router's layout); "plain/tenant-filtering": it reads every event of its types and keeps
//     its tenant's (gateway-side filtering, the alternative), reported per event it keeps.
func BenchmarkTenantDrain(b *testing.B) {
	const events, tenants, types = 50_000, 1000, 10
	srv := natstest.Start(b)
	_, js := natstest.ConnectJetStream(b, srv)
	ctx := b.Context()
	fill := func(name string, copies bool) jetstream.Stream {
		stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".evt.>", name + ".tnt.>"}})
		if err != nil {
			b.Fatal(err)
		}
		for i := range events {
			typ := fmt.Sprintf("t%02d", i%types)
			if _, err := js.PublishAsync(name+".evt.a."+typ, []byte(`{"n":1}`)); err != nil {
				b.Fatal(err)
			}
			if copies {
				if _, err := js.PublishAsync(fmt.Sprintf("%s.tnt.x%04d.a.%s", name, (i/types)%tenants, typ), []byte(`{"n":1}`)); err != nil {
					b.Fatal(err)
				}
			}
			if i%1024 == 1023 || i == events-1 {
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(60 * time.Second):
					b.Fatal("publishes not acknowledged")
				}
			}
		}
		return stream
	}
	plain, tenanted := fill("PLAIN", false), fill("TENANTS", true)
	perType := events / types
	mine := 0 // tenant x0001's events of types t00 and t01
	for i := range events {
		if (i/types)%tenants == 1 && i%types < 2 {
			mine++
		}
	}
	for _, c := range []struct {
		name    string
		stream  jetstream.Stream
		filters []string
		want    int // messages the consumer reads
		kept    int // of which the endpoint keeps
	}{
		{"plain/operator", plain, []string{"PLAIN.evt.*.t00", "PLAIN.evt.*.t01"}, 2 * perType, 2 * perType},
		{"tenants/operator", tenanted, []string{"TENANTS.evt.*.t00", "TENANTS.evt.*.t01"}, 2 * perType, 2 * perType},
		{"tenants/tenant", tenanted, []string{"TENANTS.tnt.x0001.*.t00", "TENANTS.tnt.x0001.*.t01"}, mine, mine},
		{"plain/tenant-filtering", plain, []string{"PLAIN.evt.*.t00", "PLAIN.evt.*.t01"}, 2 * perType, mine},
	} {
		b.Run(c.name, func(b *testing.B) {
			runs := 0
			for b.Loop() {
				cons, err := c.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubjects: c.filters, AckPolicy: jetstream.AckNonePolicy,
					DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				runs++
				drain(ctx, b, cons, c.want)
				if err := c.stream.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*c.kept), "ns/kept-msg")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(runs), "ms/drain")
		})
	}
}
