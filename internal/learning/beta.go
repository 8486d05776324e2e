package learning

import "math"

// The Beta distribution's CDF (the regularized incomplete beta function
// I_x(a, b)) and its inverse, implemented here rather than taken from
// gonum: the estimator needs only these two functions, and they are
// short and classical. The CDF is the continued fraction of
// Abramowitz & Stegun 26.5.8 evaluated with the modified Lentz method
// (as in Numerical Recipes' betacf), on the side of the mean where it
// converges fast; the quantile is Newton's method on the CDF, kept
// inside a shrinking bracket by bisection so that it always converges.
// beta_test.go checks both against values computed with mpmath at 30
// digits and against closed forms.

const (
	// cfEpsilon is the relative change of the continued fraction at which
	// it has converged.
	cfEpsilon = 1e-15
	// cfTiny keeps Lentz's method away from divisions by zero.
	cfTiny = 1e-300
	// cfMaxIter bounds the continued fraction. It converges in about
	// sqrt(max(a, b)) iterations near the mean: 10^6 outcomes take a few
	// thousand.
	cfMaxIter = 100_000
)

// lnBeta is ln B(a, b).
func lnBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// betaCDF is P(X <= x) for X ~ Beta(a, b), a, b > 0: the regularized
// incomplete beta function I_x(a, b).
func betaCDF(x, a, b float64) float64 {
	switch {
	case math.IsNaN(x):
		return math.NaN()
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	// ln of x^a (1-x)^b / B(a, b), the factor in front of the fraction.
	front := a*math.Log(x) + b*math.Log1p(-x) - lnBeta(a, b)
	if x < (a+1)/(a+b+2) {
		return math.Exp(front) * betaFraction(x, a, b) / a
	}
	// I_x(a, b) = 1 - I_{1-x}(b, a): the fraction converges fast on this
	// side for the swapped parameters.
	return 1 - math.Exp(front)*betaFraction(1-x, b, a)/b
}

// betaFraction is the continued fraction of I_x(a, b) (A&S 26.5.8) by
// the modified Lentz method.
func betaFraction(x, a, b float64) float64 {
	clamp := func(v float64) float64 {
		if math.Abs(v) < cfTiny {
			return cfTiny
		}
		return v
	}
	c := 1.0
	d := 1 / clamp(1-(a+b)*x/(a+1))
	h := d
	for m := 1.0; m <= cfMaxIter; m++ {
		// The even step d_{2m}, then the odd step d_{2m+1}.
		num := m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		h *= d * c
		num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		step := d * c
		h *= step
		if math.Abs(step-1) < cfEpsilon {
			break
		}
	}
	return h
}

// betaQuantile is the x at which betaCDF(x, a, b) = p, a, b > 0: the
// p-quantile of Beta(a, b).
func betaQuantile(p, a, b float64) float64 {
	switch {
	case math.IsNaN(p):
		return math.NaN()
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lnB := lnBeta(a, b)
	lo, hi := 0.0, 1.0
	x := a / (a + b)
	for range 400 {
		f := betaCDF(x, a, b) - p
		if f == 0 {
			return x
		}
		if f < 0 {
			lo = x
		} else {
			hi = x
		}
		pdf := math.Exp((a-1)*math.Log(x) + (b-1)*math.Log1p(-x) - lnB)
		next := x - f/pdf
		if !(next > lo && next < hi) {
			// Newton left the bracket (or the density under- or
			// overflowed): bisect, in the exponent when the bracket
			// spans orders of magnitude near 0, so that tiny quantiles
			// are reached in few steps.
			switch {
			case lo > 0 && hi/lo > 4:
				next = math.Sqrt(lo * hi)
			case lo == 0 && hi < 0.25:
				next = max(hi*hi, math.SmallestNonzeroFloat64)
			default:
				next = lo + (hi-lo)/2
			}
		}
		// Done when the bracket is down to a unit or two in the last
		// place, or when Newton's step is that small and the CDF agrees:
		// where the CDF is steep at the resolution of float64 (a
		// quantile within 1e-15 of 1), a tiny step alone proves nothing.
		if hi-lo <= 2.5e-16*hi || (math.Abs(next-x) <= 2.5e-16*next && math.Abs(f) <= 1e-9) {
			return next
		}
		x = next
	}
	return x
}
