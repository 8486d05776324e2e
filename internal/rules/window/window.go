// Package window is the firing state machine of trigger rules: it counts
// a rule's matching occurrences per group key within the rule's time
// window, fires when min_count of them have arrived, and throttles the
// firings of a rule and group key to max_triggers_per_hour over a rolling
// hour. The rules engine and the backtest of a rule share it, so that a
// backtest answers what the engine would have done.
//
// Semantics (docs/rules.md "Windows and throttles"):
//
//   - An occurrence counts towards the window of its rule and group key.
//     The window holds the occurrences at most Window before the newest
//     one (inclusive); when it holds MinCount of them the rule fires.
//   - After a firing the window starts afresh: the occurrences that made
//     it fire are not counted again.
//   - A firing is allowed when fewer than MaxPerHour allowed firings of the
//     same rule and group key happened in the hour before it (a firing
//     exactly one hour after an earlier one no longer sees it). Otherwise
//     it is suppressed: counted, not fired. A suppressed firing resets the
//     window too, so that one burst is one firing or one suppression, not
//     one per occurrence after it. Suppressed firings do not use up the
//     throttle.
//   - An occurrence id seen again in the current window or in the window
//     that fired last (a redelivered record) is not counted again.
//
// State is bounded by Options.MaxKeys (rule and group key pairs); beyond
// it the least recently observed pair is evicted, losing its window and
// throttle, and counted in Evicted.
package window

import (
	"container/list"
	"slices"
	"sync"
	"time"
)

// Outcome is what one observed occurrence did.
type Outcome uint8

// The outcomes of Observe.
const (
	// None: the occurrence was counted; the window does not yet hold
	// MinCount occurrences.
	None Outcome = iota
	// Fire: the occurrence completed the window and the rule fires.
	Fire
	// Suppressed: the occurrence completed the window but the throttle
	// stopped the firing. The window starts afresh.
	Suppressed
	// Duplicate: the occurrence id was counted already; nothing changed.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case None:
		return "none"
	case Fire:
		return "fire"
	case Suppressed:
		return "suppressed"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}

// Rule is what the state machine needs of a trigger rule.
type Rule struct {
	ID int64
	// Window is the time within which MinCount occurrences must arrive.
	// With Window 0 only occurrences at the same instant count together.
	Window time.Duration
	// MinCount is how many occurrences fire the rule; below 1 means 1.
	MinCount int
	// MaxPerHour bounds the allowed firings per group key over a rolling
	// hour; 0 or less means no throttle.
	MaxPerHour int
}

// DefaultMaxKeys is Options.MaxKeys when it is zero.
const DefaultMaxKeys = 100000

// throttleSpan is the span of the rolling throttle.
const throttleSpan = time.Hour

// Options configures a State. The zero value is a safe default.
type Options struct {
	// MaxKeys bounds the rule and group key pairs kept; 0 means
	// DefaultMaxKeys.
	MaxKeys int
}

type key struct {
	rule  int64
	group string
}

// occurrence is one counted occurrence of a window.
type occurrence struct {
	id int64
	at time.Time
}

// entry is the state of one rule and group key.
type entry struct {
	key  key
	occs []occurrence // the current window, oldest first
	// last holds the ids of the occurrences of the window that fired (or
	// was suppressed) last, so that their redelivery is not counted.
	last []int64
	// fired holds the times of the allowed firings of the last hour,
	// oldest first.
	fired []time.Time
	// ids indexes the ids of occs (bit inWindow) and last (bit inLast)
	// for rules with a large MinCount, so that the duplicate check does
	// not scan them; nil for small ones.
	ids map[int64]uint8
}

// The bits of entry.ids.
const (
	inWindow uint8 = 1 << iota
	inLast
)

// indexAbove is the MinCount above which an entry indexes its ids.
const indexAbove = 16

// State is the windows and throttles of all rules. It is safe for
// concurrent use.
type State struct {
	mu      sync.Mutex
	max     int
	keys    map[key]*list.Element // of *entry
	lru     *list.List            // front: most recently observed
	evicted int64
}

// New returns an empty state.
func New(opts Options) *State {
	n := opts.MaxKeys
	if n <= 0 {
		n = DefaultMaxKeys
	}
	return &State{max: n, keys: make(map[key]*list.Element), lru: list.New()}
}

// Observe counts one matching occurrence of rule for groupKey at time at
// and reports what it did. occurrenceID identifies the occurrence (the
// raw event id) so that a redelivery is not counted twice; 0 means
// unknown, never a duplicate.
func (s *State) Observe(rule Rule, groupKey string, occurrenceID int64, at time.Time) Outcome {
	minCount := max(rule.MinCount, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	en := s.entry(key{rule.ID, groupKey})
	if minCount > indexAbove && en.ids == nil {
		en.reindex()
	}
	if occurrenceID != 0 && en.seen(occurrenceID) {
		return Duplicate
	}
	en.occs = append(en.occs, occurrence{occurrenceID, at})
	if en.ids != nil && occurrenceID != 0 {
		en.ids[occurrenceID] |= inWindow
	}
	// Keep the window ordered by time: a late occurrence goes in its place.
	for i := len(en.occs) - 1; i > 0 && en.occs[i].at.Before(en.occs[i-1].at); i-- {
		en.occs[i], en.occs[i-1] = en.occs[i-1], en.occs[i]
	}
	newest := en.occs[len(en.occs)-1].at
	from := newest.Add(-max(rule.Window, 0))
	drop := 0
	for drop < len(en.occs) && en.occs[drop].at.Before(from) {
		drop++
	}
	// A window never needs more than minCount occurrences.
	drop = max(drop, len(en.occs)-minCount)
	if en.ids != nil {
		for _, o := range en.occs[:drop] {
			en.unmark(o.id, inWindow)
		}
	}
	// Reslicing keeps dropping O(1); append reallocates to the live part.
	en.occs = en.occs[drop:]
	if len(en.occs) < minCount {
		return None
	}
	en.last = en.last[:0]
	for _, o := range en.occs {
		if o.id != 0 {
			en.last = append(en.last, o.id)
		}
	}
	en.occs = en.occs[:0]
	if en.ids != nil {
		en.reindex()
	}
	return en.fire(rule.MaxPerHour, at)
}

// reindex builds ids from occs and last.
func (en *entry) reindex() {
	if en.ids == nil {
		en.ids = make(map[int64]uint8, len(en.occs)+len(en.last))
	} else {
		clear(en.ids)
	}
	for _, id := range en.last {
		en.ids[id] |= inLast
	}
	for _, o := range en.occs {
		if o.id != 0 {
			en.ids[o.id] |= inWindow
		}
	}
}

// unmark clears bit of id in ids.
func (en *entry) unmark(id int64, bit uint8) {
	if id == 0 {
		return
	}
	if v := en.ids[id] &^ bit; v == 0 {
		delete(en.ids, id)
	} else {
		en.ids[id] = v
	}
}

// fire records a firing at t unless the throttle stops it.
func (en *entry) fire(maxPerHour int, t time.Time) Outcome {
	cut := 0
	for cut < len(en.fired) && t.Sub(en.fired[cut]) >= throttleSpan {
		cut++
	}
	en.fired = en.fired[cut:]
	if maxPerHour <= 0 {
		// No throttle: nothing to remember.
		en.fired = en.fired[:0]
		return Fire
	}
	if len(en.fired) >= maxPerHour {
		return Suppressed
	}
	en.fired = append(en.fired, t)
	return Fire
}

func (en *entry) seen(id int64) bool {
	if en.ids != nil {
		return en.ids[id] != 0
	}
	return slices.Contains(en.last, id) ||
		slices.ContainsFunc(en.occs, func(o occurrence) bool { return o.id == id })
}

// entry returns the entry of k, created when missing, as the most recently
// used; it evicts the least recently used beyond the bound.
func (s *State) entry(k key) *entry {
	if el, ok := s.keys[k]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	en := &entry{key: k}
	s.keys[k] = s.lru.PushFront(en)
	for s.lru.Len() > s.max {
		s.evictOldest()
	}
	return en
}

func (s *State) evictOldest() {
	el := s.lru.Back()
	delete(s.keys, el.Value.(*entry).key)
	s.lru.Remove(el)
	s.evicted++
}

// Len returns how many rule and group key pairs the state holds.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Evicted returns how many rule and group key pairs were evicted to keep
// the bound.
func (s *State) Evicted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// Forget drops the state of a rule (deleted, or changed so that its
// windows no longer apply).
func (s *State) Forget(ruleID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, el := range s.keys {
		if k.rule == ruleID {
			s.lru.Remove(el)
			delete(s.keys, k)
		}
	}
}
