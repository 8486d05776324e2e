package influx

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/reflex-ops/reflex/internal/metrics"
)

// Limits of a line.
const (
	MaxTags      = 64
	maxNameLen   = 256
	maxValueLen  = 4096
	maxLineError = 10 // line errors kept in a Stats
)

// ErrBadRequest wraps the errors of a request that is malformed as a
// whole (an unknown precision, too many samples).
var ErrBadRequest = errors.New("bad request")

// Stats counts what Decode skipped.
type Stats struct {
	// Lines is the lines read.
	Lines int `json:"lines"`
	// BadLines is the lines refused (syntax, too many tags ...).
	BadLines int `json:"bad_lines"`
	// Ignored is the fields that are not numbers (strings, booleans).
	Ignored int `json:"ignored"`
	// Errors are the first line errors ("at line 3:22: ..." or
	// "entry 3: ...", the third entry).
	Errors []string `json:"errors,omitempty"`
}

// ParsePrecision reads the precision query parameter: ns (default, also
// n), us (u, µs), ms, s.
func ParsePrecision(s string) (lineprotocol.Precision, error) {
	switch s {
	case "", "n", "ns":
		return lineprotocol.Nanosecond, nil
	case "u", "us", "µs":
		return lineprotocol.Microsecond, nil
	case "ms":
		return lineprotocol.Millisecond, nil
	case "s":
		return lineprotocol.Second, nil
	}
	return 0, fmt.Errorf("%w: precision %q is not one of ns, us, ms, s", ErrBadRequest, clip(s))
}

// Decode reads line protocol from r: each numeric field (float, integer,
// unsigned) of a line becomes a sample of the series
// <measurement>_<field> (the measurement alone for a field named value),
// with the line's tags as labels, names made Prometheus names (characters
// other than letters, digits, _ and : become _). A line without a
// timestamp takes now. Lines that do not parse are skipped and counted in
// Stats, as are non-numeric fields; more than maxPoints samples is an
// error wrapping ErrBadRequest.
func Decode(r io.Reader, prec lineprotocol.Precision, now time.Time, maxPoints int) ([]metrics.Series, Stats, error) {
	var st Stats
	dec := lineprotocol.NewDecoder(r)
	var out []metrics.Series
	points := 0
	type field struct {
		name string
		v    float64
	}
	var fields []field
	for dec.Next() {
		st.Lines++
		fields = fields[:0]
		lineErr := func(err error) {
			st.BadLines++
			if len(st.Errors) < maxLineError {
				var de *lineprotocol.DecodeError
				if !errors.As(err, &de) { // a DecodeError names its line
					err = fmt.Errorf("entry %d: %w", st.Lines, err)
				}
				st.Errors = append(st.Errors, err.Error())
			}
		}
		m, err := dec.Measurement()
		if err != nil {
			lineErr(err)
			continue
		}
		measurement := promName(string(m), true)
		labels := metrics.Labels{{Name: metrics.MetricName}}
		var tagErr error
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				tagErr = err
				break
			}
			if k == nil {
				break
			}
			if len(labels) > MaxTags {
				tagErr = fmt.Errorf("more than %d tags", MaxTags)
				break
			}
			name := promName(string(k), false)
			if name == metrics.MetricName || len(v) > maxValueLen || !utf8.Valid(v) {
				tagErr = fmt.Errorf("tag %q: invalid name or value", clip(string(k)))
				break
			}
			labels = append(labels, metrics.Label{Name: name, Value: string(v)})
		}
		if tagErr != nil {
			lineErr(tagErr)
			continue
		}
		var fieldErr error
		for {
			k, v, err := dec.NextField()
			if err != nil {
				fieldErr = err
				break
			}
			if k == nil {
				break
			}
			var f float64
			switch v.Kind() {
			case lineprotocol.Float:
				f = v.FloatV()
			case lineprotocol.Int:
				f = float64(v.IntV())
			case lineprotocol.Uint:
				f = float64(v.UintV())
			default:
				st.Ignored++
				continue
			}
			name := measurement
			if fk := string(k); fk != "value" {
				name += "_" + promName(fk, false)
			}
			fields = append(fields, field{name, f})
		}
		if fieldErr != nil {
			lineErr(fieldErr)
			continue
		}
		at, err := dec.Time(prec, now)
		if err != nil {
			lineErr(err)
			continue
		}
		if dup := duplicate(labels); dup != "" {
			lineErr(fmt.Errorf("tag %q repeated", dup))
			continue
		}
		if points += len(fields); points > maxPoints {
			return nil, st, fmt.Errorf("%w: more than %d samples", ErrBadRequest, maxPoints)
		}
		for _, f := range fields {
			if math.IsNaN(f.v) {
				continue
			}
			ls := append(metrics.Labels(nil), labels...)
			ls[0].Value = f.name
			ls.Sort()
			out = append(out, metrics.Series{Labels: ls, Points: []metrics.Point{{At: at.UTC(), Value: f.v}}})
		}
	}
	if err := dec.Err(); err != nil {
		return out, st, err
	}
	return out, st, nil
}

// duplicate answers a label name that appears twice ("" when none).
func duplicate(ls metrics.Labels) string {
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if seen[l.Name] {
			return l.Name
		}
		seen[l.Name] = true
	}
	return ""
}

// promName maps s to a Prometheus name: letters, digits, _ (and : in a
// metric name); a leading digit gets a _ before it.
func promName(s string, metric bool) string {
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	var b strings.Builder
	for i, c := range s {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || metric && c == ':'
		if i == 0 && c >= '0' && c <= '9' {
			b.WriteByte('_')
		}
		if ok {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
