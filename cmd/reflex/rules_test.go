package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

const rulesYAML = `rules:
  - name: High CPU Alert
    conditions: {event_type: threshold_breach, severity: [critical, high], metadata.cpu_usage: {$gt: 90}}
    time_window_minutes: 5
    max_triggers_per_hour: 3
responses:
  - name: CPU Investigation Playbook
    type: investigation
    trigger_rule: High CPU Alert        # by name in files
    actions:
      - {type: diagnostic, script: check_processes}
      - {type: remediation, script: kill_high_cpu_processes, approval_required: true}
      - {type: notification, channels: [email, slack], approval_required: false}
`

// startInProcess runs `reflex server` in the test process and returns its
// Event Processing Service URL.
func startInProcess(t *testing.T, args ...string) string {
	t.Helper()
	t.Setenv("REFLEX_ADMIN_TOKEN", "rules-test-token")
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args = append([]string{"--data-dir", t.TempDir(), "--events-addr", addr, "--autonomous-addr", freePort(t),
		"--log-level", "error"}, args...)
	go func() { done <- runServer(ctx, args, os.Stderr) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "server ready")
	return url
}

func TestRulesCLI(t *testing.T) {
	for _, mode := range []string{"sqlite", "postgres"} {
		t.Run(mode, func(t *testing.T) {
			var args []string
			if mode == "postgres" {
				args = []string{"--database-url", testutil.PostgresURL(t)}
			}
			url := startInProcess(t, args...)
			t.Setenv("REFLEX_URL", url)
			t.Setenv("REFLEX_TOKEN", "rules-test-token")
			dir := t.TempDir()
			file := filepath.Join(dir, "rules.yaml")
			require.NoError(t, os.WriteFile(file, []byte(rulesYAML), 0o600))

			code, out, errOut := runCmd(t, "rules", "apply", "-f", file)
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, `rule "High CPU Alert" (id 1): created`)
			require.Contains(t, out, `response "CPU Investigation Playbook" (id 1): created`)
			require.Contains(t, out, "2 created, 0 changed, 0 unchanged")

			code, out, errOut = runCmd(t, "rules", "apply", "-f", file)
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, "0 created, 0 changed, 2 unchanged", "a second apply changes nothing")

			changed := strings.Replace(rulesYAML, "max_triggers_per_hour: 3", "max_triggers_per_hour: 5", 1)
			require.NoError(t, os.WriteFile(file, []byte(changed), 0o600))
			code, out, errOut = runCmd(t, "rules", "apply", "-f", file)
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, `rule "High CPU Alert" (id 1): changed`)
			require.Contains(t, out, "0 created, 1 changed, 1 unchanged")

			code, out, errOut = runCmd(t, "rules", "list")
			require.Equal(t, 0, code, errOut)
			require.Regexp(t, `1\s+High CPU Alert\s+true\s+5m\s+1\s+5\s`, out)
			require.Regexp(t, `1\s+CPU Investigation Playbook\s+investigation\s+1\s+3\s+true`, out)

			hot := filepath.Join(dir, "hot.json")
			require.NoError(t, os.WriteFile(hot, []byte(`{"source":"prometheus","event_type":"threshold_breach","severity":"high","host":"web-01","message":"CPU high","metadata":{"cpu_usage":95}}`), 0o600))
			code, out, errOut = runCmd(t, "rules", "test", "1", "--event", hot)
			require.Equal(t, 0, code, errOut)
			require.True(t, strings.HasPrefix(out, "matched: "), out)
			warm := filepath.Join(dir, "warm.json")
			require.NoError(t, os.WriteFile(warm, []byte(`{"source":"prometheus","event_type":"threshold_breach","severity":"high","host":"web-01","message":"CPU high","metadata":{"cpu_usage":85}}`), 0o600))
			code, out, errOut = runCmd(t, "rules", "test", "--event", warm, "1")
			require.Equal(t, 0, code, errOut)
			require.Equal(t, "not matched: metadata.cpu_usage: 85 is not > 90\n", out)

			// What the server refuses is an error naming the rule and the place.
			bad := filepath.Join(dir, "bad.yaml")
			require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: Broken\n    conditions: {metadata.cpu_usage: {$gtt: 90}}\n"), 0o600))
			code, _, errOut = runCmd(t, "rules", "apply", "-f", bad)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, `rule "Broken": 400 Bad Request: conditions.metadata.cpu_usage.$gtt: unknown operator`)
		})
	}
}

func TestRulesCLIFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "rules:\n  - name: A\n    bogus_key: {}\n", "field bogus_key not found"},
		{"no name", "rules:\n  - conditions: {}\n", "rules[0]: name is required"},
		{"twice", "rules:\n  - name: A\n  - name: A\n", `rule "A" appears twice`},
		{"no rule", "responses:\n  - name: T\n    type: investigation\n", "trigger_rule (a rule's name) or trigger_rule_id is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			require.NoError(t, os.WriteFile(f, []byte(tc.yaml), 0o600))
			code, _, errOut := runCmd(t, "rules", "apply", "-f", f, "--url", "http://127.0.0.1:1", "--token", "x")
			require.Equal(t, 1, code)
			require.Contains(t, errOut, tc.want)
		})
	}
	code, _, errOut := runCmd(t, "rules", "frob")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `unknown command "frob"`)
	code, _, errOut = runCmd(t, "rules", "test", "--url", "http://127.0.0.1:1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "a rule ID and --event FILE are required")
}
