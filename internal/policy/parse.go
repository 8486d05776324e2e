package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/actions"
)

// MaxPolicySize bounds the input of Parse.
const MaxPolicySize = 64 << 10

// rawPolicy is the policy as written: nil is "not given", which takes the
// default.
type rawPolicy struct {
	RiskLevels             map[string]rawRule `json:"risk_levels" yaml:"risk_levels"`
	Hours                  *Hours             `json:"automation_hours" yaml:"automation_hours"`
	HoldDuringMaintenance  *bool              `json:"hold_during_maintenance" yaml:"hold_during_maintenance"`
	HoldDuringChangeFreeze *bool              `json:"hold_during_change_freeze" yaml:"hold_during_change_freeze"`
	ApprovalTTL            *Duration          `json:"approval_ttl" yaml:"approval_ttl"`
	Limits                 *rawLimits         `json:"limits" yaml:"limits"`
}

type rawRule struct {
	Unattended    *bool    `json:"unattended" yaml:"unattended"`
	MinConfidence *float64 `json:"min_confidence" yaml:"min_confidence"`
	TwoPerson     *bool    `json:"two_person" yaml:"two_person"`
}

// Parse reads a policy in JSON (a document starting with "{") or YAML and
// validates it. It is strict: unknown keys, a second document and values
// of the wrong type are errors, which name the field. What the document
// leaves out takes the default of Default, field by field: a risk level
// given as {min_confidence: 0.9} keeps its default unattended and
// two_person. High and critical steps run unattended only where the
// document says "unattended: true" for them. An empty document is the
// default policy.
func Parse(data []byte) (Policy, error) {
	if len(data) > MaxPolicySize {
		return Policy{}, fmt.Errorf("policy: parse: more than %d bytes: %w", MaxPolicySize, ErrInvalid)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] != '{' {
		// YAML goes through its JSON form, so that both formats have one
		// decoder, strict in the same way, whose errors name the field.
		j, err := yamlToJSON(trimmed)
		if err != nil {
			return Policy{}, err
		}
		trimmed = j
	}
	var raw rawPolicy
	if len(trimmed) > 0 {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			return Policy{}, fmt.Errorf("policy: parse: %s: %w", cleanError(err), ErrInvalid)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return Policy{}, fmt.Errorf("policy: parse: content after the policy: %w", ErrInvalid)
		}
	}
	return raw.policy()
}

// yamlToJSON decodes one YAML document (duplicate keys are errors) and
// writes it as JSON; an empty document is "".
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: parse: %s: %w", cleanError(err), ErrInvalid)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: parse: more than one YAML document: %w", ErrInvalid)
	}
	if doc == nil {
		return nil, nil
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("policy: parse: keys must be strings: %w", ErrInvalid)
	}
	return j, nil
}

// policy merges raw over the defaults and validates the result.
func (raw rawPolicy) policy() (Policy, error) {
	p := Default()
	levels := make([]string, 0, len(raw.RiskLevels))
	for level := range raw.RiskLevels {
		levels = append(levels, level)
	}
	slices.Sort(levels)
	for _, level := range levels {
		rr := raw.RiskLevels[level]
		r, ok := p.RiskLevels[level]
		if !ok {
			return Policy{}, bad("risk_levels."+clip(level), "unknown risk level (want %s)", strings.Join(actions.RiskLevels, ", "))
		}
		if rr.Unattended != nil {
			r.Unattended = *rr.Unattended
		}
		if rr.MinConfidence != nil {
			r.MinConfidence = *rr.MinConfidence
		}
		if rr.TwoPerson != nil {
			r.TwoPerson = *rr.TwoPerson
		}
		p.RiskLevels[level] = r
	}
	if raw.Hours != nil {
		h := *raw.Hours
		h.Days = slices.Clone(h.Days)
		p.Hours = &h
	}
	if raw.HoldDuringMaintenance != nil {
		p.HoldDuringMaintenance = *raw.HoldDuringMaintenance
	}
	if raw.HoldDuringChangeFreeze != nil {
		p.HoldDuringChangeFreeze = *raw.HoldDuringChangeFreeze
	}
	if raw.ApprovalTTL != nil {
		p.ApprovalTTL = *raw.ApprovalTTL
	}
	p.Limits = p.Limits.merge(raw.Limits)
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// typeNames drops the Go type names the decoders put in their errors,
// keeping the field names.
var typeNames = strings.NewReplacer(
	"Go value of type policy.rawPolicy", "a policy (want a mapping)",
	"Go struct field rawPolicy.", "field ", "Go struct field rawRule.", "field ", "Go struct field Hours.", "field ",
	"of type map[string]policy.rawRule", "(want a mapping of risk levels)",
	"of type policy.rawRule", "(want a mapping)", "of type policy.Hours", "(want a mapping)",
	"Go struct field rawLimits.", "field ", "of type *policy.rawLimits", "(want a mapping)",
	"of type *policy.Duration", "of type duration (want a string such as 1h)",
	"of type policy.Duration", "of type duration (want a string such as 1h)",
	"yaml: unmarshal errors:\n  ", "", "\n  ", "; ",
)

func cleanError(err error) string { return typeNames.Replace(err.Error()) }

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
