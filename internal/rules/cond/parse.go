package cond

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// jkind is the kind of a JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

// jval is a parsed JSON value that keeps the order of an object's keys, so
// that errors and evaluation follow the document.
type jval struct {
	kind jkind
	b    bool
	n    float64
	s    string   // a string, or a number as written
	keys []string // an object's keys, in order
	vals []*jval  // an object's values (parallel to keys) or a list's items
}

// parser reads one document token by token, so that depth, size and the
// number of values are checked while reading rather than after.
type parser struct {
	dec   *json.Decoder
	nodes int
}

// parse reads raw as one JSON value within the bounds (MaxBytes, MaxDepth,
// MaxNodes, MaxList), refusing duplicate keys and data after the value.
func parse(raw []byte) (*jval, error) {
	if len(raw) > MaxBytes {
		return nil, &Error{Path: rootPath, Msg: fmt.Sprintf("larger than %d bytes", MaxBytes)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &Error{Path: rootPath, Msg: "must be a JSON object"}
	}
	p := &parser{dec: json.NewDecoder(bytes.NewReader(raw))}
	p.dec.UseNumber()
	v, err := p.value(rootPath, 1)
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Path: rootPath, Msg: "unexpected data after the document"}
	}
	return v, nil
}

func (p *parser) value(path string, depth int) (*jval, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	p.nodes++
	if p.nodes > MaxNodes {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("more than %d values in the document", MaxNodes)}
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth > MaxDepth {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
		}
		if t == '{' {
			return p.object(path, depth)
		}
		return p.array(path, depth)
	case string:
		return &jval{kind: jString, s: t}, nil
	case json.Number:
		n, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return nil, &Error{Path: path, Msg: "number out of range"}
		}
		return &jval{kind: jNumber, n: n, s: t.String()}, nil
	case bool:
		return &jval{kind: jBool, b: t}, nil
	case nil:
		return &jval{kind: jNull}, nil
	}
	return nil, &Error{Path: path, Msg: "invalid JSON"}
}

func (p *parser) object(path string, depth int) (*jval, error) {
	v := &jval{kind: jObject}
	seen := make(map[string]struct{})
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string) // the decoder only gives a string here
		kp := child(path, key)
		if _, dup := seen[key]; dup {
			return nil, &Error{Path: kp, Msg: "duplicate key"}
		}
		seen[key] = struct{}{}
		val, err := p.value(kp, depth+1)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, key)
		v.vals = append(v.vals, val)
	}
	if _, err := p.dec.Token(); err != nil { // '}'
		return nil, syntaxError(err)
	}
	return v, nil
}

func (p *parser) array(path string, depth int) (*jval, error) {
	v := &jval{kind: jArray}
	for p.dec.More() {
		if len(v.vals) == MaxList {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("more than %d items", MaxList)}
		}
		val, err := p.value(item(path, len(v.vals)), depth+1)
		if err != nil {
			return nil, err
		}
		v.vals = append(v.vals, val)
	}
	if _, err := p.dec.Token(); err != nil { // ']'
		return nil, syntaxError(err)
	}
	return v, nil
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Path: rootPath, Msg: "invalid JSON: unexpected end of input"}
	}
	return &Error{Path: rootPath, Msg: "invalid JSON: " + err.Error()}
}

// maxPathKey is the longest key an error's Path spells out in full.
const maxPathKey = 64

// child is the path of key inside the object at path.
func child(path, key string) string {
	return path + "." + cut(key, maxPathKey)
}

// item is the path of the i-th item of the list at path.
func item(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// cut shortens s to at most n bytes (at a rune boundary), marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
