package bench

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// Scenario is one load run: what is registered, what is published, how the receivers behave.
// In a YAML file its keys are the flag names with underscores (failure_ratio); a file may name a
// preset to start from (preset: fanout) and change some of its values.
type Scenario struct {
	Name string `yaml:"name" json:"name"`
	// Preset is only read from a file: the preset whose values the file starts from.
	Preset string `yaml:"preset" json:"-"`

	Events    int             `yaml:"events" json:"events"`               // events published per round
	Endpoints int             `yaml:"endpoints" json:"endpoints"`         // healthy endpoints registered
	Entities  int             `yaml:"entities" json:"entities"`           // events spread over this many entities
	Size      config.ByteSize `yaml:"size" json:"size_bytes"`             // of each envelope, data padded to it
	Rate      float64         `yaml:"rate" json:"rate"`                   // events/s; 0 = as fast as the publish window allows
	Window    int             `yaml:"window" json:"window"`               // publishes awaiting their PubAck at most
	Types     []string        `yaml:"types" json:"types"`                 // event types published, picked at random per event
	Subscribe string          `yaml:"subscribe" json:"subscribe"`         // same | all | spread (see Validate)
	Latency   Duration        `yaml:"latency" json:"receiver_latency"`    // added to every receiver answer
	Failure   float64         `yaml:"failure_ratio" json:"failure_ratio"` // share of requests answered 503 (Retry-After: 1)
	Hanging   int             `yaml:"hanging" json:"hanging"`             // extra endpoints that never answer
	Down      int             `yaml:"down" json:"down"`                   // endpoints refusing connections until publishing is done
	Idle      Duration        `yaml:"idle" json:"idle"`                   // idle window after registration (CPU measured)
	// Soak, when set, makes the run a soak (soak.go): a calibration round as fast as possible,
	// then this long at Load of the capacity it measured (or at Rate, when given).
	Soak Duration `yaml:"soak" json:"soak,omitempty"`
	// Condition, when set, is every endpoint's condition (CEL): what conditions cost. Events
	// carry data {"t": <publish offset>, "pad": "..."}; a condition that does not take every
	// event makes the checker count what it left out as lost.
	Condition string `yaml:"condition" json:"condition,omitempty"`
	// Tenants, when set, makes as many tenants: endpoint i belongs to tenant i mod Tenants and
	// each event names one tenant, picked at random, so it reaches only that tenant's endpoints.
	// The baseline filters in the pipeline instead (each endpoint reads every event of its
	// types and drops other tenants'): the gateway's server-side routing against that.
	Tenants int `yaml:"tenants" json:"tenants,omitempty"`
	// Repeat is how many pairs of rounds a run with Hanging makes, alternating with and without
	// the hanging endpoints; 1 (or 0): one round without, then one with.
	Repeat  int     `yaml:"repeat" json:"repeat,omitempty"`
	Load    float64 `yaml:"load" json:"load,omitempty"` // share of the calibrated capacity a soak runs at
	Servers int     `yaml:"receiver_servers" json:"receiver_servers"`
	Seed    uint64  `yaml:"seed" json:"seed"`
	// GatewayArgs are extra `quaycast serve` flags for a gateway the harness starts itself.
	GatewayArgs []string `yaml:"gateway_args" json:"gateway_args,omitempty"`
	// Gateways, when given, makes the harness start a cluster: three NATS nodes (R3) and this many
	// gateways sharing the endpoints. Several values ([1, 2, 3]) make one round each on the same
	// cluster and the same endpoints, gateways added between rounds: how throughput scales.
	Gateways []int `yaml:"gateways" json:"gateways,omitempty"`
}

// UnmarshalJSON reads a scenario as a result's JSON has it, its size a number of bytes:
// config.ByteSize alone reads only text ("1KiB"), which is taken too.
func (s *Scenario) UnmarshalJSON(b []byte) error {
	type plain Scenario // without this method
	v := struct {
		*plain
		Size json.RawMessage `json:"size_bytes"` // shadows plain's
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if len(v.Size) == 0 || string(v.Size) == "null" {
		return nil
	}
	if v.Size[0] == '"' {
		var text string
		if err := json.Unmarshal(v.Size, &text); err != nil {
			return err
		}
		return s.Size.UnmarshalText([]byte(text))
	}
	n, err := strconv.ParseInt(string(v.Size), 10, 64)
	if err != nil {
		return fmt.Errorf("scenario size_bytes %s: %w", v.Size, err)
	}
	s.Size = config.ByteSize(n)
	return nil
}

// Subscription modes: how endpoints choose their event types.
const (
	SubscribeSame   = "same"   // every endpoint subscribes to every published type, by name
	SubscribeAll    = "all"    // every endpoint subscribes to "*" (filter evt.>)
	SubscribeSpread = "spread" // endpoint i subscribes to the i-th published type only (round robin)
)

// Duration is a time.Duration written as "50ms" in YAML and JSON.
type Duration time.Duration

// MarshalText writes the duration as Go does ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "50ms", "2s" or "0".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, e.g. 50ms or 2s", string(b))
	}
	*d = Duration(v)
	return nil
}

// Bounds of a scenario: every run is bounded in count, so that it ends by itself.
const (
	MaxEvents     = 1_000_000
	MaxEndpoints  = 20_000
	MaxDeliveries = 20_000_000
	MinSize       = 256
	MaxGateways   = 9
)

// Validate reports the first bad value as a *fielderr.Error naming its flag.
func (s Scenario) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fielderr.Flag(field, fmt.Sprintf(format, a...))
	}
	switch {
	case s.Events < 1 || s.Events > MaxEvents:
		return bad("events", "must be between 1 and %d", MaxEvents)
	case s.Endpoints < 1 || s.Endpoints > MaxEndpoints:
		return bad("endpoints", "must be between 1 and %d", MaxEndpoints)
	case s.Entities < 1:
		return bad("entities", "must be at least 1")
	case s.Entities > s.Events:
		return bad("entities", "more entities (%d) than --events (%d)", s.Entities, s.Events)
	case s.Size < MinSize || s.Size > subjects.MaxEventBytes:
		return bad("size", "must be between %d B and 1MiB", MinSize)
	case s.Rate < 0 || s.Rate > 1e6:
		return bad("rate", "must be between 0 (as fast as possible) and 1000000 events/s")
	case s.Window < 1 || s.Window > 65536:
		return bad("window", "must be between 1 and 65536")
	case len(s.Types) == 0:
		return bad("types", "at least one event type is needed")
	case s.Latency < 0 || time.Duration(s.Latency) > time.Minute:
		return bad("latency", "must be between 0 and 1m")
	case s.Failure < 0 || s.Failure >= 1:
		return bad("failure-ratio", "must be at least 0 and below 1")
	case s.Tenants < 0 || s.Tenants > MaxEndpoints:
		return bad("tenants", "must be between 0 and %d", MaxEndpoints)
	case s.Hanging < 0 || s.Hanging > 100:
		return bad("hanging", "must be between 0 and 100")
	case s.Down < 0 || s.Down > s.Endpoints:
		return bad("down", "must be between 0 and --endpoints (%d)", s.Endpoints)
	case s.Down > 100:
		return bad("down", "at most 100 endpoints can be down")
	case s.Down > 0 && s.Hanging > 0:
		return bad("down", "cannot be combined with --hanging in one scenario")
	case s.Idle < 0 || time.Duration(s.Idle) > 5*time.Minute:
		return bad("idle", "must be between 0 and 5m")
	case s.Soak != 0 && (time.Duration(s.Soak) < 10*time.Second || time.Duration(s.Soak) > 2*time.Hour):
		return bad("soak", "must be between 10s and 2h (or 0: no soak)")
	case s.Soak != 0 && (s.Load <= 0 || s.Load > 1):
		return bad("load", "must be above 0 and at most 1 (a share of the measured capacity)")
	case s.Soak != 0 && (len(s.Gateways) > 0 || s.Hanging > 0 || s.Down > 0):
		return bad("soak", "runs one gateway with healthy endpoints: not with --gateways, --hanging or --down")
	case s.Repeat < 0 || s.Repeat > 10:
		return bad("repeat", "must be between 1 and 10")
	case s.Repeat > 1 && s.Hanging == 0:
		return bad("repeat", "alternates rounds with and without --hanging endpoints: give --hanging")
	case s.Servers < 1 || s.Servers > 1000:
		return bad("receiver-servers", "must be between 1 and 1000")
	case len(s.Gateways) > 1 && s.Hanging > 0:
		return bad("hanging", "cannot be combined with several --gateways values (one round each)")
	}
	for i, n := range s.Gateways {
		switch {
		case n < 1 || n > MaxGateways:
			return bad("gateways", "%d: must be between 1 and %d", n, MaxGateways)
		case i > 0 && n <= s.Gateways[i-1]:
			return bad("gateways", "%v: must grow from one value to the next (gateways are only added between rounds)", s.Gateways)
		}
	}
	for i, t := range s.Types {
		if _, ok := subjects.Lookup(t); !ok {
			return bad("types", "%q (number %d) is not a catalogue type: see `quaycast events types`", t, i+1)
		}
		if subjects.IsOpsType(t) {
			return bad("types", "%q (number %d) is one of quaycast's operator events, which only quaycast publishes", t, i+1)
		}
	}
	switch s.Subscribe {
	case SubscribeSame, SubscribeAll:
	case SubscribeSpread:
		if s.Endpoints < len(s.Types) {
			return bad("subscribe", "spread needs at least as many endpoints (%d) as types (%d)", s.Endpoints, len(s.Types))
		}
	default:
		return bad("subscribe", "%q: want same, all or spread", s.Subscribe)
	}
	if d := s.deliveries(); d > MaxDeliveries {
		return bad("events", "%d events to these endpoints make about %d deliveries per round, more than the bound of %d", s.Events, d, MaxDeliveries)
	}
	return nil
}

// deliveries estimates the deliveries of one round.
func (s Scenario) deliveries() int64 {
	per := int64(s.Endpoints + s.Hanging)
	if s.Subscribe == SubscribeSpread {
		per = per/int64(len(s.Types)) + 1
	}
	return int64(s.Events) * per
}

// tenant is the tenant of endpoint or event index i of a run with tenants ("" without).
func (s Scenario) tenant(i int) string {
	if s.Tenants == 0 {
		return ""
	}
	return fmt.Sprintf("t%05d", i%s.Tenants)
}

// selectors are the event_types of endpoint i.
func (s Scenario) selectors(i int) []string {
	switch s.Subscribe {
	case SubscribeAll:
		return []string{subjects.SelectAll}
	case SubscribeSpread:
		return []string{s.Types[i%len(s.Types)]}
	}
	return slices.Clone(s.Types)
}
