package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// replyRig is a sender that passes replies on to an embedded NATS server with its default max
// payload, a receiver whose reply the test sets, and a subscriber to the replies.
type replyRig struct {
	sender  *Sender
	replies chan *nats.Msg

	mu    sync.Mutex
	reply string
	url   string
}

// newStreams starts an embedded JetStream server with quaycast's streams, and connects to it.
func newStreams(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	if _, _, err := consumer.Setup(t.Context(), js, consumer.StreamOptions{MaxAge: time.Hour, Duplicates: time.Minute, MaxConsumers: 10}); err != nil {
		t.Fatal(err)
	}
	if err := attempts.Setup(t.Context(), js, attempts.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func newReplyRig(t *testing.T, o SenderOptions) *replyRig {
	t.Helper()
	nc, js := newStreams(t)
	rig := &replyRig{replies: make(chan *nats.Msg, 4)}
	sub, err := nc.ChanSubscribe(attempts.ReplyPrefix+">", rig.replies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rig.mu.Lock()
		reply := rig.reply
		rig.mu.Unlock()
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	rig.url = srv.URL
	o.Replies = js
	o.Targets, err = ParseTargetPolicy([]string{"127.0.0.0/8", "::1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rig.sender = NewSender(zerolog.New(zerolog.NewTestWriter(t)), o)
	return rig
}

// send delivers one event whose ids are as long as they may be (the reply's headers carry them)
// to a receiver answering reply, and returns the attempt.
func (rig *replyRig) send(t *testing.T, reply string) *Attempt {
	t.Helper()
	rig.mu.Lock()
	rig.reply = reply
	rig.mu.Unlock()
	ep := &consumer.Endpoint{ID: "ep_" + strings.Repeat("a", 61), URL: rig.url, EventTypes: []string{"*"}, Enabled: true, Revision: 1,
		Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	env := subjects.Envelope{ID: strings.Repeat("i", subjects.MaxIDBytes), Type: "voyage_updated", Source: "tos",
		Entity: strings.Repeat("e", subjects.MaxEntityBytes), OccurredAt: time.Now().UTC(), Data: []byte(`{}`)}
	a, err := rig.sender.Test(t.Context(), &consumer.Delivery{Endpoint: ep, Event: env, Body: []byte(`{}`), Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a.Outcome != "delivered" {
		t.Fatalf("outcome %s (%s), want delivered", a.Outcome, a.Error)
	}
	return a
}

// passedOn waits for the next reply passed on, and checks it is reply.
func (rig *replyRig) passedOn(t *testing.T, reply string) {
	t.Helper()
	select {
	case m := <-rig.replies:
		if string(m.Data) != reply {
			t.Errorf("passed on %d bytes, want the %d of the reply", len(m.Data), len(reply))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reply was not passed on within 10 s")
	}
}

// jsonOf is a JSON string of exactly n bytes.
func jsonOf(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }

// The largest reply --max-reply-bytes allows fits in a NATS message with quaycast's headers at
// their longest, on a server with the default max payload; one byte more is not passed on.
func TestReplyOfTheLargestSizeIsPassedOn(t *testing.T) {
	t.Parallel()
	rig := newReplyRig(t, SenderOptions{MaxResponseBytes: config.MaxReplyBytesLimit})
	reply := jsonOf(config.MaxReplyBytesLimit)
	if a := rig.send(t, reply); a.ReplyError != "" {
		t.Fatalf("a reply of %d bytes: reply_error %q", len(reply), a.ReplyError)
	}
	rig.passedOn(t, reply)
	if a := rig.send(t, jsonOf(config.MaxReplyBytesLimit+1)); !strings.Contains(a.ReplyError, "--max-reply-bytes") {
		t.Errorf("a reply one byte over: reply_error %q, want one naming --max-reply-bytes", a.ReplyError)
	}
	if n := rig.sender.replyMem.inUse(); n != 0 {
		t.Errorf("%d bytes of reply memory still held after the deliveries", n)
	}
}

// Replies held at once stay within --reply-memory: a reply that does not fit beside those held is
// not passed on (the delivery still counts), and the next one is once memory is free again.
func TestReplyMemoryIsCapped(t *testing.T) {
	t.Parallel()
	rig := newReplyRig(t, SenderOptions{MaxResponseBytes: 48 << 10, MaxReplyMemory: 64 << 10})
	reply := jsonOf(40 << 10)
	if !rig.sender.replyMem.reserve(40 << 10) { // as if another reply were being read
		t.Fatal("could not reserve 40 KiB of 64")
	}
	a := rig.send(t, reply)
	if !strings.Contains(a.ReplyError, "--reply-memory") || a.Response == nil || a.Response.Body == "" {
		t.Errorf("with 40 of 64 KiB held: reply_error %q, response %+v; want a reply_error naming --reply-memory and the excerpt kept", a.ReplyError, a.Response)
	}
	rig.sender.replyMem.release(40 << 10)
	if a := rig.send(t, reply); a.ReplyError != "" {
		t.Errorf("with nothing held: reply_error %q", a.ReplyError)
	}
	rig.passedOn(t, reply)
	select {
	case m := <-rig.replies:
		t.Errorf("a second reply was passed on (%d bytes): the one over the cap should not be", len(m.Data))
	default:
	}
	if n := rig.sender.replyMem.inUse(); n != 0 {
		t.Errorf("%d bytes of reply memory still held after the deliveries", n)
	}
}

func TestReplyFlagsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*config.Config)
		field  string // "" = valid
	}{
		{"defaults", func(*config.Config) {}, ""},
		{"the largest reply", func(c *config.Config) { c.MaxReplyBytes = config.MaxReplyBytesLimit }, ""},
		{"1 MB as the voyage platform allows", func(c *config.Config) { c.MaxReplyBytes = 1_000_000 }, ""},
		{"more than a NATS message carries", func(c *config.Config) { c.MaxReplyBytes = config.MaxReplyBytesLimit + 1 }, "max-reply-bytes"},
		{"no reply at all", func(c *config.Config) { c.MaxReplyBytes = 0 }, "max-reply-bytes"},
		{"memory below one reply", func(c *config.Config) { c.MaxReplyBytes, c.ReplyMemory = 1<<20-1024, 512<<10 }, "reply-memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tc.change(&c)
			err := c.Validate()
			var fe *fielderr.Error
			if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Errorf("Validate() = %v, want a flag error for %q", err, tc.field)
			}
		})
	}
}
