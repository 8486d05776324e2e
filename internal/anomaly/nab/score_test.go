package nab

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

var standard = Profile{Name: "standard", TP: 1, FP: 0.11, FN: 1}

// file answers a file of n rows (probation 15) with the windows given.
func file(n int, ws ...Window) *File {
	return &File{Category: "c", Name: "f.csv", Values: make([]float64, n), Windows: ws}
}

func scoresWith(n int, hits map[int]float64) []float64 {
	s := make([]float64, n)
	for i, v := range hits {
		s[i] = v
	}
	return s
}

func TestScoreAt(t *testing.T) {
	f := file(100, Window{40, 49})
	sOne := sigmoid(-1)
	tests := []struct {
		name string
		hits map[int]float64
		want Tally
	}{
		{"none", nil, Tally{Score: -1, Windows: 1, FN: 1}},
		{"window start", map[int]float64{40: 1}, Tally{Score: 1, Windows: 1, TP: 1}},
		{"only the first in a window", map[int]float64{40: 1, 45: 1}, Tally{Score: 1, Windows: 1, TP: 1}},
		{"late in the window", map[int]float64{49: 1}, Tally{Score: sigmoid(-0.1) / sOne, Windows: 1, TP: 1}},
		{"in probation", map[int]float64{5: 1}, Tally{Score: -1, Windows: 1, FN: 1}},
		{"before any window", map[int]float64{20: 1}, Tally{Score: -1.11, Windows: 1, FN: 1, FP: 1}},
		{"just after the window", map[int]float64{50: 1}, Tally{Score: -1 + 0.11*sigmoid(1.0/9), Windows: 1, FN: 1, FP: 1}},
		{"long after the window", map[int]float64{99: 1}, Tally{Score: -1 + 0.11*sigmoid(50.0/9), Windows: 1, FN: 1, FP: 1}},
		{"below the threshold", map[int]float64{40: 0.4}, Tally{Score: -1, Windows: 1, FN: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScoreAt(f, scoresWith(100, tt.hits), standard, 0.5)
			require.InDelta(t, tt.want.Score, got.Score, 1e-9)
			got.Score = tt.want.Score
			require.Equal(t, tt.want, got)
		})
	}
	require.InDelta(t, 0.0, sigmoid(0), 1e-12)
	require.Less(t, sigmoid(5), -0.99)
}

func TestNormalized(t *testing.T) {
	require.InDelta(t, 100.0, Tally{Score: 3, Windows: 3}.Normalized(standard), 1e-9)
	require.InDelta(t, 0.0, Tally{Score: -3, Windows: 3}.Normalized(standard), 1e-9)
	require.InDelta(t, 50.0, Tally{Score: 0, Windows: 3}.Normalized(standard), 1e-9)
	require.InDelta(t, -0.22, Tally{Score: -0.22}.Normalized(standard), 1e-9)
}

// TestBestThreshold checks the exact sweep against scoring every
// candidate threshold one by one.
func TestBestThreshold(t *testing.T) {
	f1 := file(200, Window{50, 69}, Window{150, 169})
	f2 := file(120)
	s1 := make([]float64, 200)
	s2 := make([]float64, 120)
	x := uint32(7)
	rnd := func() float64 { x = x*1664525 + 1013904223; return float64(x>>8) / (1 << 24) }
	for i := range s1 {
		s1[i] = rnd() * 0.8
	}
	for i := range s2 {
		s2[i] = rnd() * 0.9
	}
	s1[55], s1[160], s1[165] = 0.95, 0.85, 0.97
	r := &Run{Files: []*File{f1, f2}, Scores: [][]float64{s1, s2}}
	for _, p := range []Profile{standard, {TP: 1, FP: 0.22, FN: 1}, {TP: 1, FP: 0.11, FN: 2}} {
		thr, best := r.BestThreshold(p)
		require.InDelta(t, best, r.Tally(p, thr, nil).Score, 1e-9)
		brute := math.Inf(-1)
		for _, s := range [][]float64{s1, s2} {
			for _, c := range s {
				brute = math.Max(brute, r.Tally(p, c, nil).Score)
			}
		}
		brute = math.Max(brute, r.Tally(p, 2, nil).Score)
		require.InDelta(t, brute, best, 1e-9)
	}
}

func TestLoad(t *testing.T) {
	c, err := Load("../../../../shared/data/nab")
	require.NoError(t, err)
	require.Len(t, c.Files, 51)
	require.Equal(t, "standard", c.Profiles[0].Name)
	require.Len(t, c.Profiles, 3)
	windows := 0
	for _, f := range c.Files {
		windows += len(f.Windows)
		for _, w := range f.Windows {
			require.LessOrEqual(t, w.Start, w.End, f.Key())
			require.Less(t, w.End, len(f.Values), f.Key())
		}
	}
	require.Equal(t, 97, windows)

	_, err = Load(t.TempDir())
	require.Error(t, err)
}
