package postgres

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Column widths of the seed schema. Longer values are cut (at a character
// boundary) rather than failing the whole batch.
const (
	maxSourceSystem   = 100
	maxSourceType     = 50
	maxEventType      = 100
	maxSeverity       = 20
	maxHost           = 255
	maxService        = 100
	maxTitle          = 500
	maxTag            = 50
	maxFingerprint    = 32
	maxCorrelationTyp = 50
)

// Times are kept within years 1 to 9999: PostgreSQL could hold more, but
// such a time is a unit error upstream and would make a partition per day.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// cleanText makes s storable in a PostgreSQL text column: valid UTF-8, no
// NUL characters (PostgreSQL rejects both), at most max characters when
// max > 0.
func cleanText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if max > 0 && len(s) > max && utf8.RuneCountInString(s) > max {
		n := 0
		for i := range s {
			if n == max {
				s = s[:i]
				break
			}
			n++
		}
	}
	return s
}

// nullText is cleanText, with "" stored as NULL.
func nullText(s string, max int) any {
	if s == "" {
		return nil
	}
	return cleanText(s, max)
}

// cleanTime clamps t to the storable range and to UTC.
func cleanTime(t time.Time) time.Time {
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t.UTC()
}

// nullTime is cleanTime, with the zero time stored as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return cleanTime(t)
}

// cleanTags cuts each tag to the width of tags VARCHAR(50)[].
func cleanTags(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = cleanText(t, maxTag)
	}
	return out
}

// cleanStrings cleans each string of a TEXT[] value.
func cleanStrings(ss []string) any {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = cleanText(s, 0)
	}
	return out
}

// cleanJSON makes b storable as JSONB: invalid JSON is stored as a JSON
// string holding it, invalid UTF-8 is replaced, and \u0000 escapes (which
// JSONB rejects) are removed. Empty input is JSON null.
func cleanJSON(b []byte) json.RawMessage {
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

// eventJSON encodes event_data; nil or empty is NULL.
func eventJSON(m map[string]any) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte(`\u0000`)) || !utf8.Valid(b) {
		return cleanJSON(b), nil
	}
	return json.RawMessage(b), nil
}

// cleanScore fits a score into DECIMAL(3,2).
func cleanScore(f float64) float64 {
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
