package postgres

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

// nullTime is store.CleanTime, with the zero time stored as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.CleanTime(t)
}

// cleanTags cuts each tag to the width of tags VARCHAR(50)[].
func cleanTags(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = store.CleanText(t, store.MaxTag)
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
		out[i] = store.CleanText(s, 0)
	}
	return out
}

// eventJSON encodes event_data; nil or empty is NULL.
func eventJSON(e *event.Event) (any, error) {
	b, err := e.MarshalData()
	if err != nil || b == nil {
		return nil, err
	}
	if bytes.Contains(b, []byte(`\u0000`)) || !utf8.Valid(b) {
		return store.CleanJSON(b), nil
	}
	return json.RawMessage(b), nil
}
