package gateway

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"
)

// sampleAttempt is a recorded POST as the sender makes it: its request headers as sent, a reply.
func sampleAttempt() *Attempt {
	h := http.Header{
		"Content-Type":      {"application/json"},
		"Webhook-Id":        {"ev-123"},
		"Webhook-Timestamp": {"1764547200"},
		"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,Zm9vYmFy"},
		"X-Tenant":          {"maersk"},
		"X-Api-Key":         {"s3cr3t"},
	}
	custom := http.Header{"X-Tenant": {"maersk"}, "X-Api-Key": {"s3cr3t"}}
	return &Attempt{
		ID: "att_XyZ", EndpointID: "ep_abc", EventID: "ev-123", EventSeq: 42, Type: "cargo_loaded", Entity: "MSCU1234567",
		Attempt: 2, At: time.Date(2026, 12, 1, 5, 30, 0, 123456789, time.UTC), DurationMS: 12.345, Outcome: "delivered",
		Request:  AttemptRequest{URL: "https://hooks.example.com/in?a=1&b=<2>"},
		Response: &AttemptResponse{Status: 200, Headers: map[string]string{"Content-Type": "application/json", "Date": "Tue, 01 Dec 2026 05:30:00 GMT"}, Body: `{"ok":true}`},
		header:   h, custom: custom,
	}
}

// The delivery log's hand-written encoding is byte for byte what encoding/json makes of the
// record, its request headers flattened and redacted as before, over awkward strings and numbers.
func TestAttemptJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	odd := "quote\" back\\ nl\n tab\t ctl\x01\x1f html<>& bad\xff utf8 é 🚢 sep\u2028\u2029 del\x7f"
	tests := map[string]func(a *Attempt){
		"delivered":          func(*Attempt) {},
		"no response, error": func(a *Attempt) { a.Response, a.Outcome, a.Error = nil, "retry", "dial tcp: "+odd },
		"odd strings":        func(a *Attempt) { a.EventID, a.Entity, a.Request.URL, a.Response.Body = odd, odd, odd, odd },
		"odd header values":  func(a *Attempt) { a.header["X-Odd"] = []string{odd, "two"}; a.Response.Headers["X-Odd"] = odd },
		"test send":          func(a *Attempt) { a.Test, a.EventSeq = true, 0 },
		"truncated reply":    func(a *Attempt) { a.Response.Truncated, a.ReplyError = true, "reply larger than 1 bytes" },
		"alerts": func(a *Attempt) {
			a.Alerts = []Alert{{Message: "berth <full>", Level: "warning", Mutation: json.RawMessage(`{"x":1}`)}}
		},
		"no headers":        func(a *Attempt) { a.header, a.custom, a.Response.Headers = nil, nil, nil },
		"tiny duration":     func(a *Attempt) { a.DurationMS = 0.0000004 },
		"huge duration":     func(a *Attempt) { a.DurationMS = 3e21 },
		"zero duration":     func(a *Attempt) { a.DurationMS = 0 },
		"whole duration":    func(a *Attempt) { a.DurationMS = 1500 },
		"max sequence":      func(a *Attempt) { a.EventSeq = math.MaxUint64 },
		"flattened already": func(a *Attempt) { a.Request.Headers = flatRequestHeaders(a.header, a.custom) },
		"many request headers": func(a *Attempt) {
			for _, k := range []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Aa", "Bb", "Cc"} {
				a.header[k] = []string{k}
			}
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			a := sampleAttempt()
			change(a)
			got := a.appendJSON(nil)
			a.Request.Headers = flatRequestHeaders(a.header, a.custom)
			want, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

// BenchmarkAttemptRecord encodes a delivery-log record: by hand, beside encoding/json over the
// flattened headers as the sender did before.
func BenchmarkAttemptRecord(b *testing.B) {
	b.Run("appendJSON", func(b *testing.B) {
		a := sampleAttempt()
		b.ReportAllocs()
		for b.Loop() {
			_ = a.appendJSON(make([]byte, 0, 1024))
		}
	})
	b.Run("baseline-encoding-json", func(b *testing.B) {
		a := sampleAttempt()
		b.ReportAllocs()
		for b.Loop() {
			a.Request.Headers = flatRequestHeaders(a.header, a.custom)
			_, _ = json.Marshal(a)
		}
	})
}
