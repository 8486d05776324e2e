package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The strict decoding of an executor object: encoding/json matches keys
// without regard to case and lets a key repeat, the last one winning; an
// action definition is read key by key instead, each key exactly once.
// Executors' Parse functions build on Object.

// Field is one key of a JSON object with its value as written.
type Field struct {
	Key string
	Val json.RawMessage
}

// Object reads b as one JSON object and returns its keys in order,
// refusing a key that repeats and anything after the object.
func Object(b []byte) ([]Field, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("want a JSON object")
	}
	var out []Field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("key %s appears more than once", Quote(key))
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %s: not valid JSON: %w", Quote(key), err)
		}
		out = append(out, Field{Key: key, Val: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

// IsNull reports whether v is the JSON null.
func IsNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// DecodeString decodes v, which must be a JSON string (not null), into dst.
func DecodeString(v json.RawMessage, dst *string) error {
	if IsNull(v) || json.Unmarshal(v, dst) != nil {
		return errors.New("want a string")
	}
	return nil
}

// Quote quotes s for an error message, shortened to 64 bytes.
func Quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
