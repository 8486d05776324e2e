package logtmpl

import (
	"encoding/csv"
	"os"
	"path/filepath"
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
