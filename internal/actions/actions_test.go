package actions

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/executor"
)

// commandOnly accepts {"type":"command"} with a non-empty argv, the way a
// real executor's Parse would, to test the wiring of validators.
var commandOnly = Validators{"command": func(s executor.Spec) error {
	if !strings.Contains(string(s.Config), `"argv":["/`) {
		return errors.New("executor: invalid configuration: argv[0] must be an absolute path")
	}
	return nil
}}

const restart = `{"action_name":"restart_nginx","action_type":"remediation","risk_level":"high",
 "rollback_action":"start_nginx","executor":{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"],"timeout":"30s"},
 "success_criteria":{"exit_code":0,"output_matches":"restarted","no_new_event_minutes":10}}`

func TestDecodeJSONDefaults(t *testing.T) {
	d, err := DecodeJSON([]byte(`{"action_name":" check_processes ","action_type":"diagnostic","executor":{"type":"command","argv":["/usr/bin/ps", "aux"]}}`))
	require.NoError(t, err)
	require.Equal(t, "check_processes", d.Name)
	require.Equal(t, RiskMedium, d.RiskLevel)
	require.True(t, d.ApprovalRequired, "approval is required unless said otherwise")
	require.True(t, d.Enabled)
	require.JSONEq(t, `{"type":"command","argv":["/usr/bin/ps","aux"]}`, string(d.Executor))
	require.NoError(t, d.Validate(commandOnly))

	d, err = DecodeJSON([]byte(restart))
	require.NoError(t, err)
	require.NoError(t, d.Validate(commandOnly))
	require.Equal(t, 0, *d.SuccessCriteria.ExitCode)
	require.Equal(t, "start_nginx", d.Rollback)

	d, err = DecodeJSON([]byte(`{"action_name":"x","action_type":"diagnostic","approval_required":false,"enabled":false,"id":9,"created_at":"2026-01-01T00:00:00Z","executor":{"type":"command","argv":["/bin/true"]}}`))
	require.NoError(t, err)
	require.False(t, d.ApprovalRequired)
	require.False(t, d.Enabled)
	require.Zero(t, d.ID, "an id in a body is ignored")
}

func TestDecodeJSONErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"action_name":"x","scrip":"y"}`, `unknown field "scrip"`},
		{`{"action_name":3}`, "action_name"},
		{`{"action_name":"x"} {}`, "more than one"},
		{`[1]`, "cannot unmarshal"},
	} {
		_, err := DecodeJSON([]byte(tc.in))
		require.ErrorIs(t, err, ErrInvalid, tc.in)
		require.Contains(t, err.Error(), tc.want, tc.in)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Definition {
		d, err := DecodeJSON([]byte(restart))
		require.NoError(t, err)
		return d
	}
	for _, tc := range []struct {
		name, field string
		change      func(d *Definition)
	}{
		{"no name", "action_name", func(d *Definition) { d.Name = "" }},
		{"name with a space", "action_name", func(d *Definition) { d.Name = "restart nginx" }},
		{"name with a slash", "action_name", func(d *Definition) { d.Name = "../x" }},
		{"long name", "action_name", func(d *Definition) { d.Name = strings.Repeat("a", MaxNameLen+1) }},
		{"type", "action_type", func(d *Definition) { d.Type = "investigation" }},
		{"risk", "risk_level", func(d *Definition) { d.RiskLevel = "extreme" }},
		{"own rollback", "rollback_action", func(d *Definition) { d.Rollback = d.Name }},
		{"rollback name", "rollback_action", func(d *Definition) { d.Rollback = "a b" }},
		{"duration", "estimated_duration_minutes", func(d *Definition) { d.EstimatedDurationMinutes = -1 }},
		{"regex", "success_criteria.output_matches", func(d *Definition) { d.SuccessCriteria.OutputMatches = "(" }},
		{"minutes", "success_criteria.no_new_event_minutes", func(d *Definition) { d.SuccessCriteria.NoNewEventMinutes = MaxNoNewEventMinutes + 1 }},
		{"probe url", "success_criteria.http_probe.url", func(d *Definition) { d.SuccessCriteria.HTTPProbe = &Probe{} }},
		{"probe template", "success_criteria.http_probe.url", func(d *Definition) { d.SuccessCriteria.HTTPProbe = &Probe{URL: "http://{{.event"} }},
		{"probe status", "success_criteria.http_probe.expected_status", func(d *Definition) {
			d.SuccessCriteria.HTTPProbe = &Probe{URL: "http://x/", ExpectedStatus: []int{99}}
		}},
		{"probe timeout", "success_criteria.http_probe.timeout", func(d *Definition) {
			d.SuccessCriteria.HTTPProbe = &Probe{URL: "http://x/", Timeout: "1h"}
		}},
		{"no executor", "executor", func(d *Definition) { d.Executor = nil }},
		{"executor not an object", "executor", func(d *Definition) { d.Executor = []byte(`"sh -c x"`) }},
		{"executor type", "executor.type", func(d *Definition) { d.Executor = []byte(`{"type":"shell","cmd":"x"}`) }},
		{"executor config", "executor", func(d *Definition) { d.Executor = []byte(`{"type":"command","argv":["restart.sh"]}`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := valid()
			tc.change(&d)
			err := d.Validate(commandOnly)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field, err.Error())
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	d := valid()
	require.NoError(t, d.Validate(commandOnly))
	err := d.Validate(Validators{})
	require.ErrorContains(t, err, `"command" is not an executor type this server runs`)
}

func TestEqual(t *testing.T) {
	a, err := DecodeJSON([]byte(restart))
	require.NoError(t, err)
	b := a
	b.ID, b.Executor = 7, []byte(`{"timeout":"30s","type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"]}`)
	require.True(t, Equal(a, b), "key order and ids do not make a difference")
	b.RiskLevel = RiskLow
	require.False(t, Equal(a, b))
}

func TestRiskRank(t *testing.T) {
	require.Less(t, RiskRank(RiskLow), RiskRank(RiskMedium))
	require.Less(t, RiskRank(RiskHigh), RiskRank(RiskCritical))
	require.Equal(t, -1, RiskRank("none"))
}

func TestParseFile(t *testing.T) {
	f, err := ParseFile(strings.NewReader(`
actions:
  - action_name: check_processes
    action_type: diagnostic
    approval_required: false
    risk_level: low
    executor:
      type: command
      argv: [/usr/bin/ps, aux]
  - action_name: kill_high_cpu_processes
    action_type: remediation
    rollback_action: restart_service
    executor: {type: command, argv: ["/opt/fix/kill.sh", "{{.event.source_host}}"], timeout: 30s}
---
action_name: restart_service
action_type: remediation
executor: {type: command, argv: [/opt/fix/restart.sh]}
`))
	require.NoError(t, err)
	require.Len(t, f.Actions, 3)
	require.False(t, f.Actions[0].ApprovalRequired)
	require.True(t, f.Actions[1].ApprovalRequired)
	require.Equal(t, "restart_service", f.Actions[2].Name)
	for _, d := range f.Actions {
		require.NoError(t, d.Validate(commandOnly), d.Name)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "no definition"},
		{"actions: 3", `"actions" must be a list`},
		{"actions: []\nother: 1", "nothing else"},
		{"- action_name: a\n  action_typ: diagnostic", `document 1, definition 1 (a)`},
		{"- action_name: a\n  action_typ: diagnostic", `unknown field "action_typ"`},
		{"- {action_name: a}\n- {action_name: a}", "defined twice"},
		{"a: [", "document 1"},
		{"42", "want a definition"},
	} {
		_, err := ParseFile(strings.NewReader(tc.in))
		require.ErrorContains(t, err, tc.want, tc.in)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add(restart)
	f.Add("actions:\n  - action_name: a\n    action_type: diagnostic\n    executor: {type: command, argv: [/bin/true]}\n")
	f.Add("---\n---\n- {}\n")
	f.Fuzz(func(_ *testing.T, in string) {
		file, err := ParseFile(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, d := range file.Actions {
			_ = d.Validate(commandOnly) // must not panic
		}
	})
}
