package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/race"
	"github.com/quaycast/quaycast/payload"
	"github.com/quaycast/quaycast/subjects"
)

// bodyOf is an envelope of about size bytes.
func bodyOf(size int) []byte {
	head := `{"id":"evt-0001","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"gate":"G3","pad":"`
	pad := max(size-len(head)-3, 0)
	return []byte(head + strings.Repeat("x", pad) + `"}}`)
}

// preparing is a sender, an endpoint's state and a delivery, for what one attempt makes before
// its headers: the body as sent and its signature.
func preparing(tb testing.TB, o payload.Options, size int) (*Sender, *endpointState, *consumer.Delivery) {
	tb.Helper()
	s := NewSender(zerolog.Nop(), SenderOptions{})
	ep := &consumer.Endpoint{ID: "ep_bench", URL: "http://127.0.0.1:1/", Revision: 1, Body: o,
		Secret: consumer.NewSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	st := s.state(ep)
	if st.err != nil {
		tb.Fatal(st.err)
	}
	body := bodyOf(size)
	env, err := subjects.ParseEnvelope(body)
	if err != nil {
		tb.Fatal(err)
	}
	return s, st, &consumer.Delivery{Endpoint: ep, Event: env, Body: body, Attempt: 1}
}

var bodyOptions = []struct {
	name string
	o    payload.Options
}{
	{"plain", payload.Options{}},
	{"mirrored", payload.Options{TypeField: "event_type"}},
	{"selected", payload.Options{TypeField: "event_type", Fields: []string{"/id", "/entity", "/data/gate"}}},
}

// BenchmarkPrepare: shape and sign one attempt's body, plain (the publisher's bytes), with the type
// mirrored, and with three fields selected, beside the baseline of a bare HMAC-SHA256 over the
// same bytes with a precomputed key.
func BenchmarkPrepare(b *testing.B) {
	for _, size := range []int{256, 1 << 10, 64 << 10} {
		name := "size=" + strconv.Itoa(size)
		if size >= 1<<10 {
			name = fmt.Sprintf("size=%dKiB", size>>10)
		}
		b.Run(name+"/baseline", func(b *testing.B) {
			body := bodyOf(size)
			mac := hmac.New(sha256.New, []byte("0123456789abcdef0123456789abcdef"))
			var sum [sha256.Size]byte
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				mac.Reset()
				mac.Write(body)
				mac.Sum(sum[:0])
			}
		})
		for _, bo := range bodyOptions {
			b.Run(name+"/"+bo.name, func(b *testing.B) {
				s, st, d := preparing(b, bo.o, size)
				buf := make([]byte, 0, 256)
				at := time.Now()
				b.ReportAllocs()
				b.SetBytes(int64(len(d.Body)))
				for b.Loop() {
					if _, _, err := s.prepare(st, d, at, buf[:0]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// The plain path allocates nothing: an endpoint without body options gets the publisher's bytes
// and the signature goes into the caller's buffer.
func TestPreparePlainAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	s, st, d := preparing(t, payload.Options{}, 1<<10)
	buf := make([]byte, 0, 256)
	at := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		body, _, _ := s.prepare(st, d, at, buf[:0])
		if &body[0] != &d.Body[0] {
			t.Fatal("the plain body was copied")
		}
	}); n != 0 {
		t.Errorf("prepare allocates %v times per plain attempt, want 0", n)
	}
}
