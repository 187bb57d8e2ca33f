package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quaycast/quaycast/internal/race"
)

// testSigners returns one signer per profile (standard with two previous
// keys), each with fresh random secrets, plus those secrets.
func testSigners(t testing.TB) map[string]struct {
	s       *Signer
	secrets []string
} {
	t.Helper()
	out := map[string]struct {
		s       *Signer
		secrets []string
	}{}
	for _, c := range []struct {
		name  string
		p     Profile
		o     Options
		nprev int
	}{
		{"standard", Standard, Options{}, 0},
		{"standard-3keys", Standard, Options{}, 2},
		{"hub", Hub, Options{}, 0},
		{"hex-upper", Hex, Options{HeaderName: "X-Signature", HexUpper: true}, 0},
		{"hex-lower", Hex, Options{HeaderName: "X-Signature"}, 0},
	} {
		var secrets []string
		for range 1 + c.nprev {
			secret, err := NewSecret(c.p)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, secret)
		}
		s, err := NewSigner(c.p, c.o, secrets[0], secrets[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		out[c.name] = struct {
			s       *Signer
			secrets []string
		}{s, secrets}
	}
	return out
}

// referenceSignature computes the signature value with plain crypto/hmac,
// independently of the Signer's pooled states.
func referenceSignature(t testing.TB, s *Signer, secrets []string, msgID string, ts int64, body []byte) string {
	t.Helper()
	mac := func(secret string, prefixed bool) []byte {
		key, err := ParseKey(s.Profile(), secret)
		if err != nil {
			t.Fatal(err)
		}
		h := hmac.New(sha256.New, key)
		if prefixed {
			h.Write([]byte(msgID + "." + strconv.FormatInt(ts, 10) + "."))
		}
		h.Write(body)
		return h.Sum(nil)
	}
	switch s.Profile() {
	case Standard:
		var entries []string
		for _, secret := range secrets {
			entries = append(entries, "v1,"+base64.StdEncoding.EncodeToString(mac(secret, true)))
		}
		return strings.Join(entries, " ")
	case Hub:
		return "sha256=" + hex.EncodeToString(mac(secrets[0], false))
	}
	if s.upper {
		return strings.ToUpper(hex.EncodeToString(mac(secrets[0], false)))
	}
	return hex.EncodeToString(mac(secrets[0], false))
}

func TestAppendSignatureAppends(t *testing.T) {
	t.Parallel()
	for name, c := range testSigners(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body := []byte(`{"type":"cargo.gated_in"}`)
			want := referenceSignature(t, c.s, c.secrets, "msg_1", 1741944613, body)
			got := c.s.AppendSignature([]byte("prefix:"), "msg_1", 1741944613, body)
			if string(got) != "prefix:"+want {
				t.Errorf("AppendSignature = %q, want %q", got, "prefix:"+want)
			}
		})
	}
}

// TestSignerConcurrent shares one Signer per profile between goroutines that
// sign different messages; run with -race.
func TestSignerConcurrent(t *testing.T) {
	t.Parallel()
	const goroutines, perGoroutine = 16, 100
	for name, c := range testSigners(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Go(func() {
					buf := make([]byte, 0, c.s.SignatureLen())
					for i := range perGoroutine {
						msgID := fmt.Sprintf("msg_%d_%d", g, i)
						body := bytes.Repeat([]byte{byte('a' + g)}, 1+i*37)
						ts := int64(1741944613 + i)
						buf = c.s.AppendSignature(buf[:0], msgID, ts, body)
						if want := referenceSignature(t, c.s, c.secrets, msgID, ts, body); string(buf) != want {
							errs <- fmt.Errorf("goroutine %d message %d: got %q, want %q", g, i, buf, want)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestAppendSignatureAllocs guards the hot-path promise: with a buffer of
// SignatureLen capacity, signing allocates nothing.
func TestAppendSignatureAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	body := bytes.Repeat([]byte("x"), 4096)
	msgID := strings.Repeat("m", 128) // the longest event id
	for name, c := range testSigners(t) {
		t.Run(name, func(t *testing.T) {
			buf := make([]byte, 0, c.s.SignatureLen())
			buf = c.s.AppendSignature(buf[:0], msgID, 1741944613, body) // warm the pool
			allocs := testing.AllocsPerRun(1000, func() {
				buf = c.s.AppendSignature(buf[:0], msgID, 1741944613, body)
			})
			if allocs != 0 {
				t.Errorf("AppendSignature allocates %v times per call, want 0", allocs)
			}
		})
	}
}
