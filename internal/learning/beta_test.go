package learning

import (
	"math"
	"testing"
)

// Reference values computed with mpmath (30 to 40 digits): betainc(a, b,
// 0, x, regularized=True), by numerical quadrature of the density for the
// large parameters where its series does not converge, and quantiles by
// bisection on those.
var cdfRef = []struct{ a, b, x, want float64 }{
	{2, 3, 0.36, 0.45474048},
	{2, 3, 0.4, 0.5248},
	{0.5, 0.5, 0.45, 0.46811571957074007604},
	{0.5, 0.5, 0.525, 0.51592213323666034437},
	{6, 1, 0.77142857142857142857, 0.21075326858706831337},
	{5, 2, 0.64285714285714285714, 0.30585032065720915605},
	{5, 2, 0.75, 0.533935546875},
	{2, 5, 0.25714285714285714286, 0.48293104811770605785},
	{10.5, 3.5, 0.675, 0.24047767145269628393},
	{10.5, 3.5, 0.7875, 0.58919777426994913575},
	{3, 3, 0.45, 0.406873125},
	{0.3, 7, 0.03698630136986301323, 0.69614762471421444673},
	{100, 50, 0.6, 0.044424097290243737872},
	{100, 50, 0.7, 0.80544816622775381555},
	{1000, 10, 0.89108910891089108911, 5.5895813612488733797e-38},
	{1000, 10, 0.99009900990099009901, 0.45855174675033065791},
	{1000, 10, 0.9950495049504950495, 0.96870936158517911639},
	{20000, 100000, 0.16451501821729018563, 0.022470376184948433666},
	{20000, 100000, 0.16774249089135490719, 0.84134481074644792748},
	{1e6, 1e3, 0.99893784822922205455, 0.024427388334948446864},
	{1e6, 1e3, 0.99903257438688747422, 0.84138575633299519078},
	{1.5, 1e5, 0.000027246886920373596805, 0.858307407306448231},
	{3000, 7000, 0.29083530683329136194, 0.022274002521506883168},
	{3000, 7000, 0.30458234658335431903, 0.84133572994227441172},
}

var quantileRef = []struct{ a, b, p, want float64 }{
	{2, 3, 0.05, 0.097611462886414339908},
	{2, 3, 0.5, 0.38572756813238954828},
	{2, 3, 0.95, 0.75139537426981852529},
	{2, 3, 0.001, 0.013022947370814272264},
	{0.5, 0.5, 0.05, 0.006155829702431136905},
	{0.5, 0.5, 0.95, 0.9938441702975688631},
	{0.5, 0.5, 0.001, 2.4673990709169440776e-6},
	{5, 2, 0.05, 0.4181965907479740854},
	{5, 2, 0.5, 0.73555001670434003768},
	{5, 2, 0.95, 0.93715010829164562006},
	{10.5, 3.5, 0.05, 0.54668929753198761694},
	{10.5, 3.5, 0.95, 0.91154044111156384578},
	{10.5, 3.5, 0.001, 0.35058422256947191717},
	{0.3, 7, 0.05, 4.824489106458613945e-6},
	{0.3, 7, 0.5, 0.010927106706896401049},
	{0.3, 7, 0.95, 0.18617255336753881031},
	{0.3, 7, 0.001, 1.0476309301387115238e-11},
	{100, 50, 0.05, 0.60229399461636965615},
	{100, 50, 0.95, 0.72850403105068520842},
	{100, 50, 0.001, 0.54311957700257949793},
	{1000, 10, 0.05, 0.98448657758723646027},
	{1000, 10, 0.95, 0.99461342618263906772},
	{1000, 10, 0.001, 0.97769633405750223272},
	{3.5, 0.75, 0.05, 0.47950169482371265902},
	{3.5, 0.75, 0.95, 0.99509654569833399978},
	{3.5, 0.75, 0.001, 0.16070089145126625285},
	{20000, 100000, 0.05, 0.16490025625583565778},
	{20000, 100000, 0.95, 0.16843939392442953181},
	{1e6, 1e3, 0.05, 0.99894850150423986649},
	{1e6, 1e3, 0.95, 0.9990523629347224588},
	{1.5, 1e5, 0.05, 1.7592256432489408493e-6},
	{1.5, 1e5, 0.95, 0.000039072778472029648557},
	{3000, 7000, 0.05, 0.29248546537087600961},
	{3000, 7000, 0.95, 0.30756001805681927763},
}

// near reports whether got is within rel of want, relatively, or within
// abs absolutely (for values near 0).
func near(got, want, rel, abs float64) bool {
	d := math.Abs(got - want)
	return d <= abs || d <= rel*math.Abs(want)
}

func TestBetaCDFReference(t *testing.T) {
	for _, c := range cdfRef {
		got := betaCDF(c.x, c.a, c.b)
		// Large parameters lose digits in ln B(a, b) (lgamma of 10^6 is
		// 10^7): float64 affords about 1e-16 * (a+b) ln(a+b) there.
		rel := max(1e-12, 5e-15*(c.a+c.b)*math.Log(c.a+c.b))
		if !near(got, c.want, rel, 1e-300) {
			t.Errorf("I_%v(%v, %v) = %.17g, want %.17g", c.x, c.a, c.b, got, c.want)
		}
	}
}

func TestBetaQuantileReference(t *testing.T) {
	for _, c := range quantileRef {
		got := betaQuantile(c.p, c.a, c.b)
		rel := max(1e-11, 5e-16*(c.a+c.b)*math.Log(c.a+c.b))
		if !near(got, c.want, rel, 1e-300) {
			t.Errorf("quantile(%v; %v, %v) = %.17g, want %.17g", c.p, c.a, c.b, got, c.want)
		}
	}
}

// Closed forms: Beta(1, 1) is uniform; Beta(a, 1) has CDF x^a, so its
// p-quantile is p^(1/a); Beta(1, b) has CDF 1-(1-x)^b; Beta(2, 2) has
// CDF 3x^2 - 2x^3.
func TestBetaClosedForms(t *testing.T) {
	for _, p := range []float64{0.001, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999} {
		checks := []struct {
			name      string
			a, b      float64
			quantile  float64
			cdfAtQuan float64
		}{
			{"uniform", 1, 1, p, p},
			{"Beta(6,1)", 6, 1, math.Pow(p, 1.0/6), p},
			{"Beta(11,1)", 11, 1, math.Pow(p, 1.0/11), p},
			{"Beta(1,4)", 1, 4, 1 - math.Pow(1-p, 0.25), p},
			{"Beta(2.5,1)", 2.5, 1, math.Pow(p, 1/2.5), p},
		}
		for _, c := range checks {
			if got := betaQuantile(p, c.a, c.b); !near(got, c.quantile, 1e-12, 1e-300) {
				t.Errorf("%s: quantile(%v) = %.17g, want %.17g", c.name, p, got, c.quantile)
			}
			if got := betaCDF(c.quantile, c.a, c.b); !near(got, c.cdfAtQuan, 1e-12, 1e-300) {
				t.Errorf("%s: cdf(%v) = %.17g, want %.17g", c.name, c.quantile, got, c.cdfAtQuan)
			}
		}
		x := p
		if got, want := betaCDF(x, 2, 2), 3*x*x-2*x*x*x; !near(got, want, 1e-12, 1e-300) {
			t.Errorf("Beta(2,2) cdf(%v) = %.17g, want %.17g", x, got, want)
		}
	}
}

func TestBetaEdges(t *testing.T) {
	if betaCDF(0, 2, 3) != 0 || betaCDF(-1, 2, 3) != 0 || betaCDF(1, 2, 3) != 1 || betaCDF(2, 2, 3) != 1 {
		t.Error("cdf outside (0, 1) is not 0 or 1")
	}
	if betaQuantile(0, 2, 3) != 0 || betaQuantile(1, 2, 3) != 1 {
		t.Error("quantile of 0 or 1 is not 0 or 1")
	}
	if !math.IsNaN(betaQuantile(math.NaN(), 2, 3)) || !math.IsNaN(betaCDF(math.NaN(), 2, 3)) {
		t.Error("NaN in, not NaN out")
	}
	// Symmetry: I_x(a, b) = 1 - I_{1-x}(b, a).
	for _, c := range cdfRef {
		if c.a+c.b > 1e4 {
			continue
		}
		if got, want := betaCDF(c.x, c.a, c.b), 1-betaCDF(1-c.x, c.b, c.a); math.Abs(got-want) > 1e-13 {
			t.Errorf("I_%v(%v, %v) = %v, 1 - I_{1-x}(b, a) = %v", c.x, c.a, c.b, got, want)
		}
	}
}

// FuzzBetaQuantile checks the quantile's invariants for any parameters
// the estimator can meet (a prior of at least 0.1 on each side): within
// [0, 1], the inverse of the CDF, and monotone in p.
func FuzzBetaQuantile(f *testing.F) {
	f.Add(1.0, 1.0, 0.05)
	f.Add(0.5, 0.5, 0.001)
	f.Add(6.0, 1.0, 0.95)
	f.Add(3000.0, 7000.0, 0.05)
	f.Add(1.5, 1e5, 0.05)
	f.Add(1e6, 2.0, 0.95)
	// Quantiles within 1e-9 to 1e-15 of 1, where float64 runs out of
	// resolution (found by fuzzing).
	f.Add(1e6, 0.2, 0.95)
	f.Add(1e6, 0.4, 0.95)
	f.Add(1.6668346666666667e6, 0.14, 0.95)
	f.Add(1323.0, 0.1111111111111111, 0.95)
	f.Fuzz(func(t *testing.T, a, b, p float64) {
		if !(a >= 0.1 && a <= 1e7 && b >= 0.1 && b <= 1e7 && p > 1e-6 && p < 1-1e-6) {
			t.Skip()
		}
		x := betaQuantile(p, a, b)
		if !(x >= 0 && x <= 1) {
			t.Fatalf("quantile(%v; %v, %v) = %v, outside [0, 1]", p, a, b, x)
		}
		// x is the quantile to within a few units in the last place: near
		// 1 a steep CDF can move by more than 1e-6 in one of them.
		below, above := x, x
		for range 4 {
			below, above = math.Nextafter(below, 0), math.Nextafter(above, 1)
		}
		if lo, hi := betaCDF(below, a, b), betaCDF(above, a, b); lo > p+1e-9 || hi < p-1e-9 {
			t.Fatalf("quantile(%v; %v, %v) = %v, but cdf is %v to %v around it", p, a, b, x, lo, hi)
		}
		if y := betaQuantile(math.Min(p*1.01, (1+p)/2), a, b); y < below {
			t.Fatalf("quantile not monotone: q(%v) = %v > q(%v) = %v", p, x, p*1.01, y)
		}
	})
}
