// Package anomaly is an online anomaly detector for univariate time
// series: each point is scored in [0,1] from the points before it only,
// with an expected range, in a state of fixed size per series.
//
// A Detector combines four cheap detectors, chosen by ablation on the
// NAB corpus (docs/intelligence.md):
//
//   - range: a value beyond the range of the recent points (by a
//     fraction of that range) is anomalous by itself;
//   - distribution change: the relative entropy of the histogram of the
//     last values against a long-run histogram, as a tail probability
//     against the running distribution of its own past values;
//   - context novelty: a context (the fine bins of the last few values)
//     never seen before, as the probability of as many novel contexts
//     among the last points at the series' own long-run rate of novelty;
//   - anomaly likelihood: a short mean of the score the two before make
//     against the long-run mean and deviation of that score, in the
//     manner of Numenta's anomaly likelihood, for anomalies that show as
//     a run of moderate scores rather than one strong one.
//
// The smallest probability, with a weighted Bonferroni correction,
// becomes the score, -log10(p)/Decades; a value out of range scores 1.
// A point in the range at the level of a recent detection needs stronger
// evidence (its p-value is multiplied by RepeatPenalty).
// After a detection the score is held below the detection level for a
// while (NAB rewards the first detection of an anomaly and punishes the
// repeats), except for a value out of range. The expected
// range of a point is the best of a fast level (EWMA) and, once enough
// cycles were seen, seasonal baselines per half hour of the day and per
// hour of the week, plus or minus three scaled mean absolute errors.
package anomaly

import (
	"math"
	"math/bits"
	"reflect"
	"time"
)

// Options configure a Detector. The zero value is the configuration tuned
// on the NAB corpus (docs/intelligence.md); every series uses the same.
type Options struct {
	// FastAlpha is the weight of a new value in the fast level that
	// predicts the expected value (default 0.1).
	FastAlpha float64
	// SlowAlpha is the weight of a new value in the slow level and in
	// the error scales (default 0.002).
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
	// Prior is the pseudo-count spread over the long-run histogram's
	// bins (default 0.05): the smaller, the more a value in a bin
	// rarely or never visited weighs.
	Prior float64
	// Spatial is the fraction of the range of the recent values (the
	// last 16,384 points) by which a value must leave that range to be
	// anomalous by itself (default 0.05).
	Spatial float64
	// Decades maps a tail probability p to the score -log10(p)/Decades
	// (default 8: p = 1e-8 scores 1).
	Decades float64
	// CtxPenalty and LikPenalty multiply the p-values of the context
	// novelty and of the anomaly likelihood before they are compared
	// with the distribution change's (defaults 100 and 1000): the weights
	// of a weighted Bonferroni correction, the weaker evidence weighing
	// less.
	CtxPenalty, LikPenalty float64
	// LikShort and LikLong are the weights of a new raw score in the
	// anomaly likelihood's short mean and in its long-run mean and
	// deviation (defaults 0.1 and 0.001: about 10 and 1,000 points).
	LikShort, LikLong float64
	// RepeatWindow and RepeatPenalty make a repeat need stronger
	// evidence: a point inside the range at the level of one of the last
	// repeatSlots detections (its fine bin or a neighbour), less than
	// RepeatWindow points after it (default 3,000), has its p-value
	// multiplied by RepeatPenalty (default 1,000: three decades). A value
	// beyond the range is never penalized.
	RepeatWindow  int
	RepeatPenalty float64
	// DetectAt is the score at or above which a point is a detection
	// (default 0.8). After a detection the score is capped below
	// DetectAt for HoldFraction of the points seen so far (default 0.15),
	// at most Hold points (default 400): a young series recovers fast, an
	// old one does not report one anomaly many times. A value out of
	// the range is never held: it scores 1 and starts a new hold.
	DetectAt     float64
	Hold         int
	HoldFraction float64
	// Warmup is the number of points scored 0 while the state fills
	// (default 30).
	Warmup int

	// disable turns detectors off in ablation experiments (TestTune):
	// bit 0 the range, 1 the distribution change, 2 the context novelty,
	// 3 the anomaly likelihood.
	disable int
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
	def(&o.SlowAlpha, 0.002)
	def(&o.SeasonAlpha, 0.1)
	defi(&o.MinDays, 3)
	defi(&o.MinWeeks, 2)
	def(&o.CalAlpha, 0.005)
	defi(&o.Bins, 8)
	defi(&o.Window, 24)
	def(&o.Decades, 8)
	def(&o.Spatial, 0.05)
	def(&o.CtxPenalty, 100)
	def(&o.LikPenalty, 1000)
	def(&o.LikShort, 0.1)
	def(&o.LikLong, 0.001)
	def(&o.Prior, 0.05)
	defi(&o.RepeatWindow, 3000)
	def(&o.RepeatPenalty, 1000)
	def(&o.DetectAt, 0.8)
	defi(&o.Hold, 400)
	def(&o.HoldFraction, 0.15)
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
	ctxBits     = 8192
	// The range is that of the last rangeBlocks*rangeBlock points (16384:
	// 57 days of 5-minute points, 11 days of 1-minute ones).
	rangeBlocks = 16
	rangeBlock  = 1024
	ctxLen      = 4
	repeatSlots = 4 // detections whose level is remembered
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
	mean, err float32 // float32: the seasonal state is most of a series' bytes
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
	errSum     [2]float64 // sums of the day's and the week's bucket errors
	errN       [2]int32   // buckets seen

	// range and distribution change
	lo, hi  float64 // the range of the last rangeBlocks blocks
	blocks  [rangeBlocks][2]float64
	ring    [maxWindow]uint8
	ringN   int
	cur     [maxBins]float64
	ref     [maxBins]float64
	refN    float64
	calDist calib

	hold int

	// the fine bins of the last repeatSlots detections and the points at
	// which they were made (0: none)
	detBin [repeatSlots]uint8
	detAt  [repeatSlots]int32
	detK   uint8

	// anomaly likelihood: the short mean of the raw scores, and their
	// long-run mean and deviation
	likShort float64
	likLong  ewma

	// context novelty
	ctx       uint32 // last ctxLen fine bins, 4 bits each
	seen      [ctxBits / 64]uint64
	novelBits uint8   // novelty of the last 8 points
	novelRate float64 // long-run rate of novel contexts
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
		pred, err, seasonal = float64(d.day[di].mean), float64(d.day[di].err), true
	}
	if span >= time.Duration(o.MinWeeks)*7*24*time.Hour && d.week[wi].n > 0 && d.weekErr() < math.Min(err, d.dayErr()) {
		pred, err, seasonal = float64(d.week[wi].mean), float64(d.week[wi].err), true
	}
	floor := 1e-3*math.Abs(d.slow.mean) + 1e-9
	sigma := 1.2533*err + floor
	pt := Point{Expected: pred, Low: pred - 3*sigma, High: pred + 3*sigma, Seasonal: seasonal}

	// A value well outside the range of the recent points.
	r := d.hi - d.lo
	outside := d.n > o.Warmup && (v > d.hi+o.Spatial*r || v < d.lo-o.Spatial*r) && o.disable&1 == 0

	pDist := d.calDist.p(d.distStat(v), o.CalAlpha)
	pCtx := d.novelty(v)
	if o.disable&2 != 0 {
		pDist = 1
	}
	if o.disable&4 != 0 {
		pCtx = 1
	}
	pCtx = math.Min(1, pCtx*o.CtxPenalty)
	pLik := d.likelihood(surprise(3*math.Min(pDist, pCtx), o.Decades))
	if o.disable&8 != 0 {
		pLik = 1
	}
	pLik = math.Min(1, pLik*o.LikPenalty)
	p := 4 * math.Min(pDist, math.Min(pCtx, pLik)) // Bonferroni over the four detectors
	level := uint8(d.ctx & 15)                     // v's fine bin, from novelty
	if d.repeats(level) {
		p = math.Min(1, p*o.RepeatPenalty)
	}
	if outside {
		p = 0
	}
	score := surprise(p, o.Decades)
	if d.n <= o.Warmup {
		score = 0
	}
	if d.hold > 0 && !outside {
		d.hold--
		score = math.Min(score, o.DetectAt*0.5)
	} else if score >= o.DetectAt {
		d.hold = min(o.Hold, int(float64(d.n)*o.HoldFraction))
		k := d.detK % repeatSlots
		d.detBin[k], d.detAt[k] = level, int32(min(d.n, math.MaxInt32))
		d.detK++
	}
	pt.Score = score

	d.learn(t, v, di, wi)
	return pt
}

// repeats tells whether level, a fine bin, is that of one of the last
// detections or a neighbour of it, made less than RepeatWindow points ago.
func (d *Detector) repeats(level uint8) bool {
	for k, at := range d.detAt {
		diff := int(level) - int(d.detBin[k])
		if at > 0 && d.n-int(at) < d.o.RepeatWindow && diff >= -1 && diff <= 1 {
			return true
		}
	}
	return false
}

// likelihood answers the tail probability of the short mean of the raw
// scores, raw included, against their long-run mean and deviation, then
// folds raw in.
func (d *Detector) likelihood(raw float64) float64 {
	o := d.o
	d.likShort += o.LikShort * (raw - d.likShort)
	p := 1.0
	if d.likLong.n >= 100 {
		p = upperP((d.likShort - d.likLong.mean) / (1.2533*d.likLong.dev + 1e-3))
	}
	d.likLong.update(raw, o.LikLong)
	return p
}

// dayErr and weekErr answer the mean error of the seasonal buckets seen.
func (d *Detector) dayErr() float64 { return meanErr(d.errSum[0], d.errN[0]) }

func (d *Detector) weekErr() float64 { return meanErr(d.errSum[1], d.errN[1]) }

func meanErr(sum float64, n int32) float64 {
	if n == 0 {
		return math.Inf(1)
	}
	return sum / float64(n)
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
	for k, b := range [2]*bucket{&d.day[di], &d.week[wi]} {
		b.n++
		if b.n == 1 {
			b.mean = float32(v)
			b.err = float32(d.fastErr)
			d.errSum[k] += float64(b.err)
			d.errN[k]++
			continue
		}
		a := math.Max(o.SeasonAlpha, 1/float64(b.n))
		mean, err := float64(b.mean), float64(b.err)
		b.err = float32(err + math.Max(o.SlowAlpha, a/4)*(math.Abs(v-mean)-err))
		b.mean = float32(mean + a*(v-mean))
		d.errSum[k] += float64(b.err) - err
	}
}

// distStat answers 2*W*KL(recent || long run) with v in the recent
// window, and moves the window on.
func (d *Detector) distStat(v float64) float64 {
	o := d.o
	d.extend(v)
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
			pr := (d.ref[b] + o.Prior/float64(o.Bins)) / (d.refN + o.Prior)
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

// novelty marks whether the context of v (the fine bins of the last
// values) was never seen, and answers the probability of as many novel
// contexts among the last 8 points at the long-run rate of novelty. The
// fine bins divide the square root of the position in the range, finer
// near its bottom, where most values of a spiky series lie.
func (d *Detector) novelty(v float64) float64 {
	bin := uint32(0)
	if d.hi > d.lo {
		u := math.Sqrt(math.Max((v-d.lo)/(d.hi-d.lo), 0))
		bin = uint32(min(max(int(16*u), 0), 15))
	}
	d.ctx = (d.ctx<<4 | bin) & (1<<(4*ctxLen) - 1)
	h := (d.ctx * 2654435761) >> (32 - 13) // Fibonacci hash to 13 bits
	word, bit := h/64, uint64(1)<<(h%64)
	novel := d.seen[word]&bit == 0
	d.seen[word] |= bit
	d.novelBits <<= 1
	x := 0.0
	if novel {
		d.novelBits |= 1
		x = 1
	}
	r := math.Max(d.novelRate, 1e-4)
	d.novelRate += math.Max(0.002, 1/float64(d.n)) * (x - d.novelRate)
	if d.n < 100 || !novel {
		return 1
	}
	k := bits.OnesCount8(d.novelBits)
	// P(at least k of 8) ~ C(8,k) r^k for a small r.
	return math.Min(1, binom8[k]*math.Pow(r, float64(k)))
}

var binom8 = [9]float64{1, 8, 28, 56, 70, 56, 28, 8, 1}

// extend adds v to the range of the recent points: the minimum and the
// maximum of rangeBlocks blocks of rangeBlock points, the oldest block
// replaced when a new one starts.
func (d *Detector) extend(v float64) {
	i := d.n - 1 // points before v
	k := i / rangeBlock % rangeBlocks
	if i%rangeBlock != 0 {
		b := &d.blocks[k]
		b[0], b[1] = math.Min(b[0], v), math.Max(b[1], v)
		d.lo, d.hi = math.Min(d.lo, v), math.Max(d.hi, v)
		return
	}
	d.blocks[k] = [2]float64{v, v}
	d.lo, d.hi = v, v
	for _, b := range d.blocks[:min(i/rangeBlock+1, rangeBlocks)] {
		d.lo, d.hi = math.Min(d.lo, b[0]), math.Max(d.hi, b[1])
	}
}
