package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// The policy document is read in two steps: JSON or YAML becomes a tree of
// nodes (the same for both), and the tree is decoded field by field with
// the path of each field, so that every error names its place and an
// unknown field anywhere is an error.

// Bounds of a policy document.
const (
	// MaxPolicyBytes is the largest policy document ParsePolicy reads.
	MaxPolicyBytes = 1 << 20
	maxNodeDepth   = 64      // nesting of mappings and lists
	maxNodes       = 100_000 // values in the document, YAML aliases expanded
)

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindString
	kindNumber
	kindBool
	kindMap
	kindList
)

// node is one value of a policy document.
type node struct {
	kind  nodeKind
	value string   // scalars: the text (a number as written, a bool as true/false)
	keys  []string // kindMap: the keys in document order
	vals  []*node  // kindMap: the value of keys[i]; kindList: the items
}

// FieldError is an error in a policy document or a silence: Path names
// the place (route.routes[0].receiver, matchers.source_host; empty for the
// whole document) and Problem says what is wrong with it. Neither holds a
// secret.
type FieldError struct {
	Path    string
	Problem string
}

// Error returns "path: problem", or the problem alone for the whole
// document.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + ": " + e.Problem
}

func perr(path, format string, args ...any) error {
	return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
}

// quoted quotes s for an error message, shortened to 64 bytes.
func quoted(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

func field(path, name string) string {
	if path == "" || name == "" {
		return path + name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// treeBuilder counts the values a document holds.
type treeBuilder struct{ nodes int }

func (b *treeBuilder) count(depth int) error {
	b.nodes++
	if b.nodes > maxNodes {
		return fmt.Errorf("more than %d values", maxNodes)
	}
	if depth > maxNodeDepth {
		return fmt.Errorf("nested deeper than %d levels", maxNodeDepth)
	}
	return nil
}

// parseJSONTree reads one JSON value and nothing after it.
func parseJSONTree(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var b treeBuilder
	n, err := b.jsonValue(dec, 0)
	if err != nil {
		return nil, jsonError(dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Problem: "invalid JSON: data after the policy"}
	}
	return n, nil
}

func jsonError(dec *json.Decoder, err error) error {
	var pe *FieldError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Problem: "invalid JSON: unexpected end of the document"}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Problem: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())}
	}
	return &FieldError{Problem: fmt.Sprintf("invalid JSON at byte %d: %s", dec.InputOffset(), err.Error())}
}

func (b *treeBuilder) jsonValue(dec *json.Decoder, depth int) (*node, error) {
	if err := b.count(depth); err != nil {
		return nil, &FieldError{Problem: "invalid JSON: " + err.Error()}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: kindMap}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, &FieldError{Problem: "invalid JSON: object key is not a string"}
				}
				if seen[k] {
					return nil, &FieldError{Problem: "invalid JSON: duplicate key " + quoted(k)}
				}
				seen[k] = true
				v, err := b.jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &node{kind: kindList}
			for dec.More() {
				v, err := b.jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		}
		return nil, &FieldError{Problem: "invalid JSON: unexpected " + t.String()}
	case string:
		return &node{kind: kindString, value: t}, nil
	case json.Number:
		return &node{kind: kindNumber, value: t.String()}, nil
	case bool:
		return &node{kind: kindBool, value: strconv.FormatBool(t)}, nil
	case nil:
		return &node{kind: kindNull}, nil
	}
	return nil, &FieldError{Problem: "invalid JSON"}
}

// parseYAMLTree reads one YAML document.
func parseYAMLTree(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{Problem: "the policy is empty"}
		}
		return nil, &FieldError{Problem: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Problem: "invalid YAML: more than one document"}
	}
	var b treeBuilder
	return b.yamlValue(&doc, 0)
}

func (b *treeBuilder) yamlValue(y *yaml.Node, depth int) (*node, error) {
	if err := b.count(depth); err != nil {
		return nil, &FieldError{Problem: "invalid YAML: " + err.Error()}
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: kindNull}, nil
		}
		return b.yamlValue(y.Content[0], depth)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, &FieldError{Problem: fmt.Sprintf("invalid YAML: line %d: unknown alias", y.Line)}
		}
		return b.yamlValue(y.Alias, depth+1)
	case yaml.MappingNode:
		n := &node{kind: kindMap}
		seen := map[string]bool{}
		for i := 0; i+1 < len(y.Content); i += 2 {
			ky := y.Content[i]
			if ky.Kind != yaml.ScalarNode || ky.ShortTag() == "!!null" {
				return nil, &FieldError{Problem: fmt.Sprintf("invalid YAML: line %d: a key must be a string", ky.Line)}
			}
			k := ky.Value
			if ky.ShortTag() == "!!merge" {
				return nil, &FieldError{Problem: fmt.Sprintf("invalid YAML: line %d: merge keys (<<) are not supported", ky.Line)}
			}
			if seen[k] {
				return nil, &FieldError{Problem: fmt.Sprintf("invalid YAML: line %d: duplicate key %s", ky.Line, quoted(k))}
			}
			seen[k] = true
			v, err := b.yamlValue(y.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
		}
		return n, nil
	case yaml.SequenceNode:
		n := &node{kind: kindList}
		for _, c := range y.Content {
			v, err := b.yamlValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		return n, nil
	case yaml.ScalarNode:
		switch y.ShortTag() {
		case "!!null":
			return &node{kind: kindNull}, nil
		case "!!bool":
			v, err := strconv.ParseBool(strings.ToLower(y.Value))
			if err != nil {
				return &node{kind: kindString, value: y.Value}, nil
			}
			return &node{kind: kindBool, value: strconv.FormatBool(v)}, nil
		case "!!int", "!!float":
			return &node{kind: kindNumber, value: y.Value}, nil
		}
		return &node{kind: kindString, value: y.Value}, nil
	}
	return nil, &FieldError{Problem: fmt.Sprintf("invalid YAML: line %d: unexpected value", y.Line)}
}

// A document decoder: each function reads one node at a path. A null node
// is an unset field, whatever the field's type.

// fields decodes the mapping n, calling set for each key it knows. An
// unknown key is an error at path.
func fields(n *node, path string, set map[string]func(*node, string) error) error {
	if n.kind != kindMap {
		return perr(path, "expected a mapping")
	}
	for i, k := range n.keys {
		f, ok := set[k]
		if !ok {
			return perr(path, "unknown field %s", quoted(k))
		}
		if n.vals[i].kind == kindNull {
			continue
		}
		if err := f(n.vals[i], field(path, k)); err != nil {
			return err
		}
	}
	return nil
}

// docDecoder reads the typed fields of a document. In YAML a bare number
// (a port, a key of digits) may stand for a string; in JSON a string is
// quoted.
type docDecoder struct{ yaml bool }

func (d docDecoder) str(n *node, path string) (string, error) {
	if n.kind == kindString || (d.yaml && n.kind == kindNumber) {
		return n.value, nil
	}
	return "", perr(path, "expected a string")
}

func (d docDecoder) strTo(dst *string) func(*node, string) error {
	return func(n *node, path string) error {
		s, err := d.str(n, path)
		*dst = s
		return err
	}
}

// strList reads a list of strings, or one string as a list of one.
func (d docDecoder) strList(n *node, path string) ([]string, error) {
	if n.kind != kindList {
		s, err := d.str(n, path)
		if err != nil {
			return nil, perr(path, "expected a list of strings")
		}
		return []string{s}, nil
	}
	out := make([]string, 0, len(n.vals))
	for i, v := range n.vals {
		s, err := d.str(v, index(path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func boolean(n *node, path string) (bool, error) {
	if n.kind != kindBool {
		return false, perr(path, "expected true or false")
	}
	return n.value == "true", nil
}

// matcherValue reads a label value: a string or a number as written.
func matcherValue(n *node, path string) (string, error) {
	if n.kind == kindString || n.kind == kindNumber {
		return n.value, nil
	}
	return "", perr(path, "expected a string or a list of strings")
}

// Duration is a policy duration, written as Go (1h30m, 1.5s) or Prometheus
// (5m, 4h, 1d, 1w) spell it.
type Duration time.Duration

// ParseDuration reads a Go or Prometheus duration; negative durations are
// refused.
func ParseDuration(s string) (Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, errors.New("negative duration")
		}
		return Duration(d), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %s", quoted(s))
	}
	return Duration(d), nil
}

// String spells d as Prometheus does (4h, 1h30m, 1d) when it is a whole
// number of milliseconds, else as Go does.
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	if time.Duration(d)%time.Millisecond == 0 {
		return model.Duration(d).String()
	}
	return time.Duration(d).String()
}

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d docDecoder) duration(n *node, path string) (*Duration, error) {
	s, err := d.str(n, path)
	if err != nil {
		return nil, perr(path, "expected a duration such as 30s, 5m or 4h")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return nil, perr(path, "%s", err.Error())
	}
	return &v, nil
}
