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
	}
	return e
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
	dst = append(dst, `","occurred_at":"2026-11-23T10:00:00Z","data":{"t":`...)
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
	retried    int           // publishes retried after an error
	failed     int           // still not stored after the retries
	lastErr    error
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
	sc := ev.sc
	p := &publishing{}
	window := make(chan struct{}, sc.Window)
	futures := make(chan jetstream.PubAckFuture, sc.Window)
	var mu sync.Mutex
	acks := make(chan struct{})
	go func() { // PubAcks arrive in publish order, mostly: wait for each in turn
		defer close(acks)
		for f := range futures {
			select {
			case <-f.Ok():
			case <-ctx.Done(): // given up: counted as not stored
				mu.Lock()
				p.failed++
				p.lastErr = ctx.Err()
				mu.Unlock()
				<-window
				continue
			case err := <-f.Err():
				ok := retryPublish(ctx, js, f.Msg())
				mu.Lock()
				p.retried++
				if !ok {
					p.failed++
					p.lastErr = err
				}
				mu.Unlock()
				if !ok {
					<-window
					continue
				}
			}
			p.count.Add(1)
			<-window
		}
	}()

	p.start = now()
	buf := make([]byte, 0, int(sc.Size)+64)
publishing:
	for i := range sc.Events {
		if sc.Rate > 0 {
			due := p.start + time.Duration(float64(i)/sc.Rate*float64(time.Second))
			if wait := due - now(); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					break publishing
				}
			}
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			break publishing
		}
		id, entity := ev.id(prefix, i), ev.entity(i)
		before(i, id, entity)
		msg := nats.NewMsg(subjects.Prefix + "." + benchSource + "." + ev.typ(i))
		buf = ev.body(buf, prefix, i, now())
		msg.Data = append([]byte(nil), buf...)
		msg.Header.Set(subjects.HeaderMsgID, id)
		msg.Header.Set(subjects.HeaderEntity, entity)
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			ok := retryPublish(ctx, js, msg)
			mu.Lock()
			p.retried++
			if ok {
				p.count.Add(1)
			} else {
				p.failed++
				p.lastErr = err
			}
			mu.Unlock()
			<-window
			continue
		}
		futures <- f
	}
	close(futures)
	<-acks
	p.end = now()
	return p
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
