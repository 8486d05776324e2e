package cond

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/rules/rulebench"
)

// BenchmarkEvaluate evaluates events against 1,000 active rules of mixed
// shapes: index, then the candidates' matchers, as the rules engine does
// (index); and every matcher on every event, for comparison (scan).
func BenchmarkEvaluate(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	docs := rulebench.Conditions(r, 1000)
	events := rulebench.Events(r, 4096)
	idx := NewIndex()
	rules := make(map[int64]*Matcher, len(docs))
	all := make([]*Matcher, 0, len(docs))
	for i, doc := range docs {
		m, err := Compile(json.RawMessage(doc))
		if err != nil {
			b.Fatal(doc, err)
		}
		rules[int64(i+1)] = m
		all = append(all, m)
		idx.Add(int64(i+1), m)
	}
	b.Run("index", func(b *testing.B) {
		var dst []int64
		cands, matched := 0, 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			e := events[i%len(events)]
			dst = idx.Candidates(e, dst[:0])
			cands += len(dst)
			for _, id := range dst {
				if rules[id].Match(e) {
					matched++
				}
			}
		}
		reportRate(b, cpuTime()-cpu)
		b.ReportMetric(float64(cands)/float64(b.N), "candidates/event")
		b.ReportMetric(float64(matched)/float64(b.N), "matches/event")
	})
	b.Run("scan", func(b *testing.B) {
		matched := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			e := events[i%len(events)]
			for _, m := range all {
				if m.Match(e) {
					matched++
				}
			}
		}
		reportRate(b, cpuTime()-cpu)
		b.ReportMetric(float64(matched)/float64(b.N), "matches/event")
	})
}

// reportRate reports events per second of wall time and, where the
// process's CPU time is known, per second of CPU time: on a machine shared
// with other work the second is the figure per core (run with -cpu 1).
func reportRate(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}
