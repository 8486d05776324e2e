// Package history is reflex's historical analysis: event counts per time
// bucket with a trend per series, the noisiest hosts, templates and rules,
// and the comparison of a period with the one before it. It reads the
// store's history queries (store.HistoryStore) and computes the rest in Go.
package history

import (
	"math"
	"slices"
)

// Alpha is the significance level of the trend test.
const Alpha = 0.05

// MethodMannKendall names the trend test of Trend.
const MethodMannKendall = "mann-kendall"

// Directions of a trend.
const (
	Rising  = "rising"
	Falling = "falling"
	Stable  = "stable" // no significant trend
)

// Trend is the trend of a series of counts, one per bucket. Slope is the
// least-squares slope: the change of the count per bucket, per bucket.
// Whether the series trends is the Mann-Kendall test, two-sided, with the
// variance corrected for ties and a continuity correction: PValue is the
// probability of a monotonic trend at least this strong in a series
// without one, Significant is PValue < Alpha. The test uses ranks only, so
// one burst (an event storm in one bucket) neither makes a flat series
// significant nor hides a steady climb, where a t-test on the
// least-squares slope assumes normal, independent residuals that bursty
// counts do not have. Direction is Rising or Falling when significant
// (the sign of the Kendall statistic S), Stable otherwise.
type Trend struct {
	Points      int     `json:"points"`
	Slope       float64 `json:"slope"`
	S           int     `json:"s"`
	Z           float64 `json:"z"`
	PValue      float64 `json:"p_value"`
	Significant bool    `json:"significant"`
	Direction   string  `json:"direction"`
	Method      string  `json:"method"`
}

// TrendOf returns the trend of y (counts of consecutive buckets). With
// fewer than three points nothing is significant. It takes O(n^2) time in
// the number of points, which the callers bound.
func TrendOf(y []float64) Trend {
	n := len(y)
	t := Trend{Points: n, PValue: 1, Direction: Stable, Method: MethodMannKendall}
	if n < 2 {
		return t
	}
	t.Slope = olsSlope(y)
	s := 0
	for i := 0; i < n-1; i++ {
		for j := i + 1; j < n; j++ {
			switch {
			case y[j] > y[i]:
				s++
			case y[j] < y[i]:
				s--
			}
		}
	}
	t.S = s
	if n < 3 {
		return t
	}
	nf := float64(n)
	v := nf * (nf - 1) * (2*nf + 5)
	sorted := slices.Clone(y)
	slices.Sort(sorted)
	for i := 0; i < n; {
		j := i + 1
		for j < n && sorted[j] == sorted[i] {
			j++
		}
		if k := float64(j - i); k > 1 {
			v -= k * (k - 1) * (2*k + 5)
		}
		i = j
	}
	v /= 18
	if v <= 0 {
		return t // every value tied
	}
	switch {
	case s > 0:
		t.Z = float64(s-1) / math.Sqrt(v)
	case s < 0:
		t.Z = float64(s+1) / math.Sqrt(v)
	}
	t.PValue = math.Erfc(math.Abs(t.Z) / math.Sqrt2)
	t.Significant = t.PValue < Alpha
	if t.Significant {
		t.Direction = Rising
		if s < 0 {
			t.Direction = Falling
		}
	}
	return t
}

// olsSlope is the least-squares slope of y over x = 0, 1, ...
func olsSlope(y []float64) float64 {
	n := float64(len(y))
	mx := (n - 1) / 2
	var my float64
	for _, v := range y {
		my += v
	}
	my /= n
	var sxy, sxx float64
	for i, v := range y {
		dx := float64(i) - mx
		sxy += dx * (v - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}
