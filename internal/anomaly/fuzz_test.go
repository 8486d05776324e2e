package anomaly

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzDetector feeds arbitrary values (metadata numbers reach the detector
// from events) and checks that every score is in [0,1] and every expected
// range is ordered.
func FuzzDetector(f *testing.F) {
	seed := make([]byte, 0, 8*64)
	for i := range 64 {
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(float64(i%7)*1e3))
	}
	f.Add(seed)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.MaxFloat64)))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := New(Options{})
		for i := 0; i+8 <= len(data); i += 8 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))
			p := d.Update(t0.Add(time.Duration(i)*time.Minute), v)
			if !(p.Score >= 0 && p.Score <= 1) {
				t.Fatalf("value %v: score %v outside [0,1]", v, p.Score)
			}
			if p.Low > p.High {
				t.Fatalf("value %v: range %v > %v", v, p.Low, p.High)
			}
		}
	})
}
