package consumer

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testlog"
	"github.com/quaycast/quaycast/internal/testwait"
)

// relay passes a TCP connection's bytes on to addr both ways, except while it is held: then they
// wait, as behind a server too busy to read its clients.
type relay struct {
	ln   net.Listener
	held atomic.Bool
}

func newRelay(t *testing.T, addr string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				_ = in.Close()
				continue
			}
			t.Cleanup(func() { _ = in.Close(); _ = out.Close() })
			go r.pass(in, out)
			go r.pass(out, in)
		}
	}()
	return r
}

func (r *relay) pass(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		for r.held.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = to.Close()
			}
			return
		}
	}
}

// Acks are sent without waiting for the server's answer; the connection's ping checks that the
// server reads them. While it does, nothing is logged; once it stops answering for ackTimeout,
// a warning says so.
func TestAcksUnconfirmedWhenTheServerStopsAnswering(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	r := newRelay(t, srv.Addr().String())
	nc, err := nats.Connect("nats://"+r.ln.Addr().String(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var logged testlog.Buffer
	m := &Manager{js: js, log: zerolog.New(&logged)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.watchAcks(ctx) }()
	t.Cleanup(func() { cancel(); r.held.Store(false); <-done })

	time.Sleep(2500 * time.Millisecond) // two pings answered
	if s := logged.String(); s != "" {
		t.Fatalf("logged while the server answered: %s", s)
	}
	r.held.Store(true)
	testwait.For(t, 3*ackTimeout, "the unanswered ping logged", func() bool {
		return strings.Contains(logged.String(), "acks not confirmed in time")
	})
}
