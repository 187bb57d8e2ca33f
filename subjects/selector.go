package subjects

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Selector forms, besides an exact type name. Each may be qualified with a source,
// "<source>:<selector>": "tos-rotterdam:cargo_loaded", "tos-rotterdam:group:gate",
// "tos-rotterdam:*".
const (
	// SelectAll selects every event type.
	SelectAll = "*"
	// GroupPrefix starts a group selector, "group:<group>".
	GroupPrefix = "group:"
	// SourceSep separates a selector's source from what it selects of that source.
	SourceSep = ":"
)

// MaxFilters bounds the filter subjects one endpoint's selectors may map to. JetStream checks
// every stored message against each filter of a consumer that is catching up, so a drain slows as
// filters are added (measured in consumer's BenchmarkFilterSubjects, README "Per-source
// selectors"); a list over the bound is refused when an endpoint is saved.
const MaxFilters = 256

// ErrUnknownType is matched (errors.Is) by the field error of an event type or group the
// catalogue does not hold: a caller may read a newer catalogue and check again.
var ErrUnknownType = errors.New("unknown event type")

// unknownError is a field error that also matches ErrUnknownType.
type unknownError struct{ fe *fielderr.Error }

func unknown(field, reason string) error {
	return &unknownError{&fielderr.Error{Field: field, Reason: reason}}
}

func (e *unknownError) Error() string   { return e.fe.Error() }
func (e *unknownError) Unwrap() []error { return []error{e.fe, ErrUnknownType} }

// selector is one parsed selector.
type selector struct {
	source string // "" any source
	all    bool   // every type
	group  string // every type of a group
	typ    string // one type
}

// parseSelector reads one selector; the reason is why it is not one, and unknownType whether the
// catalogue lacks what it names.
func (c *Catalogue) parseSelector(s string) (sel selector, reason string, unknownType bool) {
	rest := s
	if src, r, ok := strings.Cut(s, SourceSep); ok && src+SourceSep != GroupPrefix {
		if reason := tokenReason(src); reason != "" {
			return sel, fmt.Sprintf("source %s %s", quote(src), reason), false
		}
		sel.source, rest = src, r
	}
	switch {
	case rest == SelectAll:
		sel.all = true
	case rest == "":
		return sel, "empty selector", false
	case strings.HasPrefix(rest, GroupPrefix):
		sel.group = rest[len(GroupPrefix):]
		if _, ok := c.byGroup[sel.group]; !ok {
			return sel, fmt.Sprintf("unknown group %s", quote(sel.group)), true
		}
	default:
		sel.typ = rest
		if _, ok := c.byName[rest]; !ok {
			return sel, fmt.Sprintf("unknown event type %s", quote(rest)), true
		}
	}
	if sel.source == "" && (sel.group == OpsGroup || IsOpsType(sel.typ)) {
		sel.source = OpsSource // they have no other
	}
	return sel, opsSelectorReason(sel), false
}

// opsSelectorReason refuses a selector that mixes the operator events (source OpsSource, group
// OpsGroup) with the others. They are selected by naming them, their group or their source, never
// by "*" or another source's selector, so that no selector written before they existed receives
// them.
func opsSelectorReason(sel selector) string {
	ops := sel.source == OpsSource
	switch {
	case ops && sel.group != "" && sel.group != OpsGroup:
		return fmt.Sprintf("source %q has only the operator events: %s:*, %s%s or one of their types", OpsSource, OpsSource, GroupPrefix, OpsGroup)
	case ops && sel.typ != "" && !IsOpsType(sel.typ):
		return fmt.Sprintf("%s is not an operator event, the only events of source %q", quote(sel.typ), OpsSource)
	case !ops && sel.group == OpsGroup:
		return fmt.Sprintf("the operator events come from source %q only: %s%s", OpsSource, GroupPrefix, OpsGroup)
	case !ops && IsOpsType(sel.typ):
		return fmt.Sprintf("%s is an operator event, from source %q only: %s", quote(sel.typ), OpsSource, sel.typ)
	}
	return ""
}

// ValidateSelectors checks an endpoint's event_types against the built-in catalogue (see
// Catalogue.ValidateSelectors).
func ValidateSelectors(sel []string) error { return builtin.ValidateSelectors(sel) }

// ValidateSelectors checks an endpoint's event_types: at least one selector, every selector an
// exact type name, "group:<group>" of a known group, or "*", each optionally after "<source>:"
// with a valid source token; and at most MaxFilters filter subjects for them all. Duplicates are
// allowed. The error is a *fielderr.Error with Field "event_types" for an empty or too wide list,
// or "event_types[i]" for the first bad selector, with a reason naming the bad value; for a type or
// group the catalogue lacks it also matches ErrUnknownType.
func (c *Catalogue) ValidateSelectors(sel []string) error {
	if _, err := c.parse(sel); err != nil {
		return err
	}
	if f, _ := c.Filters(sel); len(f) > MaxFilters {
		return &fielderr.Error{Field: "event_types", Reason: fmt.Sprintf("these selectors map to %d filter subjects, more than %d: select whole groups, or every type of a source (<source>:*)", len(f), MaxFilters)}
	}
	return nil
}

// parse reads every selector.
func (c *Catalogue) parse(sel []string) ([]selector, error) {
	if len(sel) == 0 {
		return nil, &fielderr.Error{Field: "event_types", Reason: "at least one event type is required"}
	}
	out := make([]selector, len(sel))
	for i, s := range sel {
		p, reason, unknownType := c.parseSelector(s)
		field := "event_types[" + strconv.Itoa(i) + "]"
		switch {
		case unknownType:
			return nil, unknown(field, reason)
		case reason != "":
			return nil, &fielderr.Error{Field: field, Reason: reason}
		}
		out[i] = p
	}
	return out, nil
}

// covered lists the type names a parsed selector covers.
func (c *Catalogue) covered(s selector) []string {
	switch {
	case s.all: // the operator events for their source only, the others for any other
		names := make([]string, 0, len(c.types))
		for _, t := range c.types {
			if (t.System == SystemQuaycast) == (s.source == OpsSource) {
				names = append(names, t.Name)
			}
		}
		return names
	case s.group != "":
		return c.byGroup[s.group]
	}
	return []string{s.typ}
}

// Expand returns the sorted, unique built-in type names the selectors cover (see
// Catalogue.Expand).
func Expand(sel []string) ([]string, error) { return builtin.Expand(sel) }

// Expand returns the sorted, unique type names the selectors cover, from any source. Its error is
// the one of parsing the selectors.
func (c *Catalogue) Expand(sel []string) ([]string, error) {
	parsed, err := c.parse(sel)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range parsed {
		names = append(names, c.covered(s)...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Filters returns the JetStream FilterSubjects of a consumer for the selectors, built-in
// catalogue (see Catalogue.Filters).
func Filters(sel []string) ([]string, error) { return builtin.Filters(sel) }

// Filters returns the JetStream FilterSubjects of a consumer for the selectors, sorted, unique
// and never overlapping, as JetStream requires:
//
//   - "*" anywhere: "evt.>" (beside the operator events' filters, if any);
//   - a type of any source (a name, or a group's types): "evt.*.<type>";
//   - "<source>:*": "evt.<source>.>", or, when some types are selected for any source (whose
//     filters would overlap it), one "evt.<source>.<type>" per other type of the catalogue;
//   - "<source>:<type>" and "<source>:group:<g>": "evt.<source>.<type>" per type not already
//     selected for any source;
//   - the operator events (source OpsSource, whether a selector of their group or types names
//     it or not): "quaycast.ops.*" for "quaycast:*" or the group, "quaycast.ops.<type>" per type
//     otherwise — the operator's own endpoints' events; an endpoint's owner turns them into a
//     tenant's (TenantFilters) or every tenant's (OpsTenantFilters). No other selector covers
//     them.
//
// "evt.>" and "evt.<source>.>" capture types outside the catalogue too, which the envelope check
// then sets aside. A group or catalogue that grows changes the filters: the consumer's owner
// applies them again. Its error is the one of parsing the selectors (not the MaxFilters bound).
func (c *Catalogue) Filters(sel []string) ([]string, error) {
	parsed, err := c.parse(sel)
	if err != nil {
		return nil, err
	}
	anySource := map[string]bool{}   // types selected from every source
	wholeSource := map[string]bool{} // sources selected whole
	bySource := map[string]map[string]bool{}
	everything, opsAll := false, false
	opsKinds := map[string]bool{}
	for _, s := range parsed {
		switch {
		case s.source == OpsSource && (s.all || s.group != ""): // the group is every operator event
			opsAll = true
		case s.source == OpsSource:
			opsKinds[s.typ] = true
		case s.source == "" && s.all:
			everything = true
		case s.source == "":
			for _, t := range c.covered(s) {
				anySource[t] = true
			}
		case s.all:
			wholeSource[s.source] = true
		default:
			if bySource[s.source] == nil {
				bySource[s.source] = map[string]bool{}
			}
			for _, t := range c.covered(s) {
				bySource[s.source][t] = true
			}
		}
	}
	out := c.eventFilters(everything, anySource, wholeSource, bySource)
	if opsAll {
		out = append(out, OpsSubjectPrefix+"*")
	} else {
		for k := range opsKinds {
			out = append(out, OpsSubjectPrefix+k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// eventFilters are the filters over evt.> of Filters.
func (c *Catalogue) eventFilters(everything bool, anySource, wholeSource map[string]bool, bySource map[string]map[string]bool) []string {
	if everything {
		return []string{StreamSubjects}
	}
	var out []string
	for t := range anySource {
		out = append(out, Prefix+".*."+t)
	}
	for src := range wholeSource {
		if len(anySource) == 0 {
			out = append(out, Prefix+"."+src+".>")
			continue
		}
		for _, t := range c.types {
			if !anySource[t.Name] && t.System != SystemQuaycast {
				out = append(out, Prefix+"."+src+"."+t.Name)
			}
		}
	}
	for src, types := range bySource {
		if wholeSource[src] {
			continue
		}
		for t := range types {
			if !anySource[t] {
				out = append(out, Prefix+"."+src+"."+t)
			}
		}
	}
	return out
}

// Matches reports whether the built-in-catalogue selectors cover typ from any source they name
// (see Catalogue.Matches).
func Matches(sel []string, typ string) bool { return builtin.Matches(sel, "", typ) }

// Matches reports whether the selectors cover an event of type typ from source; source "" asks
// whether some selector covers typ from some source. Invalid selectors match nothing, and no
// selector matches a type outside the catalogue.
func (c *Catalogue) Matches(sel []string, source, typ string) bool {
	if _, ok := c.byName[typ]; !ok {
		return false
	}
	for _, s := range sel {
		p, reason, _ := c.parseSelector(s)
		if reason != "" || p.source != "" && source != "" && p.source != source || (p.source == OpsSource) != IsOpsType(typ) {
			continue
		}
		if p.all || p.typ == typ || p.group != "" && c.byName[typ].Group == p.group {
			return true
		}
	}
	return false
}
