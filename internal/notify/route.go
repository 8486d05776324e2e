package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Matchers select alerts by their labels: an alert matches when, for every
// label named, its value is one of the values listed. A label the alert
// does not have has the value "" (as in Alertmanager). Empty Matchers match
// every alert.
type Matchers map[string][]string

// Matches reports whether a's labels satisfy m.
func (m Matchers) Matches(a Alert) bool {
	for name, values := range m {
		v, _ := alertLabel(&a, name)
		if !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// String spells m with sorted label names: {severity=["critical","high"]}.
func (m Matchers) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteString("=[")
		for j, v := range m[name] {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(v))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// Bounds of matchers, in policies and silences.
const (
	maxMatcherValues = 1000
	maxLabelLen      = 1024
)

// matchersFromAny reads matchers as JSON decodes them into map[string]any
// (a Silence's): each value a string, or a list of strings; numbers stand
// for their decimal text. Errors are *FieldError with the label as Path.
func matchersFromAny(in map[string]any) (Matchers, error) {
	m := make(Matchers, len(in))
	for name, v := range in {
		if name == "" {
			return nil, &FieldError{Problem: "empty label name"}
		}
		if len(name) > maxLabelLen {
			return nil, &FieldError{Problem: fmt.Sprintf("label name longer than %d bytes", maxLabelLen)}
		}
		values, err := anyValues(v)
		if err != nil {
			return nil, &FieldError{Path: name, Problem: err.Error()}
		}
		m[name] = values
	}
	return m, nil
}

var errMatcherShape = errors.New("expected a string or a list of strings")

func anyValues(v any) ([]string, error) {
	var out []string
	switch t := v.(type) {
	case []string:
		out = slices.Clone(t)
	case []any:
		out = make([]string, 0, len(t))
		for _, e := range t {
			s, ok := anyScalar(e)
			if !ok {
				return nil, errMatcherShape
			}
			out = append(out, s)
		}
	default:
		s, ok := anyScalar(v)
		if !ok {
			return nil, errMatcherShape
		}
		return []string{s}, checkValue(s)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	if len(out) > maxMatcherValues {
		return nil, fmt.Errorf("more than %d values", maxMatcherValues)
	}
	for _, s := range out {
		if err := checkValue(s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkValue(s string) error {
	if len(s) > maxLabelLen {
		return fmt.Errorf("value longer than %d bytes", maxLabelLen)
	}
	return nil
}

func anyScalar(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case int:
		return strconv.Itoa(t), true
	case int64:
		return strconv.FormatInt(t, 10), true
	case json.Number:
		if _, err := t.Float64(); err == nil {
			return t.String(), true
		}
	}
	return "", false
}

// alertLabel is the value of a's label name: from a.Labels, else, for the
// labels every alert has (rule, rule_id, source_host, severity), from a's
// fields.
func alertLabel(a *Alert, name string) (string, bool) {
	if v, ok := a.Labels[name]; ok {
		return v, true
	}
	switch name {
	case "rule":
		return a.RuleName, a.RuleName != ""
	case "rule_id":
		if a.RuleID != 0 {
			return strconv.FormatInt(a.RuleID, 10), true
		}
	case "source_host":
		return a.SourceHost, a.SourceHost != ""
	case "severity":
		return a.Severity, a.Severity != ""
	}
	return "", false
}

// allLabels is every label of a (group_by: ["..."]).
func allLabels(a *Alert) map[string]string {
	out := maps.Clone(a.Labels)
	if out == nil {
		out = map[string]string{}
	}
	for _, name := range []string{"rule", "rule_id", "source_host", "severity"} {
		if _, ok := out[name]; !ok {
			if v, ok := alertLabel(a, name); ok {
				out[name] = v
			}
		}
	}
	return out
}

// Route is a node of a policy's routing tree with its settings resolved:
// what a route leaves unset it inherits from its parent, and the root's
// unset settings are Alertmanager's defaults. Routes are immutable.
type Route struct {
	// Path names the route in the policy document: route,
	// route.routes[0], route.routes[0].routes[1].
	Path string
	// Key identifies the route across policy changes: the matchers from
	// the root down, {}/{severity=["critical"]}. Group keys begin with it.
	Key      string
	Receiver string
	// GroupBy are the labels whose values split alerts into groups,
	// sorted; GroupByAll (group_by: ["..."]) groups by every label.
	GroupBy        []string
	GroupByAll     bool
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	Matchers       Matchers
	// Continue: after this route matched, its later siblings are tried
	// too.
	Continue bool
	Routes   []*Route
}

// Alertmanager's defaults for the root route.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// match returns the routes under r (r included) that a reaches: depth
// first, the first matching child wins unless it has Continue; a route
// none of whose children match is itself the match.
func (r *Route) match(a *Alert) []*Route {
	if !r.Matchers.Matches(*a) {
		return nil
	}
	var all []*Route
	for _, c := range r.Routes {
		m := c.match(a)
		all = append(all, m...)
		if m != nil && !c.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, r)
	}
	return all
}

// groupKey is the key of a's group under r: the route's key and the values
// of its group_by labels that a has, {}/{severity=["critical"]}:{rule="x"}.
func (r *Route) groupKey(a *Alert) string {
	var b strings.Builder
	b.WriteString(r.Key)
	b.WriteString(":{")
	writeLabel := func(i int, name, v string) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
	}
	if r.GroupByAll {
		labels := allLabels(a)
		for i, name := range slices.Sorted(maps.Keys(labels)) {
			writeLabel(i, name, labels[name])
		}
	} else {
		i := 0
		for _, name := range r.GroupBy { // sorted when the policy is read
			if v, ok := alertLabel(a, name); ok {
				writeLabel(i, name, v)
				i++
			}
		}
	}
	b.WriteByte('}')
	return b.String()
}
