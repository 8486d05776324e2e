package anomaly

import (
	"fmt"
	"os"
	"testing"

	"github.com/reflex-ops/reflex/internal/anomaly/nab"
	"github.com/stretchr/testify/require"
)

func printResult(t *testing.T, name string, res nab.Result, rate float64) {
	t.Helper()
	s := name
	for _, p := range res.Profiles {
		s += fmt.Sprintf(" %s=%.1f(thr %.3f tp %d fp %d)", p.Profile, p.Score, p.Threshold, p.TP, p.FP)
	}
	s += fmt.Sprintf(" rate=%.0f\n", rate)
	for _, c := range res.Categories {
		s += fmt.Sprintf("   %-22s %7.1f held-out %7.1f fp %d\n", c.Category, c.Score, c.HeldOut, c.FP)
	}
	t.Log(s)
}

func TestTune(t *testing.T) {
	if os.Getenv("REFLEX_NAB_TUNE") == "" {
		t.Skip("set REFLEX_NAB_TUNE=1 to print the tuning grid")
	}
	c, err := nab.Load(nabDir)
	require.NoError(t, err)
	r, rate := nab.Evaluate(c, wgFunc, nil)
	printResult(t, "WG", nab.Score(c, r), rate)
	for _, o := range tuneGrid {
		r, rate = nab.Evaluate(c, detectorFunc(o), nil)
		printResult(t, fmt.Sprintf("%+v", o), nab.Score(c, r), rate)
	}
}

var tuneGrid = []Options{
	{}, {mask: 1}, {mask: 2}, {mask: 4}, {mask: 8},
}
