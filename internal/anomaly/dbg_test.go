package anomaly

import (
	"os"
	"testing"

	"github.com/reflex-ops/reflex/internal/anomaly/nab"
	"github.com/stretchr/testify/require"
)

func TestDbgWindows(t *testing.T) {
	if os.Getenv("REFLEX_NAB_TUNE") == "" {
		t.Skip()
	}
	c, err := nab.Load(nabDir)
	require.NoError(t, err)
	r, _ := nab.Evaluate(c, detectorFunc(Options{}), nil)
	p := c.Profiles[0]
	thr, _ := r.BestThreshold(p)
	for k, f := range c.Files {
		sc := r.Scores[k]
		tl := nab.ScoreAt(f, sc, p, thr)
		s := ""
		for _, w := range f.Windows {
			first := -1
			for i := max(w.Start, f.Probation()); i <= w.End; i++ {
				if sc[i] >= thr {
					first = i
					break
				}
			}
			if first < 0 {
				s += " MISS"
			} else {
				s += " " + itoa(100*(first-w.Start)/(w.End-w.Start+1)) + "%"
			}
		}
		var fps []int
		for i := f.Probation(); i < len(sc); i++ {
			if sc[i] < thr {
				continue
			}
			in := false
			for _, w := range f.Windows {
				if i >= w.Start && i <= w.End {
					in = true
				}
			}
			if !in {
				fps = append(fps, i)
			}
		}
		t.Logf("%-50s n=%5d score=%6.2f windows:%s fps=%v", f.Key(), len(f.Values), tl.Score, s, fps)
	}
}

func itoa(i int) string {
	return string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}
