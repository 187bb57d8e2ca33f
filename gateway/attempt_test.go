package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseAlerts(t *testing.T) {
	t.Parallel()
	many := func(n int, last string) string { // n valid alerts, then last
		var b strings.Builder
		b.WriteString("[")
		for range n {
			b.WriteString(`{"message":"ok"},`)
		}
		return b.String() + last + "]"
	}
	tests := []struct {
		name    string
		reply   string
		want    []Alert
		wantErr string // a part of the error; "" = valid
	}{
		{name: "empty array", reply: `[]`, want: []Alert{}},
		{name: "display fields as an array", reply: `[{"message":"m","displayFields":[{"label":"Max draft","value":"12.5 m"},{"label":"Berth","value":"B4"}]}]`,
			want: []Alert{{Message: "m", DisplayFields: []DisplayField{{"Max draft", "12.5 m"}, {"Berth", "B4"}}}}},
		{name: "display fields as one label/value object", reply: `[{"message":"m","displayFields":{"label":"Max draft","value":"12.5 m"}}]`,
			want: []Alert{{Message: "m", DisplayFields: []DisplayField{{"Max draft", "12.5 m"}}}}},
		{name: "display fields object with a label only", reply: `[{"message":"m","displayFields":{"label":"Checked"}}]`,
			want: []Alert{{Message: "m", DisplayFields: []DisplayField{{Label: "Checked"}}}}},
		{name: "display fields null", reply: `[{"message":"m","displayFields":null}]`, want: []Alert{{Message: "m"}}},
		{name: "every field", reply: `[{"message":"m","level":"warning","id":"5f0c","mutation":{"a":1},"link":"https://x.example/"}]`,
			want: []Alert{{Message: "m", Level: "warning", ID: "5f0c", Mutation: json.RawMessage(`{"a":1}`), Link: "https://x.example/"}}},
		{name: "not an array", reply: `{"message":"m"}`, wantErr: "not a JSON array of alerts"},
		{name: "unknown field", reply: `[{"message":"m","colour":"red"}]`, wantErr: "colour"},
		{name: "display fields object with another key", reply: `[{"message":"m","displayFields":{"label":"a","value":"b","unit":"m"}}]`, wantErr: "alerts[0].displayFields"},
		{name: "display fields of another type", reply: `[{"message":"m","displayFields":"a=b"}]`, wantErr: "alerts[0].displayFields"},
		{name: "display field value not a string", reply: `[{"message":"m","displayFields":{"label":"a","value":1}}]`, wantErr: "alerts[0].displayFields"},
		{name: "message missing in the first", reply: `[{"level":"info"}]`, wantErr: "alerts[0]: message is required"},
		{name: "message missing in the 13th", reply: many(12, `{"level":"info"}`), wantErr: "alerts[12]: message is required"},
		{name: "mutation not an object in the 11th", reply: many(10, `{"message":"m","mutation":[1]}`), wantErr: "alerts[10]: mutation must be an object"},
		{name: "message missing in the 101st", reply: many(100, `{"message":" "}`), wantErr: "alerts[100]: message is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAlerts([]byte(tc.reply))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseAlerts() = %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseAlerts() = %#v, %v; want %#v", got, err, tc.want)
			}
			// The log shows the normalised form: display fields always an array.
			b, _ := json.Marshal(got)
			if strings.Contains(tc.name, "object") && !strings.Contains(string(b), `"displayFields":[`) {
				t.Errorf("logged as %s, want displayFields as an array", b)
			}
		})
	}
}
