package consumer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// benchMsg is a message as the consumer callback receives it, for measuring the dispatch alone
// (no server: the benchmark is about the lanes, not JetStream).
type benchMsg struct {
	meta    jetstream.MsgMetadata
	subject string
	data    []byte
	hdr     nats.Header
	acked   *countdown // counted, if set: the last event of a batch let go of, its mark set before
}

func (m *benchMsg) Metadata() (*jetstream.MsgMetadata, error) { return &m.meta, nil }
func (m *benchMsg) Data() []byte                              { return m.data }
func (m *benchMsg) Headers() nats.Header                      { return m.hdr }
func (m *benchMsg) Subject() string                           { return m.subject }
func (m *benchMsg) Reply() string                             { return "" }
func (m *benchMsg) Ack() error                                { m.acked.add(); return nil }
func (m *benchMsg) DoubleAck(context.Context) error           { return nil }
func (m *benchMsg) Nak() error                                { return nil }
func (m *benchMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *benchMsg) InProgress() error                         { return nil }
func (m *benchMsg) Term() error                               { return nil }
func (m *benchMsg) TermWithReason(string) error               { return nil }

// countdown counts and closes done when it reaches its target.
type countdown struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func newCountdown(target int) *countdown {
	return &countdown{target: int64(target), done: make(chan struct{})}
}

func (c *countdown) add() {
	if c != nil && c.n.Add(1) == c.target {
		close(c.done)
	}
}

// countDeliverer counts deliveries and signals when a target is reached: a receiver that costs
// next to nothing, so that the benchmark measures the dispatch.
type countDeliverer struct{ *countdown }

func newCountDeliverer(target int) *countDeliverer { return &countDeliverer{newCountdown(target)} }

func (d *countDeliverer) Deliver(context.Context, *Delivery) Outcome {
	d.add()
	return Outcome{Result: Delivered, Status: 204}
}

// benchWorker is a fresh worker of m that delivers to a countDeliverer expecting n events.
func benchWorker(m *Manager, ep *Endpoint, n int) *worker {
	m.deliver = newCountDeliverer(n)
	return newWorker(ep, m, newProgress(ep.ID, nil))
}

// stopParked ends w's lane goroutines, parked once their lanes are done, and waits for them.
func stopParked(w *worker) {
	w.lanes.stop()
	w.lanes.wg.Wait()
}

// BenchmarkLaneDispatch measures routing an event to its entity's lane, delivering it (a no-op
// receiver) and acking, per event, over many entities — beside a baseline that hands the same
// events to a fixed pool of goroutines over a channel with no ordering at all.
func BenchmarkLaneDispatch(b *testing.B) {
	const batch = 1024
	for _, entities := range []int{1, 64, 1024} {
		msgs := make([]*benchMsg, batch)
		for i := range msgs {
			entity := fmt.Sprintf("MSCU%07d", i%entities)
			msgs[i] = &benchMsg{
				subject: "evt.tos.cargo_loaded",
				data:    fmt.Appendf(nil, `{"id":"ev-%d","type":"cargo_loaded","source":"tos","entity":%q,"occurred_at":"2026-11-23T10:00:00Z","data":{}}`, i, entity),
				hdr:     nats.Header{},
			}
		}
		b.Run(fmt.Sprintf("lanes/entities=%d", entities), func(b *testing.B) {
			m := &Manager{o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.Nop()}
			ep := &Endpoint{ID: "ep_bench"}
			seq := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				w := benchWorker(m, ep, batch)
				for _, msg := range msgs {
					seq++
					msg.meta.Sequence.Stream = seq
					w.route(context.Background(), msg, seq, msg.meta.Timestamp)
				}
				<-m.deliver.(*countDeliverer).done
				stopParked(w)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
		// The dispatch alone: the envelopes were parsed by another endpoint's worker (checked),
		// as for all but one endpoint an event fans out to; one worker for the whole run, as an
		// endpoint's lives for many batches (its lane goroutines parked between them), and each
		// batch new events of the same entities, whose marks replace the last batch's.
		b.Run(fmt.Sprintf("dispatch/entities=%d", entities), func(b *testing.B) {
			m := &Manager{o: Options{}.withDefaults(), checked: newChecked(), conds: map[string]*conditionStats{}, log: zerolog.Nop()}
			ep := &Endpoint{ID: "ep_bench"}
			// The cache's entries, one per slot, each batch set to its events' sequences: the
			// batch before is let go of by then.
			entries := make([]checkedEntry, checkedSize)
			for i := range entries {
				msg := msgs[i%batch]
				env, reason := checkEvent(context.Background(), builtinCatalogue{}, msg)
				if reason != "" {
					b.Fatal(reason)
				}
				env.Data = nil
				entries[i] = checkedEntry{at: msg.meta.Timestamp.UnixNano(), v: verdict{env: env}}
			}
			w := benchWorker(m, ep, batch)
			defer stopParked(w)
			seq := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				acks := newCountdown(batch)
				for i, msg := range msgs {
					s := seq + uint64(i) + 1
					e := &entries[(s-1)%checkedSize] // msgs[i]'s: s-1 is i plus a multiple of batch
					e.seq = s
					m.checked.slot(s).Store(e)
					msg.acked = acks
				}
				for _, msg := range msgs {
					seq++
					w.route(context.Background(), msg, seq, msg.meta.Timestamp)
				}
				<-acks.done // the batch's last event let go of
			}
			for _, msg := range msgs {
				msg.acked = nil
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
		b.Run(fmt.Sprintf("baseline-pool/entities=%d", entities), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := newCountDeliverer(batch)
				ch := make(chan *benchMsg, 64)
				var wg sync.WaitGroup
				for range 64 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for msg := range ch {
							d.Deliver(context.Background(), &Delivery{Body: msg.data})
						}
					}()
				}
				for _, msg := range msgs {
					ch <- msg
				}
				close(ch)
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
	}
}
