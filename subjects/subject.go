package subjects

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Subject grammar and the NATS headers an event carries.
const (
	// Prefix is the first token of every event subject.
	Prefix = "evt"
	// StreamSubjects is the subject filter the events stream captures.
	StreamSubjects = "evt.>"
	// HeaderEntity is the NATS header that carries the entity id (container,
	// shipment, voyage). The entity is not part of the subject.
	HeaderEntity = "Quaycast-Entity"
	// HeaderMsgID is the JetStream de-duplication header. Publishers set it to
	// the envelope's id, so JetStream drops a retried publish of the same event.
	HeaderMsgID = "Nats-Msg-Id"
	// MaxEventBytes is the largest envelope accepted: receivers' platforms
	// refuse bodies over 1 MiB.
	MaxEventBytes = 1 << 20
	// MaxTokenLen is the longest source or type token, in bytes.
	MaxTokenLen = 64
)

// ErrBadSubject is wrapped by every error of Parse and DecodeToken: the
// subject (or one of its tokens) does not follow the grammar.
var ErrBadSubject = errors.New("bad subject")

// ValidToken reports whether s is a valid source or type token:
// 1 to 64 characters of [a-z0-9_-].
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Subject returns the subject "evt.<source>.<type>" an event is published to.
// It returns a *fielderr.Error with Field "source" or "type" when a token is not
// valid. It checks the grammar only: typ need not be in the catalogue.
func Subject(source, typ string) (string, error) {
	if reason := tokenReason(source); reason != "" {
		return "", &fielderr.Error{Field: "source", Reason: reason}
	}
	if reason := tokenReason(typ); reason != "" {
		return "", &fielderr.Error{Field: "type", Reason: reason}
	}
	return Prefix + "." + source + "." + typ, nil
}

// Parse splits an event subject "evt.<source>.<type>" into its source and type
// tokens. Every error wraps ErrBadSubject. Like Subject, it checks the grammar,
// not the catalogue.
func Parse(subject string) (source, typ string, err error) {
	if n := strings.Count(subject, ".") + 1; n != 3 {
		return "", "", badSubject(subject, fmt.Sprintf("want 3 tokens %s.<source>.<type>, got %d", Prefix, n))
	}
	prefix, rest, _ := strings.Cut(subject, ".")
	source, typ, _ = strings.Cut(rest, ".")
	if prefix != Prefix {
		return "", "", badSubject(subject, fmt.Sprintf("prefix %s, want %q", quote(prefix), Prefix))
	}
	if reason := tokenReason(source); reason != "" {
		return "", "", badSubject(subject, "source "+reason)
	}
	if reason := tokenReason(typ); reason != "" {
		return "", "", badSubject(subject, "type "+reason)
	}
	return source, typ, nil
}

func badSubject(subject, reason string) error {
	return fmt.Errorf("%w %s: %s", ErrBadSubject, quote(subject), reason)
}

// tokenReason says why s is not a valid token, or returns "" when it is.
func tokenReason(s string) string {
	switch {
	case s == "":
		return "is empty"
	case s == "*" || s == ">":
		return fmt.Sprintf("%q is a wildcard", s)
	case len(s) > MaxTokenLen:
		return fmt.Sprintf("is longer than %d bytes", MaxTokenLen)
	case !ValidToken(s):
		return fmt.Sprintf("%s must be lower-case letters, digits, '_' or '-'", quote(s))
	}
	return ""
}

// quote returns s in Go quoted form, cut to a readable length: error messages
// echo input, which may be up to MaxEventBytes long.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
