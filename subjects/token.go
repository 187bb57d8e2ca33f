package subjects

import (
	"fmt"
	"strings"
)

// EncodeToken encodes an arbitrary string (an entity id, an endpoint id) into
// one valid NATS subject token, reversibly. Bytes of [A-Za-z0-9_-] are kept as
// they are; every other byte, "~" included, becomes "~XX" with upper-case hex.
// The empty string encodes as a lone "~", which no other input produces.
// The output is never empty and never contains '.', '*', '>' or whitespace.
// It works on bytes: s need not be valid UTF-8.
func EncodeToken(s string) string {
	if s == "" {
		return "~"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

// DecodeToken reverses EncodeToken. It accepts only what EncodeToken produces,
// so every string has exactly one encoding: it rejects an empty token, a byte
// outside [A-Za-z0-9_~-], a "~" not followed by two upper-case hex digits, and
// an escape of a byte that is kept as is (e.g. "~41" for "A"). Errors wrap
// ErrBadSubject.
func DecodeToken(tok string) (string, error) {
	switch tok {
	case "":
		return "", fmt.Errorf("%w: empty token", ErrBadSubject)
	case "~":
		return "", nil
	}
	escapes := 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '~' {
			escapes++
			continue
		}
		if !keep(c) {
			return "", fmt.Errorf("%w: token %s: invalid byte %q at %d", ErrBadSubject, quote(tok), c, i)
		}
	}
	if escapes == 0 {
		return tok, nil
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '~' {
			b = append(b, c)
			continue
		}
		if i+3 > len(tok) {
			return "", fmt.Errorf("%w: token %s: truncated escape at %d", ErrBadSubject, quote(tok), i)
		}
		hi, ok1 := unhex(tok[i+1])
		lo, ok2 := unhex(tok[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: token %s: escape %q at %d is not ~ and two upper-case hex digits", ErrBadSubject, quote(tok), tok[i:i+3], i)
		}
		d := hi<<4 | lo
		if keep(d) {
			return "", fmt.Errorf("%w: token %s: escape %q at %d encodes %q, which is not escaped", ErrBadSubject, quote(tok), tok[i:i+3], i, d)
		}
		b = append(b, d)
		i += 2
	}
	return string(b), nil
}

// keep reports whether EncodeToken copies c unescaped.
func keep(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
