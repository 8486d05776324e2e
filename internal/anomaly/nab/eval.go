package nab

import (
	"sort"
	"time"
)

// ScoreFunc scores the next row of one series online: it sees the rows in
// order, once, and answers a score in [0,1] from the rows before and this
// one.
type ScoreFunc func(t time.Time, v float64) float64

// Evaluate runs a fresh detector from newDetector over every file of c and
// answers the scores and the rows per second (scoring only, one
// goroutine). progress, when set, is called after each file.
func Evaluate(c *Corpus, newDetector func() ScoreFunc, progress func(done int, f *File)) (*Run, float64) {
	r := &Run{Files: c.Files, Scores: make([][]float64, len(c.Files))}
	var elapsed time.Duration
	for k, f := range c.Files {
		score := newDetector()
		out := make([]float64, len(f.Values))
		start := time.Now()
		for i, v := range f.Values {
			out[i] = score(f.Times[i], v)
		}
		elapsed += time.Since(start)
		r.Scores[k] = out
		if progress != nil {
			progress(k+1, f)
		}
	}
	rate := float64(c.Rows()) / max(elapsed.Seconds(), 1e-9)
	return r, rate
}

// ProfileResult is a run's score under one profile at its best threshold.
type ProfileResult struct {
	Profile    string  `json:"profile"`
	Threshold  float64 `json:"threshold"`
	Score      float64 `json:"score"`
	RawScore   float64 `json:"raw_score"`
	TP         int     `json:"tp"`
	FP         int     `json:"fp"`
	FN         int     `json:"fn"`
	Windows    int     `json:"windows"`
	NullScore  float64 `json:"null_raw_score"`
	PerfectRaw float64 `json:"perfect_raw_score"`
}

// CategoryResult is a run's standard-profile score on one category: at
// the corpus threshold, and held out (at the threshold that maximizes the
// score of the other categories).
type CategoryResult struct {
	Category string `json:"category"`
	Files    int    `json:"files"`
	Windows  int    `json:"windows"`
	// Score is the normalized score at the corpus threshold (the raw
	// score when the category has no window).
	Score float64 `json:"score"`
	FP    int     `json:"fp"`
	// HeldOut is the normalized score at HeldOutThreshold, chosen on
	// the other categories only.
	HeldOut          float64 `json:"held_out"`
	HeldOutThreshold float64 `json:"held_out_threshold"`
}

// Result is a run scored under every profile and per category.
type Result struct {
	Profiles   []ProfileResult  `json:"profiles"`
	Categories []CategoryResult `json:"categories"`
}

// Score scores a run under every profile of c at each profile's best
// threshold, and per category under the first (standard) profile.
func Score(c *Corpus, r *Run) Result {
	var res Result
	for _, p := range c.Profiles {
		thr, _ := r.BestThreshold(p)
		t := r.Tally(p, thr, nil)
		res.Profiles = append(res.Profiles, ProfileResult{
			Profile: p.Name, Threshold: thr, Score: t.Normalized(p), RawScore: t.Score,
			TP: t.TP, FP: t.FP, FN: t.FN, Windows: t.Windows,
			NullScore: -float64(t.Windows) * p.FN, PerfectRaw: float64(t.Windows) * p.TP,
		})
	}
	std := c.Profiles[0]
	thr := res.Profiles[0].Threshold
	for _, cat := range c.Categories() {
		in := func(x string) bool { return x == cat }
		out := func(x string) bool { return x != cat }
		t := r.Tally(std, thr, in)
		hthr, _ := r.Subset(out).BestThreshold(std)
		h := r.Tally(std, hthr, in)
		files := 0
		for _, f := range c.Files {
			if f.Category == cat {
				files++
			}
		}
		res.Categories = append(res.Categories, CategoryResult{
			Category: cat, Files: files, Windows: t.Windows, Score: t.Normalized(std), FP: t.FP,
			HeldOut: h.Normalized(std), HeldOutThreshold: hthr,
		})
	}
	sort.Slice(res.Categories, func(i, j int) bool { return res.Categories[i].Category < res.Categories[j].Category })
	return res
}
