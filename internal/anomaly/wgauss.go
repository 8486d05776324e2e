package anomaly

import "math"

// WindowedGaussian is NAB's baseline detector, kept as a reference: the
// mean and standard deviation of the last Size values (recomputed every
// Step values), and a point's score is one minus its tail probability
// under that normal distribution. Its state is Size values.
type WindowedGaussian struct {
	size, step int
	window     []float64
	pending    []float64
	mean, std  float64
}

// NewWindowedGaussian answers a WindowedGaussian over size values moved on
// every step values (NAB's are 6400 and 100; 0 takes those).
func NewWindowedGaussian(size, step int) *WindowedGaussian {
	if size <= 0 {
		size = 6400
	}
	if step <= 0 {
		step = 100
	}
	return &WindowedGaussian{size: size, step: step}
}

// Score scores v against the window, then adds it.
func (w *WindowedGaussian) Score(v float64) float64 {
	score := 0.0
	if len(w.window) > 0 {
		score = 1 - w.tail(v)
	}
	if len(w.window) < w.size {
		w.window = append(w.window, v)
		w.refit()
	} else {
		w.pending = append(w.pending, v)
		if len(w.pending) == w.step {
			w.window = append(w.window[:0], append(w.window[w.step:], w.pending...)...)
			w.pending = w.pending[:0]
			w.refit()
		}
	}
	return score
}

// tail is the one-sided tail probability of v's distance from the mean.
func (w *WindowedGaussian) tail(v float64) float64 {
	return upperP(math.Abs(v-w.mean) / w.std)
}

func (w *WindowedGaussian) refit() {
	s := 0.0
	for _, x := range w.window {
		s += x
	}
	w.mean = s / float64(len(w.window))
	v := 0.0
	for _, x := range w.window {
		v += (x - w.mean) * (x - w.mean)
	}
	w.std = math.Sqrt(v / float64(len(w.window)))
	if w.std == 0 {
		w.std = 1e-6 // as NAB's: a constant window is not a certainty
	}
}
