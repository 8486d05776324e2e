package enrich

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/store"
)

// Column limits of the seed schema that asset fields end up in.
const (
	maxHostLen    = 255 // processed_events.source_host VARCHAR(255)
	maxServiceLen = 100 // processed_events.source_service VARCHAR(100)
	// MaxTagLen is the longest tag processed_events.tags (VARCHAR(50)[])
	// holds, in characters.
	MaxTagLen = 50
)

// Criticalities lists the valid values of an asset's criticality, most
// critical first. The empty string is valid too (unknown).
var Criticalities = []string{"critical", "high", "medium", "low"}

// ErrInvalidAsset is wrapped by every error about an invalid asset, whether
// from ValidateAsset or from ParseAssets.
var ErrInvalidAsset = errors.New("invalid asset")

// FieldError is an invalid asset field. Field names it as a path: "host",
// "dependencies[1]" from ValidateAsset, "assets[2].criticality" from
// ParseAssets. It wraps ErrInvalidAsset.
type FieldError struct {
	Field   string
	Problem string
	// Line is the line of the asset file, 0 when not from a file.
	Line int
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("enrich: invalid asset: %s (line %d): %s", e.Field, e.Line, e.Problem)
	}
	return fmt.Sprintf("enrich: invalid asset: %s: %s", e.Field, e.Problem)
}

// Unwrap returns ErrInvalidAsset.
func (e *FieldError) Unwrap() error { return ErrInvalidAsset }

// ValidateAsset normalizes a in place (trims every field, lowercases the
// host, criticality and dependencies) and checks it: the host is required,
// criticality is one of Criticalities or empty, dependencies and tags are
// not empty, a host does not depend on itself, and fields fit their
// columns. The error is a *FieldError.
func ValidateAsset(a *store.Asset) error {
	a.Host = strings.ToLower(strings.TrimSpace(a.Host))
	a.Environment = strings.TrimSpace(a.Environment)
	a.Criticality = strings.ToLower(strings.TrimSpace(a.Criticality))
	a.Owner = strings.TrimSpace(a.Owner)
	a.Team = strings.TrimSpace(a.Team)
	a.Service = strings.TrimSpace(a.Service)
	switch {
	case a.Host == "":
		return &FieldError{Field: "host", Problem: "required"}
	case utf8.RuneCountInString(a.Host) > maxHostLen:
		return &FieldError{Field: "host", Problem: fmt.Sprintf("longer than %d characters", maxHostLen)}
	case strings.ContainsAny(a.Host, " \t\r\n/"):
		return &FieldError{Field: "host", Problem: fmt.Sprintf("%q contains a space or a slash", a.Host)}
	case utf8.RuneCountInString(a.Service) > maxServiceLen:
		return &FieldError{Field: "service", Problem: fmt.Sprintf("longer than %d characters", maxServiceLen)}
	}
	for _, f := range []struct{ name, v string }{{"host", a.Host}, {"environment", a.Environment}, {"owner", a.Owner}, {"team", a.Team}, {"service", a.Service}} {
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return &FieldError{Field: f.name, Problem: "contains a control character (such as NUL)"}
		}
	}
	if a.Criticality != "" && !validCriticality(a.Criticality) {
		return &FieldError{Field: "criticality", Problem: fmt.Sprintf("%q is not one of %s (or empty)", a.Criticality, strings.Join(Criticalities, ", "))}
	}
	for i, d := range a.Dependencies {
		d = strings.ToLower(strings.TrimSpace(d))
		a.Dependencies[i] = d
		field := fmt.Sprintf("dependencies[%d]", i)
		switch {
		case d == "":
			return &FieldError{Field: field, Problem: "empty host name"}
		case strings.IndexFunc(d, unicode.IsControl) >= 0:
			return &FieldError{Field: field, Problem: "contains a control character (such as NUL)"}
		case d == a.Host:
			return &FieldError{Field: field, Problem: fmt.Sprintf("%s cannot depend on itself", a.Host)}
		case utf8.RuneCountInString(d) > maxHostLen:
			return &FieldError{Field: field, Problem: fmt.Sprintf("longer than %d characters", maxHostLen)}
		}
	}
	for i, t := range a.Tags {
		t = strings.TrimSpace(t)
		a.Tags[i] = t
		field := fmt.Sprintf("tags[%d]", i)
		switch {
		case t == "":
			return &FieldError{Field: field, Problem: "empty tag"}
		case strings.IndexFunc(t, unicode.IsControl) >= 0:
			return &FieldError{Field: field, Problem: "contains a control character (such as NUL)"}
		case utf8.RuneCountInString(t) > MaxTagLen:
			return &FieldError{Field: field, Problem: fmt.Sprintf("longer than %d characters", MaxTagLen)}
		}
	}
	return nil
}

func validCriticality(c string) bool {
	for _, v := range Criticalities {
		if c == v {
			return true
		}
	}
	return false
}

// LoadFile reads an asset file (see ParseAssets). It does not change any
// inventory: the caller stores the assets and Sets them.
func LoadFile(path string) ([]store.Asset, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("enrich: read asset file: %w", err)
	}
	assets, err := ParseAssets(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return assets, nil
}

// assetFields are the keys an asset entry may have, in file order.
var assetFields = []string{"host", "environment", "criticality", "owner", "team", "service", "dependencies", "tags"}

// ParseAssets parses an asset file:
//
//	assets:
//	  - host: web-server-01
//	    environment: production
//	    criticality: high        # critical, high, medium, low or empty
//	    owner: alice@example.com
//	    team: web
//	    service: nginx
//	    dependencies: [db-01, cache-01]
//	    tags: [frontend]
//
// It is strict: an unknown key, a value of the wrong type, an invalid
// asset (see ValidateAsset) or a host listed twice is an error naming the
// entry index, the field and the line. An empty file holds no assets.
func ParseAssets(data []byte) ([]store.Asset, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("enrich: asset file: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("enrich: asset file: want one YAML document, found more")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("enrich: asset file (line %d): want a mapping with an \"assets\" list", root.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "assets" {
			return nil, fmt.Errorf("enrich: asset file (line %d): unknown key %q; the file holds one key, \"assets\"", k.Line, k.Value)
		}
		if list != nil {
			return nil, fmt.Errorf("enrich: asset file (line %d): key \"assets\" given twice", k.Line)
		}
		list = v
	}
	if list == nil || isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("enrich: asset file (line %d): \"assets\" must be a list", list.Line)
	}
	out := make([]store.Asset, 0, len(list.Content))
	seen := make(map[string]int, len(list.Content))
	for i, n := range list.Content {
		a, err := parseAsset(i, n)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[a.Host]; dup {
			return nil, &FieldError{Field: fmt.Sprintf("assets[%d].host", i), Line: n.Line, Problem: fmt.Sprintf("host %q is listed twice (also assets[%d])", a.Host, j)}
		}
		seen[a.Host] = i
		out = append(out, a)
	}
	return out, nil
}

func parseAsset(i int, n *yaml.Node) (store.Asset, error) {
	var a store.Asset
	prefix := fmt.Sprintf("assets[%d]", i)
	if n.Kind != yaml.MappingNode {
		return a, &FieldError{Field: prefix, Line: n.Line, Problem: "want a mapping with at least a host"}
	}
	lines := make(map[string]int, len(assetFields))
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		field := prefix + "." + k.Value
		if _, dup := lines[k.Value]; dup {
			return a, &FieldError{Field: field, Line: k.Line, Problem: "given twice"}
		}
		lines[k.Value] = v.Line
		var err error
		switch k.Value {
		case "host":
			err = decodeString(v, &a.Host)
		case "environment":
			err = decodeString(v, &a.Environment)
		case "criticality":
			err = decodeString(v, &a.Criticality)
		case "owner":
			err = decodeString(v, &a.Owner)
		case "team":
			err = decodeString(v, &a.Team)
		case "service":
			err = decodeString(v, &a.Service)
		case "dependencies":
			err = decodeStrings(v, &a.Dependencies)
		case "tags":
			err = decodeStrings(v, &a.Tags)
		default:
			return a, &FieldError{Field: field, Line: k.Line, Problem: "unknown field; known fields are " + strings.Join(assetFields, ", ")}
		}
		if err != nil {
			return a, &FieldError{Field: field, Line: v.Line, Problem: err.Error()}
		}
	}
	if err := ValidateAsset(&a); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			line := n.Line
			if l, ok := lines[strings.SplitN(fe.Field, "[", 2)[0]]; ok {
				line = l
			}
			return a, &FieldError{Field: prefix + "." + fe.Field, Line: line, Problem: fe.Problem}
		}
		return a, err
	}
	return a, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func decodeString(v *yaml.Node, dst *string) error {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		return errors.New("want a string")
	}
	*dst = v.Value
	return nil
}

func decodeStrings(v *yaml.Node, dst *[]string) error {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return errors.New("want a list of strings")
	}
	out := make([]string, 0, len(v.Content))
	for j, c := range v.Content {
		if c.Kind != yaml.ScalarNode || isNull(c) {
			return fmt.Errorf("item %d: want a string", j)
		}
		out = append(out, c.Value)
	}
	*dst = out
	return nil
}
