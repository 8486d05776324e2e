package cond

import (
	"cmp"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// node is a compiled condition.
type node interface {
	// match reports whether e satisfies the condition; it must not
	// allocate in the common case.
	match(e *event.Event) bool
	// explain is match with, when false, the reason.
	explain(e *event.Event) (bool, string)
	// describe is the condition in words.
	describe() string
	// pins is what the condition requires of the indexed fields.
	pins() keys
	// cost orders the conditions of an AND or an OR, cheapest first.
	cost() int
}

// maxReason bounds a reason's length, in bytes.
const maxReason = 1024

// andNode holds when every kid holds (no kid: always).
type andNode struct{ kids []node }

func (n *andNode) match(e *event.Event) bool {
	for _, k := range n.kids {
		if !k.match(e) {
			return false
		}
	}
	return true
}

func (n *andNode) explain(e *event.Event) (bool, string) {
	for _, k := range n.kids {
		if ok, why := k.explain(e); !ok {
			return false, why
		}
	}
	return true, ""
}

func (n *andNode) describe() string {
	if len(n.kids) == 0 {
		return "every event"
	}
	return join(n.kids, " and ")
}

func (n *andNode) cost() int { return sum(n.kids) }

// orNode holds when some kid holds.
type orNode struct{ kids []node }

func (n *orNode) match(e *event.Event) bool {
	for _, k := range n.kids {
		if k.match(e) {
			return true
		}
	}
	return false
}

func (n *orNode) explain(e *event.Event) (bool, string) {
	var b strings.Builder
	b.WriteString("$or: none holds: ")
	for i, k := range n.kids {
		ok, why := k.explain(e)
		if ok {
			return true, ""
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(why)
	}
	return false, b.String()
}

func (n *orNode) describe() string { return join(n.kids, " or ") }

func (n *orNode) cost() int { return sum(n.kids) }

// notNode holds when its kid does not.
type notNode struct{ kid node }

func (n *notNode) match(e *event.Event) bool { return !n.kid.match(e) }

func (n *notNode) explain(e *event.Event) (bool, string) {
	if n.kid.match(e) {
		return false, "$not: " + n.kid.describe() + " holds"
	}
	return true, ""
}

func (n *notNode) describe() string { return "not " + n.kid.describe() }

func (n *notNode) pins() keys { return keys{} }

func (n *notNode) cost() int { return n.kid.cost() + 1 }

func join(kids []node, sep string) string {
	parts := make([]string, len(kids))
	for i, k := range kids {
		parts[i] = k.describe()
	}
	return "(" + strings.Join(parts, sep) + ")"
}

func sum(kids []node) int {
	c := 1
	for _, k := range kids {
		c += k.cost()
	}
	return c
}

// leaf is one operator applied to one field.
type leaf struct {
	f    *field
	op   op
	neg  bool   // $ne, $nin: the negation of opEq, opIn
	name string // the operator as written; $eq or $in for a field's value or list
	o    operand
	// list is the operands of opIn; with set, the string ones are in set
	// and the others in rest.
	list []operand
	set  map[string]struct{}
	rest []operand
	// nullOK: the equality holds for a missing field (its operand, or an
	// item of its list, is null).
	nullOK bool
	exists bool // opExists: the field must be present (true) or missing
	re     *pattern
}

func (l *leaf) match(e *event.Event) bool {
	v := l.f.get(e)
	return l.test(&v)
}

func (l *leaf) test(v *value) bool {
	if l.op == opExists {
		return (v.kind != kMissing) == l.exists
	}
	return l.holds(v) != l.neg
}

// holds applies the positive operator to v: to each element of a list,
// holding when one does.
func (l *leaf) holds(v *value) bool {
	switch v.kind {
	case kMissing:
		return l.nullOK
	case kList:
		for _, x := range v.l {
			el := valueOf(x)
			if l.scalar(&el) {
				return true
			}
		}
		return false
	case kStrings:
		for _, s := range v.ss {
			el := value{kind: kString, s: s}
			if l.scalar(&el) {
				return true
			}
		}
		return false
	}
	return l.scalar(v)
}

// scalar applies the positive operator to one value; a value of a kind
// the operand does not compare with gives false.
func (l *leaf) scalar(v *value) bool {
	switch l.op {
	case opEq:
		return equal(v, &l.o)
	case opIn:
		list := l.list
		if l.set != nil {
			if v.kind == kString {
				if _, ok := l.set[v.s]; ok {
					return true
				}
			}
			list = l.rest
		}
		for i := range list {
			if equal(v, &list[i]) {
				return true
			}
		}
		return false
	case opGt:
		c, ok := compare(v, &l.o)
		return ok && c > 0
	case opGte:
		c, ok := compare(v, &l.o)
		return ok && c >= 0
	case opLt:
		c, ok := compare(v, &l.o)
		return ok && c < 0
	case opLte:
		c, ok := compare(v, &l.o)
		return ok && c <= 0
	case opRegex:
		return v.kind == kString && l.re.MatchString(v.s)
	case opContains:
		return v.kind == kString && strings.Contains(v.s, l.o.s)
	case opStartsWith:
		return v.kind == kString && strings.HasPrefix(v.s, l.o.s)
	case opEndsWith:
		return v.kind == kString && strings.HasSuffix(v.s, l.o.s)
	}
	return false
}

// equal compares v with an equality operand, by the operand's kind.
func equal(v *value, o *operand) bool {
	switch o.kind {
	case oNull:
		return v.kind == kNull
	case oString, oSeverity:
		return v.kind == kString && v.s == o.s
	case oNumber:
		n, ok := v.number()
		return ok && n == o.n
	case oBool:
		return v.kind == kBool && v.b == o.b
	case oTime:
		t, ok := v.time()
		return ok && t.Equal(o.t)
	}
	return false
}

// compare orders v against an ordering operand, by the operand's kind; ok
// is false when v does not compare with it.
func compare(v *value, o *operand) (c int, ok bool) {
	switch o.kind {
	case oNumber:
		n, ok := v.number()
		if !ok || math.IsNaN(n) {
			return 0, false
		}
		return cmp.Compare(n, o.n), true
	case oTime:
		t, ok := v.time()
		if !ok {
			return 0, false
		}
		return t.Compare(o.t), true
	case oSeverity:
		if v.kind != kString {
			return 0, false
		}
		r := event.Severity(v.s).Rank()
		if r < 0 {
			return 0, false
		}
		return cmp.Compare(r, o.rank), true
	}
	return 0, false
}

func (l *leaf) explain(e *event.Event) (bool, string) {
	v := l.f.get(e)
	if l.test(&v) {
		return true, ""
	}
	return false, l.f.name + ": " + l.reason(&v)
}

// reason says why the leaf does not hold for v.
func (l *leaf) reason(v *value) string {
	list := v.kind == kList || v.kind == kStrings
	switch {
	case l.op == opExists && l.exists:
		return "missing"
	case l.op == opExists:
		return "exists (" + show(v) + "), want it missing"
	case v.kind == kMissing:
		return "missing, want " + l.cond()
	case l.neg && list:
		return "an element of " + show(v) + " " + l.positive() + " (" + l.name + ")"
	case l.neg:
		return show(v) + " " + l.positive() + " (" + l.name + ")"
	case list:
		return "none of " + show(v) + " " + l.positive()
	}
	return show(v) + " " + l.negative()
}

// cond is the leaf's operator and operand in words, as describe writes
// it: "> 90", "not in [\"a\"]", "matches regex \"^db\"".
func (l *leaf) cond() string {
	switch l.op {
	case opEq:
		if l.neg {
			return "!= " + showOperand(&l.o)
		}
		return "= " + showOperand(&l.o)
	case opIn:
		if l.neg {
			return "not in " + showList(l.list)
		}
		return "in " + showList(l.list)
	case opExists:
		if l.exists {
			return "exists"
		}
		return "does not exist"
	}
	return strings.TrimPrefix(l.positive(), "is ")
}

// positive is the positive operator as a predicate: `is "x"`, `is > 90`,
// `contains "x"`.
func (l *leaf) positive() string {
	o := showOperand(&l.o)
	switch l.op {
	case opEq:
		return "is " + o
	case opIn:
		return "is in " + showList(l.list)
	case opGt:
		return "is > " + o
	case opGte:
		return "is >= " + o
	case opLt:
		return "is < " + o
	case opLte:
		return "is <= " + o
	case opRegex:
		return "matches regex " + o
	case opContains:
		return "contains " + o
	case opStartsWith:
		return "starts with " + o
	case opEndsWith:
		return "ends with " + o
	}
	return ""
}

// negative is the positive predicate denied: `is not > 90`.
func (l *leaf) negative() string {
	p := l.positive()
	switch l.op {
	case opRegex:
		return "does not match" + strings.TrimPrefix(p, "matches")
	case opContains:
		return "does not contain" + strings.TrimPrefix(p, "contains")
	case opStartsWith:
		return "does not start" + strings.TrimPrefix(p, "starts")
	case opEndsWith:
		return "does not end" + strings.TrimPrefix(p, "ends")
	}
	return "is not" + strings.TrimPrefix(p, "is")
}

func (l *leaf) describe() string { return l.f.name + " " + l.cond() }

func (l *leaf) cost() int {
	c := 1
	if !l.f.top() {
		c = 3 + len(l.f.segs)
	}
	switch l.op {
	case opRegex:
		c += 10
	case opContains, opStartsWith, opEndsWith:
		c += 2
	case opIn:
		if l.set == nil {
			c += len(l.list) / 4
		}
	}
	return c
}

// maxShown is how many items of a list a reason shows, and showLen the
// longest string it shows, in bytes.
const (
	maxShown = 8
	showLen  = 64
)

// show writes a value for a reason.
func show(v *value) string {
	switch v.kind {
	case kMissing:
		return "missing"
	case kNull:
		return "null"
	case kBool:
		return strconv.FormatBool(v.b)
	case kNumber:
		return formatNumber(v.n)
	case kString:
		return strconv.Quote(cut(v.s, showLen))
	case kTime:
		return v.t.Format(time.RFC3339Nano)
	case kList:
		parts := make([]string, 0, min(len(v.l), maxShown+1))
		for i, x := range v.l {
			if i == maxShown {
				parts = append(parts, "...")
				break
			}
			el := valueOf(x)
			parts = append(parts, show(&el))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case kStrings:
		parts := make([]string, 0, min(len(v.ss), maxShown+1))
		for i, s := range v.ss {
			if i == maxShown {
				parts = append(parts, "...")
				break
			}
			parts = append(parts, strconv.Quote(cut(s, showLen)))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case kObject:
		return "an object"
	}
	return "a value of another type"
}

func showOperand(o *operand) string {
	switch o.kind {
	case oNull:
		return "null"
	case oBool:
		return strconv.FormatBool(o.b)
	case oNumber:
		return formatNumber(o.n)
	}
	return strconv.Quote(cut(o.s, showLen))
}

func showList(list []operand) string {
	parts := make([]string, 0, min(len(list), maxShown+1))
	for i := range list {
		if i == maxShown {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, showOperand(&list[i]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatNumber writes integers without an exponent or a fraction.
func formatNumber(n float64) string {
	if n == math.Trunc(n) && math.Abs(n) < 1e15 {
		return strconv.FormatInt(int64(n), 10)
	}
	return strconv.FormatFloat(n, 'g', -1, 64)
}

// parseNumber reads s as a number when it is written as JSON writes one:
// no surrounding space, no leading + or 0x, no NaN or Inf.
func parseNumber(s string) (float64, bool) {
	if !isJSONNumber(s) {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// isJSONNumber reports whether s is -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseTime reads s as an RFC 3339 timestamp. Strings that cannot be one
// are refused before time.Parse, which allocates its error.
func parseTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// strLeaf is a leaf on a top-level string field with $eq, $in, $ne or
// $nin and string operands only: the common shape of a rule, evaluated
// without building a value. It explains itself as its leaf does.
type strLeaf struct {
	*leaf
	strs []string // the operands, unless in leaf.set
}

func (l *strLeaf) match(e *event.Event) bool {
	s := topString(e, l.f.id)
	if s == "" {
		return l.neg // missing: no string operand equals it
	}
	var found bool
	if l.set != nil {
		_, found = l.set[s]
	} else {
		for _, v := range l.strs {
			if v == s {
				found = true
				break
			}
		}
	}
	return found != l.neg
}

// sevLeaf is a leaf on severity with $eq, $in, $ne, $nin, $gt, $gte, $lt or
// $lte and severity operands: a set of ranks.
type sevLeaf struct {
	*leaf
	ranks uint8 // bit r: the positive operator holds for rank r
}

func (l *sevLeaf) match(e *event.Event) bool {
	r := e.Severity.Rank()
	return (r >= 0 && l.ranks&(1<<r) != 0) != l.neg
}

// topString reads a top-level string field.
func topString(e *event.Event, id fieldID) string {
	switch id {
	case fEventType:
		return e.EventType
	case fSeverity:
		return string(e.Severity)
	case fSource:
		return e.SourceSystem
	case fSourceType:
		return string(e.SourceType)
	case fSourceHost:
		return e.SourceHost
	case fSourceService:
		return e.SourceService
	case fTitle:
		return e.Title
	case fDescription:
		return e.Description
	case fCorrelationID:
		return e.CorrelationID
	}
	return ""
}

// fast returns a specialized node for l when there is one, else l.
func fast(l *leaf) node {
	if !l.f.top() || l.nullOK || (l.f.typ != tString && l.f.typ != tSeverity) {
		return l
	}
	ops := l.list
	switch l.op {
	case opEq:
		ops = []operand{l.o}
	case opIn:
	case opGt, opGte, opLt, opLte:
		if l.f.id != fSeverity {
			return l
		}
		ops = nil
	default:
		return l
	}
	for _, o := range ops {
		if o.kind != oString && o.kind != oSeverity {
			return l
		}
	}
	if l.f.id == fSeverity {
		sl := &sevLeaf{leaf: l}
		for _, s := range event.Severities {
			v := value{kind: kString, s: string(s)}
			if l.scalar(&v) {
				sl.ranks |= 1 << s.Rank()
			}
		}
		return sl
	}
	sl := &strLeaf{leaf: l}
	if l.set == nil {
		for _, o := range ops {
			sl.strs = append(sl.strs, o.s)
		}
	}
	return sl
}
