package subjects

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readGolden(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/envelope_valid.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEnvelopeGolden(t *testing.T) {
	t.Parallel()
	b := readGolden(t)
	e, err := ParseEnvelope(b)
	if err != nil {
		t.Fatalf("ParseEnvelope(golden): %v", err)
	}
	want := Envelope{
		ID:         "01HZX3T6Q9V6K2J8M4N5P7R0ST",
		Type:       "cargo_gated_in",
		Source:     "octopi-rtm",
		Entity:     "MSCU1234567",
		OccurredAt: time.Date(2026, 3, 1, 13, 5, 9, 123_000_000, time.UTC),
	}
	if e.ID != want.ID || e.Type != want.Type || e.Source != want.Source || e.Entity != want.Entity {
		t.Errorf("ParseEnvelope(golden) = %+v, want %+v", e, want)
	}
	if !e.OccurredAt.Equal(want.OccurredAt) {
		t.Errorf("OccurredAt = %v, want %v", e.OccurredAt, want.OccurredAt)
	}
	if !bytes.HasPrefix(e.Data, []byte(`{`)) || !bytes.Contains(b, e.Data) {
		t.Errorf("Data = %s, want the data object exactly as in the body", e.Data)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("Validate() after ParseEnvelope: %v", err)
	}
	if got := e.Subject(); got != "evt.octopi-rtm.cargo_gated_in" {
		t.Errorf("Subject() = %q", got)
	}
	if source, typ, err := Parse(e.Subject()); err != nil || source != e.Source || typ != e.Type {
		t.Errorf("Parse(Subject()) = %q, %q, %v", source, typ, err)
	}
}

// withField returns the golden envelope with the top-level key set to the raw
// JSON value, or removed when raw is "".
func withField(t *testing.T, key, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(readGolden(t), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %s=%s: %v", key, raw, err)
	}
	return b
}

func TestParseEnvelopeInvalidField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		raw        string // "" removes the key
		wantField  string
		wantReason string // substring of the reason
	}{
		{name: "id missing", key: "id", raw: "", wantField: "id", wantReason: "is required"},
		{name: "id null", key: "id", raw: `null`, wantField: "id", wantReason: "is required"},
		{name: "id empty", key: "id", raw: `""`, wantField: "id", wantReason: "is required"},
		{name: "id number", key: "id", raw: `42`, wantField: "id", wantReason: "must be a string"},
		{name: "id with space", key: "id", raw: `"evt 1"`, wantField: "id", wantReason: "printable ASCII"},
		{name: "id with newline", key: "id", raw: `"evt\n1"`, wantField: "id", wantReason: "printable ASCII"},
		{name: "id non-ASCII", key: "id", raw: `"évt"`, wantField: "id", wantReason: "printable ASCII"},
		{name: "id too long", key: "id", raw: `"` + strings.Repeat("i", 129) + `"`, wantField: "id", wantReason: "longer than 128"},
		{name: "type missing", key: "type", raw: "", wantField: "type", wantReason: "is required"},
		{name: "type empty", key: "type", raw: `""`, wantField: "type", wantReason: "is required"},
		{name: "type unknown", key: "type", raw: `"foo"`, wantField: "type", wantReason: `unknown event type "foo"`},
		{name: "type title", key: "type", raw: `"Cargo Gated In"`, wantField: "type", wantReason: "unknown event type"},
		{name: "type array", key: "type", raw: `["cargo_loaded"]`, wantField: "type", wantReason: "must be a string"},
		{name: "source missing", key: "source", raw: "", wantField: "source", wantReason: "is required"},
		{name: "source upper case", key: "source", raw: `"TOS"`, wantField: "source", wantReason: "lower-case"},
		{name: "source dotted", key: "source", raw: `"tos.eu"`, wantField: "source", wantReason: "lower-case"},
		{name: "source wildcard", key: "source", raw: `"*"`, wantField: "source", wantReason: "wildcard"},
		{name: "source too long", key: "source", raw: `"` + strings.Repeat("s", 65) + `"`, wantField: "source", wantReason: "longer than 64"},
		{name: "source bool", key: "source", raw: `true`, wantField: "source", wantReason: "must be a string"},
		{name: "entity missing", key: "entity", raw: "", wantField: "entity", wantReason: "is required"},
		{name: "entity empty", key: "entity", raw: `""`, wantField: "entity", wantReason: "is required"},
		{name: "entity too long", key: "entity", raw: `"` + strings.Repeat("e", 257) + `"`, wantField: "entity", wantReason: "longer than 256"},
		{name: "entity control character", key: "entity", raw: `"MSCU\u0000123"`, wantField: "entity", wantReason: "control character"},
		{name: "entity tab", key: "entity", raw: `"MSCU\t123"`, wantField: "entity", wantReason: "control character"},
		{name: "entity C1 control", key: "entity", raw: `"MSCU\u0085"`, wantField: "entity", wantReason: "control character"},
		{name: "entity lone high surrogate", key: "entity", raw: `"MSCU\ud800"`, wantField: "entity", wantReason: "unpaired UTF-16 surrogate"},
		{name: "entity lone low surrogate", key: "entity", raw: `"\udc00MSCU"`, wantField: "entity", wantReason: "unpaired UTF-16 surrogate"},
		{name: "entity high surrogate before other escape", key: "entity", raw: `"\ud83d\u0041"`, wantField: "entity", wantReason: "unpaired UTF-16 surrogate"},
		{name: "entity object", key: "entity", raw: `{"id":"MSCU1234567"}`, wantField: "entity", wantReason: "must be a string"},
		{name: "occurred_at missing", key: "occurred_at", raw: "", wantField: "occurred_at", wantReason: "is required"},
		{name: "occurred_at null", key: "occurred_at", raw: `null`, wantField: "occurred_at", wantReason: "is required"},
		{name: "occurred_at zero time", key: "occurred_at", raw: `"0001-01-01T00:00:00Z"`, wantField: "occurred_at", wantReason: "is required"},
		{name: "occurred_at date only", key: "occurred_at", raw: `"2026-03-01"`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "occurred_at no zone", key: "occurred_at", raw: `"2026-03-01T14:05:09"`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "occurred_at space separator", key: "occurred_at", raw: `"2026-03-01 14:05:09Z"`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "occurred_at RFC 1123", key: "occurred_at", raw: `"Sun, 01 Mar 2026 14:05:09 GMT"`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "occurred_at unix seconds", key: "occurred_at", raw: `1772373909`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "occurred_at hour 24", key: "occurred_at", raw: `"2026-03-01T24:00:00Z"`, wantField: "occurred_at", wantReason: "RFC 3339"},
		{name: "data missing", key: "data", raw: "", wantField: "data", wantReason: "is required"},
		{name: "data null", key: "data", raw: `null`, wantField: "data", wantReason: "is required"},
		{name: "data array", key: "data", raw: `[1,2]`, wantField: "data", wantReason: "JSON object"},
		{name: "data string", key: "data", raw: `"{}"`, wantField: "data", wantReason: "JSON object"},
		{name: "data number", key: "data", raw: `7`, wantField: "data", wantReason: "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := withField(t, tt.key, tt.raw)
			_, err := ParseEnvelope(body)
			fe := assertField(t, err, tt.wantField)
			if !strings.Contains(fe.Reason, tt.wantReason) {
				t.Errorf("ParseEnvelope(%s): reason %q, want it to contain %q", body, fe.Reason, tt.wantReason)
			}
		})
	}
}

func TestParseEnvelopeBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         []byte
		wantField  string
		wantReason string
	}{
		{name: "empty", in: nil, wantField: "body", wantReason: "not valid JSON"},
		{name: "whitespace", in: []byte(" \n"), wantField: "body", wantReason: "not valid JSON"},
		{name: "truncated", in: []byte(`{"id":"a"`), wantField: "body", wantReason: "not valid JSON"},
		{name: "trailing data", in: append(readGolden(t), `{}`...), wantField: "body", wantReason: "not valid JSON"},
		{name: "array", in: []byte(`[{"id":"a"}]`), wantField: "body", wantReason: "not a JSON object"},
		{name: "string", in: []byte(`"event"`), wantField: "body", wantReason: "not a JSON object"},
		{name: "null", in: []byte(`null`), wantField: "body", wantReason: "not a JSON object"},
		{name: "number", in: []byte(`12`), wantField: "body", wantReason: "not a JSON object"},
		{name: "invalid UTF-8", in: bytes.Replace(readGolden(t), []byte("Zoë"), []byte("Zo\xeb"), 1), wantField: "body", wantReason: "UTF-8"},
		{name: "empty object", in: []byte(`{}`), wantField: "id", wantReason: "is required"},
		{name: "duplicate known key", in: bytes.Replace(readGolden(t), []byte(`"type": "cargo_gated_in",`), []byte(`"type": "cargo_gated_in", "type": "cargo_loaded",`), 1), wantField: "type", wantReason: "more than once"},
		{name: "duplicate escaped key", in: bytes.Replace(readGolden(t), []byte(`"type": "cargo_gated_in",`), []byte(`"type": "cargo_gated_in", "\u0074ype": "cargo_loaded",`), 1), wantField: "type", wantReason: "more than once"},
		{name: "duplicate extra key", in: bytes.Replace(readGolden(t), []byte(`"trace_id"`), []byte(`"x": 1, "x": 2, "trace_id"`), 1), wantField: "body", wantReason: `key "x" appears more than once`},
		{name: "keys are case-sensitive", in: bytes.Replace(readGolden(t), []byte(`"type":`), []byte(`"Type":`), 1), wantField: "type", wantReason: "is required"},
		{name: "first bad field in order reported", in: []byte(`{"data":1,"id":" ","type":"x"}`), wantField: "id", wantReason: "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseEnvelope(tt.in)
			fe := assertField(t, err, tt.wantField)
			if !strings.Contains(fe.Reason, tt.wantReason) {
				t.Errorf("ParseEnvelope(%.80q): reason %q, want it to contain %q", tt.in, fe.Reason, tt.wantReason)
			}
		})
	}
}

func TestParseEnvelopeSizeLimit(t *testing.T) {
	t.Parallel()
	// padded returns the golden envelope grown to exactly n bytes with an extra field.
	padded := func(n int) []byte {
		g := bytes.TrimSpace(readGolden(t))
		head := append(bytes.Clone(g[:len(g)-1]), `,"pad":"`...)
		tail := []byte(`"}`)
		return append(append(head, bytes.Repeat([]byte("p"), n-len(head)-len(tail))...), tail...)
	}
	t.Run("exactly the limit is accepted", func(t *testing.T) {
		b := padded(MaxEventBytes)
		if len(b) != MaxEventBytes {
			t.Fatalf("padded to %d bytes", len(b))
		}
		if _, err := ParseEnvelope(b); err != nil {
			t.Errorf("ParseEnvelope(%d bytes): %v", len(b), err)
		}
	})
	t.Run("one byte over is rejected", func(t *testing.T) {
		_, err := ParseEnvelope(padded(MaxEventBytes + 1))
		fe := assertField(t, err, "body")
		if !strings.Contains(fe.Reason, "exceeds the limit of 1048576") {
			t.Errorf("reason %q", fe.Reason)
		}
	})
}

func TestParseEnvelopeAllowsUnknownFields(t *testing.T) {
	t.Parallel()
	body := withField(t, "extensions", `{"carrier":"MSC","tags":["a",1,null]}`)
	e, err := ParseEnvelope(withField(t, "schema_version", `2`))
	if err != nil {
		t.Fatalf("ParseEnvelope with schema_version: %v", err)
	}
	if e.Type != "cargo_gated_in" {
		t.Errorf("Type = %q", e.Type)
	}
	if _, err := ParseEnvelope(body); err != nil {
		t.Fatalf("ParseEnvelope with extensions: %v", err)
	}
}

func TestParseEnvelopeAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		raw  string
	}{
		{name: "empty data object", key: "data", raw: `{}`},
		{name: "occurred_at in UTC", key: "occurred_at", raw: `"2026-03-01T14:05:09Z"`},
		{name: "occurred_at nanoseconds", key: "occurred_at", raw: `"2026-03-01T14:05:09.123456789-05:00"`},
		{name: "entity with spaces and unicode", key: "entity", raw: `"Voyage 12 / Zoë 📦"`},
		{name: "entity with surrogate pair escape", key: "entity", raw: `"box \ud83d\udce6"`},
		{name: "entity with upper-case surrogate pair escape", key: "entity", raw: `"box \uD83D\uDCE6"`},
		{name: "entity with escaped backslash before u", key: "entity", raw: `"a\\ud800"`},
		{name: "entity with escapes", key: "entity", raw: `"\"q\" \/ \u00e9"`},
		{name: "entity of 256 bytes", key: "entity", raw: `"` + strings.Repeat("e", 256) + `"`},
		{name: "id of 128 bytes", key: "id", raw: `"` + strings.Repeat("i", 128) + `"`},
		{name: "id with punctuation", key: "id", raw: `"msg_01:tos/42~!"`},
		{name: "load plan type", key: "type", raw: `"load_plan_saved"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEnvelope(withField(t, tt.key, tt.raw))
			if err != nil {
				t.Fatalf("ParseEnvelope with %s=%s: %v", tt.key, tt.raw, err)
			}
			// A string field holds what encoding/json decodes (escapes or not).
			got := map[string]string{"id": e.ID, "type": e.Type, "entity": e.Entity}
			if g, isString := got[tt.key]; isString {
				var want string
				if err := json.Unmarshal([]byte(tt.raw), &want); err != nil {
					t.Fatal(err)
				}
				if g != want {
					t.Errorf("%s decoded as %q, want %q", tt.key, g, want)
				}
			}
		})
	}
}

func TestEnvelopeValidate(t *testing.T) {
	t.Parallel()
	valid := Envelope{
		ID:         "evt-1",
		Type:       "hold_applied",
		Source:     "tos",
		Entity:     "MSCU1234567",
		OccurredAt: time.Date(2026, 3, 1, 14, 5, 9, 0, time.UTC),
		Data:       json.RawMessage(`{"hold":"customs"}`),
	}
	tests := []struct {
		name      string
		edit      func(e *Envelope)
		wantField string // "" for valid
	}{
		{name: "valid", edit: func(e *Envelope) {}},
		{name: "data with leading space", edit: func(e *Envelope) { e.Data = json.RawMessage(` {}`) }},
		{name: "id empty", edit: func(e *Envelope) { e.ID = "" }, wantField: "id"},
		{name: "id with DEL", edit: func(e *Envelope) { e.ID = "a\x7f" }, wantField: "id"},
		{name: "type unknown", edit: func(e *Envelope) { e.Type = "hold_forgotten" }, wantField: "type"},
		{name: "source empty", edit: func(e *Envelope) { e.Source = "" }, wantField: "source"},
		{name: "source upper case", edit: func(e *Envelope) { e.Source = "Tos" }, wantField: "source"},
		{name: "entity invalid UTF-8", edit: func(e *Envelope) { e.Entity = "MSCU\xff" }, wantField: "entity"},
		{name: "entity DEL", edit: func(e *Envelope) { e.Entity = "MSCU\x7f" }, wantField: "entity"},
		{name: "occurred_at zero", edit: func(e *Envelope) { e.OccurredAt = time.Time{} }, wantField: "occurred_at"},
		{name: "data nil", edit: func(e *Envelope) { e.Data = nil }, wantField: "data"},
		{name: "data invalid JSON", edit: func(e *Envelope) { e.Data = json.RawMessage(`{"a":`) }, wantField: "data"},
		{name: "data array", edit: func(e *Envelope) { e.Data = json.RawMessage(`[]`) }, wantField: "data"},
		{name: "first bad field reported", edit: func(e *Envelope) { e.Data = nil; e.Source = "" }, wantField: "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := valid
			tt.edit(&e)
			err := e.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate(): %v", err)
				}
				return
			}
			assertField(t, err, tt.wantField)
		})
	}
}

func TestEnvelopeMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	e, err := ParseEnvelope(readGolden(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseEnvelope(b)
	if err != nil {
		t.Fatalf("ParseEnvelope(json.Marshal(e)): %v", err)
	}
	if back.ID != e.ID || back.Type != e.Type || back.Source != e.Source || back.Entity != e.Entity ||
		!back.OccurredAt.Equal(e.OccurredAt) {
		t.Errorf("round trip = %+v, want %+v", back, e)
	}
	var d1, d2 any
	if json.Unmarshal(e.Data, &d1) != nil || json.Unmarshal(back.Data, &d2) != nil {
		t.Fatal("data does not unmarshal")
	}
	if !reflect.DeepEqual(d1, d2) {
		t.Errorf("data after round trip = %v, want %v", d2, d1)
	}
}
