// Package maintenance holds maintenance windows: a time range during which
// the hosts, services, event types or tags its matchers select are known to
// be worked on. The context analyzer reports the windows that cover a host
// and the decision engine asks whether an event falls in one
// (Window.Covers). A window changes no notification: silences do that.
package maintenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The fields a matcher may name.
const (
	FieldHost      = "host"
	FieldService   = "service"
	FieldEventType = "event_type"
	FieldTags      = "tags"
)

// Fields lists the fields a matcher may name, in the order of the docs.
var Fields = []string{FieldHost, FieldService, FieldEventType, FieldTags}

// Bounds of a window.
const (
	maxValues   = 100
	maxValueLen = 255
	maxRegexLen = 1024
	maxText     = 4096 // created_by, comment
)

// Window is a maintenance window: from StartsAt (inclusive) to EndsAt
// (exclusive), what Matchers select is under maintenance.
type Window struct {
	ID        int64     `json:"id"`
	Matchers  Matchers  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// Matchers select targets by field (host, service, event_type, tags): a
// target is selected when every field named matches. For tags, one of the
// target's tags must match.
type Matchers map[string]Matcher

// Matcher matches one field's value: equal to one of Values, or, when
// Regex is set, matching the regular expression (RE2 syntax, anchored at
// both ends, as Alertmanager's =~). Hosts are compared without regard to
// case (the inventory lowercases them), other fields exactly. In JSON it is
// a string ("db-01"), a list of strings (["db-01", "db-02"]) or an object
// ({"regex": "db-[0-9]+"}).
type Matcher struct {
	Values []string
	Regex  string
	re     *regexp.Regexp
}

// MarshalJSON writes the shape UnmarshalJSON reads: a string for one value,
// a list for several, {"regex": ...} for a regular expression.
func (m Matcher) MarshalJSON() ([]byte, error) {
	switch {
	case m.Regex != "":
		return json.Marshal(map[string]string{"regex": m.Regex})
	case len(m.Values) == 1:
		return json.Marshal(m.Values[0])
	}
	return json.Marshal(m.Values)
}

// UnmarshalJSON reads a string, a list of strings or {"regex": "..."}. It
// compiles the regular expression; Validate checks the bounds.
func (m *Matcher) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*m = Matcher{}
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		m.Values = []string{s}
	case len(b) > 0 && b[0] == '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return errShape
		}
		m.Values = ss
	case len(b) > 0 && b[0] == '{':
		var o map[string]json.RawMessage
		if err := json.Unmarshal(b, &o); err != nil {
			return errShape
		}
		raw, ok := o["regex"]
		if !ok || len(o) != 1 {
			return errShape
		}
		if err := json.Unmarshal(raw, &m.Regex); err != nil || m.Regex == "" {
			return errors.New("regex must be a non-empty string")
		}
		if err := m.compile(); err != nil {
			return err
		}
	default:
		return errShape
	}
	return nil
}

var errShape = errors.New(`want a string, a list of strings or {"regex": "..."}`)

func (m *Matcher) compile() error {
	if len(m.Regex) > maxRegexLen {
		return fmt.Errorf("regex longer than %d bytes", maxRegexLen)
	}
	re, err := regexp.Compile("^(?:" + m.Regex + ")$")
	if err != nil {
		return fmt.Errorf("invalid regex: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	m.re = re
	return nil
}

// Regexp returns a matcher of the regular expression expr (anchored), or
// the error of compiling it.
func Regexp(expr string) (Matcher, error) {
	m := Matcher{Regex: expr}
	return m, m.compile()
}

// Equal returns a matcher of the values.
func Equal(values ...string) Matcher { return Matcher{Values: values} }

// match reports whether v matches; fold compares values without regard to
// case.
func (m *Matcher) match(v string, fold bool) bool {
	if m.Regex != "" {
		if m.re == nil && m.compile() != nil {
			return false
		}
		return m.re.MatchString(v) || (fold && m.re.MatchString(strings.ToLower(v)))
	}
	for _, want := range m.Values {
		if want == v || (fold && strings.EqualFold(want, v)) {
			return true
		}
	}
	return false
}

// FieldError is a problem of one field of a window; Path names it
// (matchers.host, ends_at).
type FieldError struct {
	Path    string
	Problem string
}

// Error returns "path: problem".
func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

func ferr(path, format string, args ...any) error {
	return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks w as POST /api/v1/maintenance takes it: both times set,
// ends_at after starts_at, at least one matcher, each naming a known field
// with one to 100 non-empty values or a regular expression that does not
// match the empty value. Its errors are *FieldError.
func (w *Window) Validate() error {
	if w.StartsAt.IsZero() {
		return ferr("starts_at", "required")
	}
	if w.EndsAt.IsZero() {
		return ferr("ends_at", "required")
	}
	if !w.EndsAt.After(w.StartsAt) {
		return ferr("ends_at", "must be after starts_at")
	}
	if len(w.Matchers) == 0 {
		return ferr("matchers", "at least one matcher is required: %s", strings.Join(Fields, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(w.Matchers)) {
		path := "matchers." + name
		if !slices.Contains(Fields, name) {
			return ferr(path, "unknown field: want %s", strings.Join(Fields, ", "))
		}
		m := w.Matchers[name]
		if m.Regex != "" {
			if len(m.Values) > 0 {
				return ferr(path, "give values or a regex, not both")
			}
			if err := m.compile(); err != nil {
				return ferr(path, "%v", err)
			}
			if m.re.MatchString("") {
				return ferr(path, "the regex matches the empty value, which every target without the field has")
			}
			w.Matchers[name] = m
			continue
		}
		if len(m.Values) == 0 {
			return ferr(path, "empty list")
		}
		if len(m.Values) > maxValues {
			return ferr(path, "more than %d values", maxValues)
		}
		for _, v := range m.Values {
			if strings.TrimSpace(v) == "" {
				return ferr(path, "empty value")
			}
			if len(v) > maxValueLen {
				return ferr(path, "value longer than %d bytes", maxValueLen)
			}
		}
	}
	if len(w.CreatedBy) > maxText {
		return ferr("created_by", "longer than %d bytes", maxText)
	}
	if len(w.Comment) > maxText {
		return ferr("comment", "longer than %d bytes", maxText)
	}
	return nil
}

// Active reports whether w is in force at now: StartsAt <= now < EndsAt.
func (w *Window) Active(now time.Time) bool {
	return !now.Before(w.StartsAt) && now.Before(w.EndsAt)
}

// Target is what a window may cover: an event (its host, service, event
// type and tags) or a host as a whole (its host, and the service and tags
// of its asset, with no event type).
type Target struct {
	Host      string
	Service   string
	EventType string
	Tags      []string
}

// Matches reports whether w's matchers select t, whether or not w is
// active. A field the target lacks is "", which no matcher selects, so a
// window on event_type never covers a host as a whole. A window without
// matchers matches nothing.
func (w *Window) Matches(t Target) bool {
	if len(w.Matchers) == 0 {
		return false
	}
	for name, m := range w.Matchers {
		var ok bool
		switch name {
		case FieldHost:
			ok = t.Host != "" && m.match(t.Host, true)
		case FieldService:
			ok = t.Service != "" && m.match(t.Service, false)
		case FieldEventType:
			ok = t.EventType != "" && m.match(t.EventType, false)
		case FieldTags:
			ok = slices.ContainsFunc(t.Tags, func(tag string) bool { return tag != "" && m.match(tag, false) })
		}
		if !ok {
			return false
		}
	}
	return true
}

// Covers reports whether w is active at now and selects t.
func (w *Window) Covers(t Target, now time.Time) bool {
	return w.Active(now) && w.Matches(t)
}
