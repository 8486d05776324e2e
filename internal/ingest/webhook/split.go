package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var utf8BOM = []byte("\xef\xbb\xbf")

// compact appends the compacted form of the valid JSON value src to dst.
func compact(dst *bytes.Buffer, src []byte) error {
	return json.Compact(dst, src)
}

// splitJSON splits a JSON body into its events: the object itself, or the
// elements of the array. Each returned slice is one valid JSON value.
func splitJSON(body []byte, maxEvents int) ([][]byte, error) {
	b := trimWS(body)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty body: send a JSON event object or an array of them", ErrBadRequest)
	}
	if err := validJSON(b); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && truncated(se) {
			return nil, fmt.Errorf("%w: invalid JSON: unexpected end of input after %d bytes (truncated body?)", ErrBadRequest, len(body))
		}
		if errors.As(err, &se) {
			// se.Offset counts the bytes read up to and including the
			// offending one; report its 0-based offset in the body as
			// sent, and its 1-based line and column.
			off := se.Offset - 1 + int64(len(body)-len(bytes.TrimLeft(body, jsonSpace)))
			line, col := position(body, off)
			return nil, fmt.Errorf("%w: invalid JSON at byte offset %d (line %d, column %d): %s", ErrBadRequest, off, line, col, se.Error())
		}
		return nil, fmt.Errorf("%w: invalid JSON: %s", ErrBadRequest, err.Error())
	}
	switch b[0] {
	case '{':
		return [][]byte{b}, nil
	case '[':
		elems, err := splitArray(b, maxEvents)
		if err != nil {
			return nil, err
		}
		if len(elems) == 0 {
			return nil, fmt.Errorf("%w: empty array: send at least one event", ErrBadRequest)
		}
		return elems, nil
	}
	return nil, fmt.Errorf("%w: body is a JSON %s: send a JSON event object or an array of them", ErrBadRequest, kind(b[0]))
}

// validJSON reports whether b is one valid JSON value, with the position of
// the first syntax error.
func validJSON(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	// Only the slow path pays for the error's details.
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// splitArray returns the elements of the valid JSON array b, failing as
// soon as there are more than maxEvents.
func splitArray(b []byte, maxEvents int) ([][]byte, error) {
	var out [][]byte
	depth, start, inString := 0, -1, false
	emit := func(end int) error {
		if start < 0 {
			return nil
		}
		if len(out) == maxEvents {
			return fmt.Errorf("%w: more than %d events in one request: split the batch", ErrBadRequest, maxEvents)
		}
		out = append(out, bytes.TrimRight(b[start:end], jsonSpace))
		start = -1
		return nil
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case ',':
			if depth == 1 {
				if err := emit(i); err != nil {
					return nil, err
				}
				continue
			}
		case ']', '}':
			depth--
			if depth == 0 {
				if err := emit(i); err != nil {
					return nil, err
				}
				return out, nil
			}
			continue
		}
		if depth == 1 && start < 0 {
			start = i
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
		}
	}
	return out, nil
}

// splitLines splits an NDJSON body into its events, one per non-blank line.
func splitLines(body []byte, maxEvents int) ([][]byte, error) {
	var out [][]byte
	for lineNo, rest := 1, body; len(rest) > 0; lineNo++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		lead := len(line) - len(bytes.TrimLeft(line, jsonSpace))
		line = trimWS(line)
		if len(line) == 0 {
			continue
		}
		if err := validJSON(line); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) && truncated(se) {
				return nil, fmt.Errorf("%w: line %d: invalid JSON: unexpected end of line", ErrBadRequest, lineNo)
			}
			if errors.As(err, &se) {
				return nil, fmt.Errorf("%w: line %d: invalid JSON at column %d: %s", ErrBadRequest, lineNo, int64(lead)+se.Offset, se.Error())
			}
			return nil, fmt.Errorf("%w: line %d: invalid JSON: %s", ErrBadRequest, lineNo, err.Error())
		}
		if len(out) == maxEvents {
			return nil, fmt.Errorf("%w: more than %d events in one request: split the batch", ErrBadRequest, maxEvents)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty body: send one JSON event object per line", ErrBadRequest)
	}
	return out, nil
}

// position returns the 1-based line and column of the byte at 0-based
// offset off of b.
func position(b []byte, off int64) (line, col int) {
	i := int(min(max(off, 0), int64(len(b))))
	before := b[:i]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = i - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// truncated reports whether se says the input ended inside a value.
func truncated(se *json.SyntaxError) bool {
	return strings.HasPrefix(se.Error(), "unexpected end of JSON input")
}

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// trimWS trims JSON whitespace (and no other space) from both ends of b.
func trimWS(b []byte) []byte { return bytes.Trim(b, jsonSpace) }

// aKind names the JSON type that starts with c, with its article.
func aKind(c byte) string {
	switch k := kind(c); k {
	case "object", "array":
		return "an " + k
	case "null":
		return k
	default:
		return "a " + k
	}
}

// kind names the JSON type that starts with c.
func kind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
