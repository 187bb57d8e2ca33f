package payload_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/payload"
)

const envelope = `{"id":"e1","type":"cargo_gated_in","source":"tos","entity":"MSCU1","occurred_at":"2026-11-23T10:00:00Z",` +
	`"data":{"gate":"G3","a/b":1,"m~n":2,"items":[{"n":10},{"n":11}]}}`

func TestAppend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    payload.Options
		body string
		want string
	}{
		{"mirror inserted first", payload.Options{TypeField: "event_type"}, `{"id":"e1","data":{}}`, `{"event_type":"Cargo Gated In","id":"e1","data":{}}`},
		{"mirror with blanks", payload.Options{TypeField: "event_type"}, " { \"id\": 1 }", ` {"event_type":"Cargo Gated In", "id": 1 }`},
		{"mirror into an empty object", payload.Options{TypeField: "event_type"}, `{ }`, `{"event_type":"Cargo Gated In" }`},
		{"mirror replaces the publisher's field", payload.Options{TypeField: "event_type"}, `{"id":"e1","event_type": {"x":[1,2]} ,"data":{}}`, `{"id":"e1","event_type": "Cargo Gated In" ,"data":{}}`},
		{"mirror finds an escaped key", payload.Options{TypeField: "event_type"}, `{"event\u005ftype":"old","id":"e1"}`, `{"event\u005ftype":"Cargo Gated In","id":"e1"}`},
		{"a nested field of that name is not it", payload.Options{TypeField: "event_type"}, `{"data":{"event_type":"x"}}`, `{"event_type":"Cargo Gated In","data":{"event_type":"x"}}`},
		{"select", payload.Options{Fields: []string{"/id", "/data/gate", "/entity"}}, envelope, `{"id":"e1","gate":"G3","entity":"MSCU1"}`},
		{"select with escapes and arrays", payload.Options{Fields: []string{"/data/a~1b", "/data/m~0n", "/data/items/1/n"}}, envelope, `{"a/b":1,"m~n":2,"n":11}`},
		{"select what is missing", payload.Options{Fields: []string{"/data/dock", "/data/items/7", "/id/x"}}, envelope, `{"dock":null,"7":null,"x":null}`},
		{"select objects whole", payload.Options{Fields: []string{"/data/items"}}, envelope, `{"items":[{"n":10},{"n":11}]}`},
		{"select and mirror", payload.Options{TypeField: "event_type", Fields: []string{"/id"}}, envelope, `{"event_type":"Cargo Gated In","id":"e1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := payload.New(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Append([]byte("prefix:"), []byte(tc.body), "Cargo Gated In")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix:"+tc.want {
				t.Errorf("got  %s\nwant prefix:%s", got, tc.want)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Errorf("%s is not valid JSON", got)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		o     payload.Options
		field string
	}{
		{"no leading slash", payload.Options{Fields: []string{"data/gate"}}, "body.fields[0]"},
		{"the whole document", payload.Options{Fields: []string{"/id", ""}}, "body.fields[1]"},
		{"a bad escape", payload.Options{Fields: []string{"/data/a~2"}}, "body.fields[0]"},
		{"two values under one key", payload.Options{Fields: []string{"/id", "/data/id"}}, "body.fields[1]"},
		{"a key that is the type field", payload.Options{TypeField: "gate", Fields: []string{"/data/gate"}}, "body.fields[0]"},
		{"too many", payload.Options{Fields: make([]string, payload.MaxFields+1)}, "body.fields"},
		{"type field too long", payload.Options{TypeField: string(make([]byte, payload.MaxFieldBytes+1))}, "body.type_field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := payload.New(tc.o)
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("New(%+v) = %v, want an error naming %s", tc.o, err, tc.field)
			}
		})
	}
}

// reference resolves a pointer the slow, obvious way: decode, walk, encode.
func reference(doc []byte, tokens []string) (any, bool) {
	var cur any
	if json.Unmarshal(doc, &cur) != nil {
		return nil, false
	}
	for _, t := range tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[t]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 || n >= len(v) || len(t) > 1 && t[0] == '0' {
				return nil, false
			}
			cur = v[n]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Whatever the body, Append does not panic, and what it writes for a JSON object is JSON; Resolve
// agrees with a decode-and-walk reference wherever keys are unique.
func FuzzAppend(f *testing.F) {
	f.Add([]byte(envelope), "/data/gate")
	f.Add([]byte(`{"event_type":1}`), "/event_type")
	f.Fuzz(func(t *testing.T, body []byte, pointer string) {
		for _, o := range []payload.Options{{TypeField: "event_type"}, {Fields: []string{pointer}}} {
			s, err := payload.New(o)
			if err != nil {
				continue
			}
			out, err := s.Append(nil, body, "T")
			if err == nil && json.Valid(body) && len(body) > 0 && body[0] == '{' && !json.Valid(out) {
				t.Errorf("Append(%q) = %q: not JSON", body, out)
			}
		}
		tokens, err := payload.ParsePointer(pointer)
		if err != nil || !json.Valid(body) || bytes.Contains(body, []byte(`\`)) {
			return // escaped keys may decode to duplicates, which the reference merges
		}
		got, _ := payload.Resolve(body, tokens)
		want, ok := reference(body, tokens)
		var gotV any
		if got != nil && json.Unmarshal(got, &gotV) != nil {
			t.Fatalf("Resolve(%q, %q) = %q: not JSON", body, pointer, got)
		}
		if ok != (got != nil) || ok && !reflect.DeepEqual(gotV, want) && !duplicateKeys(body) {
			t.Errorf("Resolve(%q, %q) = %q, want %v (found %v)", body, pointer, got, want, ok)
		}
	})
}

// duplicateKeys reports a key given twice in one object somewhere in doc: encoding/json keeps the
// last, Resolve the first.
func duplicateKeys(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var stack []map[string]bool
	expectKey := []bool{}
	for {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		switch t {
		case json.Delim('{'):
			stack = append(stack, map[string]bool{})
			expectKey = append(expectKey, true)
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			expectKey = append(expectKey, false)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack, expectKey = stack[:len(stack)-1], expectKey[:len(expectKey)-1]
		default:
			if n := len(stack); n > 0 && stack[n-1] != nil && expectKey[n-1] {
				k := t.(string)
				if stack[n-1][k] {
					return true
				}
				stack[n-1][k] = true
				expectKey[n-1] = false
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1] != nil {
			expectKey[n-1] = true
		}
	}
}
