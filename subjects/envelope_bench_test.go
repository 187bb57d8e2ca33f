package subjects

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/internal/race"
)

// BenchmarkParseEnvelope is the per-message cost every endpoint's consumer pays, beside a plain
// json.Unmarshal of the same bytes into the same struct as a baseline.
func BenchmarkParseEnvelope(b *testing.B) {
	for _, size := range []int{256, 1 << 10, 16 << 10} {
		pad := strings.Repeat("x", max(size-200, 1))
		body := fmt.Appendf(nil, `{"id":"evt_01JDX3T6Q9V6K2J8M4N5P7R0ST","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"gate":"G3","pad":%q}}`, pad)
		b.Run(fmt.Sprintf("quaycast/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseEnvelope(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("baseline-unmarshal/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var e Envelope
				if err := json.Unmarshal(body, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPeekTenants is the router's cost per event to learn its tenants without the header:
// an event naming none (one scan for the key) and one naming two (the top-level scan), beside
// the full parse of the same bytes as a baseline.
func BenchmarkPeekTenants(b *testing.B) {
	pad := strings.Repeat("x", 800)
	for _, tc := range []struct{ name, tenants string }{{"none", ""}, {"two", `,"tenants":["maersk","hlag"]`}} {
		body := fmt.Appendf(nil, `{"id":"evt_01JDX3T6Q9V6K2J8M4N5P7R0ST","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z"%s,"data":{"gate":"G3","pad":%q}}`, tc.tenants, pad)
		b.Run("peek/tenants="+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := PeekTenants(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("baseline-parse/tenants="+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseEnvelope(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The parse keeps to its allocations: the four strings, the data's copy, and the scan's none
// (a map and a copy of every value were 19 more).
func TestParseEnvelopeAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	body := []byte(`{"id":"evt_01JDX3T6Q9V6K2J8M4N5P7R0ST","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"gate":"G3"},"extra":1}`)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := ParseEnvelope(body); err != nil {
			t.Fatal(err)
		}
	}); n > 5 {
		t.Errorf("%v allocations per parse, want at most 5", n)
	}
}
