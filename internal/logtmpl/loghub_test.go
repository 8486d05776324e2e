package logtmpl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// loghubDir is the benchmark data, read in place (never copied here).
const loghubDir = "../../../shared/data/loghub"

// TestLoghubAccuracy scores the default miner on the loghub systems and
// fails below floors set a little under the measured figures
// (docs/intelligence.md): a regression in the method shows here.
func TestLoghubAccuracy(t *testing.T) {
	res, err := EvalLoghub(loghubDir, Options{})
	require.NoError(t, err, "the benchmark data is expected at %s", loghubDir)
	require.Len(t, res, 12)
	floors := map[string]float64{ // measured 2026-12-02 minus about 0.005
		"Android": 0.945, "Apache": 0.995, "BGL": 0.995, "HDFS": 0.99, "HPC": 0.90, "Hadoop": 0.99,
		"HealthApp": 0.975, "Linux": 0.93, "OpenSSH": 0.995, "Spark": 0.99, "Windows": 0.995, "Zookeeper": 0.99,
	}
	sum := 0.0
	for _, r := range res {
		t.Logf("%-10s %5d lines %4d templates accuracy %.4f", r.System, r.Lines, r.Templates, r.Accuracy)
		sum += r.Accuracy
		require.Equal(t, 2000, r.Lines)
		require.Len(t, r.Assigned, r.Lines)
		require.Contains(t, floors, r.System)
		require.GreaterOrEqual(t, r.Accuracy, floors[r.System], r.System)
	}
	mean := sum / float64(len(res))
	t.Logf("mean %.4f", mean)
	require.GreaterOrEqual(t, mean, 0.977)
}

func TestGroupingAccuracy(t *testing.T) {
	// Lines 0-2 are one event, 3-4 another: a parse that splits the first
	// and merges nothing gets the second right only.
	truth := []string{"A", "A", "A", "B", "B"}
	require.InDelta(t, 1.0, GroupingAccuracy([]int64{1, 1, 1, 2, 2}, truth), 1e-9)
	require.InDelta(t, 0.4, GroupingAccuracy([]int64{1, 1, 3, 2, 2}, truth), 1e-9)
	require.InDelta(t, 0.0, GroupingAccuracy([]int64{1, 1, 1, 1, 1}, truth), 1e-9, "merged: no line is right")
	require.Zero(t, GroupingAccuracy(nil, nil))
}

func TestEvalLoghubErrors(t *testing.T) {
	_, err := EvalLoghub(t.TempDir(), Options{})
	require.ErrorContains(t, err, "no <System>/<System>_2k.log_structured.csv")
	_, err = EvalLoghub("/nonexistent/loghub", Options{})
	require.Error(t, err)
}

// TestScanOnLoghub: on every loghub line the scanner masks exactly what
// the regular expressions of DefaultMasks mask.
func TestScanOnLoghub(t *testing.T) {
	lines := loghubLines(t)
	require.Len(t, lines, 24000)
	for _, l := range lines {
		require.Equal(t, Apply(DefaultMasks, l), maskDefault(l), "%q", l)
	}
}

// TestTemplateTextTokens: a template's text splits into the template's
// tokens again (what restoring templates from their text relies on), on
// every template mined from loghub.
func TestTemplateTextTokens(t *testing.T) {
	m := New(Options{})
	for _, l := range loghubLines(t) {
		m.Add(l)
	}
	bad := 0
	for _, c := range m.clusters {
		got, glued := tokenize(c.template().Text)
		if !assertTokens(c, got, glued) {
			bad++
			t.Logf("%q: %q", c.template().Text, got)
		}
	}
	require.Zero(t, bad)
}

func assertTokens(c *cluster, tokens []string, glued []bool) bool {
	if len(tokens) != len(c.tokens) {
		return false
	}
	for i := range tokens {
		if tokens[i] != c.tokens[i] || glued[i] != c.glued[i] {
			return false
		}
	}
	return true
}
