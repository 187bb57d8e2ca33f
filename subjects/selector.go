package subjects

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Selector forms, besides an exact type name.
const (
	// SelectAll selects every event type.
	SelectAll = "*"
	// GroupPrefix starts a group selector, "group:<group>".
	GroupPrefix = "group:"
)

// ValidateSelectors checks an endpoint's event_types: at least one selector,
// and every selector an exact type name, "group:<group>" of a known group, or
// "*". Duplicates are allowed. The error is a *fielderr.Error with Field
// "event_types" for an empty list, or "event_types[i]" for the first bad
// selector, with a reason naming the bad value.
func ValidateSelectors(sel []string) error {
	if len(sel) == 0 {
		return &fielderr.Error{Field: "event_types", Reason: "at least one event type is required"}
	}
	for i, s := range sel {
		if reason := selectorReason(s); reason != "" {
			return &fielderr.Error{Field: "event_types[" + strconv.Itoa(i) + "]", Reason: reason}
		}
	}
	return nil
}

func selectorReason(s string) string {
	switch {
	case s == SelectAll:
		return ""
	case s == "":
		return "empty selector"
	case strings.HasPrefix(s, GroupPrefix):
		if _, ok := byGroup[s[len(GroupPrefix):]]; !ok {
			return fmt.Sprintf("unknown group %s", quote(s[len(GroupPrefix):]))
		}
		return ""
	}
	if _, ok := byName[s]; !ok {
		return fmt.Sprintf("unknown event type %s", quote(s))
	}
	return ""
}

// Expand returns the sorted, unique type names the selectors cover. Its error
// is the one of ValidateSelectors.
func Expand(sel []string) ([]string, error) {
	if err := ValidateSelectors(sel); err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sel {
		switch {
		case s == SelectAll:
			names = names[:0]
			for _, t := range catalogue {
				names = append(names, t.Name)
			}
			slices.Sort(names)
			return names, nil
		case strings.HasPrefix(s, GroupPrefix):
			names = append(names, byGroup[s[len(GroupPrefix):]]...)
		default:
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Filters returns the JetStream FilterSubjects of a consumer for the
// selectors: ["evt.>"] when they include "*", otherwise one "evt.*.<type>" per
// covered type, sorted and unique. The filters never overlap, as JetStream
// requires. Note that "evt.>" captures every subject of the stream, also types
// outside the catalogue, which the envelope check then sets aside. Its error is
// the one of ValidateSelectors.
func Filters(sel []string) ([]string, error) {
	if err := ValidateSelectors(sel); err != nil {
		return nil, err
	}
	if slices.Contains(sel, SelectAll) {
		return []string{StreamSubjects}, nil
	}
	names, err := Expand(sel)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		names[i] = Prefix + ".*." + n
	}
	return names, nil
}

// Matches reports whether the selectors cover the catalogue type typ, that is
// whether typ is in Expand(sel). Invalid selectors match nothing, and no
// selector matches a type outside the catalogue.
func Matches(sel []string, typ string) bool {
	t, ok := byName[typ]
	if !ok {
		return false
	}
	for _, s := range sel {
		if s == SelectAll || s == typ || strings.HasPrefix(s, GroupPrefix) && s[len(GroupPrefix):] == t.Group {
			return true
		}
	}
	return false
}
