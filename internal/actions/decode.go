package actions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// input is a definition as written: every field of Definition that a
// writer sets, with enabled defaulting to true. id, created_at and
// updated_at are accepted (a GET's answer can be PUT back) and ignored.
type input struct {
	ID                       *int64          `json:"id"`
	Name                     string          `json:"action_name"`
	Description              string          `json:"description"`
	Type                     string          `json:"action_type"`
	Category                 string          `json:"action_category"`
	RiskLevel                string          `json:"risk_level"`
	ApprovalRequired         *bool           `json:"approval_required"`
	Rollback                 string          `json:"rollback_action"`
	EstimatedDurationMinutes int             `json:"estimated_duration_minutes"`
	SuccessCriteria          *Criteria       `json:"success_criteria"`
	Executor                 json.RawMessage `json:"executor"`
	Enabled                  *bool           `json:"enabled"`
	CreatedAt                *time.Time      `json:"created_at"`
	UpdatedAt                *time.Time      `json:"updated_at"`
}

func (in *input) definition() Definition {
	d := Definition{
		Name: in.Name, Description: in.Description, Type: in.Type, Category: in.Category,
		RiskLevel: in.RiskLevel, Rollback: in.Rollback, EstimatedDurationMinutes: in.EstimatedDurationMinutes,
		SuccessCriteria: in.SuccessCriteria, Executor: in.Executor, Enabled: true,
		// Without a word, an action needs approval: the seed's default,
		// and the safe one.
		ApprovalRequired: true,
	}
	if in.ApprovalRequired != nil {
		d.ApprovalRequired = *in.ApprovalRequired
	}
	if in.Enabled != nil {
		d.Enabled = *in.Enabled
	}
	if len(d.Executor) > 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, d.Executor) == nil {
			d.Executor = buf.Bytes()
		}
	}
	d.Normalize()
	return d
}

// DecodeJSON reads one definition from a JSON document (an API body):
// unknown fields are errors naming them; approval_required and enabled
// default to true, risk_level to medium. It does not validate: call
// Validate.
func DecodeJSON(b []byte) (Definition, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in input
	if err := dec.Decode(&in); err != nil {
		return Definition{}, fmt.Errorf("%w: %s", ErrInvalid, jsonError(err))
	}
	if dec.More() {
		return Definition{}, fmt.Errorf("%w: more than one JSON value", ErrInvalid)
	}
	return in.definition(), nil
}

// File is what `reflex actions apply -f` reads: YAML (or JSON, which is
// YAML) holding definitions as a list under "actions", or as documents
// separated by "---", each one definition or {"actions": [...]}.
type File struct {
	Actions []Definition
}

// MaxFileBytes bounds an actions file.
const MaxFileBytes = 8 << 20

// ParseFile reads an actions file. Each definition is decoded as
// DecodeJSON decodes one, so the same fields and defaults hold; an error
// names the definition (its position and name) and the field. Two
// definitions of one name are an error.
func ParseFile(r io.Reader) (File, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return File{}, fmt.Errorf("actions: read file: %w", err)
	}
	if len(b) > MaxFileBytes {
		return File{}, fmt.Errorf("actions: file is larger than %d bytes", MaxFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out File
	seen := map[string]int{}
	for doc := 1; ; doc++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return File{}, fmt.Errorf("actions: document %d: %w", doc, err)
		}
		if v == nil {
			continue
		}
		var items []any
		switch t := v.(type) {
		case map[string]any:
			if list, ok := t["actions"]; ok {
				if len(t) != 1 {
					return File{}, fmt.Errorf("actions: document %d: beside \"actions\" there may be nothing else", doc)
				}
				l, ok := list.([]any)
				if !ok {
					return File{}, fmt.Errorf("actions: document %d: \"actions\" must be a list of definitions", doc)
				}
				items = l
			} else {
				items = []any{t}
			}
		case []any:
			items = t
		default:
			return File{}, fmt.Errorf("actions: document %d: want a definition, a list of them or {actions: [...]}", doc)
		}
		for i, item := range items {
			where := fmt.Sprintf("document %d, definition %d", doc, i+1)
			if m, ok := item.(map[string]any); ok {
				if name, ok := m["action_name"].(string); ok && name != "" {
					where += fmt.Sprintf(" (%s)", clip(strings.TrimSpace(name)))
				}
			}
			j, err := json.Marshal(item)
			if err != nil {
				return File{}, fmt.Errorf("actions: %s: %w", where, err)
			}
			d, err := DecodeJSON(j)
			if err != nil {
				return File{}, fmt.Errorf("actions: %s: %s", where, strings.TrimPrefix(err.Error(), "actions: "))
			}
			if d.Name != "" {
				if prev, dup := seen[d.Name]; dup {
					return File{}, fmt.Errorf("actions: %s: action_name %q is defined twice (also definition %d)", where, d.Name, prev)
				}
				seen[d.Name] = len(out.Actions) + 1
			}
			out.Actions = append(out.Actions, d)
		}
	}
	if len(out.Actions) == 0 {
		return File{}, errors.New("actions: the file holds no definition")
	}
	return out, nil
}

// jsonError makes encoding/json's errors read as a field's.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown field " + f
	}
	return msg
}
