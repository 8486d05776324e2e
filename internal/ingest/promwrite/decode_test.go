package promwrite

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/reflex-ops/reflex/internal/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// request is the readable form of a WriteRequest in the golden files.
type request struct {
	Comment    string `json:"comment"`
	Timeseries []struct {
		Labels []struct {
			Name     string `json:"name"`
			Value    string `json:"value"`
			ValueHex string `json:"value_hex"` // raw bytes, for invalid UTF-8
		} `json:"labels"`
		Samples []struct {
			Value     json.RawMessage `json:"value"` // a number, or "NaN", "StaleNaN", "+Inf", "-Inf"
			Timestamp int64           `json:"timestamp"`
		} `json:"samples"`
	} `json:"timeseries"`
	Metadata []struct {
		Type   uint64 `json:"type"`
		Family string `json:"metric_family_name"`
		Help   string `json:"help"`
		Unit   string `json:"unit"`
	} `json:"metadata"`
}

// encode builds the protobuf of r as Prometheus' prompb does.
func (r request) encode(t testing.TB) []byte {
	t.Helper()
	var b []byte
	for _, ts := range r.Timeseries {
		var s []byte
		for _, l := range ts.Labels {
			v := []byte(l.Value)
			if l.ValueHex != "" {
				var err error
				v, err = hex.DecodeString(strings.ReplaceAll(l.ValueHex, " ", ""))
				require.NoError(t, err)
			}
			var lb []byte
			lb = protowire.AppendTag(lb, fLabelName, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, fLabelValue, protowire.BytesType)
			lb = protowire.AppendBytes(lb, v)
			s = protowire.AppendTag(s, fSeriesLabels, protowire.BytesType)
			s = protowire.AppendBytes(s, lb)
		}
		for _, p := range ts.Samples {
			var sb []byte
			sb = protowire.AppendTag(sb, fSampleValue, protowire.Fixed64Type)
			sb = protowire.AppendFixed64(sb, sampleBits(t, p.Value))
			sb = protowire.AppendTag(sb, fSampleTimestamp, protowire.VarintType)
			sb = protowire.AppendVarint(sb, uint64(p.Timestamp))
			s = protowire.AppendTag(s, fSeriesSamples, protowire.BytesType)
			s = protowire.AppendBytes(s, sb)
		}
		b = protowire.AppendTag(b, fWriteTimeseries, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	for _, m := range r.Metadata { // WriteRequest.metadata = 3: {type=1, metric_family_name=2, help=4, unit=5}
		var mb []byte
		mb = protowire.AppendTag(mb, 1, protowire.VarintType)
		mb = protowire.AppendVarint(mb, m.Type)
		mb = protowire.AppendTag(mb, 2, protowire.BytesType)
		mb = protowire.AppendString(mb, m.Family)
		mb = protowire.AppendTag(mb, 4, protowire.BytesType)
		mb = protowire.AppendString(mb, m.Help)
		mb = protowire.AppendTag(mb, 5, protowire.BytesType)
		mb = protowire.AppendString(mb, m.Unit)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, mb)
	}
	return b
}

func sampleBits(t testing.TB, raw json.RawMessage) uint64 {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "StaleNaN":
			return 0x7ff0000000000002
		case "NaN":
			return math.Float64bits(math.NaN())
		}
		f, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		return math.Float64bits(f)
	}
	var f float64
	require.NoError(t, json.Unmarshal(raw, &f))
	return math.Float64bits(f)
}

// decoded is the golden form of Decode's answer.
type decoded struct {
	Series []goldenSeries `json:"series,omitempty"`
	Error  string         `json:"error,omitempty"`
}

type goldenSeries struct {
	Series string     `json:"series"`
	Points [][2]any   `json:"points"` // [time, value]; value a string when not finite
	Labels [][]string `json:"labels"` // in order, to show the sort
}

func golden(series []metrics.Series, err error) decoded {
	if err != nil {
		return decoded{Error: err.Error()}
	}
	out := decoded{Series: []goldenSeries{}}
	for _, s := range series {
		g := goldenSeries{Series: s.Labels.String()}
		for _, l := range s.Labels {
			g.Labels = append(g.Labels, []string{l.Name, l.Value})
		}
		for _, p := range s.Points {
			var v any = p.Value
			switch {
			case math.Float64bits(p.Value) == 0x7ff0000000000002:
				v = "StaleNaN"
			case math.IsNaN(p.Value) || math.IsInf(p.Value, 0):
				v = strconv.FormatFloat(p.Value, 'g', -1, 64)
			}
			g.Points = append(g.Points, [2]any{p.At.Format(time.RFC3339Nano), v})
		}
		out.Series = append(out.Series, g)
	}
	return out
}

// TestDecodeGolden builds each testdata/golden/<case>.request into a
// WriteRequest and compares what Decode makes of it with <case>.json.
func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.request")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".request")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			var r request
			require.NoError(t, json.Unmarshal(data, &r))
			series, err := Decode(r.encode(t))
			got, jerr := json.MarshalIndent(golden(series, err), "", "  ")
			require.NoError(t, jerr)
			got = append(got, '\n')
			out := strings.TrimSuffix(in, ".request") + ".json"
			if *update {
				require.NoError(t, os.WriteFile(out, got, 0o600))
			}
			want, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := func() []byte {
		var r request
		require.NoError(t, json.Unmarshal([]byte(`{"timeseries":[{"labels":[{"name":"__name__","value":"up"}],"samples":[{"value":1,"timestamp":1}]}]}`), &r))
		return r.encode(t)
	}()
	_, err := Decode(valid)
	require.NoError(t, err)
	for i := 1; i < len(valid); i++ {
		_, err := Decode(valid[:i])
		require.ErrorIs(t, err, ErrBadRequest, "truncated at %d", i)
	}
	// Too many labels.
	var s []byte
	for i := range MaxLabels + 1 {
		var lb []byte
		lb = protowire.AppendTag(lb, fLabelName, protowire.BytesType)
		lb = protowire.AppendString(lb, "l"+strconv.Itoa(i))
		s = protowire.AppendTag(s, fSeriesLabels, protowire.BytesType)
		s = protowire.AppendBytes(s, lb)
	}
	b := protowire.AppendTag(nil, fWriteTimeseries, protowire.BytesType)
	b = protowire.AppendBytes(b, s)
	_, err = Decode(b)
	require.ErrorContains(t, err, "more than 64 labels")
	// A field of the wrong wire type is skipped, as protobuf does.
	b = protowire.AppendTag(nil, fWriteTimeseries, protowire.VarintType)
	b = protowire.AppendVarint(b, 5)
	got, err := Decode(b)
	require.NoError(t, err)
	require.Empty(t, got)
}
