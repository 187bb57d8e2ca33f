package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// benchSizes are the delivery body sizes benchmarked: a small event, a
// typical one, and a large load plan.
var benchSizes = []struct {
	name string
	n    int
}{
	{"size=256", 256},
	{"size=1KiB", 1 << 10},
	{"size=16KiB", 16 << 10},
}

func benchBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// BenchmarkAppendSignature measures signing one delivery into a reused
// buffer. Read it against BenchmarkHMACBaseline over the same bytes: the
// difference is this package's overhead (pool, prefix, encoding).
func BenchmarkAppendSignature(b *testing.B) {
	signers := testSigners(b)
	for _, name := range []string{"standard", "standard-3keys", "hub", "hex-upper"} {
		s := signers[name].s
		for _, size := range benchSizes {
			b.Run(name+"/"+size.name, func(b *testing.B) {
				body := benchBody(size.n)
				buf := make([]byte, 0, s.SignatureLen())
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					buf = s.AppendSignature(buf[:0], "msg_2uQb5n0mR7VYx3kL9pTcW1eZ8dA", 1741944613, body)
				}
			})
		}
	}
}

// BenchmarkHMACBaseline is plain crypto/hmac over the same bodies: one hash
// built outside the loop, then Reset, Write, Sum into a reused buffer.
func BenchmarkHMACBaseline(b *testing.B) {
	key := benchBody(32)
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			body := benchBody(size.n)
			h := hmac.New(sha256.New, key)
			sum := make([]byte, 0, sha256.Size)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				h.Reset()
				h.Write(body)
				sum = h.Sum(sum[:0])
			}
		})
	}
}
