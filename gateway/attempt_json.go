package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends a as encoding/json would marshal it, its request headers flattened from
// a.header by the one rule (shownValue), byte for byte (TestAttemptJSONMatchesEncodingJSON). The
// delivery log writes one record per POST: through reflection, over two maps of headers built
// for the purpose, that cost more than signing the event did.
func (a *Attempt) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"endpoint_id":`...)
	b = appendJSONString(b, a.EndpointID)
	b = append(b, `,"event_id":`...)
	b = appendJSONString(b, a.EventID)
	if a.EventSeq != 0 {
		b = append(b, `,"event_seq":`...)
		b = strconv.AppendUint(b, a.EventSeq, 10)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, a.Type)
	b = append(b, `,"entity":`...)
	b = appendJSONString(b, a.Entity)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(a.Attempt), 10)
	if a.Test {
		b = append(b, `,"test":true`...)
	}
	b = append(b, `,"at":"`...)
	b = a.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","duration_ms":`...)
	b = appendJSONFloat(b, a.DurationMS)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, a.Outcome)
	if a.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, a.Error)
	}
	b = append(b, `,"request":{"url":`...)
	b = appendJSONString(b, a.Request.URL)
	b = append(b, `,"headers":`...)
	if a.Request.Headers != nil {
		b = appendStringMap(b, a.Request.Headers)
	} else {
		b = appendRequestHeaders(b, a.header, a.custom)
	}
	b = append(b, '}')
	if r := a.Response; r != nil {
		b = append(b, `,"response":{"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, `,"headers":`...)
		b = appendStringMap(b, r.Headers)
		b = append(b, `,"body":`...)
		b = appendJSONString(b, r.Body)
		if r.Truncated {
			b = append(b, `,"truncated":true`...)
		}
		b = append(b, '}')
	}
	if len(a.Alerts) > 0 { // rare: a reply in the alerts format
		if alerts, err := json.Marshal(a.Alerts); err == nil {
			b = append(b, `,"alerts":`...)
			b = append(b, alerts...)
		}
	}
	if a.ReplyError != "" {
		b = append(b, `,"reply_error":`...)
		b = appendJSONString(b, a.ReplyError)
	}
	return append(b, '}')
}

// appendRequestHeaders writes h as flatRequestHeaders would give it (never null), keys sorted.
func appendRequestHeaders(b []byte, h, custom http.Header) []byte {
	if h == nil {
		return append(b, "{}"...)
	}
	return appendObject(b, h, func(k string, vs []string) string {
		_, isCustom := custom[k]
		return shownValue(k, joinValues(vs), isCustom)
	})
}

// joinValues is a header's values as flatHeaders joins them; one value is not copied.
func joinValues(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	n := 0
	for _, v := range vs {
		n += len(v) + 2
	}
	out := make([]byte, 0, n)
	for i, v := range vs {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, v...)
	}
	return string(out)
}

func appendStringMap(b []byte, m map[string]string) []byte {
	return appendObject(b, m, func(_, v string) string { return v })
}

// appendObject writes m as a JSON object of strings, keys sorted, each value given by value;
// a nil m is null.
func appendObject[V any](b []byte, m map[string]V, value func(k string, v V) string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, buf[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, value(k, m[k]))
	}
	return append(b, '}')
}

// sortedKeys appends m's keys to keys (a buffer on the caller's stack, for the usual few) sorted.
func sortedKeys[V any](m map[string]V, keys []string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := f
	if abs < 0 {
		abs = -abs
	}
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: HTML-safe, invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
