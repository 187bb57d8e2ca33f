package gateway

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
)

// A receiver a proxy from the environment applies to is reached through that proxy, with the
// same signed request; one it does not apply to is reached directly. The proxy's own address is
// dialled through the target policy like any receiver's.
func TestProxyFromTheEnvironmentTakesItsReceivers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var viaProxy []*http.Request
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		viaProxy = append(viaProxy, r)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(proxy.Close)
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(direct.Close)
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	// As HTTP_PROXY with NO_PROXY=127.0.0.1 would decide (the environment is the process's, and
	// tests run in parallel): the registered name goes through the proxy, the loopback address not.
	onlyExample := func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "hooks.example.com" {
			return proxyURL, nil
		}
		return nil, nil
	}
	s := loopbackSender(t, zerolog.New(zerolog.NewTestWriter(t)), SenderOptions{})
	s.stdlib.Proxy = onlyExample

	a, err := s.Test(t.Context(), testDelivery(testEndpoint("ep_proxied", "http://hooks.example.com/in?x=1"), "evt-1", "V1"))
	if err != nil || a.Outcome != "delivered" {
		t.Fatalf("through the proxy: %v, %+v", err, a)
	}
	a, err = s.Test(t.Context(), testDelivery(testEndpoint("ep_direct", direct.URL), "evt-2", "V1"))
	if err != nil || a.Outcome != "delivered" {
		t.Fatalf("directly: %v, %+v", err, a)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(viaProxy) != 1 {
		t.Fatalf("the proxy got %d requests, want 1 (the direct receiver's POST went around it)", len(viaProxy))
	}
	if r := viaProxy[0]; r.Method != http.MethodPost || r.RequestURI != "http://hooks.example.com/in?x=1" || r.Header.Get("Webhook-Signature") == "" {
		t.Errorf("the proxy got %s %s with signature %q; want the signed POST to the registered URL", r.Method, r.RequestURI, r.Header.Get("Webhook-Signature"))
	}

	strict := NewSender(zerolog.Nop(), SenderOptions{}) // loopback not allowed: not even as a proxy
	strict.stdlib.Proxy = onlyExample
	a, err = strict.Test(t.Context(), testDelivery(testEndpoint("ep_proxied", "http://hooks.example.com/in"), "evt-3", "V1"))
	if err != nil || a.Outcome != "retry" || !strings.Contains(a.Error, ErrTargetNotAllowed.Error()) {
		t.Errorf("through a proxy on a refused address: %v, %+v; want a retry for %q", err, a, ErrTargetNotAllowed)
	}
}

// An https receiver is verified against the trusted roots and reached with TLS; one whose
// certificate is not trusted gets nothing.
func TestTLSReceiver(t *testing.T) {
	t.Parallel()
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.Header.Get("Webhook-Signature") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	ep := testEndpoint("ep_tls", rcv.URL)

	untrusting := loopbackSender(t, zerolog.Nop(), SenderOptions{})
	a, err := untrusting.Test(t.Context(), testDelivery(ep, "evt-1", "V1"))
	if err != nil || a.Outcome != "retry" || !strings.Contains(a.Error, "certificate") {
		t.Errorf("receiver with an untrusted certificate: %v, %+v; want a retry naming the certificate", err, a)
	}

	roots := x509.NewCertPool()
	roots.AddCert(rcv.Certificate())
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{})
	s.direct.TLSConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	for i := range 2 { // the second on the kept-alive connection
		a, err := s.Test(t.Context(), testDelivery(ep, "evt-"+strconv.Itoa(i), "V1"))
		if err != nil || a.Outcome != "delivered" || a.Response.Status != http.StatusNoContent {
			t.Fatalf("POST %d to a trusted receiver: %v, %+v", i, err, a)
		}
	}
	if n := s.OpenConnections(); n != 1 {
		t.Errorf("%d connections open after two POSTs one after the other, want 1", n)
	}
}

// What goes over the wire, read raw: header names as quaycast writes them (webhook-id in lower
// case, as Standard Webhooks' own libraries send it), and back: repeated reply headers joined, a
// 503's Retry-After taken.
func TestWireRequestAndReply(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	heads := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		var head strings.Builder
		length := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		_, _ = io.CopyN(io.Discard, br, int64(length))
		heads <- head.String()
		_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nX-Shard: a\r\nX-Shard: b\r\nContent-Length: 4\r\n\r\nbusy")
	}()
	var got *Attempt
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{OnAttempt: func(a *Attempt) { got = a }})
	out := s.Deliver(t.Context(), testDelivery(testEndpoint("ep_wire", "http://"+ln.Addr().String()+"/hook"), "evt-1", "V1"))
	if out.Result != consumer.Retry || out.Status != http.StatusServiceUnavailable || out.RetryAfter != 7*time.Second {
		t.Errorf("503 with Retry-After 7: %v %d after %s; want a retry after 7s", out.Result, out.Status, out.RetryAfter)
	}
	head := <-heads
	for _, want := range []string{"POST /hook HTTP/1.1\r\n", "\r\nwebhook-id: evt-1\r\n", "\r\nwebhook-signature: v1,", "\r\nUser-Agent: quaycast/1\r\n", "\r\nContent-Type: application/json\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("request head lacks %q:\n%s", want, head)
		}
	}
	if got == nil || got.Response == nil || got.Response.Headers["X-Shard"] != "a, b" || got.Response.Body != "busy" {
		t.Errorf("recorded reply %+v; want X-Shard \"a, b\" and the body", got)
	} else if ct, ok := got.Response.Headers["Content-Type"]; ok {
		t.Errorf("recorded reply has Content-Type %q; the receiver sent none", ct)
	}
}

// Abort ends a POST in flight at once — a lost lease, a stop past --shutdown-timeout — closing
// its connection, long before its deadline.
func TestAbortEndsAPOSTInFlight(t *testing.T) {
	t.Parallel()
	arrived, gone, testDone := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-testDone:
		}
	}))
	t.Cleanup(rcv.Close)
	t.Cleanup(func() { close(testDone) })
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{Timeout: time.Minute})
	outs := make(chan consumer.Outcome, 1)
	go func() { outs <- s.Deliver(t.Context(), testDelivery(testEndpoint("ep_abort", rcv.URL), "evt-1", "V1")) }()
	<-arrived
	s.Abort()
	select {
	case out := <-outs:
		if out.Result != consumer.Retry || out.Err == nil {
			t.Errorf("aborted POST: %v %v, want a retry with the reason", out.Result, out.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the POST still runs after Abort")
	}
	<-gone
	if n := s.OpenConnections(); n != 0 {
		t.Errorf("%d connections open after Abort", n)
	}
	if st, _ := s.Breaker("ep_abort"); st.ConsecutiveFailures != 0 || st.Failures != 0 {
		t.Errorf("breaker %+v after an aborted POST: it counted the abort as the receiver's failure", st)
	}
}

// A reply whose headers are long (cookies, a content security policy: 12 KiB here) is read like
// any other. One longer than fasthttp reads (40 KiB) fails once, and from then on the receiver's
// POSTs go through net/http, which reads it.
func TestReplyWithLongHeaders(t *testing.T) {
	t.Parallel()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("kib"))
		w.Header().Set("Content-Security-Policy", strings.Repeat("a", n<<10))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{})
	send := func(ep *consumer.Endpoint) *Attempt {
		t.Helper()
		a, err := s.Test(t.Context(), testDelivery(ep, "evt-1", "V1"))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := send(testEndpoint("ep_long", rcv.URL+"?kib=12")); a.Outcome != "delivered" || len(a.Response.Headers["Content-Security-Policy"]) != 12<<10 {
		t.Errorf("reply with 12 KiB of headers: outcome %q, error %q", a.Outcome, a.Error)
	}
	longer := testEndpoint("ep_longer", rcv.URL+"?kib=40")
	if a := send(longer); a.Outcome != "retry" {
		t.Errorf("reply with 40 KiB of headers, first: outcome %q, want a retry", a.Outcome)
	}
	if a := send(longer); a.Outcome != "delivered" || len(a.Response.Headers["Content-Security-Policy"]) != 40<<10 {
		t.Errorf("reply with 40 KiB of headers, again: outcome %q, error %q; want it delivered through net/http", a.Outcome, a.Error)
	}
}

// A TLS receiver that takes the connection and never answers the handshake fails the POST at
// its deadline; it does not hold it for ever.
func TestSilentTLSReceiverTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, silent
		}
	}()
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{Timeout: 300 * time.Millisecond})
	done := make(chan *Attempt, 1)
	go func() {
		a, _ := s.Test(t.Context(), testDelivery(testEndpoint("ep_silent", "https://"+ln.Addr().String()+"/hook"), "evt-1", "V1"))
		done <- a
	}()
	select {
	case a := <-done:
		if a == nil || a.Outcome != "retry" || !strings.Contains(a.Error, "timed out") {
			t.Errorf("silent TLS receiver: %+v, want a retry for the handshake timed out", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the POST to a silent TLS receiver still runs, far past its 300 ms deadline")
	}
}

// A kept-alive connection idle for longer than the delivery timeout is used again: the last
// POST's read deadline, long past, does not make it look closed.
func TestConnectionIdleLongerThanTheTimeoutIsReused(t *testing.T) {
	t.Parallel()
	var dials atomic.Int64
	rcv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	rcv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	rcv.Start()
	t.Cleanup(rcv.Close)
	const timeout = 200 * time.Millisecond
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{Timeout: timeout})
	ep := testEndpoint("ep_idle", rcv.URL)
	for i := range 2 {
		if i == 1 {
			time.Sleep(3 * timeout)
		}
		if a, err := s.Test(t.Context(), testDelivery(ep, "evt-"+strconv.Itoa(i), "V1")); err != nil || a.Outcome != "delivered" {
			t.Fatalf("POST %d: %v %+v", i, err, a)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections dialled for two POSTs over one idle spell, want 1", n)
	}
}

// What fasthttp would not send as net/http does goes through net/http: a custom Cookie header,
// byte for byte (fasthttp parses it, and drops a value it cannot quote). A URL's path is sent
// escaped, as net/http writes it.
func TestSentAsWritten(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 2)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{})
	cookie := `session="abc"; sig=a\b; flag`
	ep := testEndpoint("ep_cookie", rcv.URL+"/in")
	ep.Headers = map[string]string{"Cookie": cookie}
	if a, err := s.Test(t.Context(), testDelivery(ep, "evt-1", "V1")); err != nil || a.Outcome != "delivered" {
		t.Fatalf("POST with a cookie: %v %+v", err, a)
	}
	if r := <-got; r.Header.Get("Cookie") != cookie {
		t.Errorf("Cookie arrived as %q, want %q", r.Header.Get("Cookie"), cookie)
	}
	if a, err := s.Test(t.Context(), testDelivery(testEndpoint("ep_path", rcv.URL+"/hooks/café/{id}?q=1"), "evt-2", "V1")); err != nil || a.Outcome != "delivered" {
		t.Fatalf("POST to a path to escape: %v %+v", err, a)
	}
	if r := <-got; r.RequestURI != "/hooks/caf%C3%A9/%7Bid%7D?q=1" {
		t.Errorf("request URI %q, want the path escaped as net/http sends it", r.RequestURI)
	}
}
