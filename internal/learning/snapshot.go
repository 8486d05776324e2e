package learning

import (
	"fmt"
	"slices"
	"time"
)

// SnapshotVersion is the version of the Snapshot format; Restore refuses
// others.
const SnapshotVersion = 1

// Snapshot is an Estimator's state, to be saved (as JSON, for example in
// autonomous.learning_data's knowledge_updates) and restored.
type Snapshot struct {
	V int `json:"v"`
	// Pairs, least recently updated first.
	Pairs []PairState `json:"pairs"`
}

// PairState is what an Estimator keeps of one pair. The prior is not part
// of it: it is the Estimator's option, so that a changed prior applies to
// restored pairs.
type PairState struct {
	Key
	// Successes and Failures are the weights of the evidence, and
	// Outcomes the outcomes counted, decayed as of Updated.
	Successes float64   `json:"successes"`
	Failures  float64   `json:"failures"`
	Outcomes  float64   `json:"outcomes"`
	Updated   time.Time `json:"updated"`
	Demoted   bool      `json:"demoted"`
	DemotedAt time.Time `json:"demoted_at,omitzero"`
}

func (p *pair) state() PairState {
	return PairState{Key: p.key, Successes: p.succ, Failures: p.fail, Outcomes: p.outcomes,
		Updated: p.updated, Demoted: p.isDemoted, DemotedAt: p.demotedAt}
}

// State returns what is kept of k, for saving one pair after its Update;
// false when nothing is.
func (e *Estimator) State(k Key) (PairState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pairs[k]
	if p == nil {
		return PairState{}, false
	}
	return p.state(), true
}

// Snapshot returns the Estimator's state.
func (e *Estimator) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{V: SnapshotVersion, Pairs: make([]PairState, 0, len(e.pairs))}
	// Merge the two recency lists, oldest first (on a tie, the pair not
	// demoted first), so that Restore rebuilds the same order.
	a, b := e.fresh.Back(), e.demoted.Back()
	for a != nil || b != nil {
		if b == nil || (a != nil && !b.Value.(*pair).updated.Before(a.Value.(*pair).updated)) {
			s.Pairs = append(s.Pairs, a.Value.(*pair).state())
			a = a.Prev()
		} else {
			s.Pairs = append(s.Pairs, b.Value.(*pair).state())
			b = b.Prev()
		}
	}
	return s
}

// Restore replaces the Estimator's state with s, a Snapshot of this or
// another Estimator. Pairs above MaxPairs are forgotten as Update would
// forget them. An invalid snapshot is an error and changes nothing.
func (e *Estimator) Restore(s Snapshot) error {
	if s.V != SnapshotVersion {
		return fmt.Errorf("%w snapshot: version %d, not %d", ErrInvalid, s.V, SnapshotVersion)
	}
	ps := slices.Clone(s.Pairs)
	slices.SortStableFunc(ps, func(a, b PairState) int { return a.Updated.Compare(b.Updated) })
	seen := make(map[Key]bool, len(ps))
	evidence := func(v float64) bool { return v >= 0 && v <= MaxEvidence }
	for i, p := range ps {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w (snapshot pair %d)", err, i)
		}
		switch {
		case seen[p.Key]:
			return fmt.Errorf("%w snapshot: pair %d: pattern %q and template %q twice", ErrInvalid, i, p.Pattern, p.Template)
		case !evidence(p.Successes) || !evidence(p.Failures) || !evidence(p.Outcomes):
			return fmt.Errorf("%w snapshot: pair %d: evidence is in [0, %g]", ErrInvalid, i, MaxEvidence)
		}
		seen[p.Key] = true
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	e.pairs = make(map[Key]*pair, len(ps))
	e.fresh.Init()
	e.demoted.Init()
	for _, st := range ps {
		p := &pair{key: st.Key, succ: st.Successes, fail: st.Failures, outcomes: st.Outcomes,
			updated: st.Updated, isDemoted: st.Demoted, demotedAt: st.DemotedAt}
		e.pairs[p.key] = p
		e.touch(p)
		e.evict()
	}
	return nil
}
