package anomaly

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

// noise is a deterministic pseudo-random sequence in [-1, 1).
type noise uint32

func (n *noise) next() float64 {
	*n = *n*1664525 + 1013904223
	return float64(uint32(*n)>>8)/(1<<23) - 1
}

func TestDetectorSpike(t *testing.T) {
	d := New(Options{})
	var nz noise = 1
	for i := range 2000 {
		p := d.Update(t0.Add(time.Duration(i)*time.Minute), 100+5*nz.next())
		require.GreaterOrEqual(t, p.Score, 0.0)
		require.LessOrEqual(t, p.Score, 1.0)
		if i > 500 {
			require.Less(t, p.Score, 0.8, "point %d of steady noise", i)
			require.Less(t, p.Low, 100.0)
			require.Greater(t, p.High, 100.0)
		}
	}
	p := d.Update(t0.Add(2000*time.Minute), 200)
	require.GreaterOrEqual(t, p.Score, 0.8)
	require.Greater(t, 200.0, p.High)
	// The repeat right after is held below the detection level.
	p = d.Update(t0.Add(2001*time.Minute), 199)
	require.Less(t, p.Score, 0.8)
	// A value beyond the new range is not held: it is a new detection,
	// and starts a new hold.
	p = d.Update(t0.Add(2002*time.Minute), 300)
	require.Equal(t, 1.0, p.Score)
	p = d.Update(t0.Add(2003*time.Minute), 300)
	require.Less(t, p.Score, 0.8)
	// A value back in the range during the hold is held too.
	p = d.Update(t0.Add(2004*time.Minute), 150)
	require.Less(t, p.Score, 0.8)
}

// TestLikelihood checks the anomaly likelihood: a run of moderate raw
// scores is improbable after a long run of low ones, and probable after
// a long run of restless ones.
func TestLikelihood(t *testing.T) {
	var nz noise = 7
	tests := []struct {
		name       string
		background func() float64
		run        float64
		maxP, minP float64
	}{
		{"quiet then a run", func() float64 { return 0 }, 0.5, 1e-9, 0},
		{"restless then a run", func() float64 { return 0.25 + 0.25*nz.next() }, 0.5, 1, 1e-3},
		{"quiet stays quiet", func() float64 { return 0 }, 0, 1, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Options{})
			for range 2000 {
				d.likelihood(tt.background())
			}
			p := 1.0
			for range 10 {
				p = d.likelihood(tt.run)
			}
			require.LessOrEqual(t, p, tt.maxP)
			require.GreaterOrEqual(t, p, tt.minP)
		})
	}
}

func TestDetectorLevelShift(t *testing.T) {
	d := New(Options{})
	var nz noise = 3
	for i := range 3000 {
		d.Update(t0.Add(time.Duration(i)*5*time.Minute), 50+2*nz.next())
	}
	// A shift within the range's tolerance but far in noise units.
	hit := false
	for i := range 50 {
		if d.Update(t0.Add(time.Duration(3000+i)*5*time.Minute), 51.8+0.1*nz.next()).Score >= 0.8 {
			hit = true
		}
	}
	require.True(t, hit)
}

func TestDetectorSeasonal(t *testing.T) {
	d := New(Options{})
	var nz noise = 5
	daily := func(tm time.Time) float64 {
		h := float64(tm.Hour()) + float64(tm.Minute())/60
		return 100 + 50*math.Sin(2*math.Pi*h/24)
	}
	var seasonal bool
	for i := range 6 * 288 { // six days of 5-minute points
		tm := t0.Add(time.Duration(i) * 5 * time.Minute)
		p := d.Update(tm, daily(tm)+nz.next())
		if i > 5*288 {
			seasonal = seasonal || p.Seasonal
			require.InDelta(t, daily(tm), p.Expected, 8, "point %d", i)
		}
	}
	require.True(t, seasonal, "a daily series uses its daily baseline after three days")
}

// TestDetectorOnline checks that a point's score depends on the points
// before it only.
func TestDetectorOnline(t *testing.T) {
	var nz noise = 9
	vals := make([]float64, 1500)
	for i := range vals {
		vals[i] = 10 + nz.next()
	}
	a, b := New(Options{}), New(Options{})
	for i, v := range vals {
		tm := t0.Add(time.Duration(i) * time.Minute)
		pa := a.Update(tm, v)
		if i >= 1000 {
			v = 1000 // b's future differs from a's
		}
		pb := b.Update(tm, v)
		if i <= 1000 {
			if i < 1000 {
				require.Equal(t, pa, pb, "point %d", i)
			}
		}
	}
}

func TestDetectorNaN(t *testing.T) {
	d := New(Options{})
	for i := range 100 {
		d.Update(t0.Add(time.Duration(i)*time.Minute), 1)
	}
	p := d.Update(t0.Add(101*time.Minute), math.NaN())
	require.Equal(t, 0.0, p.Score)
	require.Less(t, d.Update(t0.Add(102*time.Minute), 1).Score, 0.8)
}

func TestStateBytes(t *testing.T) {
	require.Less(t, StateBytes(), 5000)
	require.Greater(t, StateBytes(), 1024)
}

func TestWindowedGaussian(t *testing.T) {
	w := NewWindowedGaussian(10, 2)
	require.Equal(t, 0.0, w.Score(5))
	require.InDelta(t, 0.5, w.Score(5), 1e-9) // constant window: value at the mean
	for range 10 {
		w.Score(5)
	}
	require.InDelta(t, 1.0, w.Score(6), 1e-9)
}

func BenchmarkDetector(b *testing.B) {
	var nz noise = 1
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = 100 + 10*nz.next()
	}
	d := New(Options{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.Update(t0.Add(time.Duration(i)*time.Minute), vals[i%len(vals)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

func TestStateBytesReport(t *testing.T) {
	t.Logf("state per series: %d bytes", StateBytes())
}

// TestRepeats checks which levels count as repeats of a detection: its
// fine bin or a neighbour, less than RepeatWindow (3,000) points after it.
func TestRepeats(t *testing.T) {
	const now = 5000
	tests := []struct {
		name  string
		bin   uint8 // the level of the detection
		at    int32 // the point of the detection (0: none)
		level uint8
		want  bool
	}{
		{"no detection", 0, 0, 0, false},
		{"same level", 12, 4000, 12, true},
		{"a neighbour below", 12, 4000, 11, true},
		{"a neighbour above", 12, 4000, 13, true},
		{"two bins above", 12, 4000, 14, false},
		{"two bins below", 12, 4000, 10, false},
		{"level 0 and its neighbour", 0, 4000, 1, true},
		{"just inside the window", 12, now - 2999, 12, true},
		{"the window ended", 12, now - 3000, 12, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Options{})
			d.n = now
			d.detBin[0], d.detAt[0] = tt.bin, tt.at
			require.Equal(t, tt.want, d.repeats(tt.level))
		})
	}
}
