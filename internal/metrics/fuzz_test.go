package metrics

import (
	"bytes"
	"testing"
)

// FuzzParseConfig feeds arbitrary YAML to the metric-rules loader: it
// must never panic, and what it accepts must validate again unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(rulesYAML))
	f.Add([]byte("checks: [{name: c, prometheus: 'http://x', query: up, op: '<', threshold: 1, every: 2s}]"))
	f.Add([]byte("anomaly: {disabled: true}\nstale_after: 1h"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails again: %v", err)
		}
	})
}
