package influx

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// now is the time of lines without a timestamp.
var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// decoded is the golden form of Decode's answer.
type decoded struct {
	Series []goldenSample `json:"series"`
	Stats  Stats          `json:"stats"`
	Error  string         `json:"error,omitempty"`
}

type goldenSample struct {
	Series string  `json:"series"`
	At     string  `json:"at"`
	Value  float64 `json:"value"`
}

func golden(series []metrics.Series, st Stats, err error) decoded {
	out := decoded{Series: []goldenSample{}, Stats: st}
	if err != nil {
		out.Error = err.Error()
	}
	for _, s := range series {
		for _, p := range s.Points {
			out.Series = append(out.Series, goldenSample{s.Labels.String(), p.At.Format(time.RFC3339Nano), p.Value})
		}
	}
	return out
}

// TestDecodeGolden decodes each testdata/golden/<case>.lp (Telegraf's
// output as its plugins document it) and compares the series with
// <case>.json.
func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.lp")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".lp")
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(in)
			require.NoError(t, err)
			defer f.Close()
			series, st, err := Decode(f, lineprotocol.Nanosecond, now, DefaultMaxPoints)
			got, jerr := json.MarshalIndent(golden(series, st, err), "", "  ")
			require.NoError(t, jerr)
			got = append(got, '\n')
			out := strings.TrimSuffix(in, ".lp") + ".json"
			if *update {
				require.NoError(t, os.WriteFile(out, got, 0o600))
			}
			want, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestPrecision(t *testing.T) {
	for prec, want := range map[string]time.Time{
		"":   time.Unix(0, 1700000000),
		"ns": time.Unix(0, 1700000000),
		"u":  time.Unix(0, 1700000000*1e3),
		"us": time.Unix(0, 1700000000*1e3),
		"ms": time.Unix(0, 1700000000*1e6),
		"s":  time.Unix(1700000000, 0),
	} {
		p, err := ParsePrecision(prec)
		require.NoError(t, err)
		series, _, err := Decode(strings.NewReader("m f=1 1700000000\n"), p, now, 10)
		require.NoError(t, err)
		require.Equal(t, want.UTC(), series[0].Points[0].At, prec)
	}
	_, err := ParsePrecision("h")
	require.ErrorIs(t, err, ErrBadRequest)

	// No timestamp: now.
	series, _, err := Decode(strings.NewReader("m f=1\n"), lineprotocol.Second, now, 10)
	require.NoError(t, err)
	require.Equal(t, now, series[0].Points[0].At)
}

func TestMaxPoints(t *testing.T) {
	_, _, err := Decode(strings.NewReader("m a=1,b=2\nm c=3\n"), lineprotocol.Nanosecond, now, 2)
	require.ErrorIs(t, err, ErrBadRequest)
}
