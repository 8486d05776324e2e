package policy

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// FuzzParse holds Parse to its contract on any input: no panic, and a
// policy it accepts validates and survives JSON and YAML round trips.
func FuzzParse(f *testing.F) {
	doc, err := os.ReadFile("testdata/policy.yaml")
	require.NoError(f, err)
	f.Add(doc)
	f.Add([]byte(`{"risk_levels": {"high": {"unattended": true}}, "approval_ttl": "30m"}`))
	f.Add([]byte("automation_hours: {days: [fri-mon], from: \"22:00\", to: \"06:00\", time_zone: Asia/Tokyo}\n"))
	f.Add([]byte("risk_levels:\n  low: {min_confidence: 0.5, two_person: true}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		require.NoError(t, p.Validate())
		j, err := json.Marshal(p)
		require.NoError(t, err)
		back, err := Parse(j)
		require.NoError(t, err, "%s", j)
		require.Equal(t, p, back)
		y, err := yaml.Marshal(p)
		require.NoError(t, err)
		back, err = Parse(y)
		require.NoError(t, err, "%s", y)
		require.Equal(t, p, back)
	})
}
