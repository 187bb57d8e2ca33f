package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkHTTPClientPOST is the CPU one POST costs with net/http's client, as the gateway's
// sender makes it (Transport.RoundTrip under a deadline, quaycast's headers, a bounded read of the
// reply), and with fasthttp's, the same request to the same net/http receiver in this process, 64
// at once. It is the evidence for the one lever left for issue #14's goal 2 (bench/PERFORMANCE.md,
// "fourteenth session"): the gateway does not use fasthttp. cpu-µs/op is the process's CPU per
// POST, the receiver's included (the same for both), from /proc.
//
//	go test -run '^$' -bench HTTPClientPOST -benchmem ./bench/
func BenchmarkHTTPClientPOST(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rcv.Close)
	body := bytes.Repeat([]byte("x"), 1024)
	headers := [][2]string{{"Content-Type", "application/json"}, {"User-Agent", "quaycast/1"}, {"Webhook-Id", "evt_0123456789"},
		{"Webhook-Timestamp", "1764700000"}, {"Quaycast-Event-Type", "cargo_loaded"}, {"Quaycast-Event-Source", "tos"},
		{"Quaycast-Attempt", "1"}, {"Quaycast-Previous-Event-Id", "evt_0123456788"},
		{"Webhook-Signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}}
	run := func(b *testing.B, post func() error) {
		b.ReportAllocs()
		b.SetParallelism(32) // 64 POSTs at once on two cores, as one endpoint's --max-in-flight
		start := processCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := post(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("net-http", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, 128
		b.Cleanup(tr.CloseIdleConnections)
		run(b, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, rcv.URL, bytes.NewReader(body))
			if err != nil {
				return err
			}
			for _, h := range headers {
				req.Header[h[0]] = []string{h[1]}
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			return resp.Body.Close()
		})
	})
	b.Run("fasthttp", func(b *testing.B) {
		c := &fasthttp.Client{MaxConnsPerHost: 128, MaxResponseBodySize: 64 << 10, NoDefaultUserAgentHeader: true}
		b.Cleanup(c.CloseIdleConnections)
		run(b, func() error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(rcv.URL)
			req.Header.SetMethod(http.MethodPost)
			for _, h := range headers {
				req.Header.Set(h[0], h[1])
			}
			req.SetBodyRaw(body)
			return c.DoTimeout(req, resp, 10*time.Second)
		})
	})
}

// processCPU is this process's CPU time so far.
func processCPU(b *testing.B) time.Duration {
	p, err := readProc(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return p.CPU
}
