package signature

import (
	"fmt"
	"strings"
)

// Profile names a signing scheme: how the key is derived from the configured
// secret, what is signed, and which headers carry the result.
type Profile string

// The profiles quaycast sends. The empty Profile means Standard everywhere in
// this package, as in ParseProfile.
const (
	// Standard is Standard Webhooks: headers webhook-id, webhook-timestamp and
	// webhook-signature "v1,<base64>", signing "<id>.<timestamp>.<body>".
	Standard Profile = "standard"
	// Hub is GitHub style: "sha256=<lower hex>" of the body in a configurable
	// header (DefaultHubHeader unless Options.HeaderName says otherwise).
	Hub Profile = "hub"
	// Hex is a bare hex HMAC of the body, upper or lower case, in a header the
	// user names.
	Hex Profile = "hex"
)

// Header names of the standard profile, spelled as the Standard Webhooks
// spec does. http.Header.Set canonicalises them ("Webhook-Id"); receivers
// compare names case-insensitively.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultHubHeader is the hub profile's header when Options.HeaderName is
// empty, the name GitHub uses for its SHA-256 signature.
const DefaultHubHeader = "X-Hub-Signature-256"

// ParseProfile returns the profile named s, ignoring case; "" is Standard so
// that an endpoint configured without a profile gets the interoperable scheme.
func ParseProfile(s string) (Profile, error) {
	if s == "" {
		return Standard, nil
	}
	for _, p := range [...]Profile{Standard, Hub, Hex} {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w %q (want standard, hub or hex)", ErrUnknownProfile, s)
}

// resolve maps "" to Standard and rejects names that are not a profile.
func (p Profile) resolve() (Profile, error) {
	switch p {
	case "":
		return Standard, nil
	case Standard, Hub, Hex:
		return p, nil
	}
	return "", fmt.Errorf("%w %q (want standard, hub or hex)", ErrUnknownProfile, string(p))
}

// Options are the per-endpoint knobs of the hub and hex profiles. The zero
// value is the default: for hub, header X-Hub-Signature-256 and lower-case
// hex. Standard takes no options, because its header names are fixed by the
// spec.
type Options struct {
	// HeaderName is the header that carries the signature. Hub: optional,
	// DefaultHubHeader when empty. Hex: required, the receiver's platform
	// dictates it. Standard: must be empty.
	HeaderName string
	// HexUpper makes the hex profile write upper-case hex, for receivers that
	// compare the string exactly. Hex profile only: hub is lower case by spec.
	HexUpper bool
}

// ValidateOptions reports whether o fits the profile: the header name must
// be a valid HTTP token and not one the HTTP client itself manages; hex needs
// one; standard takes none; only hex may ask for upper case. Errors wrap
// ErrInvalidOptions (or ErrUnknownProfile).
func (p Profile) ValidateOptions(o Options) error {
	p, err := p.resolve()
	if err != nil {
		return err
	}
	if o.HexUpper && p != Hex {
		return fmt.Errorf("%w: upper-case hex applies only to the hex profile, not %s", ErrInvalidOptions, p)
	}
	switch p {
	case Standard:
		if o.HeaderName != "" {
			return fmt.Errorf("%w: the standard profile sends fixed webhook-* headers; header name must be empty", ErrInvalidOptions)
		}
		return nil
	case Hex:
		if o.HeaderName == "" {
			return fmt.Errorf("%w: the hex profile needs a header name", ErrInvalidOptions)
		}
	}
	if o.HeaderName == "" {
		return nil
	}
	if !validToken(o.HeaderName) {
		return fmt.Errorf("%w: header name %q is not a valid HTTP token", ErrInvalidOptions, o.HeaderName)
	}
	if reservedHeader(o.HeaderName) {
		return fmt.Errorf("%w: header name %q is set by the HTTP client and cannot carry a signature", ErrInvalidOptions, o.HeaderName)
	}
	return nil
}

// headerName returns the header that carries the signature for p (already
// resolved) and o.
func (p Profile) headerName(o Options) string {
	switch {
	case p == Standard:
		return HeaderSignature
	case o.HeaderName == "" && p == Hub:
		return DefaultHubHeader
	}
	return o.HeaderName
}

// validToken reports whether s is an RFC 9110 token (the grammar of a header
// field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// reservedHeader reports whether name is a header Go's HTTP client writes
// itself (framing, connection management, content type of the delivery): a
// signature put there would be dropped or would corrupt the request.
func reservedHeader(name string) bool {
	for _, r := range [...]string{
		"Host", "Content-Length", "Content-Type", "Transfer-Encoding",
		"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade",
		HeaderID, HeaderTimestamp, HeaderSignature,
	} {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}
