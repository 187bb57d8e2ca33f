package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the portal links, one key per link: the SHA-256 of its code.
const Bucket = "quaycast_portal_links"

// MaxLinkTTL is the longest a link can wait to be redeemed: the bucket's age limit, which removes
// the links nobody redeemed.
const MaxLinkTTL = time.Hour

// CodePrefix starts every code, so that a leaked one is recognised (secret scanners, the request
// log's redaction).
const CodePrefix = "qpl_"

var (
	// ErrUsed is a code that was redeemed already, or never issued.
	ErrUsed = errors.New("portal link used or unknown")
	// ErrExpired is a code redeemed after its time.
	ErrExpired = errors.New("portal link expired")
)

// Link is what a code opens: a session of one tenant.
type Link struct {
	Tenant     string        `json:"tenant"`
	Expires    time.Time     `json:"expires"`     // when the code stops being redeemable
	SessionTTL time.Duration `json:"session_ttl"` // how long the session it opens lasts
}

// Store stores the links.
type Store struct {
	kv jetstream.KeyValue
}

// Open opens (creating if needed) the bucket, replicated like the others.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "quaycast: tenants' portal links, single use, by the hash of their code",
		History: 1, TTL: MaxLinkTTL, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Create stores l and returns its code: the only time the code exists.
func (s *Store) Create(ctx context.Context, l Link) (string, error) {
	if l.Expires.After(time.Now().Add(MaxLinkTTL)) {
		return "", fmt.Errorf("portal link of %s: beyond the bucket's %s", time.Until(l.Expires).Round(time.Second), MaxLinkTTL)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	code := CodePrefix + base64.RawURLEncoding.EncodeToString(b)
	v, err := json.Marshal(&l)
	if err != nil {
		return "", fmt.Errorf("encode portal link: %w", err)
	}
	if _, err := s.kv.Create(ctx, key(code), v); err != nil {
		return "", fmt.Errorf("store portal link: %w", err)
	}
	return code, nil
}

// Redeem returns the link of code and removes it, once across every gateway: ErrUsed for a code
// redeemed before (here or elsewhere) or never issued, ErrExpired for one past its time (removed
// too).
func (s *Store) Redeem(ctx context.Context, code string) (*Link, error) {
	if !wellFormed(code) {
		return nil, ErrUsed
	}
	k := key(code)
	entry, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrUsed
	}
	if err != nil {
		return nil, fmt.Errorf("read portal link: %w", err)
	}
	// Only the request whose delete lands on the revision read wins; the others see a newer one.
	if err := s.kv.Delete(ctx, k, jetstream.LastRevision(entry.Revision())); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, ErrUsed
	} else if err != nil {
		return nil, fmt.Errorf("redeem portal link: %w", err)
	}
	var l Link
	if err := json.Unmarshal(entry.Value(), &l); err != nil {
		return nil, fmt.Errorf("decode portal link: %w", err)
	}
	if !time.Now().Before(l.Expires) {
		return nil, ErrExpired
	}
	return &l, nil
}

// key is the bucket's key of code: its SHA-256, so that the bucket holds no usable code.
func key(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports a string shaped like a code, so that junk costs no read.
func wellFormed(code string) bool {
	rest, ok := strings.CutPrefix(code, CodePrefix)
	if !ok || len(rest) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// RedactPath is a request's path as a log may show it: a code is a credential, so any segment
// that holds one (CodePrefix, in any case) is "[redacted]", wherever it stands —
// "/ui//portal/<code>" and "/ui/./portal/<code>" answer a redirect and are logged too.
func RedactPath(p string) string {
	if !containsFold(p, CodePrefix) {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if containsFold(s, CodePrefix) {
			segs[i] = "[redacted]"
		}
	}
	return strings.Join(segs, "/")
}

// containsFold reports whether s holds sub, ignoring case, without a copy of s.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
