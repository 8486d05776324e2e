// Package cond is the condition language of trigger rules: the seed's JSON
// conditions ({"event_type": "threshold_breach", "severity": ["critical",
// "high"], "metadata.cpu_usage": {"$gt": 90}}), compiled once into a
// Matcher that evaluates an event.Event without parsing JSON, and an Index
// that rules out most rules for an event before any condition runs.
//
// The language, its semantics and its limits are described in
// docs/rules.md. In short: a condition object maps fields to a value
// (equality), a list (membership) or an operator object; its keys are
// ANDed; $and, $or and $not combine condition objects. Compile validates
// everything it can (operators, operand types, regular expressions,
// fields, bounds) and names the place of a problem in an *Error.
package cond

import (
	"encoding/json"
	"slices"

	"github.com/reflex-ops/reflex/internal/event"
)

// Bounds of a condition document. Compile refuses a document beyond any of
// them with an *Error naming the place.
const (
	// MaxBytes is the largest document, in bytes.
	MaxBytes = 64 << 10
	// MaxDepth is the deepest nesting of objects and lists; the document
	// itself is at depth 1.
	MaxDepth = 16
	// MaxNodes is the largest number of JSON values (objects, lists,
	// keys' values, list items, scalars) in a document.
	MaxNodes = 1000
	// MaxList is the longest list: $in, $nin, a field's list of values,
	// $and, $or.
	MaxList = 256
	// MaxRegex is the longest regular expression, in bytes.
	MaxRegex = 1024
	// MaxPathSegments is the most segments below metadata. or event_data.
	MaxPathSegments = 16
	// MaxFieldName is the longest field name (a dotted path), in bytes.
	MaxFieldName = 256
)

// rootPath prefixes every error's Path: the conditions of a rule.
const rootPath = "conditions"

// Error is a condition document that Compile refuses. Path names the place
// from the document's root, prefixed with "conditions" (for example
// "conditions.metadata.cpu_usage.$gtt", "conditions.$or[1].severity");
// Msg says what is wrong there. Error() is "<Path>: <Msg>", fit for a 400
// answer's error field.
type Error struct {
	Path string
	Msg  string
}

// Error returns "<Path>: <Msg>".
func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Matcher is a compiled condition document. It is immutable and safe for
// concurrent use.
type Matcher struct {
	root node
	keys keys
}

// Compile parses and validates a condition document and compiles it into a
// Matcher. Every error is an *Error. The empty object {} is a Matcher that
// matches every event; an empty document or JSON null is an error.
func Compile(raw json.RawMessage) (*Matcher, error) {
	doc, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if doc.kind != jObject {
		return nil, &Error{Path: rootPath, Msg: "must be a JSON object"}
	}
	root, err := compileCond(doc, rootPath)
	if err != nil {
		return nil, err
	}
	k := root.pins()
	k.sevs.vals = slices.Clone(k.sevs.vals)
	byRank(k.sevs.vals)
	return &Matcher{root: root, keys: k}, nil
}

// Match reports whether the event satisfies the conditions. It reads the
// event's fields through accessors compiled once, parses no JSON and does
// not allocate in the common case. A nil event matches nothing.
func (m *Matcher) Match(e *event.Event) bool {
	if e == nil {
		return false
	}
	return m.root.match(e)
}

// Explain is Match with a reason: for an event that does not match, the
// first failing condition in evaluation order (for example
// "metadata.cpu_usage: 85 is not > 90"); for one that does,
// "all conditions hold". It allocates and is meant for the rules test
// endpoint, not for the event path. Its result is always Match's.
func (m *Matcher) Explain(e *event.Event) (bool, string) {
	if e == nil {
		return false, "no event"
	}
	ok, why := m.root.explain(e)
	if ok {
		return true, "all conditions hold"
	}
	return false, cut(why, maxReason)
}

// Keys returns the values an event must have, for the rule to match, in
// event_type, severity and source (the source system), as the Index files
// rules (it also uses source_host and source_service): nil for a field
// the rule does not pin to a set of values, an empty list when the rule can
// never match. It reads equality and lists ($eq, $in, a field's list), and
// for severity also $gt/$gte/$lt/$lte, in the top-level AND and in $and
// (intersected) and in an $or whose every alternative pins the field
// (united); negations ($ne, $nin, $not) pin nothing. Event types and
// sources are sorted, severities from critical to info. The slices are the
// caller's.
func (m *Matcher) Keys() (eventTypes, severities, sources []string) {
	return slices.Clone(m.keys.types.vals), slices.Clone(m.keys.sevs.vals), slices.Clone(m.keys.sources.vals)
}

// String returns the conditions in words, as the reasons of Explain name
// them, for example `(event_type = "threshold_breach" and metadata.cpu_usage > 90)`.
func (m *Matcher) String() string { return m.root.describe() }
