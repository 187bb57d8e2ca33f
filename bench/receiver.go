package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quaycast/quaycast/gateway/signature"
)

// Endpoint behaviours.
const (
	healthy = "healthy"
	hanging = "hanging" // never answers: holds every request until the sender gives up
	down    = "down"    // its server refuses connections until publishing is done
)

// endpoint is one webhook receiver of the run and, per round, its registration.
type endpoint struct {
	index     int
	name      string // in the checker and the report: ep-00001
	behaviour string
	selectors []string
	tenant    string // with Scenario.Tenants: the tenant it belongs to
	srv       *server
	url       string

	// Set by the round that registers it.
	id     string // the gateway's endpoint id, or the baseline consumer's name
	secret string
}

// server is one loopback HTTP server; several endpoints may share it, told apart by path.
type server struct {
	addr string
	h    http.Handler
	errs *errorLog

	mu  sync.Mutex
	srv *http.Server
}

func newServer(h http.Handler, errs *errorLog) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver listen: %w", err)
	}
	s := &server{addr: ln.Addr().String(), h: h, errs: errs}
	s.serve(ln)
	return s, nil
}

func (s *server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: log.New(s.errs, "", 0)}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// close stops the server: connections are refused until up.
func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// up serves again on the same address.
func (s *server) up(ctx context.Context) error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var err error
	for range 100 { // the port may linger a moment after Close
		var ln net.Listener
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			s.serve(ln)
			return nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("receiver back on %s: %w", s.addr, err)
}

// receivers are the run's webhook receivers. What they get is recorded in the current round's
// sink; arrivals that belong to no current round are counted as strays.
type receivers struct {
	eps     []*endpoint
	servers []*server
	epoch   time.Time // event timestamps are offsets from it (monotonic, same process)
	latency time.Duration
	failure float64
	verify  bool

	sink    atomic.Pointer[sink]
	strays  atomic.Int64
	errs    *errorLog     // what the HTTP servers complained about (accept errors, bad requests)
	release chan struct{} // closed when hanging requests may end
	relOnce sync.Once
	bufs    sync.Pool
}

// sink is what one round's receivers got.
type sink struct {
	prefix  string // ids of this round's events start with it
	checker *Checker
	stats   []*epStats // by endpoint index; nil: not in this round
	total   atomic.Int64
}

// epStats is one endpoint's side of a round.
type epStats struct {
	requests atomic.Int64
	failed   atomic.Int64 // answered 503 on purpose, or hung
	badSig   atomic.Int64

	mu        sync.Mutex
	hist      Histogram
	recent    Histogram // since the timeline's last sample
	delivered int
	first     time.Duration // arrival offsets from epoch
	last      time.Duration
	maxGap    time.Duration // longest time between two deliveries
	gapAt     time.Duration // when that gap ended
}

func newReceivers(sc Scenario, epoch time.Time, verify bool) (*receivers, error) {
	r := &receivers{
		epoch: epoch, latency: time.Duration(sc.Latency), failure: sc.Failure, verify: verify,
		release: make(chan struct{}), errs: &errorLog{},
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }},
	}
	listen := func() (*server, error) {
		s, err := newServer(r, r.errs)
		if err != nil {
			r.close()
			return nil, err
		}
		r.servers = append(r.servers, s)
		return s, nil
	}
	add := func(behaviour string, srv *server) {
		i := len(r.eps)
		ep := &endpoint{index: i, name: fmt.Sprintf("ep-%05d", i+1), behaviour: behaviour, selectors: sc.selectors(i), tenant: sc.tenant(i), srv: srv}
		ep.url = "http://" + srv.addr + "/ep/" + strconv.Itoa(i)
		r.eps = append(r.eps, ep)
	}
	addOwn := func(behaviour string) error { // on a server of its own, to refuse connections or hang
		s, err := listen()
		if err == nil {
			add(behaviour, s)
		}
		return err
	}
	shared := min(sc.Servers, sc.Endpoints-sc.Down)
	for range shared {
		if _, err := listen(); err != nil {
			return nil, err
		}
	}
	for i := range sc.Endpoints {
		if i < sc.Down {
			if err := addOwn(down); err != nil {
				return nil, err
			}
			continue
		}
		add(healthy, r.servers[(i-sc.Down)%shared])
	}
	for range sc.Hanging {
		if err := addOwn(hanging); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// close lets hanging requests go and stops every server.
func (r *receivers) close() {
	r.letGo()
	for _, s := range r.servers {
		s.close()
	}
}

// letGo ends the requests hanging endpoints hold (they are answered 503).
func (r *receivers) letGo() { r.relOnce.Do(func() { close(r.release) }) }

// now is the offset from the epoch.
func (r *receivers) now() time.Duration { return time.Since(r.epoch) }

var timestampKey = []byte(`"data":{"t":`)

func (r *receivers) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	arrived := r.now()
	idx, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/ep/"))
	if err != nil || idx < 0 || idx >= len(r.eps) {
		http.NotFound(w, req)
		return
	}
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	buf := bytes.NewBuffer((*bp)[:0])
	_, err = io.Copy(buf, io.LimitReader(req.Body, 2<<20))
	*bp = buf.Bytes()
	if err != nil {
		return // the sender went away: no answer reaches it anyway
	}
	body := buf.Bytes()
	ep := r.eps[idx]
	s := r.sink.Load()
	id := req.Header.Get(signature.HeaderID)
	if s == nil || s.stats[idx] == nil || !strings.HasPrefix(id, s.prefix) {
		r.strays.Add(1) // a delivery of an earlier round, or to an endpoint not in this one
		w.WriteHeader(http.StatusNoContent)
		return
	}
	st := s.stats[idx]
	st.requests.Add(1)
	if r.failOnPurpose(w, req, ep, st) {
		return
	}
	if r.verify {
		if err := (signature.Verifier{}).Verify(req.Header, body, ep.secret); err != nil {
			st.badSig.Add(1)
			http.Error(w, "signature: "+signature.Reason(err), http.StatusUnauthorized)
			return
		}
	}
	s.checker.Received(ep.name, id)
	st.record(arrived, arrived-sentAt(body, arrived))
	s.total.Add(1)
	if r.latency > 0 {
		select {
		case <-time.After(r.latency):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// failOnPurpose answers as a hanging or flaky receiver does, and says whether it did: a hanging
// endpoint holds the request until the sender gives up or the harness lets it go; a flaky one
// answers its share of requests with 503.
func (r *receivers) failOnPurpose(w http.ResponseWriter, req *http.Request, ep *endpoint, st *epStats) bool {
	switch {
	case ep.behaviour == hanging:
		st.failed.Add(1)
		select {
		case <-req.Context().Done():
		case <-r.release:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return true
	case r.failure > 0 && rand.Float64() < r.failure:
		st.failed.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	return false
}

// sentAt is the publish offset an event's body carries (data.t); without one, arrived (no
// latency is known).
func sentAt(body []byte, arrived time.Duration) time.Duration {
	i := bytes.Index(body, timestampKey)
	if i < 0 {
		return arrived
	}
	rest := body[i+len(timestampKey):]
	end := bytes.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' })
	if t, err := strconv.ParseInt(string(rest[:max(end, 0)]), 10, 64); err == nil && end > 0 {
		return time.Duration(t)
	}
	return arrived
}

// record counts a delivery that arrived at arrived, lat after it was published.
func (st *epStats) record(arrived, lat time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.hist.Record(lat)
	st.recent.Record(lat)
	if st.delivered == 0 {
		st.first = arrived
	} else if gap := arrived - st.last; gap > st.maxGap {
		st.maxGap, st.gapAt = gap, arrived
	}
	st.delivered++
	st.last = max(st.last, arrived)
}

// takeRecent moves the latencies recorded since the last call into h.
func (s *sink) takeRecent(h *Histogram) {
	for _, st := range s.stats {
		if st == nil {
			continue
		}
		st.mu.Lock()
		if st.recent.Count() > 0 {
			h.Merge(&st.recent)
			st.recent.Reset()
		}
		st.mu.Unlock()
	}
}

// errorLog counts the lines written to it and keeps the last one; it is an io.Writer for
// log.Logger and takes error callbacks.
type errorLog struct {
	mu    sync.Mutex
	n     int
	last  string
	first string
}

func (l *errorLog) Write(p []byte) (int, error) {
	l.add(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *errorLog) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.first == "" {
		l.first = msg
	}
	l.last = msg
}

// summary is "" when nothing was logged.
func (l *errorLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.n == 0:
		return ""
	case l.n == 1 || l.first == l.last:
		return fmt.Sprintf("%d× %s", l.n, l.first)
	}
	return fmt.Sprintf("%d×, first: %s; last: %s", l.n, l.first, l.last)
}
