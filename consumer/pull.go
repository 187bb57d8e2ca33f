package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/backoff"
)

// pullExpiry is how long one pull request waits on the server for events, by default
// (Options.PullExpiry): an endpoint awake costs one request per expiry, and no heartbeats.
const pullExpiry = 10 * time.Second

// pulls is what the workers together ask the server for at once. Every worker pulls on the
// gateway's one connection, and a NATS server closes a connection that falls 64 MiB behind
// (max_pending, "Slow Consumer Detected"): one event to 1,000 endpoints asked 1,000 requests of
// 256 events at once, and the server dropped the connection in every such run. So each request
// asks for one awake endpoint's share of pullBudget, in events of the size it got so far: 256
// at 10 endpoints, about 13 at 1,000 — but never fewer than minBatch, since a request costs the
// server about as much as the events it brings (requests of 1 to 4 events made the wake of
// 10,000 endpoints half as slow again). The budget is also what may wait at the server ahead of
// the answer to the manager's ping (watchAcks): at 32 MiB that answer still took over 5 s once
// a fan-out run, at 16 MiB it came in time.
type pulls struct {
	awake atomic.Int64 // endpoints awake (runLocked to the end of runWorker), which share the budget
}

const (
	pullBudget = 16 << 20 // bytes: a quarter of the server's max_pending
	minBatch   = 8
	// assumedEventSize is a worker's estimate of an event's size on the wire before it got any.
	assumedEventSize = 1 << 10
)

// share is how many events one request asks for: an awake endpoint's share of pullBudget in
// events of eventSize bytes, at least minBatch and at most maxBatch.
func (p *pulls) share(eventSize int64, maxBatch int) int {
	n := pullBudget / max(p.awake.Load(), 1) / max(eventSize, 1)
	return int(min(max(n, minBatch), int64(maxBatch)))
}

// The worker makes its own pull requests, on one inbox per run, one request at a time: the next
// is sent once the server has ended the last (its batch delivered, or its 408 at expiry).
// nats.go offers two ways, and each failed here (notes §7):
//   - Consume keeps a running count of what it has asked for and pulls again below half of it.
//     In 12 of 15 bench runs at 10 endpoints that count drifted from the server's: the client
//     waited on a request the server no longer had (num_waiting 0, events pending) until the
//     missed-heartbeat check renewed it, 6–10 s later. A bare Consume loop stalled the same way.
//   - Fetch gives up on a request by its own clock, one second after the expiry, and drops its
//     inbox. On a busy server the request outlives that second; what it delivers then is lost
//     in transit, a gap in the delivery sequence: 603 worker restarts (inSequence) in one run
//     at 2,000 endpoints.
// A request can still be lost without a word (a server restart): it is renewed after two
// expiries, and anything the old one delivers late lands in the same inbox.

// startPulling fetches the consumer's events and hands them to handle in delivery order until ctx
// ends. The returned function stops it and returns once handle will not be called again; what
// was fetched and not handled stays unacknowledged for the next run. It reports whether no
// request of this run is left at the server (puller.noneLeft).
func (w *worker) startPulling(ctx context.Context, stream, consumer string, handle func(jetstream.Msg)) (stop func() (noneLeft bool), err error) {
	nc := w.js.Conn()
	p := &puller{nc: nc, inbox: nc.NewInbox(), next: "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer,
		maxBatch: min(w.o.MaxAckPending, 256), pulls: w.pulls, expiry: w.o.PullExpiry, handle: handle, idle: w.idle, resume: w.awake, ended: make(chan error, 1)}
	p.eventSize.Store(assumedEventSize)
	// A callback subscription: its queue grows as needed (a SubscribeSync allocates 64k slots,
	// 512 KiB per endpoint), and with no limit nothing is dropped — a drop would be a gap.
	sub, err := nc.Subscribe(p.inbox, p.receive)
	if err != nil {
		return nil, fmt.Errorf("subscribe to pulled events: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		retry := backoff.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}
		for ctx.Err() == nil {
			err := p.request(ctx)
			if p.dozing.CompareAndSwap(true, false) && !p.wait(ctx) {
				return
			}
			if err == nil || ctx.Err() != nil {
				retry.Reset()
				continue
			}
			if errors.Is(err, errNoConsumer) {
				select { // the worker looks whether the consumer is gone (gone.go)
				case w.noOne <- struct{}{}:
				default:
				}
			}
			if !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionDraining) {
				w.log.Warn().Err(err).Msg("pull events")
			}
			if backoff.Sleep(ctx, retry.Next()) != nil {
				return
			}
		}
	}()
	return func() bool {
		cancel()
		<-done
		p.mu.Lock() // waits for a message being handled
		p.stopped = true
		p.mu.Unlock()
		_ = sub.Unsubscribe()
		return p.noneLeft()
	}, nil
}

// puller makes the pull requests of one run and receives what they deliver.
type puller struct {
	nc          *nats.Conn
	inbox, next string
	maxBatch    int          // the most one request asks for
	pulls       *pulls       // the manager's, which this worker's requests share
	batch       atomic.Int64 // what the request in flight asked for
	eventSize   atomic.Int64 // a running mean of the size of the events got, on the wire
	expiry      time.Duration
	handle      func(jetstream.Msg)
	idle        chan<- struct{} // told when idleExpiries requests in a row expired with nothing
	resume      <-chan struct{} // the worker's answer to idle when it stays awake
	dozing      atomic.Bool     // idle was told: ask nothing more until resumed
	outstanding atomic.Bool     // a request was sent that the server has not ended
	uncertain   atomic.Bool     // a request was given up on: one may be left at the server
	ended       chan error      // the request in flight is over (with why, if something is wrong)

	mu      sync.RWMutex
	stopped bool
	got     int // of the request in flight; on the subscription's goroutine only
	empty   int // requests in a row that expired with nothing; on the subscription's goroutine only
}

// request sends one pull request and waits until the server has ended it, or for two expiries:
// a request lost without a word (a server restart) is renewed then.
func (p *puller) request(ctx context.Context) error {
	batch := p.pulls.share(p.eventSize.Load(), p.maxBatch)
	p.batch.Store(int64(batch))
	req, _ := json.Marshal(struct {
		Batch   int           `json:"batch"`
		Expires time.Duration `json:"expires"`
	}{batch, p.expiry})
	p.outstanding.Store(true)
	if err := p.nc.PublishRequest(p.next, p.inbox, req); err != nil {
		return err
	}
	lost := time.NewTimer(2 * p.expiry)
	defer lost.Stop()
	select {
	case err := <-p.ended:
		return err
	case <-lost.C:
		p.uncertain.Store(true)
		return nil
	case <-ctx.Done():
		return nil
	}
}

// wait holds the next request back after idle was told, so that a worker that goes to sleep
// leaves no request at the server (sleep.go, cleanSleep): until the worker answers that it stays
// awake, or for one expiry at most, should the answer be missed. False once ctx has ended.
func (p *puller) wait(ctx context.Context) bool {
	t := time.NewTimer(p.expiry)
	defer t.Stop()
	select {
	case <-p.resume:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// noneLeft reports, once the requests have stopped, whether the server holds none of them: each
// was ended by the server (a full batch or a status), none given up on.
func (p *puller) noneLeft() bool { return !p.outstanding.Load() && !p.uncertain.Load() }

// receive handles one message of the inbox: an event, or a status that ends the request.
func (p *puller) receive(msg *nats.Msg) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopped {
		return // left unacknowledged for the next run
	}
	switch status := msg.Header.Get("Status"); {
	case status == "" || len(msg.Data) > 0:
		p.empty = 0
		size := int64(msg.Size())
		p.eventSize.Add((size - p.eventSize.Load()) / 8) // only this goroutine writes it
		p.handle(pulledMsg{m: msg, nc: p.nc})
		if p.got++; int64(p.got) >= p.batch.Load() {
			p.end(nil)
		}
	case status == "100": // a heartbeat: not asked for, harmless
	case status == "408" || status == "404": // expired: the next request follows at once
		if p.got == 0 {
			if p.empty++; p.empty >= idleExpiries {
				p.dozing.Store(true)
				select {
				case p.idle <- struct{}{}:
				default:
				}
			}
		}
		p.end(nil)
	case status == "503" || status == "409" && msg.Header.Get("Description") == "Consumer Deleted":
		// No one answers for the consumer: deleted, or (in a cluster) between leaders.
		p.end(fmt.Errorf("pull request ended: %s %s: %w", status, msg.Header.Get("Description"), errNoConsumer))
	default: // 409 and the like: the request is over, and says why
		p.end(fmt.Errorf("pull request ended: %s %s", status, msg.Header.Get("Description")))
	}
}

func (p *puller) end(err error) {
	p.got = 0
	p.outstanding.Store(false)
	select {
	case p.ended <- err:
	default: // a late status of a request given up on, while another is in flight
	}
}

// pulledMsg is an event from a pull request, acknowledged as nats.go's jetstream messages are:
// by a reply to its subject.
type pulledMsg struct {
	m  *nats.Msg
	nc *nats.Conn
}

var _ jetstream.Msg = pulledMsg{}

func (p pulledMsg) Data() []byte         { return p.m.Data }
func (p pulledMsg) Headers() nats.Header { return p.m.Header }
func (p pulledMsg) Subject() string      { return p.m.Subject }
func (p pulledMsg) Reply() string        { return p.m.Reply }
func (p pulledMsg) Ack() error           { return p.reply("+ACK") }
func (p pulledMsg) Nak() error           { return p.reply("-NAK") }
func (p pulledMsg) InProgress() error    { return p.reply("+WPI") }
func (p pulledMsg) Term() error          { return p.reply("+TERM") }

func (p pulledMsg) TermWithReason(reason string) error { return p.reply("+TERM " + reason) }

func (p pulledMsg) NakWithDelay(delay time.Duration) error {
	return p.reply(fmt.Sprintf(`-NAK {"delay": %d}`, delay.Nanoseconds()))
}

// DoubleAck acknowledges and waits for the server to confirm it.
func (p pulledMsg) DoubleAck(ctx context.Context) error {
	if p.m.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	_, err := p.nc.RequestWithContext(ctx, p.m.Reply, []byte("+ACK"))
	return err
}

func (p pulledMsg) reply(body string) error {
	if p.m.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	return p.nc.Publish(p.m.Reply, []byte(body))
}

// Metadata is read from the reply subject, as nats.go does.
func (p pulledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := p.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain,
	}, nil
}
