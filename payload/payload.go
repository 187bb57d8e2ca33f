package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Bounds of an endpoint's body options.
const (
	MaxFields       = 32
	MaxPointerBytes = 256
	MaxFieldBytes   = 64
)

// Options say how an endpoint's body differs from the event as published. The zero value changes
// nothing.
type Options struct {
	// TypeField names a top-level field that gets the event type (as the endpoint's layout names
	// it: machine or display name); it replaces a field of that name. "": none.
	TypeField string
	// Fields, when not empty, makes the body an object of the values these JSON Pointers select
	// in the envelope, each under its pointer's last reference token ("/data/gate" → "gate"), in
	// this order; a pointer that selects nothing gives null.
	Fields []string
}

// IsZero reports options that leave the body as published.
func (o Options) IsZero() bool { return o.TypeField == "" && len(o.Fields) == 0 }

// Shaper writes bodies for one endpoint's options. It is immutable and safe for concurrent use.
type Shaper struct {
	typeField []byte // the field name, JSON-quoted; nil: none
	pointers  [][]string
	keys      [][]byte // JSON-quoted keys of the selected values
}

// New checks o and compiles it; the error is a *fielderr.Error naming body.type_field or
// body.fields[i].
func New(o Options) (*Shaper, error) {
	s := &Shaper{}
	keys := map[string]string{}
	if o.TypeField != "" {
		if len(o.TypeField) > MaxFieldBytes || !utf8.ValidString(o.TypeField) {
			return nil, &fielderr.Error{Field: "body.type_field", Reason: fmt.Sprintf("must be UTF-8 of 1 to %d bytes", MaxFieldBytes)}
		}
		s.typeField = quote(o.TypeField)
		keys[o.TypeField] = "body.type_field"
	}
	if len(o.Fields) > MaxFields {
		return nil, &fielderr.Error{Field: "body.fields", Reason: fmt.Sprintf("more than %d pointers", MaxFields)}
	}
	for i, p := range o.Fields {
		field := "body.fields[" + strconv.Itoa(i) + "]"
		if len(p) > MaxPointerBytes {
			return nil, &fielderr.Error{Field: field, Reason: fmt.Sprintf("longer than %d bytes", MaxPointerBytes)}
		}
		tokens, err := ParsePointer(p)
		if err != nil {
			return nil, &fielderr.Error{Field: field, Reason: err.Error()}
		}
		if len(tokens) == 0 {
			return nil, &fielderr.Error{Field: field, Reason: `"" selects the whole envelope: leave fields empty to send it`}
		}
		key := tokens[len(tokens)-1]
		if other, dup := keys[key]; dup {
			return nil, &fielderr.Error{Field: field, Reason: fmt.Sprintf("its key %q is already %s's", key, other)}
		}
		keys[key] = field
		s.pointers = append(s.pointers, tokens)
		s.keys = append(s.keys, quote(key))
	}
	return s, nil
}

// Validate checks o as New does.
func Validate(o Options) error {
	_, err := New(o)
	return err
}

// ParsePointer splits an RFC 6901 JSON Pointer into its reference tokens, "~1" and "~0" decoded:
// "" is the whole document, "/data/gate" is ["data", "gate"].
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' || !utf8.ValidString(p) {
		return nil, errors.New(`a JSON Pointer is "" or starts with "/" (RFC 6901), e.g. "/data/gate"`)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("%q: a ~ must be followed by 0 or 1 (RFC 6901)", t)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// Append appends to dst the body for the event body, a JSON object, with typeName as the mirrored
// event type.
func (s *Shaper) Append(dst, body []byte, typeName string) ([]byte, error) {
	if len(s.pointers) > 0 {
		return s.appendSelected(dst, body, typeName)
	}
	if s.typeField == nil {
		return append(dst, body...), nil
	}
	return s.appendMirrored(dst, body, typeName)
}

// appendSelected writes {"<type field>": typeName, "<key>": <value>, ...}.
func (s *Shaper) appendSelected(dst, body []byte, typeName string) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("body is not JSON")
	}
	dst = append(dst, '{')
	if s.typeField != nil {
		dst = append(append(append(dst, s.typeField...), ':'), quote(typeName)...)
	}
	for i, p := range s.pointers {
		v := resolve(body, p)
		if i > 0 || s.typeField != nil {
			dst = append(dst, ',')
		}
		dst = append(append(dst, s.keys[i]...), ':')
		if v == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, v...)
		}
	}
	return append(dst, '}'), nil
}

// appendMirrored writes body with the type field set: its value replaced where the publisher
// sent one (a key twice would be read differently by different parsers), else inserted first.
func (s *Shaper) appendMirrored(dst, body []byte, typeName string) ([]byte, error) {
	start, end, found, err := topLevelValue(body, s.typeField)
	if err != nil {
		return nil, err
	}
	v := quote(typeName)
	if found {
		return append(append(append(dst, body[:start]...), v...), body[end:]...), nil
	}
	open := bytes.IndexByte(body, '{')
	if open < 0 {
		return nil, errors.New("body is not a JSON object")
	}
	dst = append(append(dst, body[:open+1]...), s.typeField...)
	dst = append(append(dst, ':'), v...)
	if rest := bytes.TrimLeft(body[open+1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		dst = append(dst, ',')
	}
	return append(dst, body[open+1:]...), nil
}

// topLevelValue finds the value of the top-level key (JSON-quoted) in the object body: its byte
// span. Keys are compared decoded, as a receiver's parser reads them.
func topLevelValue(body, quotedKey []byte) (start, end int, found bool, err error) {
	var key string
	if err := json.Unmarshal(quotedKey, &key); err != nil {
		return 0, 0, false, err
	}
	if !json.Valid(body) || first(body) != '{' {
		return 0, 0, false, errors.New("body is not a JSON object")
	}
	start, end, found = member(body, bytes.IndexByte(body, '{'), key)
	return start, end, found, nil
}

// member finds the member key of the object that starts at b[open] ('{'), b being valid JSON,
// and returns its value's span.
func member(b []byte, open int, key string) (start, end int, found bool) {
	i := skipBlank(b, open+1)
	for i < len(b) && b[i] == '"' {
		k := b[i:skipValue(b, i)]
		i = skipBlank(b, i+len(k))
		i = skipBlank(b, i+1) // the colon
		end := skipValue(b, i)
		if keyIs(k, key) {
			return i, end, true
		}
		i = skipBlank(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipBlank(b, i+1)
		}
	}
	return 0, 0, false
}

// element finds element n of the array that starts at b[open] ('['), b being valid JSON.
func element(b []byte, open, n int) (start, end int, found bool) {
	i := skipBlank(b, open+1)
	for k := 0; i < len(b) && b[i] != ']'; k++ {
		end := skipValue(b, i)
		if k == n {
			return i, end, true
		}
		i = skipBlank(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipBlank(b, i+1)
		}
	}
	return 0, 0, false
}

// keyIs compares a quoted JSON key with key, decoding escapes only when there are some.
func keyIs(quoted []byte, key string) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1:len(quoted)-1]) == key
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == key
}

func skipBlank(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i] (b valid JSON).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && strings.IndexByte(",}] \t\r\n", b[i]) < 0 {
		i++
	}
	return i
}

// Resolve returns the raw JSON value the reference tokens select in doc, valid JSON, or nil if
// there is none.
func Resolve(doc []byte, tokens []string) (json.RawMessage, error) {
	if !json.Valid(doc) {
		return nil, errors.New("body is not JSON")
	}
	return resolve(doc, tokens), nil
}

// resolve is Resolve over a doc known to be valid JSON.
func resolve(doc []byte, tokens []string) json.RawMessage {
	start, end := skipBlank(doc, 0), len(doc)
	for _, t := range tokens {
		var found bool
		switch doc[start] {
		case '{':
			start, end, found = member(doc, start, t)
		case '[':
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 || len(t) > 1 && t[0] == '0' {
				return nil
			}
			start, end, found = element(doc, start, n)
		}
		if !found {
			return nil
		}
	}
	return bytes.TrimRight(doc[start:end], " \t\r\n")
}

// first is the first byte of a JSON value past blanks.
func first(v []byte) byte {
	if i := skipBlank(v, 0); i < len(v) {
		return v[i]
	}
	return 0
}

func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
