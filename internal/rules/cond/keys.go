package cond

import (
	"slices"

	"github.com/reflex-ops/reflex/internal/event"
)

// pin is what a condition requires of one indexed field: when set, the
// field must be one of vals (sorted, unique; empty: the condition never
// holds); else any value will do.
type pin struct {
	set  bool
	vals []string
}

// keys are the pins of the indexed fields: event_type, severity, source
// (what Keys reports), and source_host and source_service (which the Index
// uses too).
type keys struct{ types, sevs, sources, hosts, services pin }

// each applies f to the pins of k and o, field by field, into k.
func (k *keys) each(o keys, f func(a, b pin) pin) {
	k.types = f(k.types, o.types)
	k.sevs = f(k.sevs, o.sevs)
	k.sources = f(k.sources, o.sources)
	k.hosts = f(k.hosts, o.hosts)
	k.services = f(k.services, o.services)
}

func (n *andNode) pins() keys {
	var k keys
	for _, kid := range n.kids {
		k.each(kid.pins(), intersect)
	}
	return k
}

func (n *orNode) pins() keys {
	k := n.kids[0].pins()
	for _, kid := range n.kids[1:] {
		k.each(kid.pins(), unite)
	}
	return k
}

func (l *leaf) pins() keys {
	var k keys
	if l.neg {
		return k
	}
	var p *pin
	switch l.f.id {
	case fEventType:
		p = &k.types
	case fSource:
		p = &k.sources
	case fSeverity:
		p = &k.sevs
	case fSourceHost:
		p = &k.hosts
	case fSourceService:
		p = &k.services
	default:
		return k
	}
	var vals []string
	switch l.op {
	case opEq:
		if l.o.kind != oString && l.o.kind != oSeverity {
			return k
		}
		vals = []string{l.o.s}
	case opIn:
		vals = make([]string, 0, len(l.list))
		for _, o := range l.list {
			if o.kind != oString && o.kind != oSeverity {
				return k // null: a missing field matches too
			}
			vals = append(vals, o.s)
		}
	case opGt, opGte, opLt, opLte:
		if l.o.kind != oSeverity {
			return k
		}
		vals = make([]string, 0, len(event.Severities))
		for _, s := range event.Severities {
			v := value{kind: kString, s: string(s)}
			if l.scalar(&v) {
				vals = append(vals, string(s))
			}
		}
	default:
		return k
	}
	slices.Sort(vals)
	*p = pin{set: true, vals: slices.Compact(vals)}
	return k
}

// intersect is what a and b both require.
func intersect(a, b pin) pin {
	switch {
	case !a.set:
		return b
	case !b.set:
		return a
	}
	out := []string{} // not nil: a set that nothing is in
	for _, v := range a.vals {
		if _, ok := slices.BinarySearch(b.vals, v); ok {
			out = append(out, v)
		}
	}
	return pin{set: true, vals: out}
}

// unite is what a or b requires: anything unless both pin the field.
func unite(a, b pin) pin {
	if !a.set || !b.set {
		return pin{}
	}
	out := append(slices.Clone(a.vals), b.vals...)
	slices.Sort(out)
	return pin{set: true, vals: slices.Compact(out)}
}

// byRank orders severity names from critical to info.
func byRank(vals []string) {
	slices.SortFunc(vals, func(a, b string) int {
		return event.Severity(b).Rank() - event.Severity(a).Rank()
	})
}
