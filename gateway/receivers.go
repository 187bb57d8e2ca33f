package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// How the sender reaches receivers. A POST leaves through one of two clients over one dialer —
// the target policy's check on every address dialled, the cluster fence on every write, and the
// count of open connections:
//
//   - fasthttp's, for a receiver reached directly (nearly all): it costs about 28 µs less CPU
//     per POST than net/http's client, and keeps no goroutine on a kept-alive connection
//     (BenchmarkHTTPClientPOST, bench/PERFORMANCE.md). It speaks HTTP/1.1 only.
//   - net/http's transport where fasthttp would not send what net/http does (netHTTPFor): a
//     receiver a proxy from the environment applies to (HTTPS_PROXY, HTTP_PROXY, NO_PROXY;
//     fasthttp's proxy dialers would not go through the target policy), one with a custom
//     Cookie header (fasthttp parses and writes it again, dropping values it cannot quote), one
//     whose host is not ASCII (net/http sends its punycode), and one whose replies' headers
//     outgrew fasthttp's read buffer.

// receiverDialer opens connections to receivers, and knows them until they close.
type receiverDialer struct {
	net   net.Dialer
	fence func() bool // nil: no fence

	mu   sync.Mutex
	open map[*receiverConn]struct{}
}

func newReceiverDialer(targets TargetPolicy, fence func() bool) *receiverDialer {
	return &receiverDialer{net: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: targets.control}, fence: fence,
		open: make(map[*receiverConn]struct{})}
}

// dial opens a connection; checkStale marks it for the check before each reuse (fasthttp's: see
// receiverConn.SetWriteDeadline).
func (d *receiverDialer) dial(ctx context.Context, network, addr string, checkStale bool) (net.Conn, error) {
	c, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	rc := &receiverConn{Conn: c, dialer: d}
	if sc, ok := c.(syscall.Conn); checkStale && ok {
		rc.raw, _ = sc.SyscallConn()
	}
	if d.fence != nil {
		rc.Conn = fencedConn{Conn: c, held: d.fence}
	}
	d.mu.Lock()
	d.open[rc] = struct{}{}
	d.mu.Unlock()
	return rc, nil
}

// count is how many connections are open, in use or idle.
func (d *receiverDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.open)
}

// closeAll closes every connection open, in use or idle: the POSTs on them fail at once (Abort).
func (d *receiverDialer) closeAll() {
	d.mu.Lock()
	open := make([]*receiverConn, 0, len(d.open))
	for c := range d.open {
		open = append(open, c)
	}
	d.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// directClient is the fasthttp client of receivers reached directly.
func (d *receiverDialer) directClient(maxInFlight int, timeout time.Duration) *fasthttp.Client {
	return &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return d.dial(ctx, "tcp", addr, true)
		},
		// Bounds the TLS handshake, which fasthttp makes at the first write: without it reading
		// the server's hello had no deadline (a receiver that accepts and stays silent held the
		// POST for ever). The write deadline stays the POST's, which is never later.
		WriteTimeout:             timeout,
		NoDefaultUserAgentHeader: true,             // the sender writes its own
		DisablePathNormalizing:   true,             // the path as netHTTPFor escaped it, not rewritten
		StreamResponseBody:       true,             // read by readReply, bounded and timed
		MaxConnsPerHost:          maxInFlight,      // --max-in-flight-total bounds them all already
		MaxIdleConnDuration:      90 * time.Second, // as net/http's IdleConnTimeout
		ReadBufferSize:           16 << 10,         // the reply's headers must fit: fasthttp's 4 KiB is too few for some
		RetryIfErr:               retryStale,
		// After a quiet spell all of a receiver's idle connections may have been closed by it
		// (Node.js and Apache close theirs after 5 s): each found closed is dropped, so a POST
		// tries each at most once, then dials.
		MaxIdemponentCallAttempts: maxInFlight + 1,
	}
}

// retryStale sends a POST again only when nothing of it was written: the connection it was
// given had been closed by the receiver (errStaleConn). Any other failure is the attempt's
// outcome, as with net/http, which retries only what it did not write either.
func retryStale(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	return false, errors.Is(err, errStaleConn)
}

// errStaleConn refuses a kept-alive connection the receiver closed while it was idle.
var errStaleConn = errors.New("kept-alive connection closed by the receiver")

// netHTTPFor says whether POSTs to rawURL with the custom headers go through net/http's
// transport (see the top of this file); target is the URL fasthttp is given otherwise: escaped
// as net/http writes it (fasthttp sends the path's bytes as they are). An unreadable URL or proxy
// setting goes to net/http too, to fail with its own error.
func netHTTPFor(proxy func(*http.Request) (*url.URL, error), rawURL string, custom http.Header) (use bool, target string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return true, rawURL
	}
	if _, ok := custom["Cookie"]; ok || !ascii(u.Host) {
		return true, rawURL
	}
	if proxy != nil {
		if p, err := proxy(&http.Request{URL: u}); err != nil || p != nil {
			return true, rawURL
		}
	}
	return false, u.String()
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// receiverConn is a connection to a receiver, known to its dialer until its first Close.
type receiverConn struct {
	net.Conn
	raw    syscall.RawConn // set: checked for a close before each reuse
	dialer *receiverDialer
	used   bool // a request was written on it; only the client holding it reads or sets this
}

func (c *receiverConn) Close() error {
	c.dialer.mu.Lock()
	delete(c.dialer.open, c)
	c.dialer.mu.Unlock()
	return c.Conn.Close()
}

// SetWriteDeadline is where fasthttp begins each request on the connection. A kept-alive one the
// receiver has closed (or sent anything on unasked, as a 408 before closing) is refused here,
// before a byte is written, and the POST goes on a fresh one: net/http learns the same from the
// reader goroutine it keeps on every idle connection.
func (c *receiverConn) SetWriteDeadline(t time.Time) error {
	if c.raw == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	if c.used {
		// The last POST's read deadline is still set (fasthttp sets the next after the write):
		// once past, the peek would be refused, and a healthy connection idle longer than
		// --delivery-timeout taken for closed.
		if err := c.Conn.SetReadDeadline(time.Time{}); err != nil || closedByPeer(c.raw) {
			return errStaleConn
		}
	}
	c.used = true
	return c.Conn.SetWriteDeadline(t)
}
