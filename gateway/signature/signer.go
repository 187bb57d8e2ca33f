package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Lengths of one encoded signature, so callers can size buffers.
const (
	standardEntryLen = len("v1,") + 44 // base64 of 32 bytes, padded
	hexLen           = 2 * sha256.Size
	hubLen           = len("sha256=") + hexLen
)

// Signer signs deliveries for one endpoint. It holds the current key and,
// for the standard profile, the keys still in their rotation grace period,
// newest first. It is immutable after NewSigner and safe for concurrent use.
//
// Every key keeps a pool of HMAC states whose ipad/opad blocks are already
// hashed, so signing costs the body's compression rounds plus two final
// blocks and allocates nothing in steady state.
type Signer struct {
	profile Profile
	header  string
	upper   bool
	keys    []*keyMAC // current first; one entry for hub and hex
}

// NewSigner returns a Signer for profile p with options o, the current secret
// and the previous secrets still in their grace period (newest first).
//
// All secrets are checked with ParseKey, also for hub and hex, which sign
// with the current secret only (see AppendSignature). Errors name the
// secret's role ("secret", "previous secret 2") and never its value.
func NewSigner(p Profile, o Options, secret string, previous ...string) (*Signer, error) {
	p, err := p.resolve()
	if err != nil {
		return nil, err
	}
	if err := p.ValidateOptions(o); err != nil {
		return nil, err
	}
	s := &Signer{profile: p, header: p.headerName(o), upper: o.HexUpper}
	key, err := ParseKey(p, secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	s.keys = append(s.keys, newKeyMAC(key))
	for i, prev := range previous {
		key, err := ParseKey(p, prev)
		if err != nil {
			return nil, fmt.Errorf("previous secret %d: %w", i+1, err)
		}
		if p == Standard {
			s.keys = append(s.keys, newKeyMAC(key))
		}
	}
	return s, nil
}

// Profile returns the signer's profile (never "").
func (s *Signer) Profile() Profile { return s.profile }

// HeaderName returns the header AppendSignature's value belongs in:
// HeaderSignature ("webhook-signature") for standard, else the configured
// (or default hub) header, spelled as configured.
func (s *Signer) HeaderName() string { return s.header }

// SignatureLen returns the exact length of the value AppendSignature appends,
// so a caller can give dst enough capacity to avoid any allocation.
func (s *Signer) SignatureLen() int {
	switch s.profile {
	case Standard:
		return len(s.keys)*(standardEntryLen+1) - 1
	case Hub:
		return hubLen
	}
	return hexLen
}

// AppendSignature appends the signature header value for body to dst and
// returns the extended slice. It allocates only if dst lacks capacity
// (SignatureLen bytes).
//
//   - standard: "v1,<base64 HMAC-SHA256 of msgID.timestamp.body>" with the
//     current key, then " v1,<…>" for each previous key, so receivers holding
//     either key accept during a rotation.
//   - hub: "sha256=<lower-case hex HMAC-SHA256 of body>".
//   - hex: the bare hex HMAC-SHA256 of body, in the configured case.
//
// Hub and hex carry a single signature, so during a rotation they sign with
// the new (current) key only; receivers must switch keys when the endpoint's
// secret changes. msgID and timestamp are ignored by hub and hex: they are not
// signed there.
func (s *Signer) AppendSignature(dst []byte, msgID string, timestamp int64, body []byte) []byte {
	switch s.profile {
	case Standard:
		for i, k := range s.keys {
			if i > 0 {
				dst = append(dst, ' ')
			}
			mac := k.sum(true, msgID, timestamp, body)
			dst = append(dst, "v1,"...)
			dst = base64.StdEncoding.AppendEncode(dst, mac[:])
		}
		return dst
	case Hub:
		mac := s.keys[0].sum(false, "", 0, body)
		dst = append(dst, "sha256="...)
		return appendHex(dst, mac[:], lowerHex)
	default:
		mac := s.keys[0].sum(false, "", 0, body)
		if s.upper {
			return appendHex(dst, mac[:], upperHex)
		}
		return appendHex(dst, mac[:], lowerHex)
	}
}

// SetHeaders sets on h every header the profile sends for a delivery: for
// standard webhook-id, webhook-timestamp and webhook-signature; for hub and
// hex the one signature header. It allocates; the delivery hot path uses
// AppendSignature with a pooled buffer instead.
func (s *Signer) SetHeaders(h http.Header, msgID string, timestamp int64, body []byte) {
	if s.profile == Standard {
		h.Set(HeaderID, msgID)
		h.Set(HeaderTimestamp, strconv.FormatInt(timestamp, 10))
	}
	h.Set(s.header, string(s.AppendSignature(make([]byte, 0, s.SignatureLen()), msgID, timestamp, body)))
}

// keyMAC computes HMAC-SHA256 under one key. Its pool holds hmac states
// reused across calls (Reset restores the precomputed ipad state), so a
// steady stream of signatures allocates nothing.
type keyMAC struct {
	// last is the state most recently put back. Unlike the pool it survives garbage
	// collections, which empty sync.Pools: with a thousand endpoints each signing now and then,
	// the pool alone would lose every state at each GC and rebuild it (hmac.New allocates).
	last atomic.Pointer[macState]
	pool sync.Pool // of *macState, for concurrent signers of one key
}

// macState is one reusable HMAC computation: the hash, the buffer the
// standard prefix is formatted into (hash.Hash has no WriteString, and
// []byte(msgID) through an interface call would allocate), and room for the
// sum (a local array passed to Sum would escape).
type macState struct {
	h      hash.Hash
	prefix []byte
	sum    [sha256.Size]byte
}

// maxPooledPrefix bounds the prefix buffer a pooled state keeps, so one
// huge message id does not pin memory. Event ids are at most 128 bytes.
const maxPooledPrefix = 1 << 10

func newKeyMAC(key []byte) *keyMAC {
	key = bytes.Clone(key)
	k := &keyMAC{}
	k.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), prefix: make([]byte, 0, 160)}
	}
	return k
}

// sum returns HMAC-SHA256 of body, preceded by "<msgID>.<timestamp>." when
// prefixed is true (the standard profile's signed content).
func (k *keyMAC) sum(prefixed bool, msgID string, timestamp int64, body []byte) [sha256.Size]byte {
	st := k.last.Swap(nil)
	if st == nil {
		st = k.pool.Get().(*macState)
	}
	st.h.Reset()
	if prefixed {
		p := append(st.prefix[:0], msgID...)
		p = append(p, '.')
		p = strconv.AppendInt(p, timestamp, 10)
		p = append(p, '.')
		st.h.Write(p)
		if cap(p) <= maxPooledPrefix {
			st.prefix = p[:0]
		}
	}
	st.h.Write(body)
	st.h.Sum(st.sum[:0])
	mac := st.sum
	if !k.last.CompareAndSwap(nil, st) {
		k.pool.Put(st)
	}
	return mac
}

const (
	lowerHex = "0123456789abcdef"
	upperHex = "0123456789ABCDEF"
)

// appendHex appends the hex encoding of b in the given digits' case.
func appendHex(dst, b []byte, digits string) []byte {
	n := len(dst)
	dst = slices.Grow(dst, 2*len(b))[:n+2*len(b)]
	out := dst[n:]
	for i, c := range b {
		out[2*i] = digits[c>>4]
		out[2*i+1] = digits[c&0x0f]
	}
	return dst
}
