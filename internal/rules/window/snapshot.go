package window

import (
	"container/list"
	"fmt"
	"time"
)

// SnapshotVersion is the version of the Snapshot format.
const SnapshotVersion = 1

// Snapshot is the state in a JSON-serializable form, so that the engine can
// persist it and continue its windows and throttles after a restart.
type Snapshot struct {
	Version int `json:"version"`
	// Keys lists the rule and group key pairs, least recently observed
	// first.
	Keys []KeySnapshot `json:"keys"`
}

// KeySnapshot is the state of one rule and group key.
type KeySnapshot struct {
	RuleID   int64  `json:"rule_id"`
	GroupKey string `json:"group_key"`
	// Window is the current window's occurrences, oldest first.
	Window []OccurrenceSnapshot `json:"window,omitempty"`
	// LastIDs are the occurrence ids of the window that fired last.
	LastIDs []int64 `json:"last_ids,omitempty"`
	// Firings are the times of the allowed firings of the last hour,
	// oldest first.
	Firings []time.Time `json:"firings,omitempty"`
}

// OccurrenceSnapshot is one counted occurrence.
type OccurrenceSnapshot struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
}

// Snapshot returns a copy of the state.
func (s *State) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Snapshot{Version: SnapshotVersion, Keys: make([]KeySnapshot, 0, s.lru.Len())}
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		out.Keys = append(out.Keys, el.Value.(*entry).snapshot())
	}
	return out
}

// Key returns a copy of the state of one rule and group key, and false
// when the state holds none (never observed, evicted or forgotten). It
// does not count as an observation for the bound.
func (s *State) Key(ruleID int64, groupKey string) (KeySnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.keys[key{ruleID, groupKey}]
	if !ok {
		return KeySnapshot{}, false
	}
	return el.Value.(*entry).snapshot(), true
}

func (en *entry) snapshot() KeySnapshot {
	ks := KeySnapshot{RuleID: en.key.rule, GroupKey: en.key.group}
	for _, o := range en.occs {
		ks.Window = append(ks.Window, OccurrenceSnapshot{o.id, o.at})
	}
	ks.LastIDs = append(ks.LastIDs, en.last...)
	ks.Firings = append(ks.Firings, en.fired...)
	return ks
}

// Restore replaces the state with snap. Beyond the bound the least recently
// observed pairs are left out (counted as evicted). It fails, changing
// nothing, on a snapshot of another version or one that names a pair twice.
func (s *State) Restore(snap Snapshot) error {
	if snap.Version != SnapshotVersion {
		return fmt.Errorf("window: restore: snapshot version %d, want %d", snap.Version, SnapshotVersion)
	}
	keys := make(map[key]*list.Element, len(snap.Keys))
	lru := list.New()
	for _, ks := range snap.Keys {
		k := key{ks.RuleID, ks.GroupKey}
		if _, dup := keys[k]; dup {
			return fmt.Errorf("window: restore: rule %d group %q listed twice", ks.RuleID, ks.GroupKey)
		}
		en := &entry{key: k, last: append([]int64(nil), ks.LastIDs...), fired: append([]time.Time(nil), ks.Firings...)}
		for _, o := range ks.Window {
			en.occs = append(en.occs, occurrence{o.ID, o.At})
		}
		keys[k] = lru.PushFront(en)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.lru = keys, lru
	for s.lru.Len() > s.max {
		s.evictOldest()
	}
	return nil
}
