package cond

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// op is a leaf's operator. The negations ($ne, $nin) are opEq and opIn
// with leaf.neg set.
type op uint8

const (
	opEq op = iota
	opIn
	opGt
	opGte
	opLt
	opLte
	opExists
	opRegex
	opContains
	opStartsWith
	opEndsWith
)

// okind is the kind of an operand, which decides how a value is compared.
type okind uint8

const (
	oNull     okind = iota
	oBool           // b
	oNumber         // n
	oString         // s
	oTime           // t, and s as written
	oSeverity       // s (one of the five names) and rank
)

// operand is a compiled operand of a comparison.
type operand struct {
	kind okind
	b    bool
	n    float64
	s    string
	t    time.Time
	rank int
}

// minSet is the length from which the string operands of $in are looked up
// in a map rather than one by one.
const minSet = 8

// compileCond compiles a condition object (the document, an item of
// $and/$or, the operand of a top-level $not) at path: its keys ANDed.
func compileCond(obj *jval, path string) (node, error) {
	if obj.kind != jObject {
		return nil, &Error{Path: path, Msg: "must be a condition object"}
	}
	kids := make([]node, 0, len(obj.keys))
	for i, key := range obj.keys {
		val, kp := obj.vals[i], child(path, key)
		var (
			n   node
			err error
		)
		switch {
		case key == "$and" || key == "$or":
			n, err = compileList(key, val, kp)
		case key == "$not":
			var kid node
			if kid, err = compileCond(val, kp); err == nil {
				n = &notNode{kid: kid}
			}
		case strings.HasPrefix(key, "$"):
			if _, ok := fieldOps[key]; ok {
				err = &Error{Path: kp, Msg: key + " needs a field: only $and, $or and $not stand where fields do"}
			} else {
				err = &Error{Path: kp, Msg: "unknown operator"}
			}
		default:
			var f *field
			if f, err = resolveField(key, kp); err == nil {
				n, err = compileField(f, val, kp)
			}
		}
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return and(kids), nil
}

// compileList compiles the operand of $and or $or: a list of condition
// objects.
func compileList(name string, val *jval, path string) (node, error) {
	if val.kind != jArray {
		return nil, &Error{Path: path, Msg: "must be a list of condition objects"}
	}
	if len(val.vals) == 0 {
		return nil, &Error{Path: path, Msg: "must not be empty"}
	}
	kids := make([]node, 0, len(val.vals))
	for i, v := range val.vals {
		n, err := compileCond(v, item(path, i))
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if name == "$and" {
		return and(kids), nil
	}
	byCost(kids)
	return &orNode{kids: kids}, nil
}

// and is the conjunction of kids, cheapest first; one kid is itself.
func and(kids []node) node {
	byCost(kids)
	if len(kids) == 1 {
		return kids[0]
	}
	return &andNode{kids: kids}
}

// byCost orders nodes cheapest first, keeping the document's order among
// equals, so that evaluation (and the reason Explain gives) is the same for
// the same document.
func byCost(kids []node) {
	slices.SortStableFunc(kids, func(a, b node) int { return a.cost() - b.cost() })
}

// compileField compiles a field's value at path: an operator object, a
// list (membership) or a scalar (equality).
func compileField(f *field, val *jval, path string) (node, error) {
	switch val.kind {
	case jObject:
		return compileOps(f, val, path)
	case jArray:
		return inLeaf(f, "$in", false, val, path)
	}
	o, err := equalOperand(f, val, path)
	if err != nil {
		return nil, err
	}
	return fast(&leaf{f: f, op: opEq, name: "$eq", o: o, nullOK: o.kind == oNull}), nil
}

// fieldOps are the operators of an operator object, with what they
// compile to.
var fieldOps = map[string]struct {
	op  op
	neg bool
}{
	"$eq": {opEq, false}, "$ne": {opEq, true},
	"$gt": {opGt, false}, "$gte": {opGte, false}, "$lt": {opLt, false}, "$lte": {opLte, false},
	"$in": {opIn, false}, "$nin": {opIn, true},
	"$exists": {opExists, false}, "$regex": {opRegex, false},
	"$contains": {opContains, false}, "$startswith": {opStartsWith, false}, "$endswith": {opEndsWith, false},
}

// compileOps compiles an operator object on a field at path: its
// operators ANDed.
func compileOps(f *field, obj *jval, path string) (node, error) {
	if len(obj.keys) == 0 {
		return nil, &Error{Path: path, Msg: "empty operator object"}
	}
	kids := make([]node, 0, len(obj.keys))
	for i, key := range obj.keys {
		val, kp := obj.vals[i], child(path, key)
		n, err := compileOp(f, key, val, kp)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return and(kids), nil
}

// compileOp compiles one operator key: val of an operator object on f at
// its own path kp.
func compileOp(f *field, key string, val *jval, kp string) (node, error) {
	switch key {
	case "$not":
		if val.kind != jObject {
			return nil, &Error{Path: kp, Msg: `must be an operator object, such as {"$gt": 3}`}
		}
		kid, err := compileOps(f, val, kp)
		if err != nil {
			return nil, err
		}
		return &notNode{kid: kid}, nil
	case "$and", "$or":
		return nil, &Error{Path: kp, Msg: key + ` combines conditions, not operators: write {"` + key + `": [{"` + f.name + `": ...}, ...]} where fields stand`}
	}
	fo, ok := fieldOps[key]
	if !ok {
		if !strings.HasPrefix(key, "$") {
			return nil, &Error{Path: kp, Msg: "not an operator: an object value holds operators ($eq, $gt, $in ...); " +
				"reach inside an object with a dotted path, such as " + cut(f.name+"."+key, maxPathKey)}
		}
		return nil, &Error{Path: kp, Msg: "unknown operator"}
	}
	l := &leaf{f: f, op: fo.op, neg: fo.neg, name: key}
	var err error
	switch fo.op {
	case opEq:
		l.o, err = equalOperand(f, val, kp)
		l.nullOK = l.o.kind == oNull
	case opIn:
		return inLeaf(f, key, fo.neg, val, kp)
	case opGt, opGte, opLt, opLte:
		l.o, err = orderOperand(f, key, val, kp)
	case opExists:
		if val.kind != jBool {
			return nil, &Error{Path: kp, Msg: "must be true or false"}
		}
		l.exists = val.b
	case opRegex, opContains, opStartsWith, opEndsWith:
		err = stringOperand(l, val, kp)
	}
	if err != nil {
		return nil, err
	}
	return fast(l), nil
}

// inLeaf compiles a membership test ($in, $nin, a field's list) whose list
// val is at path (its items at path[i]).
func inLeaf(f *field, name string, neg bool, val *jval, path string) (node, error) {
	if val.kind != jArray {
		return nil, &Error{Path: path, Msg: "must be a list"}
	}
	l := &leaf{f: f, op: opIn, neg: neg, name: name, list: make([]operand, 0, len(val.vals))}
	strs := 0
	for i, v := range val.vals {
		o, err := equalOperand(f, v, item(path, i))
		if err != nil {
			return nil, err
		}
		l.nullOK = l.nullOK || o.kind == oNull
		if o.kind == oString || o.kind == oSeverity {
			strs++
		}
		l.list = append(l.list, o)
	}
	if strs >= minSet {
		l.set = make(map[string]struct{}, strs)
		rest := l.list[:0:0]
		for _, o := range l.list {
			if o.kind == oString || o.kind == oSeverity {
				l.set[o.s] = struct{}{}
			} else {
				rest = append(rest, o)
			}
		}
		l.rest = rest
	}
	return fast(l), nil
}

const severityNames = "critical, high, medium, low or info"

// severityOperand reads a severity name at path.
func severityOperand(v *jval, path string) (operand, error) {
	if v.kind != jString {
		return operand{}, &Error{Path: path, Msg: "must be a severity (" + severityNames + ")"}
	}
	r := event.Severity(v.s).Rank()
	if r < 0 {
		return operand{}, &Error{Path: path, Msg: fmt.Sprintf("unknown severity %q (want %s)", cut(v.s, maxPathKey), severityNames)}
	}
	return operand{kind: oSeverity, s: v.s, rank: r}, nil
}

// equalOperand compiles the operand of an equality or an item of a
// membership list: a scalar that fits the field; null (missing) fits
// every field.
func equalOperand(f *field, v *jval, path string) (operand, error) {
	if v.kind == jNull {
		return operand{kind: oNull}, nil
	}
	switch f.typ {
	case tString, tStrings:
		if v.kind == jString {
			return operand{kind: oString, s: v.s}, nil
		}
		return operand{}, &Error{Path: path, Msg: "must be a string or null"}
	case tSeverity:
		if v.kind != jString {
			return operand{}, &Error{Path: path, Msg: "must be a severity (" + severityNames + ") or null"}
		}
		return severityOperand(v, path)
	case tNumber:
		if v.kind == jNumber {
			return operand{kind: oNumber, n: v.n}, nil
		}
		return operand{}, &Error{Path: path, Msg: "must be a number or null"}
	case tTime:
		if v.kind == jString {
			if t, ok := parseTime(v.s); ok {
				return operand{kind: oTime, t: t, s: v.s}, nil
			}
		}
		return operand{}, &Error{Path: path, Msg: "must be an RFC 3339 timestamp or null"}
	}
	switch v.kind {
	case jString:
		if t, ok := parseTime(v.s); ok {
			return operand{kind: oTime, t: t, s: v.s}, nil
		}
		return operand{kind: oString, s: v.s}, nil
	case jNumber:
		return operand{kind: oNumber, n: v.n}, nil
	case jBool:
		return operand{kind: oBool, b: v.b}, nil
	}
	return operand{}, &Error{Path: path, Msg: "must be a string, number, boolean or null"}
}

// orderOperand compiles the operand of $gt, $gte, $lt or $lte (name).
func orderOperand(f *field, name string, v *jval, path string) (operand, error) {
	switch f.typ {
	case tNumber:
		if v.kind == jNumber {
			return operand{kind: oNumber, n: v.n}, nil
		}
		return operand{}, &Error{Path: path, Msg: "must be a number"}
	case tTime:
		if v.kind == jString {
			if t, ok := parseTime(v.s); ok {
				return operand{kind: oTime, t: t, s: v.s}, nil
			}
		}
		return operand{}, &Error{Path: path, Msg: "must be an RFC 3339 timestamp"}
	case tSeverity:
		return severityOperand(v, path)
	case tString, tStrings:
		return operand{}, &Error{Path: path, Msg: fmt.Sprintf("%s is %s: %s compares numbers, timestamps and severities", f.name, f.typ, name)}
	}
	switch v.kind {
	case jNumber:
		return operand{kind: oNumber, n: v.n}, nil
	case jString:
		if t, ok := parseTime(v.s); ok {
			return operand{kind: oTime, t: t, s: v.s}, nil
		}
	}
	return operand{}, &Error{Path: path, Msg: "must be a number or an RFC 3339 timestamp"}
}

// stringOperand compiles the operand of $regex, $contains, $startswith or
// $endswith into l.
func stringOperand(l *leaf, v *jval, path string) error {
	if l.f.typ == tNumber || l.f.typ == tTime {
		return &Error{Path: path, Msg: fmt.Sprintf("%s is %s: %s needs a string field", l.f.name, l.f.typ, l.name)}
	}
	if v.kind != jString {
		return &Error{Path: path, Msg: "must be a string"}
	}
	l.o = operand{kind: oString, s: v.s}
	if l.op != opRegex {
		return nil
	}
	if len(v.s) > MaxRegex {
		return &Error{Path: path, Msg: fmt.Sprintf("regular expression longer than %d bytes", MaxRegex)}
	}
	re, err := newPattern(v.s)
	if err != nil {
		return &Error{Path: path, Msg: "invalid regular expression: " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")}
	}
	l.re = re
	return nil
}
