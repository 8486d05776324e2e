package influx

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// FuzzDecode feeds arbitrary text to the line-protocol path: it must never
// panic, and every sample it makes has a valid name and UTF-8 labels
// sorted by name, each name once.
func FuzzDecode(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/golden/*.lp")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("m,t=1 f=1i,g=2u,h=true,s=\"x\" -1\n"))
	f.Add([]byte("m\\ x,t\\=a=b\\,c f=1e308\r\n# c\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		series, st, err := Decode(bytes.NewReader(b), lineprotocol.Nanosecond, now, 1000)
		if err != nil {
			return
		}
		if st.BadLines > st.Lines {
			t.Fatalf("stats %+v", st)
		}
		for _, s := range series {
			name := s.Labels.Name()
			if name == "" || strings.ContainsAny(name, " ,=\"") {
				t.Fatalf("bad name %q", name)
			}
			for i, l := range s.Labels {
				if !utf8.ValidString(l.Value) || i > 0 && s.Labels[i-1].Name >= l.Name {
					t.Fatalf("bad labels %v", s.Labels)
				}
			}
		}
	})
}
