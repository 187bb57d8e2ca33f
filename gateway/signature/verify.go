package signature

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is the replay window of the standard profile when
// Verifier.Tolerance is zero: the Standard Webhooks default, in both
// directions.
const DefaultTolerance = 5 * time.Minute

// Verifier checks received deliveries the way a receiver should: the
// gateway's own tests, the `quaycast verify` command and receivers written in
// Go use it. The zero value verifies the standard profile with a 5-minute
// window against the system clock.
type Verifier struct {
	// Profile is the scheme the endpoint signs with; "" is Standard.
	Profile Profile
	// Options are the endpoint's hub/hex options. HexUpper is ignored: the
	// verifier accepts hex of either case.
	Options Options
	// Tolerance is how far webhook-timestamp may be from Now, in either
	// direction (standard only). Zero or negative means DefaultTolerance.
	// Whole seconds count: the timestamp has one-second resolution.
	Tolerance time.Duration
	// Now returns the receiver's clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks a received request against any of the secrets (a receiver
// may hold the current and the previous key during a rotation). h is the
// request's headers; names compare case-insensitively, also when h was built
// by assigning non-canonical keys directly. body must be the raw bytes as
// received, before any decoding.
//
// It returns nil when one signature matches one key. Otherwise the error
// wraps ErrInvalidSecret (a secret is unusable), ErrMissingHeader,
// ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew or
// ErrSignatureMismatch, checked in that order; or ErrUnknownProfile /
// ErrInvalidOptions when the Verifier itself is misconfigured.
//
// Standard needs webhook-id, webhook-timestamp and webhook-signature, all
// non-empty (svix-* names do not count); the timestamp must be unsigned
// decimal seconds within Tolerance of Now; and one space-separated "v1,"
// entry must equal the expected signature. Entries without a comma or of
// another version (case-sensitive) are skipped. Hub compares the whole value
// with "sha256=<lower hex>", so upper-case hex is a mismatch, as in GitHub's
// own libraries. Hex decodes either case and compares the 32 MAC bytes.
// All comparisons take constant time.
func (v Verifier) Verify(h http.Header, body []byte, secrets ...string) error {
	p, err := v.Profile.resolve()
	if err != nil {
		return err
	}
	if err := p.ValidateOptions(Options{HeaderName: v.Options.HeaderName}); err != nil {
		return err
	}
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret to verify with", ErrInvalidSecret)
	}
	keys := make([]*keyMAC, len(secrets))
	for i, secret := range secrets {
		key, err := ParseKey(p, secret)
		if err != nil {
			return fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		keys[i] = newKeyMAC(key)
	}
	switch p {
	case Standard:
		return v.verifyStandard(h, body, keys)
	case Hub:
		return verifyHub(h, p.headerName(v.Options), body, keys)
	default:
		return verifyHex(h, p.headerName(v.Options), body, keys)
	}
}

func (v Verifier) verifyStandard(h http.Header, body []byte, keys []*keyMAC) error {
	id := firstValue(h, HeaderID)
	ts := firstValue(h, HeaderTimestamp)
	sigs := allValues(h, HeaderSignature)
	var missing []string
	if id == "" {
		missing = append(missing, HeaderID)
	}
	if ts == "" {
		missing = append(missing, HeaderTimestamp)
	}
	if !hasNonEmpty(sigs) {
		missing = append(missing, HeaderSignature)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeader, strings.Join(missing, ", "))
	}

	timestamp, ok := parseSeconds(ts)
	if !ok {
		return fmt.Errorf("%w: %s %q is not unsigned base-10 seconds", ErrInvalidTimestamp, HeaderTimestamp, truncate(ts, 32))
	}
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tol := int64(tolerance / time.Second)
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	// Both are non-negative, so neither difference overflows.
	switch nowSec := now().Unix(); {
	case nowSec-timestamp > tol:
		return fmt.Errorf("%w: %s is %ds before now, tolerance %s", ErrTimestampTooOld, HeaderTimestamp, nowSec-timestamp, tolerance)
	case timestamp-nowSec > tol:
		return fmt.Errorf("%w: %s is %ds after now, tolerance %s", ErrTimestampTooNew, HeaderTimestamp, timestamp-nowSec, tolerance)
	}

	// Like the reference libraries, sign the parsed timestamp, not the
	// header's spelling of it.
	expected := make([][]byte, len(keys))
	for i, k := range keys {
		mac := k.sum(true, id, timestamp, body)
		expected[i] = base64.StdEncoding.AppendEncode(nil, mac[:])
	}
	entries := 0
	for _, value := range sigs {
		for entry := range strings.FieldsSeq(value) {
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" {
				continue
			}
			entries++
			for _, want := range expected {
				if hmac.Equal([]byte(sig), want) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: none of %d v1 entries in %s matches any of %d keys", ErrSignatureMismatch, entries, HeaderSignature, len(keys))
}

func verifyHub(h http.Header, name string, body []byte, keys []*keyMAC) error {
	got := firstValue(h, name)
	if got == "" {
		return fmt.Errorf("%w: %s", ErrMissingHeader, name)
	}
	for _, k := range keys {
		mac := k.sum(false, "", 0, body)
		want := appendHex([]byte("sha256="), mac[:], lowerHex)
		if hmac.Equal([]byte(got), want) {
			return nil
		}
	}
	if !strings.HasPrefix(got, "sha256=") {
		return fmt.Errorf("%w: %s does not start with sha256=", ErrSignatureMismatch, name)
	}
	return fmt.Errorf("%w: %s matches none of %d keys (lower-case hex expected)", ErrSignatureMismatch, name, len(keys))
}

func verifyHex(h http.Header, name string, body []byte, keys []*keyMAC) error {
	got := firstValue(h, name)
	if got == "" {
		return fmt.Errorf("%w: %s", ErrMissingHeader, name)
	}
	if len(got) != hexLen {
		return fmt.Errorf("%w: %s is %d characters, want %d hex digits", ErrSignatureMismatch, name, len(got), hexLen)
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignatureMismatch, name)
	}
	for _, k := range keys {
		mac := k.sum(false, "", 0, body)
		if hmac.Equal(sig, mac[:]) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches none of %d keys", ErrSignatureMismatch, name, len(keys))
}

// parseSeconds accepts only unsigned decimal digits ("1741944613", not
// "+1741944613", "1741944613.0" or " 1741944613").
func parseSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// firstValue returns the first value of header name: the canonical key
// first (what net/http builds), then any key equal ignoring case.
func firstValue(h http.Header, name string) string {
	if vs := h[http.CanonicalHeaderKey(name)]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0]
		}
	}
	return ""
}

// allValues returns every value of header name under any spelling of it, so
// a signature list split over several header lines is read whole.
func allValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

func hasNonEmpty(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
