package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const actionsYAML = `actions:
  - action_name: check_processes
    action_type: diagnostic
    risk_level: low
    approval_required: false
    executor: {type: command, argv: [/usr/bin/ps, aux], timeout: 10s}
  - action_name: kill_high_cpu_processes
    action_type: remediation
    risk_level: high
    rollback_action: restart_service
    executor:
      type: command
      argv: [/opt/fix/kill-cpu-hogs.sh, "{{.event.source_host}}"]
      dash_args: separate
    success_criteria: {exit_code: 0, no_new_event_minutes: 10}
`

func TestActionsCLI(t *testing.T) {
	auto := freePort(t)
	url := startInProcess(t, "--autonomous-addr", auto)
	dir := t.TempDir()
	file := filepath.Join(dir, "actions.yaml")
	require.NoError(t, os.WriteFile(file, []byte(actionsYAML), 0o600))
	run := func(args ...string) (string, error) {
		var out, errs bytes.Buffer
		err := runActions(context.Background(), args, &out, &errs)
		return out.String() + errs.String(), err
	}
	t.Setenv("REFLEX_TOKEN", "rules-test-token")
	t.Setenv("REFLEX_AUTONOMOUS_URL", "")
	// The autonomous URL is derived from --url (port 3011) unless given:
	// here it is given, the server's port not being 3011.
	out, err := run("apply", "-f", file, "--url", url, "--autonomous-url", "http://"+auto, "--dry-run")
	require.NoError(t, err, out)
	require.Contains(t, out, "dry run: 2 would be created")

	t.Setenv("REFLEX_AUTONOMOUS_URL", "http://"+auto)
	out, err = run("apply", "-f", file)
	require.NoError(t, err, out)
	require.Contains(t, out, `action "check_processes" (id `)
	require.Contains(t, out, "2 created, 0 changed, 0 unchanged")
	out, err = run("apply", "-f", file)
	require.NoError(t, err, out)
	require.Contains(t, out, "0 created, 0 changed, 2 unchanged", "a second apply changes nothing")

	changed := strings.Replace(actionsYAML, "risk_level: high", "risk_level: critical", 1)
	require.NoError(t, os.WriteFile(file, []byte(changed), 0o600))
	out, err = run("apply", "-f", file)
	require.NoError(t, err, out)
	require.Contains(t, out, "0 created, 1 changed, 1 unchanged")

	out, err = run("list")
	require.NoError(t, err, out)
	require.Contains(t, out, "kill_high_cpu_processes")
	require.Regexp(t, `kill_high_cpu_processes\s+remediation\s+critical\s+true\s+restart_service\s+command\s+true`, out)

	// A definition the server would refuse is refused before anything is
	// sent, naming it and the field.
	bad := strings.Replace(actionsYAML, "/opt/fix/kill-cpu-hogs.sh", "kill-cpu-hogs.sh", 1)
	require.NoError(t, os.WriteFile(file, []byte(bad), 0o600))
	out, err = run("apply", "-f", file)
	require.ErrorContains(t, err, `action "kill_high_cpu_processes": executor:`, out)
	require.ErrorContains(t, err, "absolute")

	require.NoError(t, os.WriteFile(file, []byte("actions:\n  - action_name: x\n    scrip: y\n"), 0o600))
	_, err = run("apply", "-f", file)
	require.ErrorContains(t, err, `unknown field "scrip"`)

	_, err = run("apply")
	require.ErrorContains(t, err, "-f FILE is required")
	_, err = run("frobnicate")
	require.ErrorContains(t, err, `unknown command "frobnicate"`)
}

func TestAutonomousURL(t *testing.T) {
	t.Setenv("REFLEX_AUTONOMOUS_URL", "")
	for in, want := range map[string]string{
		"http://127.0.0.1:3009":          "http://127.0.0.1:3011",
		"https://reflex.example.com/api": "https://reflex.example.com:3011",
		"http://[::1]:3009":              "http://[::1]:3011",
	} {
		a := autonomousFlags{clientFlags: clientFlags{url: in}}
		require.NoError(t, a.resolve())
		require.Equal(t, want, a.autonomous, in)
	}
	a := autonomousFlags{clientFlags: clientFlags{url: "not a url"}}
	require.ErrorContains(t, a.resolve(), "--autonomous-url")
}
