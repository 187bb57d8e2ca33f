package bench

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/fielderr"
)

func ptr[T any](v T) *T { return &v }

// Resolve layers preset, file and flags into a valid scenario, and every error it returns names
// the flag (or --scenario, --preset) at fault.
func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		preset string
		file   string
		o      Overrides
		check  func(t *testing.T, s Scenario) // of a valid scenario
		// Or: the flag the error names (every error from Resolve names one) and text in its reason.
		wantField string
		wantText  string
	}{
		{name: "default is standard", check: func(t *testing.T, s Scenario) {
			if s.Name != "standard" || s.Endpoints != 10 || s.Size != 1024 || s.Rate != 0 || len(s.Types) != 4 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "preset fanout", preset: "fanout", check: func(t *testing.T, s Scenario) {
			if s.Endpoints != 1000 || len(s.Types) != 1 || s.Types[0] != "cargo_gated_in" || s.Subscribe != SubscribeSame {
				t.Errorf("%+v", s)
			}
		}},
		{name: "preset endpoints-10k spreads one type per endpoint", preset: "endpoints-10k", check: func(t *testing.T, s Scenario) {
			if s.Endpoints != 10_000 || s.Subscribe != SubscribeSpread || len(s.Types) < 30 || s.Idle != Duration(time.Minute) {
				t.Errorf("%+v", s)
			}
			if sel := s.selectors(31); len(sel) != 1 || sel[0] != s.Types[31%len(s.Types)] {
				t.Errorf("selectors of endpoint 31: %v", sel)
			}
		}},
		{name: "flags override the preset", preset: "hot-entity", o: Overrides{Events: ptr(50), Rate: ptr(100.0), Latency: ptr(5 * time.Millisecond), Types: []string{"cargo_loaded"}}, check: func(t *testing.T, s Scenario) {
			if s.Events != 50 || s.Entities != 1 || s.Rate != 100 || s.Latency != Duration(5*time.Millisecond) || s.Types[0] != "cargo_loaded" {
				t.Errorf("%+v", s)
			}
		}},
		{name: "a file starts from its preset and changes some values", file: "preset: slow\nevents: 123\nsize: 2KiB\nlatency: 10ms\nfailure_ratio: 0.25\ntypes: [cargo_loaded, hold_applied]\nsubscribe: all\n", check: func(t *testing.T, s Scenario) {
			if s.Name != "slow" || s.Events != 123 || s.Size != 2048 || s.Latency != Duration(10*time.Millisecond) || s.Failure != 0.25 || len(s.Types) != 2 || s.Subscribe != SubscribeAll {
				t.Errorf("%+v", s)
			}
			if sel := s.selectors(0); len(sel) != 1 || sel[0] != "*" {
				t.Errorf("selectors %v", sel)
			}
		}},
		{name: "the preset flag wins over the file's, flags over the file", preset: "smoke", file: "preset: fanout\nendpoints: 7\nname: mine\n", o: Overrides{Endpoints: ptr(4)}, check: func(t *testing.T, s Scenario) {
			if s.Name != "mine" || s.Events != 300 || s.Endpoints != 4 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "a size in plain bytes", file: "size: 300\nidle: 0s\n", check: func(t *testing.T, s Scenario) {
			if s.Size != 300 || s.Idle != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "preset cluster scales 1, 2, 3 gateways over endpoints they share evenly", preset: "cluster", check: func(t *testing.T, s Scenario) {
			if len(s.Gateways) != 3 || s.Gateways[0] != 1 || s.Gateways[2] != 3 || s.Endpoints%6 != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "gateways from a file and from the flag", file: "gateways: [2, 4]\n", o: Overrides{Gateways: []int{3}}, check: func(t *testing.T, s Scenario) {
			if len(s.Gateways) != 1 || s.Gateways[0] != 3 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "every preset is valid", check: func(t *testing.T, _ Scenario) {
			for name := range presets {
				if _, err := Resolve(name, nil, Overrides{}); err != nil {
					t.Errorf("preset %s: %v", name, err)
				}
			}
		}},
		{name: "unknown preset", preset: "nope", wantField: "preset", wantText: "unknown preset"},
		{name: "unknown preset in the file", file: "preset: nope\n", wantField: "scenario", wantText: "unknown preset"},
		{name: "unknown key in the file", file: "evnets: 3\n", wantField: "scenario", wantText: "evnets"},
		{name: "not YAML", file: "events: [\n", wantField: "scenario"},
		{name: "bad size in the file", file: "size: lots\n", wantField: "scenario", wantText: "size"},
		{name: "bad duration in the file", file: "latency: soon\n", wantField: "scenario", wantText: "duration"},
		{name: "no events", o: Overrides{Events: ptr(0)}, wantField: "events", wantText: "between 1"},
		{name: "too many endpoints", o: Overrides{Endpoints: ptr(MaxEndpoints + 1)}, wantField: "endpoints", wantText: "between 1"},
		{name: "more entities than events", o: Overrides{Events: ptr(10), Entities: ptr(11)}, wantField: "entities", wantText: "more entities"},
		{name: "size too small", o: Overrides{Size: ptr(config.ByteSize(10))}, wantField: "size", wantText: "between"},
		{name: "size too large", o: Overrides{Size: ptr(config.ByteSize(2 << 20))}, wantField: "size", wantText: "between"},
		{name: "negative rate", o: Overrides{Rate: ptr(-1.0)}, wantField: "rate"},
		{name: "window zero", o: Overrides{Window: ptr(0)}, wantField: "window"},
		{name: "unknown type", o: Overrides{Types: []string{"cargo_loaded", "teleported"}}, wantField: "types", wantText: `"teleported"`},
		{name: "no types", file: "types: []\n", wantField: "types", wantText: "at least one"},
		{name: "an operator event", o: Overrides{Types: []string{"cargo_loaded", "endpoint_created"}}, wantField: "types", wantText: "only quaycast publishes"},
		{name: "bad subscribe", o: Overrides{Subscribe: ptr("some")}, wantField: "subscribe", wantText: "same, all or spread"},
		{name: "spread needs endpoints", o: Overrides{Subscribe: ptr("spread"), Endpoints: ptr(2)}, wantField: "subscribe", wantText: "spread"},
		{name: "failure ratio of 1", o: Overrides{Failure: ptr(1.0)}, wantField: "failure-ratio"},
		{name: "negative latency", o: Overrides{Latency: ptr(-time.Second)}, wantField: "latency"},
		{name: "down beyond endpoints", o: Overrides{Endpoints: ptr(2), Down: ptr(3)}, wantField: "down"},
		{name: "down and hanging", preset: "hanging", o: Overrides{Down: ptr(1)}, wantField: "down", wantText: "hanging"},
		{name: "too many deliveries", o: Overrides{Events: ptr(MaxEvents), Endpoints: ptr(100), Entities: ptr(10)}, wantField: "events", wantText: "bound"},
		{name: "receiver servers zero", o: Overrides{Servers: ptr(0)}, wantField: "receiver-servers"},
		{name: "no gateways", o: Overrides{Gateways: []int{0}}, wantField: "gateways", wantText: "between 1"},
		{name: "too many gateways", file: "gateways: [1, 10]\n", wantField: "gateways", wantText: "between 1"},
		{name: "gateways removed between rounds", o: Overrides{Gateways: []int{3, 2}}, wantField: "gateways", wantText: "grow"},
		{name: "preset soak: ten minutes at 60 % of the capacity", preset: "soak", check: func(t *testing.T, s Scenario) {
			if s.Soak != Duration(10*time.Minute) || s.Load != 0.6 || s.Rate != 0 || s.Idle != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "a soak from the flag takes the default load", o: Overrides{Soak: ptr(time.Minute)}, check: func(t *testing.T, s Scenario) {
			if s.Soak != Duration(time.Minute) || s.Load != 0.6 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "soak too short", o: Overrides{Soak: ptr(time.Second)}, wantField: "soak", wantText: "between 10s"},
		{name: "soak load above the capacity", preset: "soak", o: Overrides{Load: ptr(1.5)}, wantField: "load", wantText: "at most 1"},
		{name: "soak with a down endpoint", preset: "soak", o: Overrides{Down: ptr(1)}, wantField: "soak", wantText: "healthy"},
		{name: "a hanging endpoint in a scaling run", preset: "hanging", o: Overrides{Gateways: []int{1, 2}}, wantField: "hanging", wantText: "several --gateways"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Resolve(tc.preset, []byte(tc.file), tc.o)
			if tc.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, s)
				return
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *fielderr.Error", err)
			}
			if fe.Field != tc.wantField || !strings.Contains(fe.Reason, tc.wantText) {
				t.Errorf("error %q, want field %s and %q in the reason", err, tc.wantField, tc.wantText)
			}
			if !strings.HasPrefix(err.Error(), "--"+tc.wantField+":") {
				t.Errorf("error %q does not start with the flag", err)
			}
		})
	}
}

func TestEventBodiesHaveTheScenarioSize(t *testing.T) {
	t.Parallel()
	sc, err := Resolve("smoke", nil, Overrides{Size: ptr(config.ByteSize(1000)), Events: ptr(50), Entities: ptr(5)})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents(sc)
	again := newEvents(sc)
	entities := map[string]bool{}
	for i := range sc.Events {
		b := ev.body(nil, "bnx-", i, 123456789*time.Nanosecond)
		if len(b) != 1000 {
			t.Fatalf("event %d is %d bytes, want 1000: %s", i, len(b), b)
		}
		if !strings.Contains(string(b), `"data":{"t":123456789,"pad":"`) {
			t.Fatalf("event %d has no timestamp: %s", i, b)
		}
		if ev.entity(i) != again.entity(i) || ev.typ(i) != again.typ(i) {
			t.Fatalf("event %d differs between two runs of the same seed", i)
		}
		entities[ev.entity(i)] = true
	}
	if len(entities) != 5 {
		t.Errorf("%d entities used, want 5", len(entities))
	}
}

// A scenario read back from a result's JSON is the scenario that ran, its size a number of
// bytes there; a size written as text ("1KiB") reads too.
func TestScenarioJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"standard", "hanging", "cluster"} {
		sc, err := Resolve(name, nil, Overrides{Latency: ptr(20 * time.Millisecond), Types: []string{"cargo_loaded"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		var back Scenario
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if !reflect.DeepEqual(back, sc) {
			t.Errorf("%s: read back %+v, want %+v", name, back, sc)
		}
	}
	var sc Scenario
	if err := json.Unmarshal([]byte(`{"name":"x","size_bytes":"2KiB","events":5}`), &sc); err != nil || sc.Size != 2048 || sc.Events != 5 || sc.Name != "x" {
		t.Errorf("text size: %+v, %v", sc, err)
	}
	for _, bad := range []string{`{"size_bytes":1.5}`, `{"size_bytes":"lots"}`, `{"events":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &sc); err == nil {
			t.Errorf("%s read without an error", bad)
		}
	}
}
