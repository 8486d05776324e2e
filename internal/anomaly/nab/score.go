package nab

import (
	"math"
	"sort"
)

// sigmoid is NAB's scaled sigmoid s(y) = 2/(1+exp(5y)) - 1.
func sigmoid(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }

// Tally is the raw score of a detector on some files at one threshold.
type Tally struct {
	// Score is the raw score: the windows' scores plus the false
	// detections' scores.
	Score float64 `json:"score"`
	// Windows, TP, FN and FP count the windows, the windows detected, the
	// windows missed and the detections outside every window.
	Windows int `json:"windows"`
	TP      int `json:"tp"`
	FN      int `json:"fn"`
	FP      int `json:"fp"`
}

// Add sums two tallies.
func (t Tally) Add(o Tally) Tally {
	return Tally{Score: t.Score + o.Score, Windows: t.Windows + o.Windows, TP: t.TP + o.TP, FN: t.FN + o.FN, FP: t.FP + o.FP}
}

// Normalized answers 100*(S - S_null)/(S_perfect - S_null) under p, with
// S_null = -windows*A_fn and S_perfect = windows*A_tp. Without windows it
// answers the raw score (0 for a detector that never fires, below for
// every false detection).
func (t Tally) Normalized(p Profile) float64 {
	if t.Windows == 0 {
		return t.Score
	}
	null := -float64(t.Windows) * p.FN
	perfect := float64(t.Windows) * p.TP
	return 100 * (t.Score - null) / (perfect - null)
}

// tpScore is the score of the first detection of window w at row i.
func tpScore(w Window, i int, p Profile) float64 {
	width := float64(w.End - w.Start + 1)
	y := -float64(w.End-i+1) / width
	return p.TP * sigmoid(y) / sigmoid(-1)
}

// fpScore is the score of a detection at row i outside every window; prev
// is the index of the window before it or -1.
func fpScore(ws []Window, prev, i int, p Profile) float64 {
	if prev < 0 {
		return -p.FP
	}
	w := ws[prev]
	width := float64(w.End - w.Start + 1)
	y := math.Abs(float64(i-w.End)) / math.Max(width-1, 1)
	return p.FP * sigmoid(y)
}

// ScoreAt scores one file's per-row anomaly scores under p at threshold
// thr: rows in the probation period are not scored, a row with a score >=
// thr is a detection, only the first detection in a window counts.
func ScoreAt(f *File, scores []float64, p Profile, thr float64) Tally {
	t := Tally{Windows: len(f.Windows)}
	detected := make([]bool, len(f.Windows))
	w, prev := 0, -1
	for i := f.Probation(); i < len(scores) && i < len(f.Values); i++ {
		for w < len(f.Windows) && f.Windows[w].End < i {
			prev = w
			w++
		}
		if scores[i] < thr {
			continue
		}
		if w < len(f.Windows) && f.Windows[w].Start <= i {
			if !detected[w] {
				detected[w] = true
				t.TP++
				t.Score += tpScore(f.Windows[w], i, p)
			}
			continue
		}
		t.FP++
		t.Score += fpScore(f.Windows, prev, i, p)
	}
	for _, d := range detected {
		if !d {
			t.FN++
			t.Score -= p.FN
		}
	}
	return t
}

// step is a change of the raw score when the threshold falls to at or
// below thr.
type step struct {
	thr   float64
	delta float64
}

// steps answers the raw score of a file as a step function of the
// threshold: the score with no detection (every window missed) and the
// changes as the threshold decreases. A false detection adds its score at
// its row's value; a window's first detection moves earlier at each new
// running maximum of the scores inside it.
func steps(f *File, scores []float64, p Profile, out []step) (float64, []step) {
	base := -float64(len(f.Windows)) * p.FN
	w, prev := 0, -1
	probation := f.Probation()
	n := min(len(scores), len(f.Values))
	for i := probation; i < n; i++ {
		for w < len(f.Windows) && f.Windows[w].End < i {
			prev = w
			w++
		}
		if w < len(f.Windows) && f.Windows[w].Start <= i {
			continue
		}
		out = append(out, step{scores[i], fpScore(f.Windows, prev, i, p)})
	}
	for _, win := range f.Windows {
		// Records: rows whose score exceeds every earlier score of the
		// window. For a threshold between the record before and this one
		// the first detection is this row.
		type rec struct {
			v float64
			i int
		}
		var recs []rec
		for i := max(win.Start, probation); i <= win.End && i < n; i++ {
			if len(recs) == 0 || scores[i] > recs[len(recs)-1].v {
				recs = append(recs, rec{scores[i], i})
			}
		}
		cur := -p.FN
		for k := len(recs) - 1; k >= 0; k-- {
			s := tpScore(win, recs[k].i, p)
			out = append(out, step{recs[k].v, s - cur})
			cur = s
		}
	}
	return base, out
}

// Run is one detector's per-row scores on the files of a corpus, in the
// corpus's file order.
type Run struct {
	Files  []*File
	Scores [][]float64
}

// BestThreshold answers the threshold that maximizes the raw score of the
// run's files under p, and that score. Ties keep the highest threshold.
func (r *Run) BestThreshold(p Profile) (float64, float64) {
	base := 0.0
	var all []step
	for k, f := range r.Files {
		b, s := steps(f, r.Scores[k], p, all)
		base += b
		all = s
	}
	sort.Slice(all, func(i, j int) bool { return all[i].thr > all[j].thr })
	best, bestThr := base, math.Inf(1)
	cur := base
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].thr == all[i].thr {
			cur += all[j].delta
			j++
		}
		if cur > best+1e-12 {
			best, bestThr = cur, all[i].thr
		}
		i = j
	}
	if math.IsInf(bestThr, 1) {
		bestThr = 1.0000001 // never fires: above every score in [0,1]
	}
	return bestThr, best
}

// Tally scores the run's files whose category passes keep (nil: all) at
// threshold thr under p.
func (r *Run) Tally(p Profile, thr float64, keep func(category string) bool) Tally {
	var t Tally
	for k, f := range r.Files {
		if keep == nil || keep(f.Category) {
			t = t.Add(ScoreAt(f, r.Scores[k], p, thr))
		}
	}
	return t
}

// Subset answers the run restricted to the files whose category passes
// keep.
func (r *Run) Subset(keep func(category string) bool) *Run {
	out := &Run{}
	for k, f := range r.Files {
		if keep(f.Category) {
			out.Files = append(out.Files, f)
			out.Scores = append(out.Scores, r.Scores[k])
		}
	}
	return out
}
