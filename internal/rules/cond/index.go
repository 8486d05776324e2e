package cond

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reflex-ops/reflex/internal/event"
)

// Index finds the rules that might match an event, before any condition
// runs, from what each rule requires (as Keys reads it) of event_type,
// source, source_host, source_service and severity: a rule is filed under
// the event types it requires, else under its sources, else its hosts,
// else its services, else its severities, else with the rules that
// require none of them; an event looks at the rules filed under its own
// values and those, and keeps the ones whose other requirements it meets.
//
// An Index is safe for concurrent use. Candidates and Matching read an
// immutable snapshot without a lock; Add and Remove take a mutex, copy the
// buckets they change and publish a new snapshot, so that a reader sees the
// rules before or after a change, never half of it. A change costs time in
// the number of distinct event types and sources indexed plus the size of
// the buckets it touches: it is meant for rule changes, not per event.
// The zero Index is not usable; use NewIndex.
type Index struct {
	mu    sync.Mutex // serializes writers
	rules map[int64]*entry
	snap  atomic.Pointer[snapshot]
}

// entry is an indexed rule.
type entry struct {
	id int64
	m  *Matcher
	// nil when the rule requires no value of the field.
	types, sources, hosts, services *strSet
	// sevs has bit r for each severity rank the rule allows; sevAny when it
	// requires none (an unknown severity passes too).
	sevs   uint8
	sevAny bool
	never  bool // a requirement no event meets: filed nowhere
}

// snapshot is the index as readers see it. It is never changed once
// published: writers replace the maps and slices they change.
type snapshot struct {
	byType    map[string][]*entry
	bySource  map[string][]*entry
	byHost    map[string][]*entry
	byService map[string][]*entry
	bySev     [5][]*entry // by rank
	rest      []*entry    // rules that require none of the fields
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	x := &Index{rules: make(map[int64]*entry)}
	x.snap.Store(&snapshot{byType: map[string][]*entry{}, bySource: map[string][]*entry{},
		byHost: map[string][]*entry{}, byService: map[string][]*entry{}})
	return x
}

// Add indexes the rule id with its matcher, in place of any rule of the
// same id. A nil matcher removes the rule.
func (x *Index) Add(id int64, m *Matcher) {
	if m == nil {
		x.Remove(id)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.snap.Load().clone()
	if old, ok := x.rules[id]; ok {
		s.remove(old)
	}
	en := newEntry(id, m)
	x.rules[id] = en
	s.add(en)
	x.snap.Store(s)
}

// Remove takes the rule id out of the index; an unknown id is ignored.
func (x *Index) Remove(id int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.rules[id]
	if !ok {
		return
	}
	delete(x.rules, id)
	s := x.snap.Load().clone()
	s.remove(old)
	x.snap.Store(s)
}

// Len is the number of rules indexed.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.rules)
}

// Candidates appends to dst the ids of the rules that might match e, each
// once, in no particular order, and returns it: every rule whose Matcher
// matches e is among them. It does not allocate when dst has room.
func (x *Index) Candidates(e *event.Event, dst []int64) []int64 {
	return x.collect(e, dst, false)
}

// Matching appends to dst the ids of the rules whose Matcher matches e,
// each once, in no particular order, and returns it: Candidates, then
// Match.
func (x *Index) Matching(e *event.Event, dst []int64) []int64 {
	return x.collect(e, dst, true)
}

func (x *Index) collect(e *event.Event, dst []int64, match bool) []int64 {
	if e == nil {
		return dst
	}
	s := x.snap.Load()
	rank := e.Severity.Rank()
	dst = scan(dst, s.byType[e.EventType], e, rank, match)
	dst = scan(dst, s.bySource[e.SourceSystem], e, rank, match)
	dst = scan(dst, s.byHost[e.SourceHost], e, rank, match)
	dst = scan(dst, s.byService[e.SourceService], e, rank, match)
	if rank >= 0 {
		dst = scan(dst, s.bySev[rank], e, rank, match)
	}
	return scan(dst, s.rest, e, rank, match)
}

// scan appends the ids of the rules of list that admit e (and, with match,
// match it).
func scan(dst []int64, list []*entry, e *event.Event, rank int, match bool) []int64 {
	for _, en := range list {
		if en.admits(e, rank) && (!match || en.m.Match(e)) {
			dst = append(dst, en.id)
		}
	}
	return dst
}

func newEntry(id int64, m *Matcher) *entry {
	k := m.keys
	en := &entry{id: id, m: m, types: newStrSet(k.types), sources: newStrSet(k.sources),
		hosts: newStrSet(k.hosts), services: newStrSet(k.services), sevAny: !k.sevs.set}
	for _, s := range k.sevs.vals {
		en.sevs |= 1 << event.Severity(s).Rank()
	}
	for _, p := range []pin{k.types, k.sevs, k.sources, k.hosts, k.services} {
		en.never = en.never || (p.set && len(p.vals) == 0)
	}
	return en
}

// admits reports whether e (of severity rank) meets what the rule requires.
func (en *entry) admits(e *event.Event, rank int) bool {
	if !en.sevAny && (rank < 0 || en.sevs&(1<<rank) == 0) {
		return false
	}
	return en.types.has(e.EventType) && en.sources.has(e.SourceSystem) &&
		en.hosts.has(e.SourceHost) && en.services.has(e.SourceService)
}

// clone copies the snapshot's maps, sharing the buckets: a writer
// replaces a bucket, never changes one.
func (s *snapshot) clone() *snapshot {
	c := *s
	c.byType = maps.Clone(s.byType)
	c.bySource = maps.Clone(s.bySource)
	c.byHost = maps.Clone(s.byHost)
	c.byService = maps.Clone(s.byService)
	return &c
}

// add files en in its buckets.
func (s *snapshot) add(en *entry) {
	switch {
	case en.never:
	case en.types != nil:
		fileUnder(s.byType, en.types, en)
	case en.sources != nil:
		fileUnder(s.bySource, en.sources, en)
	case en.hosts != nil:
		fileUnder(s.byHost, en.hosts, en)
	case en.services != nil:
		fileUnder(s.byService, en.services, en)
	case !en.sevAny:
		for r := range s.bySev {
			if en.sevs&(1<<r) != 0 {
				s.bySev[r] = append(slices.Clip(s.bySev[r]), en)
			}
		}
	default:
		s.rest = append(slices.Clip(s.rest), en)
	}
}

// remove takes en out of the buckets add filed it in.
func (s *snapshot) remove(en *entry) {
	switch {
	case en.never:
	case en.types != nil:
		takeOut(s.byType, en.types, en)
	case en.sources != nil:
		takeOut(s.bySource, en.sources, en)
	case en.hosts != nil:
		takeOut(s.byHost, en.hosts, en)
	case en.services != nil:
		takeOut(s.byService, en.services, en)
	case !en.sevAny:
		for r := range s.bySev {
			if en.sevs&(1<<r) != 0 {
				s.bySev[r] = without(s.bySev[r], en)
			}
		}
	default:
		s.rest = without(s.rest, en)
	}
}

// fileUnder adds en to the bucket of each of vals in m, replacing the
// buckets.
func fileUnder(m map[string][]*entry, vals *strSet, en *entry) {
	for _, v := range vals.vals {
		m[v] = append(slices.Clip(m[v]), en)
	}
}

// takeOut removes en from the bucket of each of vals in m, replacing the
// buckets and dropping the empty ones.
func takeOut(m map[string][]*entry, vals *strSet, en *entry) {
	for _, v := range vals.vals {
		if l := without(m[v], en); len(l) > 0 {
			m[v] = l
		} else {
			delete(m, v)
		}
	}
}

// without is a copy of list without en.
func without(list []*entry, en *entry) []*entry {
	out := make([]*entry, 0, len(list))
	for _, x := range list {
		if x != en {
			out = append(out, x)
		}
	}
	return out
}

// strSet is a set of strings; a nil *strSet holds every string.
type strSet struct {
	vals []string // sorted
	m    map[string]struct{}
}

func newStrSet(p pin) *strSet {
	if !p.set {
		return nil
	}
	s := &strSet{vals: p.vals}
	if len(p.vals) >= minSet {
		s.m = make(map[string]struct{}, len(p.vals))
		for _, v := range p.vals {
			s.m[v] = struct{}{}
		}
	}
	return s
}

func (s *strSet) has(v string) bool {
	if s == nil {
		return true
	}
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.vals {
		if x == v {
			return true
		}
	}
	return false
}
