package logtmpl

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// loghubLines reads the Content column of every loghub system.
func loghubLines(b testing.TB) []string {
	b.Helper()
	dirs, err := os.ReadDir(loghubDir)
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, d := range dirs {
		f, err := os.Open(filepath.Join(loghubDir, d.Name(), d.Name()+"_2k.log_structured.csv"))
		if err != nil {
			continue
		}
		recs, err := csv.NewReader(f).ReadAll()
		_ = f.Close()
		if err != nil {
			b.Fatal(err)
		}
		col := -1
		for i, h := range recs[0] {
			if h == "Content" {
				col = i
			}
		}
		for _, r := range recs[1:] {
			lines = append(lines, r[col])
		}
	}
	return lines
}

// BenchmarkMine mines the 24,000 loghub lines, one miner per pass.
func BenchmarkMine(b *testing.B) {
	lines := loghubLines(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m := New(Options{})
		for _, l := range lines {
			m.Add(l)
		}
		n += len(lines)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkMask masks the loghub lines with the scanner (scan) and with
// the regular expressions of DefaultMasks (regexp).
func BenchmarkMask(b *testing.B) {
	lines := loghubLines(b)
	for _, v := range []struct {
		name string
		mask func(string) string
	}{
		{"scan", maskDefault},
		{"regexp", func(s string) string { return Apply(DefaultMasks, s) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				for _, l := range lines {
					_ = v.mask(l)
				}
				n += len(lines)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkMinerMemory reports the heap a miner holds per template: once
// after the 24,000 loghub lines (about 800 templates of real systems), and
// once at about 100,000 templates of synthetic messages spread over some
// 8,600 leaves (two routing words out of 97 and 89, then two words
// distinct per message, so that no two join or fold).
func BenchmarkMinerMemory(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	run := func(b *testing.B, lines []string) {
		for b.Loop() {
			before := heap()
			m := New(Options{})
			for _, l := range lines {
				m.Add(l)
			}
			after := heap()
			b.ReportMetric(float64(after-before)/float64(m.Len()), "B/template")
			b.ReportMetric(float64(m.Len()), "templates")
			runtime.KeepAlive(m)
		}
	}
	b.Run("loghub", func(b *testing.B) { run(b, loghubLines(b)) })
	b.Run("synthetic", func(b *testing.B) {
		const n = 100_000
		msgs := make([]string, n)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("%s %s reported %s state %s shard", word(i%97), word((i/97)%89+97), word(i+n), word(i+2*n))
		}
		run(b, msgs)
	})
}

// BenchmarkMineFlood is the miner's worst case: every message falls in
// one leaf and joins nothing (three distinct words each), so each is
// compared with the whole leaf, MaxLeafTemplates templates.
func BenchmarkMineFlood(b *testing.B) {
	const n = 20_000
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("scheduler reported %s state %s for shard %s", word(i), word(i+n), word(i+2*n))
	}
	done := 0
	for b.Loop() {
		m := New(Options{})
		for _, s := range msgs {
			m.Add(s)
		}
		done += n
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "lines/s")
}

// word is a digit-free word for i (digits would be masked).
func word(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}
