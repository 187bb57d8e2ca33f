package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/subjects"
)

// The baseline is the minimal pipeline the gateway is measured against, in the same run, over
// the same receivers: per endpoint one durable pull consumer on the events stream with the same
// kind of filter as the gateway's, Consume, sign (Standard Webhooks), POST with a pooled client,
// Ack (without waiting for the answer, as the gateway acks). No lanes, breakers, logging,
// metrics, envelope parsing or dead letters. To keep the promise the checker holds it to — in
// order per entity — and the gateway's concurrency (64 POSTs in flight per endpoint), messages
// are hashed by their entity header onto a fixed set of partitions served one message at a time.
// A failed POST is retried after 100 ms (or the receiver's Retry-After) until it succeeds or the
// round ends.

// Baseline consumer settings, the gateway's defaults, with its bound on POSTs in flight across all
// endpoints: without it 1,000 endpoints make tens of thousands of connections at once and this
// process runs out of file descriptors.
const (
	baselineInFlight   = defaults.MaxInFlight
	baselineTotal      = defaults.MaxInFlightTotal
	baselineAckPending = defaults.MaxAckPending
	baselinePull       = 256
	baselineTimeout    = defaults.DeliveryTimeout
	// baselineExpiry is shorter than nats.go's 30 s default. Under load a Consume sometimes
	// stops pulling with messages pending (the server holds no pull request) until its missed
	// heartbeat check restarts it, after twice the heartbeat, which is half the expiry: with the
	// default that is a ~30 s stall of one endpoint, with 5 s it is ~5 s.
	baselineExpiry = 5 * time.Second
)

type baseline struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	client  *http.Client
	fast    *fasthttp.Client // set: POST with it instead of client (--baseline-client fasthttp)
	run     string           // run id, in consumer names
	started time.Time

	mu   sync.Mutex
	eps  []*baselineEndpoint
	stop chan struct{}
	errs map[string]int // Consume errors by text, reported in the round's notes
	sem  chan struct{}  // POSTs in flight across endpoints
}

type baselineEndpoint struct {
	b      *baseline
	ep     *endpoint
	name   string
	signer *signature.Signer
	cons   jetstream.Consumer
	cc     jetstream.ConsumeContext
	parts  []*partition
	wg     sync.WaitGroup
	ctx    context.Context
}

// partition is a FIFO of messages delivered one after the other.
type partition struct {
	mu      sync.Mutex
	q       []jetstream.Msg
	running bool
}

func newBaseline(js jetstream.JetStream, stream jetstream.Stream, run, client string) *baseline {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // as the gateway's sender: no cap over all receivers
	tr.MaxIdleConnsPerHost = 128
	tr.IdleConnTimeout = 90 * time.Second
	b := &baseline{
		js: js, stream: stream, run: run, stop: make(chan struct{}), started: time.Now(), sem: make(chan struct{}, baselineTotal),
		client: &http.Client{Transport: tr, Timeout: baselineTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	if client == "fasthttp" {
		b.fast = &fasthttp.Client{MaxConnsPerHost: baselineTotal, MaxIdleConnDuration: 90 * time.Second}
	}
	return b
}

// add creates ep's consumer, starting at startSeq, with a new signing secret.
func (b *baseline) add(ctx context.Context, ep *endpoint, startSeq uint64, partitions int) (*baselineEndpoint, error) {
	secret, err := signature.NewSecret(signature.Standard)
	if err != nil {
		return nil, err
	}
	signer, err := signature.NewSigner(signature.Standard, signature.Options{}, secret)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("bench_%s_%05d", b.run, ep.index)
	filters, err := subjects.Filters(ep.selectors)
	if err != nil {
		return nil, err
	}
	filters = append(filters, subjects.ReplayFilter(name)) // as the gateway's: types + its replays
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := b.stream.CreateOrUpdateConsumer(cctx, jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "quaycast bench baseline",
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       startSeq,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           defaults.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     baselineAckPending,
		InactiveThreshold: 10 * time.Minute, // the server removes it if the harness dies
	})
	if err != nil {
		return nil, fmt.Errorf("create baseline consumer %s: %w", name, err)
	}
	be := &baselineEndpoint{b: b, ep: ep, name: name, signer: signer, cons: cons, parts: make([]*partition, partitions)}
	for i := range be.parts {
		be.parts[i] = &partition{}
	}
	ep.id, ep.secret = name, secret
	b.mu.Lock()
	b.eps = append(b.eps, be)
	b.mu.Unlock()
	return be, nil
}

// start consumes; deliveries run on ctx.
func (be *baselineEndpoint) start(ctx context.Context) error {
	be.ctx = ctx
	cc, err := be.cons.Consume(be.onMessage, jetstream.PullMaxMessages(baselinePull), jetstream.PullExpiry(baselineExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			be.b.mu.Lock()
			if be.b.errs == nil {
				be.b.errs = map[string]int{}
			}
			be.b.errs[fmt.Sprintf("%s (%s)", err, time.Since(be.b.started).Round(time.Second))]++
			be.b.mu.Unlock()
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", be.name, err)
	}
	be.b.mu.Lock()
	be.cc = cc
	be.b.mu.Unlock()
	return nil
}

func (be *baselineEndpoint) onMessage(msg jetstream.Msg) {
	// With tenants the baseline filters in the pipeline: every endpoint reads every event of its
	// types and drops the other tenants' (the alternative to the gateway's server-side routing).
	if t := be.ep.tenant; t != "" && !slices.Contains(subjects.ParseTenantsHeader(msg.Headers().Get(subjects.HeaderTenants)), t) {
		_ = msg.Ack()
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(msg.Headers().Get(subjects.HeaderEntity)))
	p := be.parts[h.Sum32()%uint32(len(be.parts))]
	p.mu.Lock()
	p.q = append(p.q, msg)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		be.wg.Add(1)
		go be.serve(p)
	}
}

// serve delivers a partition's messages one after the other until it is empty.
func (be *baselineEndpoint) serve(p *partition) {
	defer be.wg.Done()
	buf := make([]byte, 0, 128)
	for {
		select {
		case <-be.b.stop: // the round is over: what is left stays unacknowledged
			return
		default:
		}
		p.mu.Lock()
		if len(p.q) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		msg := p.q[0]
		p.q[0] = nil
		p.q = p.q[1:]
		p.mu.Unlock()
		if !be.deliver(msg, &buf) {
			return
		}
	}
}

// deliver POSTs msg until the receiver takes it, then acks it; false if the round ended first.
func (be *baselineEndpoint) deliver(msg jetstream.Msg, buf *[]byte) bool {
	id := msg.Headers().Get(subjects.HeaderMsgID)
	body := msg.Data()
	for {
		select {
		case be.b.sem <- struct{}{}:
		case <-be.b.stop:
			return false
		}
		wait, ok := be.post(id, body, buf)
		<-be.b.sem
		if ok {
			break
		}
		select {
		case <-time.After(wait):
		case <-be.b.stop:
			return false
		}
	}
	// As the gateway acks: without waiting for the server's answer. Waiting for it (DoubleAck,
	// until December 2) held each partition a round trip per message, a cost the gateway no
	// longer pays, and flattered its ratio. A lost ack makes JetStream redeliver: the checker
	// counts a duplicate.
	_ = msg.Ack()
	return true
}

func (be *baselineEndpoint) post(id string, body []byte, buf *[]byte) (time.Duration, bool) {
	if be.b.fast != nil {
		return be.postFast(id, body, buf)
	}
	ctx, cancel := context.WithTimeout(be.ctx, baselineTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, be.ep.url, bytes.NewReader(body))
	if err != nil {
		return time.Second, false
	}
	ts := time.Now().Unix()
	*buf = be.signer.AppendSignature((*buf)[:0], id, ts, body)
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h[signature.HeaderID] = []string{id}
	h[signature.HeaderTimestamp] = []string{strconv.FormatInt(ts, 10)}
	h[signature.HeaderSignature] = []string{string(*buf)}
	resp, err := be.b.client.Do(req)
	if err != nil {
		return 100 * time.Millisecond, false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return answered(resp.StatusCode, resp.Header.Get("Retry-After"))
}

// answered is what a receiver's answer comes to: delivered, or the wait before the next try.
func answered(status int, retryAfter string) (time.Duration, bool) {
	if status >= 200 && status < 300 {
		return 0, true
	}
	if s, err := strconv.Atoi(retryAfter); err == nil && s > 0 {
		return time.Duration(s) * time.Second, false
	}
	return 100 * time.Millisecond, false
}

// postFast is post with fasthttp's client.
func (be *baselineEndpoint) postFast(id string, body []byte, buf *[]byte) (time.Duration, bool) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(be.ep.url)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	ts := time.Now().Unix()
	*buf = be.signer.AppendSignature((*buf)[:0], id, ts, body)
	req.Header.Set(signature.HeaderID, id)
	req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.SetBytesV(signature.HeaderSignature, *buf)
	req.SetBodyRaw(body)
	if err := be.b.fast.DoTimeout(req, resp, baselineTimeout); err != nil {
		return 100 * time.Millisecond, false
	}
	return answered(resp.StatusCode(), string(resp.Header.Peek("Retry-After")))
}

// close stops consuming, ends the deliveries and deletes the consumers.
func (b *baseline) close(ctx context.Context) error {
	b.mu.Lock()
	eps := b.eps
	b.eps = nil
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.mu.Unlock()
	var errs []error
	for _, be := range eps {
		if be.cc != nil {
			be.cc.Stop()
		}
	}
	for _, be := range eps {
		if be.cc != nil {
			<-be.cc.Closed()
		}
		be.wg.Wait()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := b.stream.DeleteConsumer(dctx, be.name)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("delete baseline consumer %s: %w", be.name, err))
		}
	}
	b.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// streamOf finds the stream that stores the harness's events (the gateway's events stream).
func streamOf(ctx context.Context, js jetstream.JetStream, typ string) (jetstream.Stream, error) {
	subj := subjects.Prefix + "." + benchSource + "." + typ
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name, err := js.StreamNameBySubject(sctx, subj)
	if err != nil {
		return nil, fmt.Errorf("find the stream of %s: %w", subj, err)
	}
	return js.Stream(sctx, name)
}
