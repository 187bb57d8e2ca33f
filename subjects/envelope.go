package subjects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Envelope limits, in bytes.
const (
	MaxIDBytes     = 128
	MaxEntityBytes = 256
)

// Envelope is the JSON document upstream systems publish as the message body.
// quaycast delivers the body to receivers byte-for-byte; the struct is what
// quaycast reads from it.
type Envelope struct {
	ID         string          `json:"id"`          // 1..128 bytes of printable ASCII without space (0x21-0x7e); the webhook-id header
	Type       string          `json:"type"`        // a catalogue type
	Source     string          `json:"source"`      // a valid token: the publishing system, e.g. "tos" or "octopi-rtm"
	Entity     string          `json:"entity"`      // container/shipment/voyage id: 1..256 bytes, valid UTF-8, no control characters
	OccurredAt time.Time       `json:"occurred_at"` // RFC 3339, required
	Data       json.RawMessage `json:"data"`        // required, a JSON object
	// Tenants, optional, are the operator's customers the event belongs to (see TenantSubject):
	// 1 to MaxEventTenants distinct tenant ids. None: the operator's own endpoints only.
	Tenants []string `json:"tenants,omitempty"`
}

// envelopeFields lists the envelope's JSON fields in the order they are checked.
var envelopeFields = [...]string{"id", "type", "source", "entity", "occurred_at", "data"}

// ParseEnvelope reads an envelope from a message body. It checks, in order:
// the size (at most MaxEventBytes), that the body is valid UTF-8 and one JSON
// object, that no top-level key appears twice, the JSON kind of each field,
// and then what Validate checks; "tenants", optional, last. Keys match exactly (case-sensitive), as
// receivers in other languages read them; unknown extra top-level fields are
// allowed. Every error is a *fielderr.Error: Field "body" for the message as a
// whole, otherwise the JSON field name. The first bad field, in the order id,
// type, source, entity, occurred_at, data, is reported.
func ParseEnvelope(b []byte) (Envelope, error) { return builtin.ParseEnvelope(b) }

// ParseEnvelope is the package's ParseEnvelope with the types of c: an unknown type's error
// matches ErrUnknownType (errors.Is), so a caller may read a newer catalogue and try again.
func (c *Catalogue) ParseEnvelope(b []byte) (Envelope, error) {
	if len(b) > MaxEventBytes {
		return Envelope{}, &fielderr.Error{Field: "body", Reason: fmt.Sprintf("%d bytes exceeds the limit of %d", len(b), MaxEventBytes)}
	}
	if !utf8.Valid(b) {
		return Envelope{}, &fielderr.Error{Field: "body", Reason: "not valid UTF-8"}
	}
	if !json.Valid(b) {
		return Envelope{}, &fielderr.Error{Field: "body", Reason: "not valid JSON"}
	}
	if !isObject(b) {
		return Envelope{}, &fielderr.Error{Field: "body", Reason: "not a JSON object"}
	}
	var raw envelopeValues
	if err := scanTopLevel(b, func(key, v []byte) {
		if i := fieldIndex(key); i >= 0 {
			raw[i] = v
		}
	}); err != nil {
		return Envelope{}, err
	}

	var e Envelope
	for i, f := range envelopeFields {
		v := raw[i]
		if v == nil || string(v) == "null" {
			return Envelope{}, &fielderr.Error{Field: f, Reason: "is required"}
		}
		switch f {
		case "id", "type", "source", "entity":
			s, ok := jsonString(v)
			if !ok {
				return Envelope{}, &fielderr.Error{Field: f, Reason: "must be a string"}
			}
			if unpairedSurrogate(v) {
				// encoding/json turns it into U+FFFD; a receiver's parser may not.
				return Envelope{}, &fielderr.Error{Field: f, Reason: `has a \u escape of an unpaired UTF-16 surrogate`}
			}
			switch f {
			case "id":
				e.ID = s
			case "type":
				e.Type = s
			case "source":
				e.Source = s
			case "entity":
				e.Entity = s
			}
		case "occurred_at":
			if v[0] != '"' || e.OccurredAt.UnmarshalJSON(v) != nil {
				return Envelope{}, &fielderr.Error{Field: f, Reason: "must be an RFC 3339 timestamp, e.g. \"2026-03-01T14:05:09Z\""}
			}
		case "data":
			e.Data = bytes.Clone(v) // the envelope keeps no hold on b
		}
		if err := c.fieldError(e, f); err != nil {
			return Envelope{}, err
		}
	}
	if v := raw[tenantsIndex]; v != nil && string(v) != "null" {
		var err error
		if e.Tenants, err = parseTenants(v); err != nil {
			return Envelope{}, err
		}
	}
	return e, nil
}

// jsonString decodes v, a valid JSON value, if it is a string. Without a backslash its bytes
// between the quotes are the string (b was checked as valid UTF-8 and JSON): no decoder needed,
// which made these four fields most of a small envelope's parse.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// envelopeValues holds the raw values of the envelope's keys found at the top level of a body:
// envelopeFields in their order, then "tenants"; nil where absent.
type envelopeValues [len(envelopeFields) + 1][]byte

const tenantsIndex = len(envelopeFields)

// fieldIndex is key's index in envelopeValues, or -1 for a key the envelope does not read.
func fieldIndex(key []byte) int {
	switch string(key) {
	case "id":
		return 0
	case "type":
		return 1
	case "source":
		return 2
	case "entity":
		return 3
	case "occurred_at":
		return 4
	case "data":
		return 5
	case "tenants":
		return tenantsIndex
	}
	return -1
}

// scanTopLevel calls visit with each top-level key (decoded) and raw value of the JSON object b,
// which must be valid JSON (ParseEnvelope checks it first: this scanner relies on it). Both are
// slices of b, or of a copy for a key spelled with escapes. A duplicated key is an error: JSON
// parsers differ on which copy wins, so the gateway and a receiver could read different values.
// It keeps no map for the few keys of an envelope: a map and a copy of each value were most of
// the parse's allocations.
func scanTopLevel(b []byte, visit func(key, v []byte)) error {
	var few [16][]byte // the keys seen, while they are few
	seen := few[:0]
	var many map[string]struct{} // then
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return &fielderr.Error{Field: "body", Reason: "not a JSON object"}
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		end := stringEnd(b, i) // b[i] is the key's opening quote
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 { // an escaped key: decode it properly
			var k string
			if err := json.Unmarshal(b[i:end], &k); err != nil {
				return &fielderr.Error{Field: "body", Reason: "not valid JSON"}
			}
			key = []byte(k)
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // ':'
		vEnd := valueEnd(b, i)
		dup := false
		if many != nil {
			_, dup = many[string(key)]
			many[string(key)] = struct{}{}
		} else {
			for _, k := range seen {
				dup = dup || bytes.Equal(k, key)
			}
			if seen = append(seen, key); len(seen) == len(few) {
				many = make(map[string]struct{}, 2*len(few))
				for _, k := range seen {
					many[string(k)] = struct{}{}
				}
			}
		}
		if dup {
			if fieldIndex(key) >= 0 {
				return &fielderr.Error{Field: string(key), Reason: "appears more than once"}
			}
			return &fielderr.Error{Field: "body", Reason: fmt.Sprintf("key %s appears more than once", quote(string(key)))}
		}
		visit(key, b[i:vEnd])
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			j = stringEnd(b, j) - 1
			if depth == 0 {
				return j + 1
			}
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return j // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return j // the end of a number, true, false or null
		}
	}
	return len(b)
}

// unpairedSurrogate reports whether the JSON string literal s (quotes
// included, valid JSON) has a \uXXXX escape of a UTF-16 surrogate that is not
// part of a high-low pair.
func unpairedSurrogate(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if s[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		r := hex4(s[i+2 : i+6])
		i += 5
		switch {
		case r < 0xD800 || r > 0xDFFF:
		case r >= 0xDC00: // low surrogate without a high one
			return true
		case i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u':
			if lo := hex4(s[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		default: // high surrogate at the end or before something else
			return true
		}
	}
	return false
}

// hex4 decodes four hex digits, already checked by the JSON scanner.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// isObject reports whether the JSON value b, with optional surrounding
// whitespace, is an object.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// Validate checks every field of an envelope built in code, in the order id,
// type, source, entity, occurred_at, data, and returns a *fielderr.Error naming the
// JSON field of the first bad one. A zero OccurredAt counts as missing.
func (e Envelope) Validate() error { return builtin.ValidateEnvelope(e) }

// ValidateEnvelope is Envelope.Validate with the types of c.
func (c *Catalogue) ValidateEnvelope(e Envelope) error {
	for _, f := range envelopeFields {
		if err := c.fieldError(e, f); err != nil {
			return err
		}
	}
	if reason := tenantsReason(e.Tenants); reason != "" {
		return &fielderr.Error{Field: "tenants", Reason: reason}
	}
	return nil
}

// fieldError says what is wrong with the JSON field f of e, or returns nil.
func (c *Catalogue) fieldError(e Envelope, f string) error {
	if f == "type" && e.Type != "" {
		if _, ok := c.byName[e.Type]; !ok {
			return unknown("type", fmt.Sprintf("unknown event type %s", quote(e.Type)))
		}
	}
	if reason := e.fieldReason(f); reason != "" {
		return &fielderr.Error{Field: f, Reason: reason}
	}
	return nil
}

// fieldReason says what is wrong with the JSON field f of e, catalogue aside, or returns "".
func (e Envelope) fieldReason(f string) string {
	switch f {
	case "id":
		return idReason(e.ID)
	case "type":
		if e.Type == "" {
			return "is required"
		}
	case "source":
		if e.Source == "" {
			return "is required"
		}
		if reason := tokenReason(e.Source); reason != "" {
			return reason
		}
	case "entity":
		return entityReason(e.Entity)
	case "occurred_at":
		if e.OccurredAt.IsZero() {
			return "is required"
		}
	case "data":
		if len(e.Data) == 0 {
			return "is required"
		}
		if !json.Valid(e.Data) {
			return "not valid JSON"
		}
		if !isObject(e.Data) {
			return "must be a JSON object"
		}
	}
	return ""
}

// lengthReason refuses a value that is empty or longer than limit bytes.
func lengthReason(v string, limit int) string {
	switch {
	case v == "":
		return "is required"
	case len(v) > limit:
		return "is longer than " + strconv.Itoa(limit) + " bytes"
	}
	return ""
}

func idReason(id string) string {
	if r := lengthReason(id, MaxIDBytes); r != "" {
		return r
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Sprintf("byte %q at %d is not printable ASCII (space excluded)", c, i)
		}
	}
	return ""
}

func entityReason(entity string) string {
	if r := lengthReason(entity, MaxEntityBytes); r != "" {
		return r
	}
	if !utf8.ValidString(entity) {
		return "not valid UTF-8"
	}
	for i, r := range entity {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U at byte %d", r, i)
		}
	}
	return ""
}

// Subject returns the subject "evt.<source>.<type>" the envelope is published
// to. Call it after Validate (or ParseEnvelope) succeeded.
func (e Envelope) Subject() string {
	return Prefix + "." + e.Source + "." + e.Type
}
