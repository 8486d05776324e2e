package sqlite

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// nullText is store.CleanText, with "" stored as NULL.
func nullText(s string, maxLen int) any {
	if s == "" {
		return nil
	}
	return store.CleanText(s, maxLen)
}

// micros is t as stored: unix microseconds, UTC, within the time range.
func micros(t time.Time) int64 { return store.CleanTime(t).UnixMicro() }

// nullMicros is micros, with the zero time stored as NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// fromMicros reads a stored time; NULL is the zero time.
func fromMicros(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMicro(*v).UTC()
}

// tagsJSON cuts each tag to the width of tags VARCHAR(50)[] and encodes
// the list as a JSON array; no tags is NULL.
func tagsJSON(tags []string) (any, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = store.CleanText(t, store.MaxTag)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// stringsJSON encodes a TEXT[] value as a JSON array; empty is NULL.
func stringsJSON(ss []string) (any, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = store.CleanText(s, 0)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// eventJSON encodes event_data as JSON text; nil or empty is NULL.
func eventJSON(e *event.Event) (any, error) {
	b, err := e.MarshalData()
	if err != nil || b == nil {
		return nil, err
	}
	if bytes.Contains(b, []byte(`\u0000`)) || !utf8.Valid(b) {
		b = store.CleanJSON(b)
	}
	return string(b), nil
}
