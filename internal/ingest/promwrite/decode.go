package promwrite

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/reflex-ops/reflex/internal/metrics"
)

// Limits of a decoded WriteRequest.
const (
	MaxLabels         = 64
	MaxLabelNameLen   = 256
	MaxLabelValueLen  = 4096
	MaxSamplesPerBody = 1 << 20
)

// ErrBadRequest wraps every decoding error: the request is malformed and
// Prometheus must not retry it.
var ErrBadRequest = errors.New("bad request")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// Field numbers of remote write 1.0's protobuf messages
// (prometheus/prompb/remote.proto and types.proto).
const (
	fWriteTimeseries = 1 // WriteRequest.timeseries, repeated TimeSeries
	fSeriesLabels    = 1 // TimeSeries.labels, repeated Label
	fSeriesSamples   = 2 // TimeSeries.samples, repeated Sample
	fLabelName       = 1 // Label.name, string
	fLabelValue      = 2 // Label.value, string
	fSampleValue     = 1 // Sample.value, double
	fSampleTimestamp = 2 // Sample.timestamp, int64 milliseconds
)

// Decode reads an uncompressed remote-write 1.0 WriteRequest into series,
// labels sorted. Metadata, exemplars and native histograms are skipped. A
// series without __name__, with an invalid or repeated label name, a label
// value that is not UTF-8 or more than MaxLabels labels makes the whole
// request an error wrapping ErrBadRequest, naming the series and the
// label.
func Decode(b []byte) ([]metrics.Series, error) {
	var out []metrics.Series
	samples := 0
	for i := 0; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, bad("WriteRequest: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fWriteTimeseries && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, bad("timeseries[%d]: %v", i, protowire.ParseError(n))
			}
			b = b[n:]
			s, err := decodeSeries(v)
			if err != nil {
				return nil, bad("timeseries[%d]: %v", i, err)
			}
			if samples += len(s.Points); samples > MaxSamplesPerBody {
				return nil, bad("more than %d samples", MaxSamplesPerBody)
			}
			out = append(out, s)
			i++
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, bad("WriteRequest field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return out, nil
}

func decodeSeries(b []byte) (metrics.Series, error) {
	var s metrics.Series
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == fSeriesLabels || num == fSeriesSamples) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			b = b[n:]
			if num == fSeriesLabels {
				if len(s.Labels) == MaxLabels {
					return s, fmt.Errorf("more than %d labels", MaxLabels)
				}
				l, err := decodeLabel(v)
				if err != nil {
					return s, fmt.Errorf("labels[%d]: %w", len(s.Labels), err)
				}
				s.Labels = append(s.Labels, l)
			} else {
				p, err := decodeSample(v)
				if err != nil {
					return s, fmt.Errorf("samples[%d]: %w", len(s.Points), err)
				}
				s.Points = append(s.Points, p)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return s, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	s.Labels.Sort()
	for i, l := range s.Labels {
		if i > 0 && s.Labels[i-1].Name == l.Name {
			return s, fmt.Errorf("label %q repeated", l.Name)
		}
	}
	if s.Labels.Name() == "" {
		return s, errors.New("no __name__ label")
	}
	return s, nil
}

func decodeLabel(b []byte) (metrics.Label, error) {
	var l metrics.Label
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == fLabelName || num == fLabelValue) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return l, protowire.ParseError(n)
			}
			b = b[n:]
			if num == fLabelName {
				l.Name = string(v)
			} else {
				l.Value = string(v)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !validName(l.Name) {
		return l, fmt.Errorf("invalid label name %q", clip(l.Name))
	}
	if len(l.Value) > MaxLabelValueLen {
		return l, fmt.Errorf("label %q: value longer than %d bytes", l.Name, MaxLabelValueLen)
	}
	if !utf8.ValidString(l.Value) {
		return l, fmt.Errorf("label %q: value is not UTF-8", l.Name)
	}
	if l.Name == metrics.MetricName && !validMetricName(l.Value) {
		return l, fmt.Errorf("invalid metric name %q", clip(l.Value))
	}
	return l, nil
}

func decodeSample(b []byte) (metrics.Point, error) {
	var v float64
	var ts int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return metrics.Point{}, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fSampleValue && typ == protowire.Fixed64Type:
			x, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return metrics.Point{}, protowire.ParseError(n)
			}
			b, v = b[n:], math.Float64frombits(x)
		case num == fSampleTimestamp && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return metrics.Point{}, protowire.ParseError(n)
			}
			b, ts = b[n:], int64(x)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return metrics.Point{}, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return metrics.Point{At: time.UnixMilli(ts).UTC(), Value: v}, nil
}

// validName reports whether s is a Prometheus label name:
// [a-zA-Z_][a-zA-Z0-9_]*, at most MaxLabelNameLen bytes.
func validName(s string) bool {
	if s == "" || len(s) > MaxLabelNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// validMetricName reports whether s is a metric name:
// [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" || len(s) > MaxLabelNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
