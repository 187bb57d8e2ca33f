package conditions

import (
	"strings"
	"testing"
	"time"
)

const body = `{"id":"ev-1","type":"reefer_plugged_in","source":"tos","entity":"MSCU1234567","occurred_at":"2026-11-23T10:00:00Z","data":{"reefer":{"setpoint":-20.5,"unit":"C"},"gate":"G3","weight":24000,"seals":["S1","S2"]}}`

func event() *Event {
	return NewEvent("ev-1", "reefer_plugged_in", "tos", "MSCU1234567", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), []byte(body))
}

// A condition sees the envelope's fields and its data, with JSON's numbers comparable to
// integer literals; what does not hold is a plain no; a missing field or a wrong type is an
// error, told apart from a no.
func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		want    bool
		wantErr string
	}{
		{`data.reefer.setpoint < -18 && entity.startsWith("MSCU")`, true, ""},
		{`data.reefer.setpoint < -21`, false, ""},
		{`type == "reefer_plugged_in" && source == "tos" && id == "ev-1"`, true, ""},
		{`data.gate in ["G1", "G3"]`, true, ""},
		{`data.weight >= 24000`, true, ""},
		{`"S2" in data.seals && size(data.seals) == 2`, true, ""},
		{`data.seals.exists(s, s.startsWith("S1"))`, true, ""},
		{`occurred_at > timestamp("2026-01-01T00:00:00Z")`, true, ""},
		{`has(data.reefer.humidity)`, false, ""},
		{`data.reefer.humidity > 80`, false, "humidity"},
		{`data.gate > 3`, false, "no such overload"},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			c, err := Compile(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Match(event())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error about %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// A condition that cannot be compiled is refused when it is saved, saying where.
func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{``, "empty"},
		{`   `, "empty"},
		{`entity == `, "1:11: Syntax error"},
		{`ship == "x"`, "1:1: undeclared reference to 'ship'"},
		{"type == \"a\" &&\n  entty == \"b\"", "2:3: undeclared reference to 'entty'"},
		{`entity + 1`, "no matching overload"},
		{`entity`, "gives string, not a bool"},
		{strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40), "recursion"},
		{`type == "` + strings.Repeat("x", MaxLength) + `"`, "more than 2048"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if _, err := Compile(tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile(%q): %v; want an error with %q", tc.src, err, tc.want)
			}
		})
	}
}

// An evaluation that would take too long stops at the cost limit, as an error.
func TestCostLimit(t *testing.T) {
	t.Parallel()
	c, err := Compile(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Match(event()); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("got %v, want the cost limit", err)
	}
}

// One Event serves many conditions: its data is parsed once, and a body that is not JSON makes
// data unknown to every condition that names it, not the others.
func TestEventParsesDataOnce(t *testing.T) {
	t.Parallel()
	ev := event()
	a, _ := Compile(`data.gate == "G3"`)
	if ok, err := a.Match(ev); !ok || err != nil {
		t.Fatal(ok, err)
	}
	ev.body = []byte(`not json`) // would fail now, if it were parsed again
	if ok, err := a.Match(ev); !ok || err != nil {
		t.Fatalf("second evaluation: %v, %v", ok, err)
	}
	bad := NewEvent("ev-2", "reefer_plugged_in", "tos", "C1", time.Now(), []byte(`not json`))
	if _, err := a.Match(bad); err == nil {
		t.Error("data of a body that is not JSON: no error")
	}
	b, _ := Compile(`entity == "C1"`)
	if ok, err := b.Match(bad); !ok || err != nil {
		t.Errorf("a condition without data: %v, %v", ok, err)
	}
}

// BenchmarkMatch is one evaluation of a typical condition, its event's data already parsed (as
// for all but the first of the endpoints an event goes to), beside the cost of the parse.
func BenchmarkMatch(b *testing.B) {
	c, err := Compile(`data.reefer.setpoint < -18 && entity.startsWith("MSCU")`)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("evaluate", func(b *testing.B) {
		ev := event()
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := c.Match(ev); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parse-and-evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := c.Match(event()); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
