// Package anomaly is an online anomaly detector for univariate time
// series: each point is scored in [0,1] from the points before it only,
// with an expected range, in a state of fixed size per series.
//
// A Detector combines three cheap detectors, each calibrated against its
// own history so that one configuration serves every series:
//
//   - a residual detector: the point against the best of a fast level
//     (EWMA) and, once enough cycles were seen, seasonal baselines per
//     half hour of the day and per hour of the week, scaled by that
//     baseline's mean absolute error;
//   - a level-shift detector: a short EWMA of the values against a slow
//     one, scaled by the slow one's deviation;
//   - a distribution-change detector: the relative entropy of the
//     histogram of the last values against a long-run histogram.
//
// Each raw statistic becomes a tail probability against the running
// distribution of its own past values; the smallest (Bonferroni corrected)
// becomes the score, -log10(p)/Decades. After a detection the score is
// held below the detection level for a while (NAB rewards the first
// detection of an anomaly and punishes the repeats).
package anomaly

import (
	"math"
	"reflect"
	"time"
)

// Options configure a Detector. The zero value is the configuration tuned
// on the NAB corpus (docs/intelligence.md); every series uses the same.
type Options struct {
	// FastAlpha is the weight of a new value in the fast level (default
	// 0.1).
	FastAlpha float64
	// SlowAlpha is the weight of a new value in the slow level and in
	// the error scales (default 0.003).
	SlowAlpha float64
	// SeasonAlpha is the weight of a new value in its seasonal bucket
	// (default 0.1).
	SeasonAlpha float64
	// MinDays (MinWeeks) is the number of days (weeks) a series must span before
	// its daily (weekly) baseline may be used (default 3 days, 2 weeks).
	MinDays, MinWeeks int
	// CalAlpha is the weight of a new raw statistic in its calibration
	// (default 0.005).
	CalAlpha float64
	// Bins and Window size the distribution-change detector: the number
	// of histogram bins and of recent values compared with the long-run
	// histogram (defaults 8 and 24).
	Bins, Window int
	// Spatial is the fraction of the range of the values seen so far by
	// which a value must leave that range to be anomalous by itself
	// (default 0.05).
	Spatial float64
	// Decades maps a tail probability p to the score -log10(p)/Decades
	// (default 10: p = 1e-10 scores 1).
	Decades float64
	// DetectAt is the score at or above which a point is a detection
	// (default 0.8); Hold is the number of points after a detection whose
	// score is capped below DetectAt (default 200).
	DetectAt float64
	Hold     int
	// Warmup is the number of points scored 0 while the state fills
	// (default 30).
	Warmup int

	// mask disables components in experiments: bit 0 the residual, 1
	// the level shift, 2 the distribution change.
	mask int
}

func (o Options) withDefaults() Options {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.FastAlpha, 0.1)
	def(&o.SlowAlpha, 0.003)
	def(&o.SeasonAlpha, 0.1)
	defi(&o.MinDays, 3)
	defi(&o.MinWeeks, 2)
	def(&o.CalAlpha, 0.005)
	defi(&o.Bins, 8)
	defi(&o.Window, 24)
	def(&o.Decades, 10)
	def(&o.Spatial, 0.05)
	def(&o.DetectAt, 0.8)
	defi(&o.Hold, 200)
	defi(&o.Warmup, 30)
	o.Bins = min(o.Bins, maxBins)
	o.Window = min(o.Window, maxWindow)
	return o
}

const (
	dayBuckets  = 48  // half hours of the day
	weekBuckets = 168 // hours of the week
	maxBins     = 16
	maxWindow   = 64
)

// Point is the verdict on one point.
type Point struct {
	// Score is the anomaly score in [0,1].
	Score float64
	// Expected is the baseline's prediction; Low and High the expected
	// range (the prediction plus or minus three scaled errors).
	Expected, Low, High float64
	// Seasonal tells whether a seasonal baseline made the prediction.
	Seasonal bool
}

// baseline is a predictor with its tracked mean absolute error.
type bucket struct {
	mean, err float64
	n         uint32
}

// calib is the running distribution of a raw statistic, on its square
// root (which brings the heavy tails of spiky series nearer a normal).
type calib struct {
	e ewma
}

// p answers the upper tail probability of x against the statistic's past
// values, then folds x in.
func (c *calib) p(x, alpha float64) float64 {
	l := math.Sqrt(math.Max(x, 0))
	p := 1.0
	if c.e.n >= 10 {
		sd := 1.2533*c.e.dev + 1e-6
		p = upperP((l - c.e.mean) / sd)
	}
	c.e.update(l, alpha)
	return p
}

// Detector scores one series online. Its state has a fixed size
// (StateBytes); it is not safe for concurrent use.
type Detector struct {
	o Options

	n     int
	first time.Time

	fast, slow ewma // fast and slow levels of the values
	fastErr    float64
	day        [dayBuckets]bucket
	week       [weekBuckets]bucket

	// distribution change
	lo, hi  float64
	ring    [maxWindow]uint8
	ringN   int
	cur     [maxBins]float64
	ref     [maxBins]float64
	refN    float64
	calRes  calib
	calLev  calib
	calDist calib

	hold int
}

// New answers a Detector with opts (zero fields take their defaults).
func New(opts Options) *Detector {
	return &Detector{o: opts.withDefaults()}
}

// StateBytes answers the size in bytes of a Detector's state, the same for
// every series.
func StateBytes() int {
	return int(reflect.TypeFor[Detector]().Size())
}

// Update scores v at t against the points before it, then learns it.
func (d *Detector) Update(t time.Time, v float64) Point {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Point{Expected: d.fast.mean, Low: d.fast.mean, High: d.fast.mean}
	}
	o := d.o
	if d.n == 0 {
		d.first = t
		d.lo, d.hi = v, v
	}
	d.n++
	span := t.Sub(d.first)

	// Residual against the best baseline.
	pred, err, seasonal := d.fast.mean, d.fastErr, false
	di := dayIndex(t)
	wi := weekIndex(t)
	if span >= time.Duration(o.MinDays)*24*time.Hour && d.day[di].n > 0 && d.dayErr() < err {
		pred, err, seasonal = d.day[di].mean, d.day[di].err, true
	}
	if span >= time.Duration(o.MinWeeks)*7*24*time.Hour && d.week[wi].n > 0 && d.weekErr() < math.Min(err, d.dayErr()) {
		pred, err, seasonal = d.week[wi].mean, d.week[wi].err, true
	}
	floor := 1e-3*math.Abs(d.slow.mean) + 1e-9
	sigma := 1.2533*err + floor
	res := math.Abs(v-pred) / sigma

	// Level shift: the fast level (with v) against the slow one.
	fastNext := d.fast.mean + o.FastAlpha*(v-d.fast.mean)
	lev := math.Abs(fastNext-d.slow.mean) / (1.2533*d.slow.dev*math.Sqrt(o.FastAlpha/(2-o.FastAlpha)) + floor)

	// A value well outside the range seen so far.
	spatial := false
	if r := d.hi - d.lo; d.n > o.Warmup && (v > d.hi+o.Spatial*r || v < d.lo-o.Spatial*r) {
		spatial = true
	}

	// Distribution change.
	dist := d.distStat(v)

	pt := Point{Expected: pred, Low: pred - 3*sigma, High: pred + 3*sigma, Seasonal: seasonal}
	pRes := d.calRes.p(res, o.CalAlpha)
	pLev := d.calLev.p(lev, o.CalAlpha)
	pDist := d.calDist.p(dist, o.CalAlpha)
	if o.mask&1 != 0 {
		pRes = 1
	}
	if o.mask&2 != 0 {
		pLev = 1
	}
	if o.mask&4 != 0 {
		pDist = 1
	}
	p := 3 * math.Min(pRes, math.Min(pLev, pDist))
	if spatial && o.mask&8 == 0 {
		p = math.Min(p, math.Pow(10, -o.Decades*o.DetectAt*1.5))
	}
	score := surprise(p, o.Decades)
	if d.n <= o.Warmup {
		score = 0
	}
	if d.hold > 0 {
		d.hold--
		score = math.Min(score, o.DetectAt*0.5)
	} else if score >= o.DetectAt {
		d.hold = o.Hold
	}
	pt.Score = score

	d.learn(t, v, di, wi)
	return pt
}

func (d *Detector) dayErr() float64 {
	s, n := 0.0, 0
	for _, b := range d.day {
		if b.n > 0 {
			s += b.err
			n++
		}
	}
	if n == 0 {
		return math.Inf(1)
	}
	return s / float64(n)
}

func (d *Detector) weekErr() float64 {
	s, n := 0.0, 0
	for _, b := range d.week {
		if b.n > 0 {
			s += b.err
			n++
		}
	}
	if n == 0 {
		return math.Inf(1)
	}
	return s / float64(n)
}

// learn folds v into the baselines.
func (d *Detector) learn(_ time.Time, v float64, di, wi int) {
	o := d.o
	if d.n > 1 {
		a := math.Max(o.SlowAlpha, 1/float64(d.n))
		d.fastErr += a * (math.Abs(v-d.fast.mean) - d.fastErr)
	}
	d.fast.update(v, o.FastAlpha)
	d.slow.update(v, o.SlowAlpha)
	for _, b := range []*bucket{&d.day[di], &d.week[wi]} {
		b.n++
		if b.n == 1 {
			b.mean = v
			b.err = d.fastErr
			continue
		}
		a := math.Max(o.SeasonAlpha, 1/float64(b.n))
		b.err += math.Max(o.SlowAlpha, a/4) * (math.Abs(v-b.mean) - b.err)
		b.mean += a * (v - b.mean)
	}
}

// distStat answers 2*W*KL(recent || long run) with v in the recent
// window, and moves the window on.
func (d *Detector) distStat(v float64) float64 {
	o := d.o
	if v < d.lo {
		d.lo = v
	}
	if v > d.hi {
		d.hi = v
	}
	bin := 0
	if d.hi > d.lo {
		bin = int(float64(o.Bins) * (v - d.lo) / (d.hi - d.lo))
		bin = min(max(bin, 0), o.Bins-1)
	}
	slot := d.ringN % o.Window
	if d.ringN >= o.Window {
		d.cur[d.ring[slot]]--
	}
	d.ring[slot] = uint8(bin)
	d.cur[bin]++
	d.ringN++
	w := float64(min(d.ringN, o.Window))
	stat := 0.0
	if d.refN > 0 && d.ringN >= o.Window {
		for b := 0; b < o.Bins; b++ {
			if d.cur[b] == 0 {
				continue
			}
			pc := d.cur[b] / w
			pr := (d.ref[b] + 0.5/float64(o.Bins)) / (d.refN + 0.5)
			stat += pc * math.Log(pc/pr)
		}
		stat *= 2 * w
	}
	// The long-run histogram decays as a window of about 1/SlowAlpha.
	decay := 1 - o.SlowAlpha
	d.refN = d.refN*decay + 1
	for b := 0; b < o.Bins; b++ {
		d.ref[b] *= decay
	}
	d.ref[bin]++
	return stat
}

func dayIndex(t time.Time) int {
	return (t.Hour()*60 + t.Minute()) * dayBuckets / (24 * 60)
}

func weekIndex(t time.Time) int {
	return int(t.Weekday())*24 + t.Hour()
}
