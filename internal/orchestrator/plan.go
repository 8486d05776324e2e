package orchestrator

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/validate"
)

// NotificationExecutor is the executor type of a plan's notification
// step: NotificationDefinition's executor object is
// {"type": "notification", "channels": [...]}.
const NotificationExecutor = "notification"

// NotificationDefinition is the definition a notification step of a plan
// (Type notification, Channels set, neither ActionID nor ActionName) runs
// with: an enabled, low-risk notification action named "notify" whose
// executor is {"type": "notification", "channels": s.Channels}. Its
// parameters (rendered) are the executor's params, as for any step.
func NotificationDefinition(s store.Step) actions.Definition {
	spec, _ := json.Marshal(map[string]any{ // strings only: cannot fail
		"type": NotificationExecutor, "channels": s.Channels,
		"title": `reflex: {{with .event}}{{.title}} on {{.source_host}}{{else}}execution {{.execution.id}}{{end}}`,
	})
	return actions.Definition{
		Name: "notify", Type: actions.TypeNotification, RiskLevel: actions.RiskLow,
		Enabled: true, Executor: spec,
	}
}

// preparePlan checks x's plan and resets it for a run: every step
// pending, no results; x pending.
func preparePlan(x *store.Execution) error {
	if len(x.Data) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(x.Data, &obj); err != nil {
			return fmt.Errorf("%w: data must be a JSON object: %w", ErrInvalid, err)
		}
	}
	check := make([]actions.Step, len(x.Steps))
	for i := range x.Steps {
		s := &x.Steps[i].Step
		if s.Name == "" {
			s.Name = actions.Step{Script: s.ActionName}.StepName(i)
		}
		script := s.ActionName
		switch {
		case s.Type == actions.TypeNotification && s.ActionID == 0 && s.ActionName == "":
		case s.ActionName == "" && s.ActionID > 0:
			script = fmt.Sprintf("action:%d", s.ActionID)
		case s.ActionName == "":
			return fmt.Errorf("%w: steps[%d] (%s): names no action (action_id or action_name)", ErrInvalid, i, s.Name)
		}
		if s.Type == actions.TypeNotification && script != "" {
			// A notification action run by name: check it as a script step.
			check[i] = actions.Step{Type: actions.TypeRemediation, Script: script}
		} else {
			check[i] = actions.Step{Type: s.Type, Script: script, Channels: s.Channels}
		}
		c := &check[i]
		c.Name, c.Parameters, c.Group, c.Timeout, c.Retries, c.OnFailure = s.Name, s.Parameters, s.Group, s.Timeout, s.Retries, s.OnFailure
	}
	if err := actions.ValidateSteps(check); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	x.Status = store.ExecPending
	x.Rollback = nil
	x.Outcome, x.Error = "", ""
	x.StartedAt, x.FinishedAt = nil, nil
	for i := range x.Steps {
		s := &x.Steps[i]
		*s = store.StepState{Step: s.Step, Status: store.StepPending, ApprovalID: s.ApprovalID}
	}
	return nil
}

// timeout is a step's timeout (0: the executor's default); the plan was
// checked.
func timeout(s store.Step) time.Duration {
	d, _ := time.ParseDuration(s.Timeout)
	return d
}

// groupEnd returns the index after the group that starts at i: adjacent
// steps with the same non-empty Group.
func groupEnd(steps []store.StepState, i int) int {
	j := i + 1
	if steps[i].Group == "" {
		return j
	}
	for j < len(steps) && steps[j].Group == steps[i].Group {
		j++
	}
	return j
}

// groupStart returns the index of the first step of i's group.
func groupStart(steps []store.StepState, i int) int {
	for i > 0 && steps[i].Group != "" && steps[i-1].Group == steps[i].Group {
		i--
	}
	return i
}

// baseData is the template data of x: its Data's members, "steps" (the
// outputs of the steps that have them, by name) and "execution".
func baseData(x store.Execution) map[string]any {
	data := map[string]any{}
	if len(x.Data) > 0 {
		_ = json.Unmarshal(x.Data, &data) // checked by Start
	}
	steps := map[string]any{}
	for _, s := range x.Steps {
		if s.Outputs != nil {
			steps[s.Name] = maps.Clone(s.Outputs)
		}
	}
	data["steps"] = steps
	data["execution"] = map[string]any{"id": x.ID, "dry_run": x.DryRun}
	delete(data, "params")
	return data
}

// withParams is data with "params" set (a copy: data is shared by the
// steps of a group).
func withParams(data map[string]any, params map[string]string) map[string]any {
	d := maps.Clone(data)
	p := make(map[string]any, len(params))
	for k, v := range params {
		p[k] = v
	}
	d["params"] = p
	return d
}

// render renders a step's parameter templates from data, each into one
// value.
func render(params map[string]string, data map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v, err := executor.Render(params[k], data)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// References to step outputs in templates: {{.steps.name.key}} and
// {{index .steps "name" "key"}}.
var (
	dotRef   = regexp.MustCompile(`\.steps\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)`)
	indexRef = regexp.MustCompile(`index\s+\.steps\s+"([^"]+)"\s+"([^"]+)"`)
)

// placeholders are, for a dry run, the outputs of the steps before
// upto that the templates of steps refer to, each "<steps.name.key>".
func placeholders(steps []store.StepState, upto int) map[string]any {
	before := map[string]bool{}
	for _, s := range steps[:upto] {
		before[s.Name] = true
	}
	out := map[string]any{}
	for _, s := range steps {
		for _, tmpl := range s.Parameters {
			for _, re := range []*regexp.Regexp{dotRef, indexRef} {
				for _, m := range re.FindAllStringSubmatch(tmpl, -1) {
					name, key := m[1], m[2]
					if !before[name] {
						continue
					}
					vals, _ := out[name].(map[string]string)
					if vals == nil {
						vals = map[string]string{}
						out[name] = vals
					}
					vals[key] = "<steps." + name + "." + key + ">"
				}
			}
		}
	}
	return out
}

// boundOutputs keeps at most MaxOutputs outputs (by name), each cut to
// MaxOutputValue bytes.
func boundOutputs(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(in), MaxOutputs))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if len(out) == MaxOutputs {
			break
		}
		v, _ := clip(in[k], MaxOutputValue)
		out[k] = v
	}
	return out
}

// clip cuts s to at most n bytes, at a character boundary, and says
// whether it cut.
func clip(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s[max(0, len(s)-utf8.UTFMax):]) {
		s = s[:len(s)-1]
	}
	return s, true
}

func clipError(s string) string {
	c, cut := clip(s, MaxError)
	if cut {
		c += "..."
	}
	return c
}

// markRest gives every step and rollback step that has not ended
// (pending, waiting, running) the status and the error.
func markRest(x *store.Execution, status, why string) {
	for _, list := range [][]store.StepState{x.Steps, x.Rollback} {
		for i := range list {
			switch list[i].Status {
			case store.StepPending, store.StepWaitingApproval, store.StepRunning:
				list[i].Status = status
				if list[i].Error == "" {
					list[i].Error = clipError(why)
				}
			}
		}
	}
}

func hasSucceeded(x store.Execution) bool {
	return slices.ContainsFunc(x.Steps, func(s store.StepState) bool { return s.Status == store.StepSucceeded })
}

// outcome is the outcome of an ended execution: successful when every
// step succeeded, partially_successful when it completed with failed
// steps (on_failure continue), failed when it failed or was rolled
// back, "" for a cancelled execution or a dry run.
func outcome(x store.Execution) string {
	switch x.Status {
	case store.ExecCompleted:
		if x.DryRun {
			return ""
		}
		return validate.Outcome(x.Steps)
	case store.ExecFailed, store.ExecRolledBack, store.ExecRollbackFailed:
		return string(learning.Failed)
	}
	return ""
}

// errText is err's message, bounded, or "".
func errText(err error) string {
	if err == nil {
		return ""
	}
	return clipError(err.Error())
}

// isNotFound is an unknown action.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// describe names a step's action for messages.
func describe(s store.Step) string {
	switch {
	case s.ActionName != "":
		return fmt.Sprintf("action %q", s.ActionName)
	case s.ActionID > 0:
		return fmt.Sprintf("action %d", s.ActionID)
	}
	return "notification to " + strings.Join(s.Channels, ", ")
}
