package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	retryAfterHdr := func(v string) http.Header { return http.Header{"Retry-After": []string{v}} }
	// An HTTP date has whole seconds: a date 90s ahead reads as a wait somewhat under 90s. It is
	// written just before classify reads it (dateAhead): parallel subtests may start long after
	// the table is built on a loaded machine.

	tests := []struct {
		name       string
		status     int
		header     http.Header
		dateAhead  time.Duration // a Retry-After HTTP date this far ahead, written when the subtest runs
		err        error
		want       consumer.Result
		wantAfter  [2]time.Duration // RetryAfter within [min, max]
		wantStatus int
	}{
		{name: "200", status: 200, want: consumer.Delivered, wantStatus: 200},
		{name: "201", status: 201, want: consumer.Delivered, wantStatus: 201},
		{name: "202", status: 202, want: consumer.Delivered, wantStatus: 202},
		{name: "204", status: 204, want: consumer.Delivered, wantStatus: 204},
		{name: "299", status: 299, want: consumer.Delivered, wantStatus: 299},

		{name: "408 request timeout", status: 408, want: consumer.Retry, wantStatus: 408},
		{name: "425 too early", status: 425, want: consumer.Retry, wantStatus: 425},
		{name: "429 without Retry-After", status: 429, want: consumer.Retry, wantStatus: 429},
		{name: "500", status: 500, want: consumer.Retry, wantStatus: 500},
		{name: "502", status: 502, want: consumer.Retry, wantStatus: 502},
		{name: "503 without Retry-After", status: 503, want: consumer.Retry, wantStatus: 503},
		{name: "504", status: 504, want: consumer.Retry, wantStatus: 504},

		{name: "429 Retry-After seconds", status: 429, header: retryAfterHdr("7"), want: consumer.Retry,
			wantAfter: [2]time.Duration{7 * time.Second, 7 * time.Second}, wantStatus: 429},
		{name: "503 Retry-After seconds", status: 503, header: retryAfterHdr("120"), want: consumer.Retry,
			wantAfter: [2]time.Duration{2 * time.Minute, 2 * time.Minute}, wantStatus: 503},
		{name: "429 Retry-After HTTP date", status: 429, dateAhead: 90 * time.Second, want: consumer.Retry,
			wantAfter: [2]time.Duration{60 * time.Second, 90 * time.Second}, wantStatus: 429},
		{name: "503 Retry-After HTTP date", status: 503, dateAhead: 90 * time.Second, want: consumer.Retry,
			wantAfter: [2]time.Duration{60 * time.Second, 90 * time.Second}, wantStatus: 503},
		{name: "503 unreadable Retry-After", status: 503, header: retryAfterHdr("soon"), want: consumer.Retry, wantStatus: 503},

		{name: "410 gone", status: 410, want: consumer.Gone, wantStatus: 410},

		{name: "400", status: 400, want: consumer.Permanent, wantStatus: 400},
		{name: "401", status: 401, want: consumer.Permanent, wantStatus: 401},
		{name: "403", status: 403, want: consumer.Permanent, wantStatus: 403},
		{name: "404", status: 404, want: consumer.Permanent, wantStatus: 404},
		{name: "413", status: 413, want: consumer.Permanent, wantStatus: 413},
		{name: "422", status: 422, want: consumer.Permanent, wantStatus: 422},

		{name: "301 redirect not followed", status: 301, want: consumer.Retry, wantStatus: 301},
		{name: "302 redirect not followed", status: 302, want: consumer.Retry, wantStatus: 302},

		{name: "transport error", err: &url.Error{Op: "Post", URL: "http://127.0.0.1:1/", Err: errors.New("connection refused")},
			want: consumer.Retry},
		{name: "timeout", err: &url.Error{Op: "Post", URL: "http://127.0.0.1:1/", Err: os.ErrDeadlineExceeded},
			want: consumer.Retry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			if tc.dateAhead > 0 {
				h = retryAfterHdr(time.Now().Add(tc.dateAhead).UTC().Format(http.TimeFormat))
			}
			got := classify(tc.status, h.Get("Retry-After"), tc.err)
			if got.Result != tc.want {
				t.Errorf("result %v, want %v", got.Result, tc.want)
			}
			if got.Status != tc.wantStatus {
				t.Errorf("status %d, want %d", got.Status, tc.wantStatus)
			}
			if got.RetryAfter < tc.wantAfter[0] || got.RetryAfter > tc.wantAfter[1] {
				t.Errorf("retry after %s, want within [%s, %s]", got.RetryAfter, tc.wantAfter[0], tc.wantAfter[1])
			}
			if tc.want == consumer.Delivered && got.Err != nil {
				t.Errorf("a delivery has an error: %v", got.Err)
			}
			if tc.want != consumer.Delivered && got.Err == nil {
				t.Errorf("a %v outcome has no error saying why", got.Result)
			}
			if tc.err != nil && !errors.Is(got.Err, tc.err) {
				t.Errorf("error %v does not wrap the transport error %v", got.Err, tc.err)
			}
		})
	}

	t.Run("timeout is named", func(t *testing.T) {
		t.Parallel()
		got := classify(0, "", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/", Err: os.ErrDeadlineExceeded})
		if got.Err == nil || !strings.Contains(got.Err.Error(), "timeout") {
			t.Errorf("error %v: want it to say timeout", got.Err)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		value   string
		want    time.Duration
		atLeast bool // want is a lower bound
	}{
		{name: "absent", value: "", want: 0},
		{name: "zero seconds", value: "0", want: 0},
		{name: "seconds", value: "5", want: 5 * time.Second},
		{name: "one second", value: "1", want: time.Second},
		{name: "an hour in seconds", value: "3600", want: time.Hour},
		{name: "negative seconds", value: "-3", want: 0},
		{name: "fraction", value: "1.5", want: 0},
		{name: "garbage", value: "later please", want: 0},
		{name: "HTTP date ahead", value: now.Add(2 * time.Minute).Format(http.TimeFormat), want: 2 * time.Minute},
		{name: "RFC 850 date ahead", value: now.Add(30 * time.Second).Format(time.RFC850), want: 30 * time.Second},
		{name: "ANSI C date ahead", value: now.Add(45 * time.Second).Format(time.ANSIC), want: 45 * time.Second},
		{name: "HTTP date now", value: now.Format(http.TimeFormat), want: 0},
		{name: "HTTP date past", value: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		// A receiver asking for a very long wait must get a long wait (the worker caps it), never a
		// negative or short one from an overflow of time.Duration.
		{name: "huge seconds do not overflow", value: "10000000000", want: 24 * time.Hour, atLeast: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := retryAfter(tc.value, now)
			if tc.atLeast {
				if got < tc.want {
					t.Errorf("retryAfter(%q) = %s, want at least %s", tc.value, got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

// breakerLog records a breaker's transitions.
type breakerLog struct {
	mu     sync.Mutex
	events []BreakerEvent
}

func (l *breakerLog) add(ev BreakerEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *breakerLog) snapshot() []BreakerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// path lists the states the breaker went through, starting with the first one it left.
func (l *breakerLog) path() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i, ev := range l.events {
		if i == 0 {
			out = append(out, ev.From)
		}
		out = append(out, ev.To)
	}
	return out
}

func outcome(r consumer.Result) func() consumer.Outcome {
	return func() consumer.Outcome { return consumer.Outcome{Result: r} }
}

func notCancelled() bool { return false }

func TestBreaker(t *testing.T) {
	t.Parallel()
	const cooldown = 300 * time.Millisecond
	opts := BreakerOptions{ConsecutiveFailures: 3, Cooldown: cooldown}.withDefaults()

	t.Run("opens, spends nothing while open, probes once, closes", func(t *testing.T) {
		t.Parallel()
		var log breakerLog
		b := newBreaker("ep_test", "", opts, log.add)
		calls := 0
		fail := func() consumer.Outcome { calls++; return consumer.Outcome{Result: consumer.Retry, Status: 503} }

		for i := range 3 {
			if out := b.run(fail, notCancelled); out.Result != consumer.Retry || out.Status != 503 {
				t.Fatalf("attempt %d through a closed breaker: %+v, want the attempt's own Retry 503", i+1, out)
			}
		}
		if calls != 3 {
			t.Fatalf("%d attempts made, want 3", calls)
		}
		if st := b.status().State; st != "open" {
			t.Fatalf("after 3 consecutive failures the breaker is %q, want open", st)
		}

		for range 5 {
			out := b.run(fail, notCancelled)
			if out.Result != consumer.BreakerOpen {
				t.Fatalf("run on an open breaker: %v, want BreakerOpen", out.Result)
			}
			if out.RetryAfter <= 0 || out.RetryAfter > cooldown {
				t.Errorf("open breaker says retry after %s, want within (0, %s]", out.RetryAfter, cooldown)
			}
			if out.Err == nil {
				t.Error("BreakerOpen outcome has no error saying why")
			}
		}
		if calls != 3 {
			t.Fatalf("an open breaker let %d attempts through", calls-3)
		}

		// After the cooldown one probe goes through; a second one at the same time does not.
		testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
		entered, release := make(chan struct{}), make(chan struct{})
		probeDone := make(chan consumer.Outcome, 1)
		go func() {
			probeDone <- b.run(func() consumer.Outcome {
				close(entered)
				<-release
				return consumer.Outcome{Result: consumer.Delivered, Status: 200}
			}, notCancelled)
		}()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the half-open breaker did not let the probe through")
		}
		second := false
		out := b.run(func() consumer.Outcome { second = true; return consumer.Outcome{Result: consumer.Delivered} }, notCancelled)
		if second || out.Result != consumer.BreakerOpen {
			t.Errorf("second attempt while the probe is out: called %v, result %v; want not called, BreakerOpen", second, out.Result)
		}
		if out.RetryAfter <= 0 {
			t.Errorf("half-open breaker says retry after %s, want > 0", out.RetryAfter)
		}
		close(release)
		if got := <-probeDone; got.Result != consumer.Delivered {
			t.Errorf("probe outcome %v, want the attempt's Delivered", got.Result)
		}
		st := b.status()
		if st.State != "closed" || st.ConsecutiveFailures != 0 {
			t.Errorf("after a successful probe: %+v, want closed with no failures", st)
		}
		if want := []string{"closed", "open", "half-open", "closed"}; !slices.Equal(log.path(), want) {
			t.Errorf("transitions %v, want %v", log.path(), want)
		}
		for _, ev := range log.snapshot() {
			if ev.EndpointID != "ep_test" || ev.At.IsZero() {
				t.Errorf("transition %+v: want endpoint ep_test and a time", ev)
			}
		}
	})

	t.Run("failed probe opens again", func(t *testing.T) {
		t.Parallel()
		var log breakerLog
		b := newBreaker("ep_test", "", opts, log.add)
		for range 3 {
			b.run(outcome(consumer.Retry), notCancelled)
		}
		testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
		if out := b.run(outcome(consumer.Retry), notCancelled); out.Result != consumer.Retry {
			t.Fatalf("probe: %v, want the attempt's Retry", out.Result)
		}
		if st := b.status().State; st != "open" {
			t.Errorf("after a failed probe the breaker is %q, want open", st)
		}
		if want := []string{"closed", "open", "half-open", "open"}; !slices.Equal(log.path(), want) {
			t.Errorf("transitions %v, want %v", log.path(), want)
		}
	})

	t.Run("permanent and gone outcomes are not failures", func(t *testing.T) {
		t.Parallel()
		var log breakerLog
		b := newBreaker("ep_test", "", opts, log.add)
		calls := 0
		for i := range 10 {
			r := consumer.Permanent
			if i%2 == 1 {
				r = consumer.Gone
			}
			b.run(func() consumer.Outcome { calls++; return consumer.Outcome{Result: r} }, notCancelled)
		}
		st := b.status()
		if calls != 10 || st.State != "closed" || st.ConsecutiveFailures != 0 || st.Failures != 0 {
			t.Errorf("after 10 refusals: %d attempts made, status %+v; want 10, closed, no failures", calls, st)
		}
		if len(log.path()) != 0 {
			t.Errorf("transitions %v, want none", log.path())
		}
	})

	t.Run("cancelled attempts are not failures", func(t *testing.T) {
		t.Parallel()
		var log breakerLog
		b := newBreaker("ep_test", "", opts, log.add)
		cancelled := func() bool { return true }
		for range 10 {
			if out := b.run(outcome(consumer.Retry), cancelled); out.Result != consumer.Retry {
				t.Fatalf("cancelled attempt: %v, want its own Retry", out.Result)
			}
		}
		st := b.status()
		if st.State != "closed" || st.ConsecutiveFailures != 0 || st.Failures != 0 {
			t.Errorf("after 10 cancelled attempts: %+v, want closed with no failures", st)
		}
		// The breaker is live: real failures still open it.
		for range 3 {
			b.run(outcome(consumer.Retry), notCancelled)
		}
		if st := b.status().State; st != "open" {
			t.Errorf("after 3 real failures the breaker is %q, want open", st)
		}
	})

	t.Run("a cancelled probe does not use up the half-open slot", func(t *testing.T) {
		t.Parallel()
		b := newBreaker("ep_test", "", opts, nil)
		for range 3 {
			b.run(outcome(consumer.Retry), notCancelled)
		}
		testwait.For(t, 10*time.Second, "half-open", func() bool { return b.status().State == "half-open" })
		b.run(outcome(consumer.Retry), func() bool { return true })
		called := false
		out := b.run(func() consumer.Outcome { called = true; return consumer.Outcome{Result: consumer.Delivered} }, notCancelled)
		if !called || out.Result != consumer.Delivered || b.status().State != "closed" {
			t.Errorf("probe after a cancelled probe: called %v, result %v, state %s; want called, Delivered, closed",
				called, out.Result, b.status().State)
		}
	})
}

// The transition published for operators says how many failures in a row opened the breaker.
func TestBreakerEventCountsFailures(t *testing.T) {
	t.Parallel()
	var log breakerLog
	b := newBreaker("ep_test", "", BreakerOptions{ConsecutiveFailures: 3, Cooldown: time.Minute}.withDefaults(), log.add)
	for range 3 {
		b.run(outcome(consumer.Retry), notCancelled)
	}
	evs := log.snapshot()
	if len(evs) != 1 || evs[0].To != "open" {
		t.Fatalf("transitions %+v, want one to open", evs)
	}
	if evs[0].Failures < 3 {
		t.Errorf("open event says consecutive_failures %d, want the 3 that opened it", evs[0].Failures)
	}
}

// A delivery-log record that cannot be written is counted every time but said once a minute:
// under overload one line per record would flood the log.
func TestDroppedLogRecordsAreCountedEachAndSaidOnce(t *testing.T) {
	t.Parallel()
	nc, _ := newStreams(t)
	attemptLog, err := attempts.New(t.Context(), nc, attempts.Options{Window: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close() // every record appended from now on is dropped
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	var logged bytes.Buffer
	var dropped atomic.Int64
	s := loopbackSender(t, zerolog.New(zerolog.SyncWriter(&logged)), SenderOptions{Log: attemptLog, OnLogDropped: func(n int) { dropped.Add(int64(n)) }})
	// The sender's own sampler with an hour for its minute, so that a slow machine cannot make it two.
	s.droppedLog = s.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Hour})
	ep := testEndpoint("ep_dropped", rcv.URL)
	for i := range 5 {
		a, err := s.Test(t.Context(), testDelivery(ep, fmt.Sprintf("evt-%d", i), "V1"))
		if err != nil || a.Outcome != "delivered" {
			t.Fatalf("send %d: outcome %v, %v", i, a, err)
		}
	}
	testwait.For(t, 10*time.Second, "5 records counted as dropped", func() bool { return dropped.Load() == 5 })
	if n := strings.Count(logged.String(), "delivery log records dropped"); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, logged.String())
	}
}

// A breaker's transitions name the tenant of the endpoint it was made for, so that its operator
// event goes to that tenant even when the endpoint is no longer defined; a breaker is not kept
// for an endpoint of another tenant.
func TestBreakerEventNamesTenant(t *testing.T) {
	t.Parallel()
	var log breakerLog
	s := NewSender(zerolog.New(zerolog.NewTestWriter(t)), SenderOptions{OnBreakerChange: log.add,
		Breaker: BreakerOptions{ConsecutiveFailures: 1, Cooldown: time.Minute}})
	ep := &consumer.Endpoint{ID: "ep_t", URL: "http://127.0.0.1:1/", Tenant: "maersk", Revision: 1,
		Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	s.state(ep).breaker.run(outcome(consumer.Retry), notCancelled)
	if evs := log.snapshot(); len(evs) != 1 || evs[0].To != "open" || evs[0].Tenant != "maersk" {
		t.Fatalf("transitions %+v, want one to open naming tenant maersk", evs)
	}
	other := *ep
	other.Tenant, other.Revision = "hlag", 2
	if st := s.state(&other); st.breaker.status().State != "closed" || st.breaker.tenant != "hlag" {
		t.Errorf("endpoint moved to tenant hlag: breaker %s of tenant %q, want a new one of hlag", st.breaker.status().State, st.breaker.tenant)
	}
}

// A POST is one request to the endpoint's URL, bounded as a whole by the delivery timeout: a
// redirect is answered, not followed; a receiver that never answers is a timeout that names
// the method and URL; one that answers and then trickles its body is cut off at the deadline.
func TestPostIsOneBoundedRequest(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	release := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, other.URL+"/new", http.StatusFound)
		case "/silent":
			<-release
		case "/trickle":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			select { // long past the deadline: a sender without one fails here instead of hanging
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
	}))
	t.Cleanup(func() { close(release); rcv.Close() })
	const timeout = 300 * time.Millisecond
	s := loopbackSender(t, zerolog.New(zerolog.NewTestWriter(t)), SenderOptions{Timeout: timeout})
	send := func(path string) *Attempt {
		t.Helper()
		a, err := s.Test(t.Context(), testDelivery(testEndpoint("ep_"+strings.Trim(path, "/"), rcv.URL+path), "evt-1", "V1"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return a
	}

	if a := send("/moved"); a.Outcome != "retry" || a.Response == nil || a.Response.Status != http.StatusFound || elsewhere.Load() != 0 {
		t.Errorf("redirect: outcome %q, response %+v, requests elsewhere %d; want retry, 302 and none", a.Outcome, a.Response, elsewhere.Load())
	}
	a := send("/silent")
	if want := fmt.Sprintf("timeout: Post %q", rcv.URL+"/silent"); a.Outcome != "retry" || !strings.HasPrefix(a.Error, want) {
		t.Errorf("silent receiver: outcome %q, error %q; want retry and an error starting %s", a.Outcome, a.Error, want)
	}
	if a.DurationMS > float64(20*timeout/time.Millisecond) {
		t.Errorf("silent receiver: the attempt took %.0f ms, far past the %s timeout", a.DurationMS, timeout)
	}
	a = send("/trickle")
	if a.Outcome != "delivered" || !strings.HasPrefix(a.ReplyError, "reply cut short") || a.DurationMS > float64(20*timeout/time.Millisecond) {
		t.Errorf("trickled reply: outcome %q, reply error %q after %.0f ms; want delivered and the reply cut short at the %s timeout", a.Outcome, a.ReplyError, a.DurationMS, timeout)
	}
}

// The delivery timeout starts when the POST leaves, not while it waits for one of the
// --max-in-flight-total slots: the third of three POSTs through one slot waits longer than the
// timeout and is still delivered, not failed (and sent again) for a wait the receiver never saw.
func TestTimeoutExcludesTheWaitForASlot(t *testing.T) {
	t.Parallel()
	const timeout, answer = time.Second, 700 * time.Millisecond
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(answer)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	s := loopbackSender(t, zerolog.New(zerolog.NewTestWriter(t)), SenderOptions{Timeout: timeout, MaxInFlight: 1})
	ep := testEndpoint("ep_slot", rcv.URL)
	var wg sync.WaitGroup
	outcomes := make([]consumer.Outcome, 3)
	for i := range outcomes {
		wg.Go(func() {
			outcomes[i] = s.Deliver(t.Context(), testDelivery(ep, fmt.Sprintf("evt-%d", i), fmt.Sprintf("V%d", i)))
		})
	}
	wg.Wait()
	for i, out := range outcomes {
		if out.Result != consumer.Delivered {
			t.Errorf("POST %d: %v (%v); want delivered: the wait for the slot is not the receiver's time", i, out.Result, out.Err)
		}
	}
}

// loopbackSender is a sender allowed to POST to the test's loopback receivers.
func loopbackSender(t *testing.T, log zerolog.Logger, o SenderOptions) *Sender {
	t.Helper()
	targets, err := ParseTargetPolicy([]string{"127.0.0.0/8", "::1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	o.Targets = targets
	return NewSender(log, o)
}

// testEndpoint is an enabled endpoint at url that takes every type.
func testEndpoint(id, url string) *consumer.Endpoint {
	return &consumer.Endpoint{ID: id, URL: url, EventTypes: []string{"*"}, Enabled: true, Revision: 1,
		Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
}

// testDelivery is a first attempt of event id of entity to ep.
func testDelivery(ep *consumer.Endpoint, id, entity string) *consumer.Delivery {
	env := subjects.Envelope{ID: id, Type: "voyage_updated", Source: "tos", Entity: entity, OccurredAt: time.Now().UTC(), Data: []byte(`{}`)}
	return &consumer.Delivery{Endpoint: ep, Event: env, Body: []byte(`{}`), Attempt: 1}
}

// The sender counts its connections to receivers — 40 POSTs at once open 40, which stay open,
// idle, for the next POSTs. A receiver that closes its idle connections costs no attempt: the
// next POST finds them closed before it writes, drops every one and dials.
func TestSenderCountsItsConnections(t *testing.T) {
	t.Parallel()
	const conns = 40
	var arrived sync.WaitGroup
	arrived.Add(conns)
	release := make(chan struct{})
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if r.Header.Get("Quaycast-Attempt") == "1" && r.URL.Path == "/held" {
			arrived.Done()
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	s := loopbackSender(t, zerolog.New(zerolog.NewTestWriter(t)), SenderOptions{})
	if n := s.OpenConnections(); n != 0 {
		t.Fatalf("before any POST: %d connections open", n)
	}
	var sent sync.WaitGroup
	for i := range conns {
		sent.Go(func() {
			if a, err := s.Test(t.Context(), testDelivery(testEndpoint(fmt.Sprintf("ep_%d", i), rcv.URL+"/held"), "evt-1", "V1")); err != nil || a.Outcome != "delivered" {
				t.Errorf("POST %d: %v, %+v", i, err, a)
			}
		})
	}
	arrived.Wait()
	if n := s.OpenConnections(); n != conns {
		t.Errorf("%d POSTs in flight: %d connections open, want as many", conns, n)
	}
	close(release)
	sent.Wait()
	if n := s.OpenConnections(); n != conns {
		t.Errorf("%d POSTs answered: %d connections open, want all kept alive", conns, n)
	}

	rcv.CloseClientConnections()
	before := got.Load()
	if a, err := s.Test(t.Context(), testDelivery(testEndpoint("ep_again", rcv.URL), "evt-2", "V1")); err != nil || a.Outcome != "delivered" {
		t.Fatalf("POST after the receiver closed its connections: %v, %+v", err, a)
	}
	if n := got.Load() - before; n != 1 {
		t.Errorf("the receiver got %d requests for one POST, want 1", n)
	}
	if n := s.OpenConnections(); n != 1 {
		t.Errorf("after one more POST: %d connections open, want 1 (the closed ones dropped)", n)
	}
	s.closeIdleConnections()
	if n := s.OpenConnections(); n != 0 {
		t.Errorf("idle connections closed: %d still counted", n)
	}
}
