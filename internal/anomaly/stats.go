package anomaly

import "math"

// upperP answers the one-sided tail probability P(Z >= z).
func upperP(z float64) float64 {
	if math.IsNaN(z) {
		return 1
	}
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// surprise maps a tail probability to a score in [0,1]: -log10(p)/decades,
// so that p = 10^-decades (or less) scores 1.
func surprise(p, decades float64) float64 {
	if p >= 1 || math.IsNaN(p) {
		return 0
	}
	if p <= 0 {
		return 1
	}
	return math.Min(1, -math.Log10(p)/decades)
}

// ewma is an exponentially weighted mean and mean absolute deviation.
type ewma struct {
	mean float64
	dev  float64
	n    float64
}

// update folds x in with weight alpha (1/n while n is small, so that the
// first values are averaged rather than the first one dominating).
func (e *ewma) update(x, alpha float64) {
	e.n++
	a := math.Max(alpha, 1/e.n)
	if e.n == 1 {
		e.mean = x
		return
	}
	e.dev += a * (math.Abs(x-e.mean) - e.dev)
	e.mean += a * (x - e.mean)
}
