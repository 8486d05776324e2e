package anomaly

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/reflex-ops/reflex/internal/anomaly/nab"
	"github.com/stretchr/testify/require"
)

// tuneGrid is the configurations TestTune compares: the default and its
// neighbours in each parameter.
var tuneGrid = []Options{
	{},
	{Hold: 300}, {Hold: 600},
	{HoldFraction: 0.05, Hold: 1000}, {HoldFraction: 0.1}, {HoldFraction: 0.2},
	{Decades: 7}, {Decades: 10},
	{CalAlpha: 0.003}, {CalAlpha: 0.01},
	{Bins: 6}, {Bins: 10},
	{Window: 20}, {Window: 30},
	{Spatial: 0.03}, {Spatial: 0.08},
	{SlowAlpha: 0.0015}, {SlowAlpha: 0.003},
	{CtxPenalty: 30}, {CtxPenalty: 300},
	{LikPenalty: 100}, {LikPenalty: 10000},
	{LikShort: 0.05}, {LikShort: 0.2},
	{Prior: 0.02}, {Prior: 0.15},
	{RepeatWindow: 1000}, {RepeatWindow: 10000},
	{RepeatPenalty: 100}, {RepeatPenalty: 10000},
}

// ablations are the default without one of its detectors.
var ablations = []struct {
	name string
	o    Options
}{
	{"without range", Options{disable: 1}},
	{"without distribution change", Options{disable: 2}},
	{"without context novelty", Options{disable: 4}},
	{"without anomaly likelihood", Options{disable: 8}},
	{"range only", Options{disable: 6}},
	{"without the repeat penalty", Options{RepeatPenalty: 1}},
	{"with the former prior 0.5", Options{Prior: 0.5}},
	{"without the repeat penalty, prior 0.5", Options{RepeatPenalty: 1, Prior: 0.5}},
}

// TestTune prints the tuning grid on the NAB corpus and, for every
// category, the held-out figure: the configuration and the threshold
// chosen on the other categories, the category scored with them.
// REFLEX_NAB_TUNE=1 go test -run TestTune -v ./internal/anomaly/
func TestTune(t *testing.T) {
	if os.Getenv("REFLEX_NAB_TUNE") == "" {
		t.Skip("set REFLEX_NAB_TUNE=1 to print the tuning grid")
	}
	c, err := nab.Load(nabDir)
	require.NoError(t, err)
	std := c.Profiles[0]
	runs := make([]*nab.Run, len(tuneGrid))
	var out strings.Builder
	for i, o := range tuneGrid {
		r, rate := nab.Evaluate(c, detectorFunc(o), nil)
		runs[i] = r
		res := nab.Score(c, r)
		fmt.Fprintf(&out, "config %d %+v:", i, o)
		for _, p := range res.Profiles {
			fmt.Fprintf(&out, " %s %.1f", p.Profile, p.Score)
		}
		fmt.Fprintf(&out, " (threshold %.3f) %.0f rows/s\n", res.Profiles[0].Threshold, rate)
	}
	for _, a := range ablations {
		r, _ := nab.Evaluate(c, detectorFunc(a.o), nil)
		res := nab.Score(c, r)
		fmt.Fprintf(&out, "ablation %s: standard %.1f\n", a.name, res.Profiles[0].Score)
	}
	fmt.Fprintf(&out, "\n%-22s %8s %8s %10s\n", "held out", "config", "thr", "standard")
	for _, cat := range c.Categories() {
		others := func(x string) bool { return x != cat }
		best, bestThr, bestScore := 0, 0.0, -1e18
		for i, r := range runs {
			thr, s := r.Subset(others).BestThreshold(std)
			if s > bestScore {
				best, bestThr, bestScore = i, thr, s
			}
		}
		h := runs[best].Tally(std, bestThr, func(x string) bool { return x == cat })
		fmt.Fprintf(&out, "%-22s %8d %8.3f %10.1f\n", cat, best, bestThr, h.Normalized(std))
	}
	t.Log("\n" + out.String())
}
