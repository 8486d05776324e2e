package store

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Values are cleaned the same way by every store, so that both hold the
// same thing for the same input: the helpers below make untrusted text,
// times, JSON and scores storable in the seed's columns.

// Column widths of the seed schema. Longer values are cut (at a character
// boundary) rather than failing the whole batch.
const (
	MaxSourceSystem    = 100
	MaxSourceType      = 50
	MaxEventType       = 100
	MaxSeverity        = 20
	MaxHost            = 255
	MaxService         = 100
	MaxTitle           = 500
	MaxTag             = 50
	MaxFingerprint     = 32
	MaxCorrelationType = 50
)

// Times are kept within years 1 to 9999: PostgreSQL could hold more, but
// such a time is a unit error upstream and would make a partition per day.
var (
	MinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// CleanText makes s storable in a text column: valid UTF-8, no NUL
// characters (PostgreSQL rejects both), at most maxLen characters when
// maxLen > 0.
func CleanText(s string, maxLen int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if maxLen > 0 && len(s) > maxLen && utf8.RuneCountInString(s) > maxLen {
		n := 0
		for i := range s {
			if n == maxLen {
				s = s[:i]
				break
			}
			n++
		}
	}
	return s
}

// CleanTime clamps t to the storable range and to UTC.
func CleanTime(t time.Time) time.Time {
	if t.Before(MinTime) {
		return MinTime
	}
	if t.After(MaxTime) {
		return MaxTime
	}
	return t.UTC()
}

// CleanJSON makes b storable as JSONB: invalid JSON is stored as a JSON
// string holding it, invalid UTF-8 is replaced, and \u0000 escapes (which
// JSONB rejects) are removed. Empty input is JSON null.
func CleanJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	if !json.Valid(b) {
		q, _ := json.Marshal(string(b))
		return q
	}
	if bytes.Contains(b, []byte(`\u0000`)) {
		var v any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&v); err == nil {
			if out, err := json.Marshal(stripNUL(v)); err == nil {
				return out
			}
		}
	}
	return b
}

// stripNUL removes NUL characters from every string and key of a decoded
// JSON value.
func stripNUL(v any) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "\x00", "")
	case []any:
		for i := range x {
			x[i] = stripNUL(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ReplaceAll(k, "\x00", "")] = stripNUL(e)
		}
		return out
	}
	return v
}

// CleanScore fits a score into DECIMAL(3,2).
func CleanScore(f float64) float64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f > 9.99:
		return 9.99
	case f < -9.99:
		return -9.99
	}
	return math.Round(f*100) / 100
}

// correlationNamespace derives a UUID for a correlation id that is not one
// (correlation_id is a UUID column in the seed).
var correlationNamespace = uuid.MustParse("6f1d3c1e-3b57-4c0e-9a43-7d0b1f0c2a11")

// CorrelationKey is the canonical text of a correlation id as stored: a
// UUID in lower-case canonical form, or, for an id that is not a UUID, a
// name-based UUID derived from it. Both stores map ids this way on write
// and in queries, so they agree.
func CorrelationKey(s string) string {
	if s == "" {
		return ""
	}
	if u, err := uuid.Parse(s); err == nil {
		return u.String()
	}
	return uuid.NewSHA1(correlationNamespace, []byte(s)).String()
}
