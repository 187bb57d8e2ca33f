package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

// defaultTypes are four types of four groups, as a terminal publishes them.
var defaultTypes = []string{"cargo_gated_in", "cargo_loaded", "hold_applied", "reefer_plugged_in"}

// allTypes are the types publishers may publish: the catalogue's but quaycast's own operator
// events (an endpoint given one would receive each registration's endpoint_created).
func allTypes() []string {
	var names []string
	for _, t := range subjects.Builtin().Types() {
		if !subjects.IsOpsType(t.Name) {
			names = append(names, t.Name)
		}
	}
	return names
}

// base is the scenario every preset starts from: 1 KiB events to 10 endpoints, as fast as
// possible.
func base() Scenario {
	return Scenario{
		Events: 20_000, Endpoints: 10, Entities: 1_000, Size: 1 << 10, Window: 1024,
		Types: slices.Clone(defaultTypes), Subscribe: SubscribeSame, Idle: Duration(2 * time.Second),
		Servers: 20, Seed: 1,
	}
}

// presets are the named scenarios. Each finishes in a few minutes on a 2-core machine; flags
// change any of their values.
var presets = map[string]struct {
	about string
	make  func(s *Scenario)
}{
	"standard": {"1 KiB events of 4 types to 10 endpoints, as fast as possible", func(*Scenario) {}},
	"smoke":    {"a few hundred events to 3 endpoints: checks the set-up in seconds", func(s *Scenario) { s.Events, s.Endpoints, s.Entities, s.Size, s.Idle = 300, 3, 10, 256, 0 }},
	"latency": {"2,000 events/s to 10 endpoints: end-to-end latency at a steady rate", func(s *Scenario) {
		s.Events, s.Rate = 20_000, 2000
	}},
	"fanout": {"one event type to 1,000 endpoints", func(s *Scenario) {
		s.Events, s.Endpoints, s.Entities, s.Types = 200, 1000, 100, []string{"cargo_gated_in"}
	}},
	"many-entities": {"every event its own entity: as many lanes as events", func(s *Scenario) {
		s.Events, s.Entities = 20_000, 20_000
	}},
	"hot-entity": {"every event of one entity: strictly serial per endpoint", func(s *Scenario) {
		s.Events, s.Entities = 5000, 1
	}},
	"flaky": {"receivers answer 10 % of requests with 503 (Retry-After: 1)", func(s *Scenario) {
		s.Events, s.Failure = 10_000, 0.1
	}},
	"slow": {"receivers answer after 50 ms", func(s *Scenario) {
		s.Events, s.Latency = 10_000, Duration(50*time.Millisecond)
	}},
	"hanging": {"one endpoint never answers beside 5 healthy ones, at 500 events/s; a warm-up round, then three pairs of rounds with and without it", func(s *Scenario) {
		s.Events, s.Endpoints, s.Hanging, s.Rate, s.Repeat = 10_000, 5, 1, 500, 3
	}},
	"backlog": {"100,000 events published while the endpoint is down, then it comes back: the drain", func(s *Scenario) {
		s.Events, s.Endpoints, s.Down, s.Size = 100_000, 1, 1, 512
	}},
	"cluster": {"a 3-node NATS cluster (R3) and 1, then 2, then 3 gateways: the same events to the same 12 endpoints each round", func(s *Scenario) {
		s.Events, s.Endpoints, s.Gateways = 10_000, 12, []int{1, 2, 3}
	}},
	"soak": {"10 minutes at 60 % of the capacity a first round measures: RSS and goroutines over time", func(s *Scenario) {
		s.Soak, s.Load, s.Idle = Duration(10*time.Minute), 0.6, 0
	}},
	"tenants": {"1,000 tenants with one endpoint each; every event names one tenant and reaches only its endpoint", func(s *Scenario) {
		s.Events, s.Endpoints, s.Tenants, s.Entities = 20_000, 1000, 1000, 1000
	}},
	"endpoints-10k": {"10,000 endpoints, one type each: registration time, memory, idle CPU, throughput", func(s *Scenario) {
		s.Events, s.Endpoints, s.Entities, s.Size = 200, 10_000, 100, 512
		// Idle for a minute: the endpoints fall asleep after two empty pulls (20 s), and a quiet
		// gateway gives back the heap their creation grew; a shorter window measured the wind-down.
		s.Types, s.Subscribe, s.Idle = allTypes(), SubscribeSpread, Duration(time.Minute)
	}},
}

// Presets lists the preset names with a line about each, sorted.
func Presets() []string {
	var out []string
	for name, p := range presets {
		out = append(out, name+": "+p.about)
	}
	sort.Strings(out)
	return out
}

// Overrides are the scenario values given as flags; nil means not given. The tags make them the
// flags of `quaycast bench`, which embeds them.
type Overrides struct {
	Events    *int             `name:"events" help:"Events published per round."`
	Endpoints *int             `name:"endpoints" help:"Healthy endpoints registered."`
	Entities  *int             `name:"entities" help:"Entities the events are spread over (order is kept per entity)."`
	Size      *config.ByteSize `name:"size" help:"Size of each event, e.g. 1KiB (the envelope's data is padded)."`
	Rate      *float64         `name:"rate" help:"Events per second; 0 publishes as fast as the window allows."`
	Window    *int             `name:"window" help:"Publishes awaiting their PubAck at most."`
	Types     []string         `name:"types" help:"Event types published (comma-separated catalogue names)."`
	Subscribe *string          `name:"subscribe" help:"How endpoints subscribe: same (every published type), all (*), spread (one type each)."`
	Latency   *time.Duration   `name:"latency" help:"Receivers answer after this long."`
	Failure   *float64         `name:"failure-ratio" help:"Share of requests receivers answer with 503 (Retry-After: 1)."`
	Hanging   *int             `name:"hanging" help:"Extra endpoints that never answer; the run is also made without them, for comparison."`
	Down      *int             `name:"down" help:"Endpoints that refuse connections while events are published, then come back (the drain is timed)."`
	Idle      *time.Duration   `name:"idle" help:"Measure the gateway idle this long after registration."`
	Tenants   *int             `name:"tenants" help:"Make this many tenants: endpoint i belongs to tenant i mod N, each event names one tenant at random and reaches only its endpoints."`
	Condition *string          `name:"condition" help:"Every endpoint's condition (CEL), to measure what conditions cost; it must take every event, e.g. 'data.t >= 0 && entity != \"\"'."`
	Repeat    *int             `name:"repeat" help:"With --hanging: pairs of rounds, alternating with and without the hanging endpoints; the effect is the median pair."`
	Soak      *time.Duration   `name:"soak" help:"Run a soak this long: a calibration round first, then --load of its capacity (or --rate) for this long, with RSS and goroutines over time."`
	Load      *float64         `name:"load" help:"A soak's share of the capacity the calibration round measured (default 0.6)."`
	Servers   *int             `name:"receiver-servers" help:"Loopback HTTP servers the healthy endpoints are spread over."`
	Seed      *uint64          `name:"seed" help:"Seed of the events' types and entities."`
	Gateways  []int            `name:"gateways" help:"Start a cluster instead of one gateway: 3 NATS nodes (R3) and this many gateways sharing the endpoints. Several values (1,2,3) run a round each on the same cluster, adding gateways between rounds."`
}

// Resolve builds the scenario of a run: the preset (from the flag, else the file's preset key,
// else "standard"), then the file's values, then the flags. Unless --entities is given, the
// entities are at most the events. It validates the result.
func Resolve(preset string, file []byte, o Overrides) (Scenario, error) {
	s, err := fromPreset(preset, file)
	if err != nil {
		return Scenario{}, err
	}
	if len(file) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(file))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
			return Scenario{}, fielderr.Flag("scenario", yamlReason(err))
		}
		s.Preset = ""
	}
	o.apply(&s)
	return s, s.Validate()
}

// fromPreset is the scenario of the preset named by the flag, else by the file's preset key, else
// of "standard"; an unknown name is an error naming where it came from.
func fromPreset(name string, file []byte) (Scenario, error) {
	var head struct {
		Preset string `yaml:"preset"`
	}
	if len(file) > 0 {
		if err := yaml.Unmarshal(file, &head); err != nil {
			return Scenario{}, fielderr.Flag("scenario", yamlReason(err))
		}
	}
	field := "preset"
	if name == "" {
		name, field = head.Preset, "scenario"
	}
	if name == "" {
		name = "standard"
	}
	p, ok := presets[name]
	if !ok {
		names := slices.Sorted(maps.Keys(presets))
		return Scenario{}, fielderr.Flag(field, fmt.Sprintf("unknown preset %q (want one of %s)", name, strings.Join(names, ", ")))
	}
	s := base()
	p.make(&s)
	s.Name = name
	return s, nil
}

// apply sets the values given as flags. Unless Entities is given, the entities are cut to the
// events (a preset's entities may be more than the events a flag asks for).
func (o Overrides) apply(s *Scenario) {
	set(&s.Events, o.Events)
	set(&s.Endpoints, o.Endpoints)
	set(&s.Entities, o.Entities)
	set(&s.Size, o.Size)
	set(&s.Rate, o.Rate)
	set(&s.Window, o.Window)
	set(&s.Subscribe, o.Subscribe)
	set(&s.Failure, o.Failure)
	set(&s.Hanging, o.Hanging)
	set(&s.Down, o.Down)
	set(&s.Servers, o.Servers)
	set(&s.Seed, o.Seed)
	if o.Latency != nil {
		s.Latency = Duration(*o.Latency)
	}
	if o.Idle != nil {
		s.Idle = Duration(*o.Idle)
	}
	if o.Soak != nil {
		s.Soak = Duration(*o.Soak)
	}
	set(&s.Load, o.Load)
	set(&s.Repeat, o.Repeat)
	set(&s.Condition, o.Condition)
	set(&s.Tenants, o.Tenants)
	if s.Soak != 0 && s.Load == 0 {
		s.Load = 0.6
	}
	if o.Types != nil {
		s.Types = o.Types
	}
	if o.Gateways != nil {
		s.Gateways = o.Gateways
	}
	if o.Entities == nil && s.Entities > s.Events {
		s.Entities = max(s.Events, 1)
	}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func yamlReason(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "yaml: ")
}
