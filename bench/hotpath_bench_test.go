package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"testing"

	"github.com/quaycast/quaycast/gateway/signature"
)

// The signing/fan-out hot path: one event signed for each of n endpoints (each its own secret),
// as the gateway does when an event fans out, next to a baseline of plain crypto/hmac over the
// same signed bytes in the same run. Read the results as ratios:
//
//	go test -run='^$' -bench=FanOut -benchmem ./bench/
var (
	fanOuts = []int{1, 100, 1000}
	sizes   = []struct {
		name string
		n    int
	}{{"256", 256}, {"1KiB", 1 << 10}, {"16KiB", 16 << 10}}
)

const (
	benchMsgID = "evt_01JDX3T6Q9V6K2J8M4N5P7R0ST"
	benchTS    = int64(1795453319)
)

func benchBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func benchSecret(i int) string {
	key := make([]byte, 32)
	for j := range key {
		key[j] = byte(i*31 + j)
	}
	return signature.SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// BenchmarkFanOutSign signs with quaycast's Signer, standard profile, into a reused buffer.
func BenchmarkFanOutSign(b *testing.B) {
	for _, n := range fanOuts {
		signers := make([]*signature.Signer, n)
		for i := range signers {
			s, err := signature.NewSigner(signature.Standard, signature.Options{}, benchSecret(i))
			if err != nil {
				b.Fatal(err)
			}
			signers[i] = s
		}
		for _, size := range sizes {
			b.Run(fmt.Sprintf("endpoints=%d/size=%s", n, size.name), func(b *testing.B) {
				body, buf := benchBody(size.n), make([]byte, 0, 128)
				for _, s := range signers { // warm: each key's HMAC state exists, as in steady state
					buf = s.AppendSignature(buf[:0], benchMsgID, benchTS, body)
				}
				b.ReportAllocs()
				b.SetBytes(int64(size.n * n))
				for b.Loop() {
					for _, s := range signers {
						buf = s.AppendSignature(buf[:0], benchMsgID, benchTS, body)
					}
				}
			})
		}
	}
}

// BenchmarkFanOutHMACBaseline is the floor: plain crypto/hmac, one precomputed hash per key,
// over the same bytes the standard profile signs ("<id>.<ts>." and the body), no encoding.
func BenchmarkFanOutHMACBaseline(b *testing.B) {
	for _, n := range fanOuts {
		macs := make([]hash.Hash, n)
		for i := range macs {
			key, _ := base64.StdEncoding.DecodeString(benchSecret(i)[len(signature.SecretPrefix):])
			macs[i] = hmac.New(sha256.New, key)
		}
		prefix := []byte(benchMsgID + "." + strconv.FormatInt(benchTS, 10) + ".")
		for _, size := range sizes {
			b.Run(fmt.Sprintf("endpoints=%d/size=%s", n, size.name), func(b *testing.B) {
				body, sum := benchBody(size.n), make([]byte, 0, sha256.Size)
				b.ReportAllocs()
				b.SetBytes(int64(size.n * n))
				for b.Loop() {
					for _, m := range macs {
						m.Reset()
						m.Write(prefix)
						m.Write(body)
						sum = m.Sum(sum[:0])
					}
				}
			})
		}
	}
}
