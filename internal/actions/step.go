package actions

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Step is one step of a response template (an element of the "actions"
// of rules.response_templates.response_definition), in the seed's shape
// ({"type": "remediation", "script": "kill_high_cpu_processes",
// "approval_required": true}) with the orchestrator's optional fields.
type Step struct {
	// Type is diagnostic, remediation or notification.
	Type string `json:"type"`
	// Script names the action definition a diagnostic or remediation step
	// runs (its action_name).
	Script string `json:"script,omitempty"`
	// Channels names the receivers a notification step notifies.
	Channels []string `json:"channels,omitempty"`
	// ApprovalRequired makes this step wait for a human's approval even
	// when its action and the policy would let it run.
	ApprovalRequired bool `json:"approval_required,omitempty"`

	// Name is how later steps refer to this one's outputs
	// (steps.<name>.<output>); default: the script, or "notify_<i>" for
	// a notification step. Unique within a template.
	Name string `json:"name,omitempty"`
	// Parameters are the step's parameters, each a template rendered from
	// the execution's data (event, incident, steps) into params.<key> of
	// the action's executor templates.
	Parameters map[string]string `json:"parameters,omitempty"`
	// Group runs this step in parallel with the adjacent steps of the same
	// group: the group starts when the steps before it have ended and the
	// steps after it start when all of the group has ended.
	Group string `json:"group,omitempty"`
	// Timeout bounds one attempt of the step ("30s"; default: the
	// executor's own).
	Timeout string `json:"timeout,omitempty"`
	// Retries is how many more attempts a failure that the executor
	// reports as retryable gets (0 to MaxRetries), with exponential
	// backoff from one second.
	Retries int `json:"retries,omitempty"`
	// OnFailure is what a failure of this step does to the execution:
	// abort (the default: stop, no rollback unless the execution asked
	// for rollback_on_failure), continue (go on with the next steps) or
	// rollback (stop and roll the completed steps back whatever the
	// execution asked).
	OnFailure string `json:"on_failure,omitempty"`
}

// What a step's failure does (Step.OnFailure).
const (
	OnFailureAbort    = "abort"
	OnFailureContinue = "continue"
	OnFailureRollback = "rollback"
)

// Bounds of a template's steps.
const (
	MaxSteps      = 64
	MaxRetries    = 10
	MaxParameters = 32
	MaxStepTime   = 24 * time.Hour
	maxChannels   = 32
	maxNameLen    = 200
	maxParamLen   = 4 << 10
)

var stepName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// StepName returns the step's name: Name, else its script, else
// notify_<i> (i its index in the template).
func (s Step) StepName(i int) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Script != "":
		return s.Script
	}
	return fmt.Sprintf("notify_%d", i)
}

// TimeoutDuration returns the parsed Timeout (0 when unset). Validate has
// checked it.
func (s Step) TimeoutDuration() time.Duration {
	d, _ := time.ParseDuration(s.Timeout)
	return d
}

// Validate checks one step; place names it in errors ("actions[2]").
func (s Step) Validate(place string) error {
	fe := func(field, format string, args ...any) error { return bad(place+"."+field, format, args...) }
	switch s.Type {
	case TypeDiagnostic, TypeRemediation:
		if strings.TrimSpace(s.Script) == "" {
			return fe("script", "a %s step needs a script", s.Type)
		}
		if len(s.Script) > maxNameLen || strings.IndexFunc(s.Script, unicode.IsControl) >= 0 {
			return fe("script", "must be at most %d bytes without control characters", maxNameLen)
		}
		if len(s.Channels) > 0 {
			return fe("channels", "only a notification step has channels")
		}
	case TypeNotification:
		if len(s.Channels) == 0 {
			return fe("channels", "a notification step needs channels")
		}
		if len(s.Channels) > maxChannels {
			return fe("channels", "more than %d channels", maxChannels)
		}
		for j, c := range s.Channels {
			if strings.TrimSpace(c) == "" || len(c) > maxNameLen || strings.IndexFunc(c, unicode.IsControl) >= 0 {
				return fe(fmt.Sprintf("channels[%d]", j), "must be a receiver name of 1 to %d bytes without control characters", maxNameLen)
			}
		}
		if s.Script != "" {
			return fe("script", "a notification step runs no script")
		}
	case "":
		return fe("type", "required (diagnostic, remediation or notification)")
	default:
		return fe("type", "unknown action type %q (want diagnostic, remediation or notification)", clipN(s.Type, 40))
	}
	if s.Name != "" && !stepName.MatchString(s.Name) {
		return fe("name", "must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if len(s.Parameters) > MaxParameters {
		return fe("parameters", "more than %d parameters", MaxParameters)
	}
	for k, v := range s.Parameters {
		if !stepName.MatchString(k) {
			return fe("parameters", "parameter name %q must be letters, digits, '_', '.' or '-'", clipN(k, 40))
		}
		if len(v) > maxParamLen {
			return fe("parameters."+k, "longer than %d bytes", maxParamLen)
		}
	}
	if s.Group != "" && !stepName.MatchString(s.Group) {
		return fe("group", "must be 1 to 100 letters, digits, '_', '.' or '-'")
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 || d > MaxStepTime {
			return fe("timeout", "must be a duration above 0 and at most %s, such as \"30s\"", MaxStepTime)
		}
	}
	if s.Retries < 0 || s.Retries > MaxRetries {
		return fe("retries", "must be 0 to %d", MaxRetries)
	}
	switch s.OnFailure {
	case "", OnFailureAbort, OnFailureContinue, OnFailureRollback:
	default:
		return fe("on_failure", "unknown %q (want abort, continue or rollback)", clipN(s.OnFailure, 40))
	}
	return nil
}

// ValidateSteps checks a template's steps, and that their names are
// unique and their groups adjacent.
func ValidateSteps(steps []Step) error {
	if len(steps) == 0 {
		return &FieldError{Field: "actions", Msg: "required: at least one step"}
	}
	if len(steps) > MaxSteps {
		return &FieldError{Field: "actions", Msg: fmt.Sprintf("more than %d steps", MaxSteps)}
	}
	names := make(map[string]int, len(steps))
	closed := map[string]bool{}
	for i, s := range steps {
		place := fmt.Sprintf("actions[%d]", i)
		if err := s.Validate(place); err != nil {
			return err
		}
		n := s.StepName(i)
		if j, dup := names[n]; dup {
			return &FieldError{Field: place + ".name", Msg: fmt.Sprintf("step name %q is also actions[%d]'s: give one of them a name", n, j)}
		}
		names[n] = i
		if i > 0 && steps[i-1].Group != "" && steps[i-1].Group != s.Group {
			closed[steps[i-1].Group] = true
		}
		if s.Group != "" && closed[s.Group] {
			return &FieldError{Field: place + ".group", Msg: fmt.Sprintf("the steps of group %q must be adjacent", s.Group)}
		}
	}
	return nil
}

// ParseSteps reads the steps of a response template's definition
// ({"actions": [...]}).
func ParseSteps(definition json.RawMessage) ([]Step, error) {
	var def struct {
		Actions []Step `json:"actions"`
	}
	if err := json.Unmarshal(definition, &def); err != nil {
		return nil, fmt.Errorf("actions: response definition: %w", err)
	}
	return def.Actions, nil
}

func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
