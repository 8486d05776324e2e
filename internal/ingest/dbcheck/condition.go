package dbcheck

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bounds of a condition.
const (
	maxConditionLen   = 256
	maxConditionTerms = 8
)

// ErrCondition is wrapped by every error of ParseCondition.
var ErrCondition = errors.New("dbcheck: condition")

// Condition is a parsed check condition: comparisons of the result's value
// (the first column of the first row, as a number) or its rows (the row
// count) with a number, joined by "and" and "or" ("and" binds tighter; no
// parentheses):
//
//	value > 100
//	rows > 0
//	value >= 0.9 and rows < 10
//
// Operators are > >= < <= == !=. A comparison of value when the result has
// no value (no row, a NULL, or a first column that is not a number) is
// false, whatever the operator, so that a check raises nothing it cannot
// measure. The zero Condition never holds.
type Condition struct {
	src string
	// or of ands
	any [][]comparison
}

type operand int

const (
	opValue operand = iota
	opRows
)

type comparison struct {
	left  operand
	op    string
	right float64
}

// ParseCondition parses s (see Condition).
func ParseCondition(s string) (Condition, error) {
	if len(s) > maxConditionLen {
		return Condition{}, fmt.Errorf("%w: longer than %d bytes", ErrCondition, maxConditionLen)
	}
	toks, err := lex(s)
	if err != nil {
		return Condition{}, err
	}
	if len(toks) == 0 {
		return Condition{}, fmt.Errorf("%w: empty", ErrCondition)
	}
	c := Condition{src: strings.Join(toks, " ")}
	var and []comparison
	terms := 0
	for i := 0; ; {
		if i+3 > len(toks) {
			return Condition{}, fmt.Errorf("%w: %q: want <value|rows> <operator> <number>", ErrCondition, strings.Join(toks[i:], " "))
		}
		cmp, err := parseComparison(toks[i], toks[i+1], toks[i+2])
		if err != nil {
			return Condition{}, err
		}
		if terms++; terms > maxConditionTerms {
			return Condition{}, fmt.Errorf("%w: more than %d comparisons", ErrCondition, maxConditionTerms)
		}
		and = append(and, cmp)
		i += 3
		if i == len(toks) {
			c.any = append(c.any, and)
			return c, nil
		}
		switch strings.ToLower(toks[i]) {
		case "and", "&&":
		case "or", "||":
			c.any = append(c.any, and)
			and = nil
		default:
			return Condition{}, fmt.Errorf("%w: %q: want and, or or the end", ErrCondition, toks[i])
		}
		i++
	}
}

func parseComparison(left, op, right string) (comparison, error) {
	var cmp comparison
	switch strings.ToLower(left) {
	case "value":
		cmp.left = opValue
	case "rows":
		cmp.left = opRows
	default:
		return cmp, fmt.Errorf("%w: %q: want value or rows", ErrCondition, left)
	}
	switch op {
	case ">", ">=", "<", "<=", "==", "!=":
		cmp.op = op
	default:
		return cmp, fmt.Errorf("%w: %q: want one of > >= < <= == !=", ErrCondition, op)
	}
	f, err := strconv.ParseFloat(right, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(right, "xXpP_") {
		return cmp, fmt.Errorf("%w: %q: want a finite decimal number", ErrCondition, right)
	}
	cmp.right = f
	return cmp, nil
}

// lex splits s into words, operators and numbers.
func lex(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("<>=!&|", c) >= 0:
			j := i + 1
			if j < len(s) && strings.IndexByte("=&|", s[j]) >= 0 {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case isWordByte(c):
			j := i + 1
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("%w: unexpected %q at byte %d", ErrCondition, c, i)
		}
	}
	return toks, nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+'
}

// String returns the condition in its canonical spelling (tokens separated
// by one space), or "" for the zero Condition.
func (c Condition) String() string { return c.src }

// Holds reports whether the condition holds for a result with value (nil:
// none) and rows rows.
func (c Condition) Holds(value *float64, rows int) bool {
	for _, and := range c.any {
		ok := true
		for _, cmp := range and {
			if !cmp.holds(value, rows) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (cmp comparison) holds(value *float64, rows int) bool {
	var x float64
	if cmp.left == opRows {
		x = float64(rows)
	} else {
		if value == nil || math.IsNaN(*value) {
			return false
		}
		x = *value
	}
	y := cmp.right
	switch cmp.op {
	case ">":
		return x > y
	case ">=":
		return x >= y
	case "<":
		return x < y
	case "<=":
		return x <= y
	case "==":
		return x == y
	case "!=":
		return x != y
	}
	return false
}
