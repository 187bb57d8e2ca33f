package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/backoff"
	"github.com/quaycast/quaycast/subjects"
)

// benchSource is the <source> of every event the harness publishes: evt.bench.<type>.
const benchSource = "bench"

// events is the sequence of a run's events: which type and entity the i-th one has. It is the
// same in every round (made from the seed); only the ids differ, by their round prefix.
type events struct {
	sc       Scenario
	types    []uint8
	entities []int32
	tenants  []int32 // with Scenario.Tenants: the tenant each event names
}

func newEvents(sc Scenario) *events {
	rnd := rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15))
	e := &events{sc: sc, types: make([]uint8, sc.Events), entities: make([]int32, sc.Events)}
	for i := range sc.Events {
		e.types[i] = uint8(rnd.IntN(len(sc.Types)))
		if sc.Entities == sc.Events { // every event its own entity
			e.entities[i] = int32(i)
		} else {
			e.entities[i] = int32(rnd.IntN(sc.Entities))
		}
		if sc.Tenants > 0 {
			e.tenants = append(e.tenants, int32(rnd.IntN(sc.Tenants)))
		}
	}
	return e
}

// tenant is the tenant event i names; "" in a run without tenants.
func (e *events) tenant(i int) string {
	if e.tenants == nil {
		return ""
	}
	return e.sc.tenant(int(e.tenants[i]))
}

func (e *events) id(prefix string, i int) string { return prefix + fmt.Sprintf("%08d", i) }
func (e *events) typ(i int) string               { return e.sc.Types[e.types[i]] }
func (e *events) entity(i int) string            { return fmt.Sprintf("BENCH%07d", e.entities[i]) }

// body is the envelope of event i with publish offset t; its data is padded so that the whole
// body has the scenario's size.
func (e *events) body(dst []byte, prefix string, i int, t time.Duration) []byte {
	dst = append(dst[:0], `{"id":"`...)
	dst = append(dst, e.id(prefix, i)...)
	dst = append(dst, `","type":"`...)
	dst = append(dst, e.typ(i)...)
	dst = append(dst, `","source":"`+benchSource+`","entity":"`...)
	dst = append(dst, e.entity(i)...)
	if tenant := e.tenant(i); tenant != "" {
		dst = append(dst, `","tenants":["`...)
		dst = append(dst, tenant...)
		dst = append(dst, `"]`...)
	} else {
		dst = append(dst, '"')
	}
	dst = append(dst, `,"occurred_at":"2026-11-23T10:00:00Z","data":{"t":`...)
	dst = strconv.AppendInt(dst, int64(t), 10)
	dst = append(dst, `,"pad":"`...)
	for pad := int(e.sc.Size) - len(dst) - len(`"}}`); pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}}`...)
}

// publishing is how a round's publishing went.
type publishing struct {
	start, end time.Duration // offsets from the epoch: first publish, last PubAck
	count      atomic.Int64  // acknowledged

	mu      sync.Mutex // the publishing loop and the PubAck waiter both count
	retried int        // publishes retried after an error
	failed  int        // still not stored after the retries
	lastErr error
}

// rate is events acknowledged per second.
func (p *publishing) rate() float64 {
	d := (p.end - p.start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.count.Load()) / d
}

// publish sends every event of the round to JetStream with PublishMsgAsync, at most the window
// awaiting their PubAck, paced to the scenario's rate (if any). Before each publish, before is
// called with the event's index, id and entity, in publish order (the checker must know an event
// before a receiver can get it). It returns when every publish is acknowledged or failed, or ctx
// ends.
func publish(ctx context.Context, js jetstream.JetStream, ev *events, prefix string, now func() time.Duration, before func(i int, id, entity string)) *publishing {
	p := &publishing{}
	window := make(chan struct{}, ev.sc.Window)
	futures := make(chan jetstream.PubAckFuture, ev.sc.Window)
	acks := make(chan struct{})
	go func() {
		defer close(acks)
		p.awaitAcks(ctx, js, futures, window)
	}()
	p.start = now()
	p.send(ctx, js, ev, prefix, now, before, window, futures)
	close(futures)
	<-acks
	p.end = now()
	return p
}

// send publishes the events in turn, each once it is due and there is room in the window, until
// all are sent or ctx ends.
func (p *publishing) send(ctx context.Context, js jetstream.JetStream, ev *events, prefix string, now func() time.Duration, before func(i int, id, entity string),
	window chan struct{}, futures chan<- jetstream.PubAckFuture) {
	buf := make([]byte, 0, int(ev.sc.Size)+64)
	for i := range ev.sc.Events {
		if !p.due(ctx, i, ev.sc.Rate, now) {
			return
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		id, entity := ev.id(prefix, i), ev.entity(i)
		before(i, id, entity)
		msg := nats.NewMsg(subjects.Prefix + "." + benchSource + "." + ev.typ(i))
		buf = ev.body(buf, prefix, i, now())
		msg.Data = append([]byte(nil), buf...)
		msg.Header.Set(subjects.HeaderMsgID, id)
		msg.Header.Set(subjects.HeaderEntity, entity)
		if tenant := ev.tenant(i); tenant != "" {
			msg.Header.Set(subjects.HeaderTenants, tenant)
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			p.retry(ctx, js, msg, err)
			<-window
			continue
		}
		futures <- f // awaitAcks frees its place in the window
	}
}

// due waits until event i is due at rate events/s (0: at once); false if ctx ended first.
func (p *publishing) due(ctx context.Context, i int, rate float64, now func() time.Duration) bool {
	if rate <= 0 {
		return true
	}
	wait := p.start + time.Duration(float64(i)/rate*float64(time.Second)) - now()
	if wait <= 0 {
		return true
	}
	select {
	case <-time.After(wait):
		return true
	case <-ctx.Done():
		return false
	}
}

// awaitAcks waits for each publish's PubAck in turn (they arrive in publish order, mostly),
// publishes again one that failed, and frees its place in the window.
func (p *publishing) awaitAcks(ctx context.Context, js jetstream.JetStream, futures <-chan jetstream.PubAckFuture, window <-chan struct{}) {
	for f := range futures {
		select {
		case <-f.Ok():
			p.count.Add(1)
		case <-ctx.Done(): // given up: counted as not stored
			p.mu.Lock()
			p.failed++
			p.lastErr = ctx.Err()
			p.mu.Unlock()
		case err := <-f.Err():
			p.retry(ctx, js, f.Msg(), err)
		}
		<-window
	}
}

// retry publishes msg again after err, and counts the retry and how it went.
func (p *publishing) retry(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, err error) {
	ok := retryPublish(ctx, js, msg)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retried++
	if ok {
		p.count.Add(1)
		return
	}
	p.failed++
	p.lastErr = err
}

// retryPublish publishes msg synchronously up to 5 times, waiting 0.1 s, then twice as long
// before each next try (1.5 s in all); the Nats-Msg-Id makes a retry of a publish that was stored
// after all harmless.
func retryPublish(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) bool {
	retry := backoff.Backoff{First: 100 * time.Millisecond}
	for try := 1; ; try++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return true
		}
		if try == 5 || backoff.Sleep(ctx, retry.Next()) != nil {
			return false
		}
	}
}
