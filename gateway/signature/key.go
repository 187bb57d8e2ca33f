package signature

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
)

// SecretPrefix marks a Standard Webhooks secret. It is optional on input and
// always present on secrets NewSecret makes.
const SecretPrefix = "whsec_"

// Key sizes the standard profile accepts, the range the Standard Webhooks
// spec gives. Shorter keys are weak; longer ones some receivers refuse.
const (
	MinStandardKeyBytes = 24
	MaxStandardKeyBytes = 64
)

// ParseKey returns the HMAC key the configured secret stands for.
//
// Standard: drop one optional "whsec_" prefix, then the rest must be padded
// standard base64 (strictly: no whitespace, no URL alphabet, no missing
// padding, canonical trailing bits) decoding to 24 to 64 bytes. Being strict
// at configuration time means every secret quaycast holds decodes to the same
// key in every receiver library, some of which silently drop stray
// characters.
//
// Hub and hex: the secret's UTF-8 bytes, never decoded (even when it looks
// like "whsec_…"), because that is what those receivers feed to HMAC. It must
// be non-empty valid UTF-8.
//
// Errors wrap ErrInvalidSecret (or ErrUnknownProfile) and describe the
// problem without quoting the secret.
func ParseKey(p Profile, secret string) ([]byte, error) {
	p, err := p.resolve()
	if err != nil {
		return nil, err
	}
	if p == Standard {
		return parseStandardKey(secret)
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: %s secret is empty", ErrInvalidSecret, p)
	}
	if !utf8.ValidString(secret) {
		return nil, fmt.Errorf("%w: %s secret is not valid UTF-8", ErrInvalidSecret, p)
	}
	return []byte(secret), nil
}

func parseStandardKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: standard secret is empty", ErrInvalidSecret)
	}
	s := strings.TrimPrefix(secret, SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("%w: standard secret is empty after the %s prefix", ErrInvalidSecret, SecretPrefix)
	}
	// Classify bad characters before decoding: encoding/base64 skips '\r'
	// and '\n' even in strict mode, and a class ("whitespace") helps the user
	// without revealing which character it was.
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=':
		case c == ' ', c == '\t', c == '\r', c == '\n':
			return nil, fmt.Errorf("%w: standard secret contains whitespace", ErrInvalidSecret)
		case c == '-', c == '_':
			return nil, fmt.Errorf("%w: standard secret uses the URL-safe base64 alphabet; want standard base64 (+ and /)", ErrInvalidSecret)
		default:
			return nil, fmt.Errorf("%w: standard secret contains a character outside standard base64", ErrInvalidSecret)
		}
	}
	if len(s)%4 != 0 {
		return nil, fmt.Errorf("%w: standard secret is %d base64 characters, not a multiple of 4 (missing padding?)", ErrInvalidSecret, len(s))
	}
	key, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// The decoder's error only gives an offset, never input bytes.
		return nil, fmt.Errorf("%w: standard secret is not canonical padded base64: %v", ErrInvalidSecret, err)
	}
	if len(key) < MinStandardKeyBytes || len(key) > MaxStandardKeyBytes {
		return nil, fmt.Errorf("%w: standard secret decodes to %d bytes, want %d to %d", ErrInvalidSecret, len(key), MinStandardKeyBytes, MaxStandardKeyBytes)
	}
	return key, nil
}

// NewSecret returns a fresh secret for the profile: "whsec_" and the padded
// standard base64 of 32 bytes from crypto/rand. Every profile gets the same
// shape so operators see one kind of secret. Standard decodes it to the 32
// random bytes; hub and hex use the string's bytes as the key, which carries
// the same 256 bits and is what those receivers will paste into their
// config.
func NewSecret(p Profile) (string, error) {
	if _, err := p.resolve(); err != nil {
		return "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}
