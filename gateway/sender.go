package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/payload"
	"github.com/quaycast/quaycast/subjects"
)

// SenderOptions tune the HTTP side of delivery. The zero value takes the defaults beside each field
// (package defaults, whose values the flags of the same name show).
type SenderOptions struct {
	Timeout          time.Duration       // one POST, connect to last byte of the reply (--delivery-timeout): defaults.DeliveryTimeout
	MaxResponseBytes int64               // of a reply read, kept and passed on (--max-reply-bytes): defaults.MaxReplyBytes
	MaxReplyMemory   int64               // replies held at once over all POSTs (--reply-memory): defaults.ReplyMemory, at least MaxResponseBytes+1
	Breaker          BreakerOptions      // per endpoint
	OnBreakerChange  func(BreakerEvent)  // called on every breaker transition; may be nil
	Log              *attempts.Log       // the delivery log; nil: none
	LogFailuresOnly  bool                // record only attempts not delivered (and test sends)
	Replies          jetstream.JetStream // where receivers' replies are published; nil: not passed on
	OnAttempt        func(a *Attempt)    // called after every POST (metrics); may be nil
	Targets          TargetPolicy        // which addresses may be dialled
	// Fence, when set, is asked before every write to a receiver's connection: once it says no (a
	// clustered gateway's lease ran out) not one more byte leaves for a receiver.
	Fence        func() bool
	MaxInFlight  int               // POSTs in flight over all endpoints (--max-in-flight-total): defaults.MaxInFlightTotal
	OnLogDropped func(records int) // called with the delivery-log records dropped; may be nil
	// Catalogue is the live event catalogue, for display names; nil: the built-in types.
	Catalogue func() *subjects.Catalogue
	// TracerProvider makes a span of each POST, a child of the event's trace context; nil: no
	// spans, and the event's trace context is passed on to the receiver as it came.
	TracerProvider trace.TracerProvider
}

// Sender delivers events to endpoints: it signs them and POSTs them over pooled keep-alive
// connections (receivers.go), and turns the reply into an Outcome.
type Sender struct {
	// direct makes the POSTs with fasthttp, stdlib with net/http those netHTTPFor sends there
	// (receivers.go). Neither follows a redirect: it is an answer, not a new target
	// (following it could send signed events somewhere the operator never registered).
	direct *fasthttp.Client
	stdlib *http.Transport
	dialer *receiverDialer
	log    zerolog.Logger
	o      SenderOptions
	tracer trace.Tracer // nil: no spans

	mu        sync.Mutex
	endpoints map[string]*endpointState
	bufs      sync.Pool     // *[]byte for signature header values
	inFlight  chan struct{} // a slot per POST in flight
	replyMem  replyMemory   // bytes of replies held
	aborts    atomic.Int64  // Abort calls so far

	droppedLog zerolog.Logger // log, sampled to a line a minute: for dropped delivery-log records
}

var _ consumer.Deliverer = (*Sender)(nil)

// endpointState is what the sender keeps per endpoint: the signer of its current revision and
// its breaker, which lives as long as its URL does.
type endpointState struct {
	revision   uint64
	url        string
	signer     *signature.Signer
	custom     http.Header // the custom headers sent (see customHeaders)
	layout     consumer.Layout
	shaper     *payload.Shaper // nil: the body is sent as published
	err        error
	target     string      // url as fasthttp is given it (see netHTTPFor)
	netHTTP    bool        // POST through net/http's transport (see netHTTPFor)
	bigReplies atomic.Bool // its replies' headers outgrew fasthttp's buffer: net/http too, while url stays
	breaker    *breaker
	validUntil time.Time // a previous secret's grace ends: sign without it from then on
}

// NewSender builds a Sender.
func NewSender(log zerolog.Logger, o SenderOptions) *Sender {
	defaults.Fill(&o.Timeout, defaults.DeliveryTimeout)
	defaults.Fill(&o.MaxResponseBytes, defaults.MaxReplyBytes)
	defaults.Fill(&o.MaxReplyMemory, defaults.ReplyMemory)
	o.MaxReplyMemory = max(o.MaxReplyMemory, o.MaxResponseBytes+1)
	o.Breaker = o.Breaker.withDefaults()
	defaults.Fill(&o.MaxInFlight, defaults.MaxInFlightTotal)
	dialer := newReceiverDialer(o.Targets, o.Fence)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.dial(ctx, network, addr, false)
	}
	// No cap over all receivers: it evicts one receiver's idle connections to keep another's,
	// and at 1,000 endpoints on 20 hosts a cap of 1,024 closed and dialled ~700 connections a
	// second (bench/PERFORMANCE.md). Each receiver's own cap and the idle timeout bound the pool.
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 128
	tr.IdleConnTimeout = 90 * time.Second
	// No ResponseHeaderTimeout: do's deadline (the same Timeout, begun before the request is
	// written) bounds the wait for the headers already.
	s := &Sender{
		direct:     dialer.directClient(o.MaxInFlight, o.Timeout),
		stdlib:     tr,
		dialer:     dialer,
		log:        log,
		droppedLog: log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute}),
		o:          o,
		endpoints:  make(map[string]*endpointState),
		inFlight:   make(chan struct{}, o.MaxInFlight),
		bufs:       sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }},
	}
	if o.Log != nil {
		o.Log.OnDropped(s.logDropped)
	}
	s.replyMem.max = o.MaxReplyMemory
	if o.TracerProvider != nil {
		s.tracer = o.TracerProvider.Tracer(tracerName)
	}
	return s
}

// OpenConnections is how many connections to receivers are open, in use or idle in a pool. One a
// receiver closed while idle counts until it is next taken, or idles out (90 s).
func (s *Sender) OpenConnections() int64 { return int64(s.dialer.count()) }

// Abort ends every POST in flight at once, closing the connections to receivers: for a stop whose
// --shutdown-timeout has passed, and a lost lease (a POST through fasthttp does not end with its
// context).
func (s *Sender) Abort() {
	s.aborts.Add(1) // first: a POST that fails for it is not the receiver's failure (Deliver)
	s.dialer.closeAll()
}

// closeIdleConnections closes the connections idle in both pools.
func (s *Sender) closeIdleConnections() {
	s.direct.CloseIdleConnections()
	s.stdlib.CloseIdleConnections()
}

// state returns what the sender keeps for the endpoint, renewed when its definition changed.
func (s *Sender) state(ep *consumer.Endpoint) *endpointState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.endpoints[ep.ID]
	now := time.Now()
	if st != nil && st.revision == ep.Revision && (st.validUntil.IsZero() || now.Before(st.validUntil)) {
		return st
	}
	next := &endpointState{revision: ep.Revision, url: ep.URL, custom: customHeaders(ep), layout: ep.Layout}
	next.netHTTP, next.target = netHTTPFor(s.stdlib.Proxy, ep.URL, next.custom)
	if st != nil && st.url == ep.URL {
		next.bigReplies.Store(st.bigReplies.Load())
	}
	if !ep.Body.IsZero() {
		next.shaper, next.err = payload.New(ep.Body)
	}
	if ep.SecretErr != nil {
		next.err = ep.SecretErr
	} else if next.err == nil {
		next.signer, next.validUntil, next.err = endpointSigner(ep, now)
	}
	if st != nil && st.url == ep.URL && st.breaker.tenant == ep.Tenant {
		next.breaker = st.breaker
	} else {
		next.breaker = newBreaker(ep.ID, ep.Tenant, s.o.Breaker, s.o.OnBreakerChange)
	}
	s.endpoints[ep.ID] = next
	return next
}

// endpointSigner builds the signer of an endpoint as it is at now: its profile, its secret and the
// previous secrets still in their grace period; validUntil is when the first of those ends.
func endpointSigner(ep *consumer.Endpoint, now time.Time) (sg *signature.Signer, validUntil time.Time, err error) {
	profile, err := signature.ParseProfile(ep.Signing.Profile)
	if err != nil {
		return nil, time.Time{}, err
	}
	previous, validUntil := ep.ActivePrevious(now)
	prev := make([]string, len(previous))
	for i, p := range previous {
		prev[i] = p.Reveal()
	}
	sg, err = signature.NewSigner(profile, SignatureOptions(ep.Signing), ep.Secret.Reveal(), prev...)
	return sg, validUntil, err
}

// SignatureOptions maps an endpoint's signing settings to the signer's options.
func SignatureOptions(s consumer.Signing) signature.Options {
	return signature.Options{HeaderName: s.HeaderName, HexUpper: s.HexUpper}
}

// Breaker reports an endpoint's breaker; ok is false before its first delivery.
func (s *Sender) Breaker(id string) (status BreakerStatus, ok bool) {
	s.mu.Lock()
	st := s.endpoints[id]
	s.mu.Unlock()
	if st == nil {
		return BreakerStatus{State: "closed"}, false
	}
	return st.breaker.status(), true
}

// Forget drops what the sender keeps for an endpoint that was deleted.
func (s *Sender) Forget(id string) {
	s.mu.Lock()
	delete(s.endpoints, id)
	s.mu.Unlock()
}

// Deliver signs and POSTs one event, through the endpoint's breaker: while it is open no POST is
// made and the outcome is BreakerOpen. Each POST is recorded in the delivery log.
func (s *Sender) Deliver(ctx context.Context, d *consumer.Delivery) consumer.Outcome {
	st := s.state(d.Endpoint)
	if st.err != nil {
		return consumer.Outcome{Result: consumer.Retry, Err: fmt.Errorf("endpoint secret: %w", st.err)}
	}
	aborts := s.aborts.Load()
	return st.breaker.run(func() consumer.Outcome {
		out, _ := s.post(ctx, d, st, false)
		return out
	}, func() bool { return ctx.Err() != nil || s.aborts.Load() != aborts }) // neither is the receiver's failure
}

// Test delivers d now, outside the stream and the breaker, through the same signing and HTTP
// path, and returns what happened.
func (s *Sender) Test(ctx context.Context, d *consumer.Delivery) (*Attempt, error) {
	st := s.state(d.Endpoint)
	if st.err != nil {
		return nil, fmt.Errorf("endpoint secret: %w", st.err)
	}
	_, a := s.post(ctx, d, st, true)
	return a, nil
}

// post makes one attempt and records it.
func (s *Sender) post(ctx context.Context, d *consumer.Delivery, st *endpointState, test bool) (consumer.Outcome, *Attempt) {
	ep := d.Endpoint
	a := &Attempt{
		ID: "att_" + nuid.Next(), EndpointID: ep.ID, EventID: d.Event.ID, EventSeq: d.Seq, Type: d.Event.Type,
		Entity: d.Event.Entity, Attempt: d.Attempt, Test: test, At: time.Now().UTC(), Request: AttemptRequest{URL: ep.URL},
	}
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.startAttempt(ctx, d, test)
	}
	out, reply, held := s.do(ctx, d, st, a)
	a.DurationMS = float64(time.Since(a.At).Microseconds()) / 1000
	a.Outcome = out.Result.String()
	if out.Err != nil {
		a.Error = out.Err.Error()
	}
	if span != nil {
		endAttempt(span, a, out)
	}
	if reply != nil {
		s.passOnReply(d, a, reply)
	}
	s.replyMem.release(held)
	s.record(a)
	return out, a
}

// do signs and POSTs, filling the request and response parts of a; it returns the outcome and
// the body of a 2xx reply to pass on, with the reply memory it holds (to release).
func (s *Sender) do(ctx context.Context, d *consumer.Delivery, st *endpointState, a *Attempt) (out consumer.Outcome, reply []byte, held int64) {
	ep := d.Endpoint
	bp := s.bufs.Get().(*[]byte)
	body, own, err := s.prepare(st, d, time.Now(), (*bp)[:0])
	if err != nil {
		s.bufs.Put(bp)
		return consumer.Outcome{Result: consumer.Permanent, Err: fmt.Errorf("shape body: %w", err)}, nil, 0
	}
	h := make(http.Header, len(st.custom)+ownHeaderCount+2) // sized: no growth, with room for trace headers
	for k, v := range st.custom {                           // read-only: shared by the requests to this endpoint
		h[k] = v
	}
	own.write(h)
	s.traceHeaders(ctx, d, h)
	*bp = own.sig
	s.bufs.Put(bp)
	a.header, a.custom = h, st.custom // flattened only if the attempt is recorded

	select { // bound POSTs in flight over all endpoints (sockets, memory)
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return classify(0, "", ctx.Err()), nil, 0
	}
	defer func() { <-s.inFlight }()
	// The deadline bounds the whole attempt from here, reply body included; the wait for a slot
	// is not part of it: under load a POST would leave with little time left and time out after
	// the receiver took it, to be sent again.
	deadline := time.Now().Add(s.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if st.netHTTP || st.bigReplies.Load() {
		return s.postNetHTTP(ctx, deadline, ep.URL, body, h, a)
	}
	out, reply, held = s.postDirect(deadline, st.target, body, h, a)
	var small *fasthttp.ErrSmallBuffer
	if errors.As(out.Err, &small) {
		// The receiver answered with more header than fasthttp reads (net/http reads up to
		// 1 MiB): from now on its POSTs go through net/http. This one is retried.
		st.bigReplies.Store(true)
	}
	return out, reply, held
}

// postDirect POSTs with fasthttp to a receiver reached directly. fasthttp takes no context: the
// deadline bounds the POST, and Abort ends it sooner (a stop past --shutdown-timeout, a lost
// lease), where net/http would have seen its context cancelled.
func (s *Sender) postDirect(deadline time.Time, target string, body []byte, h http.Header, a *Attempt) (out consumer.Outcome, reply []byte, held int64) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(target)
	req.Header.SetMethod(http.MethodPost)
	req.Header.DisableNormalizing() // names as written, as net/http sends them: webhook-id stays so
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.SetBodyRaw(body)
	resp.Header.SetNoDefaultContentType(true) // record the reply's headers as they came
	if err := s.direct.DoDeadline(req, resp, deadline); err != nil {
		// As http.Client says it: the method, the URL, then the cause.
		return classify(0, "", &url.Error{Op: "Post", URL: a.Request.URL, Err: err}), nil, 0
	}
	defer resp.CloseBodyStream()
	headers := make(map[string]string, resp.Header.Len())
	for k, v := range resp.Header.All() {
		if hopByHop(k) {
			continue // as net/http leaves them out
		}
		if prev, ok := headers[string(k)]; ok {
			headers[string(k)] = prev + ", " + string(v)
		} else {
			headers[string(k)] = string(v)
		}
	}
	var r io.Reader = http.NoBody
	length := int64(0) // no stream: a reply without a body (204, 304)
	if stream := resp.BodyStream(); stream != nil {
		r, length = stream, int64(resp.Header.ContentLength()) // -1 chunked, -2 to the close
	}
	return s.answer(a, resp.StatusCode(), headers, string(resp.Header.Peek("Retry-After")), r, length)
}

// hopByHop reports the reply headers net/http keeps out of a response's Header.
func hopByHop(name []byte) bool {
	return bytes.EqualFold(name, []byte("Connection")) || bytes.EqualFold(name, []byte("Transfer-Encoding"))
}

// postNetHTTP POSTs with net/http's transport: through the proxy the environment names, if any.
func (s *Sender) postNetHTTP(ctx context.Context, deadline time.Time, target string, body []byte, h http.Header, a *Attempt) (out consumer.Outcome, reply []byte, held int64) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return consumer.Outcome{Result: consumer.Permanent, Err: fmt.Errorf("build request: %w", err)}, nil, 0
	}
	req.Header = h
	resp, err := s.stdlib.RoundTrip(req)
	if err != nil {
		return classify(0, "", &url.Error{Op: "Post", URL: target, Err: err}), nil, 0
	}
	defer resp.Body.Close()
	return s.answer(a, resp.StatusCode, flatHeaders(resp.Header), resp.Header.Get("Retry-After"), resp.Body, resp.ContentLength)
}

// answer reads a receiver's answer into a: a bounded part of the reply (for the log, for a
// two-way reply, and so that the connection can be reused), and the outcome; it returns the
// body of a 2xx reply to pass on, with the reply memory it holds (to release).
func (s *Sender) answer(a *Attempt, status int, headers map[string]string, retryAfter string, r io.Reader, contentLength int64) (out consumer.Outcome, reply []byte, held int64) {
	body, held, tooLong, starved, readErr := s.readReply(r, max(contentLength, -1))
	a.Response = &AttemptResponse{Status: status, Headers: headers}
	a.Response.Body, a.Response.Truncated = excerpt(body)
	a.Response.Truncated = a.Response.Truncated || tooLong || starved
	out = classify(status, retryAfter, nil)
	switch {
	case out.Result != consumer.Delivered:
	case starved:
		a.ReplyError = fmt.Sprintf("reply not passed on: the replies held at once reached --reply-memory (%d bytes)", s.o.MaxReplyMemory)
	case readErr != nil:
		a.ReplyError = "reply cut short: " + readErr.Error()
	case tooLong:
		a.ReplyError = fmt.Sprintf("reply larger than %d bytes (--max-reply-bytes): not passed on", s.o.MaxResponseBytes)
	case len(body) > 0:
		return out, body, held
	}
	s.replyMem.release(held)
	return out, nil, 0
}

// prepare makes what one attempt sends before its headers are written: the body the endpoint
// gets (the event as published unless its body options change it) and the signature over exactly
// that body, appended to sig, with the values of quaycast's and the layout's headers.
func (s *Sender) prepare(st *endpointState, d *consumer.Delivery, at time.Time, sig []byte) (body []byte, own ownHeaders, err error) {
	body = d.Body
	if st.shaper != nil {
		if body, err = st.shaper.Append(make([]byte, 0, len(d.Body)+64), d.Body, eventName(&st.layout, d.Event.Type, s.title)); err != nil {
			return nil, own, err
		}
	}
	sg := st.signer
	own = ownHeaders{eventID: d.Event.ID, eventType: d.Event.Type, source: d.Event.Source, previousID: d.PreviousEventID, redelivery: d.Redelivery, at: at, attempt: d.Attempt,
		sigHeader: sg.HeaderName(), sig: sg.AppendSignature(sig, d.Event.ID, at.Unix(), body), standard: sg.Profile() == signature.Standard}
	s.layoutValues(&own, st, d)
	return body, own, nil
}

// layoutValues fills in what the endpoint's layout headers carry.
func (s *Sender) layoutValues(own *ownHeaders, st *endpointState, d *consumer.Delivery) {
	l := &st.layout
	own.layout = l
	if l.EventHeader != "" {
		own.eventName = eventName(l, d.Event.Type, s.title)
	}
	if l.DeliveryHeader != "" {
		var scratch [256]byte
		own.deliveryID = deliveryID(l, d.Endpoint.ID, d.Event.ID, scratch[:0])
	}
}

// title is an event type's display name from the catalogue.
func (s *Sender) title(typ string) (string, bool) {
	cat := subjects.Builtin()
	if s.o.Catalogue != nil {
		cat = s.o.Catalogue()
	}
	t, ok := cat.Lookup(typ)
	return t.Title, ok
}

// passOnReply publishes a receiver's 2xx JSON reply for upstream systems, its bytes as they came:
// as it is, or, for an endpoint that speaks the alerts format, validated and parsed into the log
// record. A reply that is not JSON is not passed on; for an alerts endpoint that is an error.
func (s *Sender) passOnReply(d *consumer.Delivery, a *Attempt, reply []byte) {
	trimmed := bytes.TrimSpace(reply)
	alerts := d.Endpoint.ReplyFormat == "alerts"
	switch {
	case len(trimmed) == 0:
		return // no reply
	case !json.Valid(trimmed):
		if alerts {
			a.ReplyError = "reply is not JSON (an alerts endpoint answers a JSON array of alerts): not passed on"
		}
		return
	}
	if alerts {
		parsed, err := parseAlerts(trimmed)
		if err != nil {
			a.ReplyError = err.Error()
			return
		}
		a.Alerts = parsed
	}
	if s.o.Replies == nil {
		return
	}
	err := attempts.PublishReply(s.o.Replies, d.Event.Source, d.Endpoint.ID, d.Event.Type, d.Event.Entity, d.Event.ID, reply)
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		a.ReplyError = fmt.Sprintf("reply of %d bytes is more than the NATS server's max payload (%d bytes) carries with quaycast's headers: lower --max-reply-bytes or raise max_payload", len(reply), s.o.Replies.Conn().MaxPayload())
	case err != nil:
		a.ReplyError = err.Error()
		s.log.Warn().Err(err).Str("endpoint_id", d.Endpoint.ID).Str("event_id", d.Event.ID).Msg("pass on reply")
	}
}

// willRecord says whether the delivery log takes an attempt that was (or not) delivered.
func (s *Sender) willRecord(a *Attempt, delivered bool) bool {
	return s.o.Log != nil && (!s.o.LogFailuresOnly || !delivered || a.Test)
}

// record appends a to the delivery log and tells the metrics.
func (s *Sender) record(a *Attempt) {
	if s.o.OnAttempt != nil {
		s.o.OnAttempt(a)
	}
	if a.Test { // a test send's answer shows what was sent
		a.Request.Headers = flatRequestHeaders(a.header, a.custom)
	}
	if !s.willRecord(a, a.Outcome == "delivered") {
		return
	}
	if err := s.o.Log.Append(a.EndpointID, a.EventID, a.appendJSON(make([]byte, 0, 1024))); err != nil {
		s.logDropped(a.EndpointID, 1, err)
	}
}

// logDropped counts delivery-log records that could not be written, and says so at most once a
// minute: under overload the log gives way to delivery, and one line per record would flood.
func (s *Sender) logDropped(endpointID string, records int, err error) {
	if s.o.OnLogDropped != nil {
		s.o.OnLogDropped(records)
	}
	s.droppedLog.Warn().Err(err).Str("endpoint_id", endpointID).Msg("delivery log records dropped (more may follow; see quaycast_delivery_log_dropped_total)")
}

// classify decides what an attempt came to from the status code, the reply's Retry-After and the
// transport error. It is the one place that maps HTTP to delivery outcomes.
func classify(status int, retryAfterValue string, err error) consumer.Outcome {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return consumer.Outcome{Result: consumer.Retry, Err: fmt.Errorf("timeout: %w", err)}
		}
		return consumer.Outcome{Result: consumer.Retry, Err: err}
	}
	out := consumer.Outcome{Status: status}
	switch {
	case status >= 200 && status < 300:
		out.Result = consumer.Delivered
		return out
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		out.Result = consumer.Retry
		out.RetryAfter = retryAfter(retryAfterValue, time.Now())
	case status == http.StatusGone:
		out.Result = consumer.Gone
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly || status >= 500:
		out.Result = consumer.Retry
	case status >= 400:
		// The receiver understood the request and refuses this event: retrying the same bytes
		// would block its entity for a day to the same answer.
		out.Result = consumer.Permanent
	default: // 1xx, 3xx: redirects are not followed
		out.Result = consumer.Retry
	}
	out.Err = fmt.Errorf("receiver answered %d", status)
	return out
}

// retryAfter reads a Retry-After value: delay seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		const most = 7 * 24 * time.Hour // beyond any sane wait; also keeps the multiplication in range
		switch {
		case secs < 0:
			return 0
		case secs > int64(most/time.Second):
			return most
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
