package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(`
rules:
  - {name: HighLoad, metric: node_load1, op: ">", threshold: 4, for: 5m}
checks:
  - {name: Down, prometheus: "http://127.0.0.1:9090", query: "up == 0"}
anomaly: {metrics: [node_load1]}
`))
	require.NoError(t, err)
	require.Equal(t, Duration(DefaultStaleAfter), c.StaleAfter)
	r := c.Rules[0]
	require.Equal(t, "instance", r.HostLabel)
	require.Equal(t, event.Medium, r.severity)
	require.Equal(t, Duration(5*time.Minute), r.For)
	ch := c.Checks[0]
	require.Equal(t, Duration(30*time.Second), ch.Every)
	require.Equal(t, Duration(10*time.Second), ch.Timeout)
	require.True(t, ch.Holds(0))

	empty, err := ParseConfig(strings.NewReader(""))
	require.NoError(t, err)
	require.Empty(t, empty.Rules)
}

func TestParseConfigErrors(t *testing.T) {
	for want, yml := range map[string]string{
		"field nope not found":   `nope: 1`,
		"metric is required":     `rules: [{name: a, op: ">", threshold: 1}]`,
		"op is required":         `rules: [{name: a, metric: m}]`,
		"op needs a threshold":   `rules: [{name: a, metric: m, op: ">"}]`,
		`op "~"`:                 `rules: [{name: a, metric: m, op: "~", threshold: 1}]`,
		"not unique":             `rules: [{name: a, metric: m, op: ">", threshold: 1}, {name: a, metric: n, op: ">", threshold: 1}]`,
		"name must be":           `rules: [{name: "a b", metric: m, op: ">", threshold: 1}]`,
		"severity":               `rules: [{name: a, metric: m, op: ">", threshold: 1, severity: loud}]`,
		"time: invalid duration": `rules: [{name: a, metric: m, op: ">", threshold: 1, for: soon}]`,
		"base URL":               `checks: [{name: c, prometheus: "ftp://x", query: up}]`,
		"credentials":            `checks: [{name: c, prometheus: "http://u:p@x", query: up}]`,
		"query must be":          `checks: [{name: c, prometheus: "http://x"}]`,
		"below 1s":               `checks: [{name: c, prometheus: "http://x", query: up, every: 10ms}]`,
		"at most every":          `checks: [{name: c, prometheus: "http://x", query: up, every: 5s, timeout: 10s}]`,
		"threshold needs an op":  `checks: [{name: c, prometheus: "http://x", query: up, threshold: 1}]`,
	} {
		_, err := ParseConfig(strings.NewReader(yml))
		require.ErrorContains(t, err, want, yml)
	}
}

func TestLoadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(p, []byte(rulesYAML), 0o600))
	c, err := LoadConfig(p)
	require.NoError(t, err)
	require.Len(t, c.Rules, 1)
	_, err = LoadConfig(p + ".missing")
	require.Error(t, err)
}

func TestLabels(t *testing.T) {
	ls := Labels{{"job", "a\"b"}, {MetricName, "up"}, {"instance", "h:1"}}
	ls.Sort()
	require.Equal(t, `up{instance="h:1",job="a\"b"}`, ls.String())
	require.Equal(t, "h", hostOf(ls, "instance"))
	require.Equal(t, "x", hostOf(Labels{{"host", "x"}}, "instance"))
	require.Equal(t, "::1", hostOf(Labels{{"instance", "[::1]:9100"}}, "instance"))
}
