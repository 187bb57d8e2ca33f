package subjects

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"testing"
	"unicode/utf8"
)

// referenceTopLevel is the straightforward way to split a JSON object's top level, with
// encoding/json's Decoder: scanTopLevel must agree with it on every valid object.
func referenceTopLevel(b []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	raw := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		key := tok.(string)
		if _, dup := raw[key]; dup {
			return nil, false
		}
		raw[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return raw, true
}

func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "a" : [1, {"b":"}"}] , "c\\"d" : "x\\"}" , "e":true,"f":null,"g":-1.5e3 } `,
		`{"id":"x","data":{"k":[1,2,{"z":"]"}]}}`, `{"a\u0062":1,"ab":2}`, `{"a":"\\\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) || !json.Valid(b) || !isObject(b) { // what ParseEnvelope checks first
			return
		}
		want, ok := referenceTopLevel(b)
		got := map[string]json.RawMessage{}
		err := scanTopLevel(b, func(key, v []byte) { got[string(key)] = bytes.Clone(v) })
		if !ok {
			if err == nil {
				t.Fatalf("scanTopLevel(%q) accepted what the reference refuses (a duplicate key)", b)
			}
			return
		}
		if err != nil {
			t.Fatalf("scanTopLevel(%q): %v", b, err)
		}
		if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("scanTopLevel(%q) = %q, reference %q", b, got, want)
		}
	})
}
