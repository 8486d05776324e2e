package promwrite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
)

// FuzzDecode feeds arbitrary bytes to the WriteRequest decoder (and, for
// snappy-framed input, through the handler's decompression first): it must
// never panic, and what it accepts must be series with a name and sorted,
// unique labels.
func FuzzDecode(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/golden/*.request")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var r request
		if err := json.Unmarshal(data, &r); err != nil {
			f.Fatal(err)
		}
		f.Add(r.encode(f))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		if n, err := snappy.DecodedLen(b); err == nil && n < 1<<20 {
			if raw, err := snappy.Decode(nil, b); err == nil {
				check(t, raw)
			}
		}
	})
}

func check(t *testing.T, b []byte) {
	series, err := Decode(b)
	if err != nil {
		return
	}
	for _, s := range series {
		if s.Labels.Name() == "" {
			t.Fatalf("series without a name: %v", s.Labels)
		}
		for i := 1; i < len(s.Labels); i++ {
			if s.Labels[i-1].Name >= s.Labels[i].Name {
				t.Fatalf("labels not sorted and unique: %v", s.Labels)
			}
		}
	}
}
