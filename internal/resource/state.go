package resource

import (
	"slices"
	"time"
)

// Run is a remediation remembered in a window: when it was granted, and
// the execution it was part of (0: none).
type Run struct {
	At        time.Time `json:"at"`
	Execution int64     `json:"execution,omitempty"`
}

// LoopRun is a remediation of a pattern on a host, and whether the
// pattern came back after it.
type LoopRun struct {
	At        time.Time `json:"at"`
	Execution int64     `json:"execution,omitempty"`
	Recurred  bool      `json:"recurred"`
}

// BreakerState is the state of a circuit breaker.
type BreakerState string

// The states of a circuit breaker.
const (
	// Closed: the template's remediations run.
	Closed BreakerState = "closed"
	// Open: they are refused until the cooldown ends.
	Open BreakerState = "open"
	// HalfOpen: the cooldown ended; one trial may run, or is running.
	HalfOpen BreakerState = "half_open"
)

// BreakerChange is a breaker's change of state, for the audit log and a
// notification.
type BreakerChange struct {
	Template string       `json:"template"`
	From     BreakerState `json:"from"`
	To       BreakerState `json:"to"`
	// Failures is the count of consecutive failures that opened it.
	Failures int `json:"failures"`
	// RetryAt is, for a breaker that opened, when one trial is allowed
	// (zero: only an operator's Reset closes it).
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Reason says what happened, in a sentence for a human.
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// BreakerStatus is what a template's breaker is now.
type BreakerStatus struct {
	Template string       `json:"template"`
	State    BreakerState `json:"state"`
	// Failures is the count of consecutive failures.
	Failures int       `json:"failures"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// TrialRunning says a half-open breaker's trial is running.
	TrialRunning bool `json:"trial_running,omitempty"`
}

// Breaker returns the state of template's breaker.
func (m *Manager) Breaker(template string) BreakerStatus {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := BreakerStatus{Template: template, State: Closed}
	if b := m.breakers[template]; b != nil {
		st.State, st.Failures, st.TrialRunning = m.stateOf(b, now), b.failures, b.trial != 0
		if b.open {
			st.OpenedAt = b.openedAt
		}
	}
	return st
}

func (m *Manager) stateOf(b *breaker, now time.Time) BreakerState {
	switch {
	case !b.open:
		return Closed
	case b.trial != 0 || (m.lim.BreakerCooldown >= 0 && !now.Before(b.openedAt.Add(m.lim.BreakerCooldown))):
		return HalfOpen
	}
	return Open
}

// has reports whether runs hold a run of exec (never for exec 0).
func has(runs []Run, exec int64) bool {
	return exec != 0 && slices.ContainsFunc(runs, func(r Run) bool { return r.Execution == exec })
}

func loopHas(runs []LoopRun, exec int64) bool {
	return exec != 0 && slices.ContainsFunc(runs, func(r LoopRun) bool { return r.Execution == exec })
}

// looping reports whether the pattern came back after each of the last
// count runs.
func looping(runs []LoopRun, count int) bool {
	if len(runs) < count {
		return false
	}
	for _, r := range runs[len(runs)-count:] {
		if !r.Recurred {
			return false
		}
	}
	return true
}

// prune drops the runs of key at or before cutoff, and key when none is
// left; it returns the runs left.
func prune(w map[string][]Run, key string, cutoff time.Time) []Run {
	runs := w[key]
	i := 0
	for i < len(runs) && !runs[i].At.After(cutoff) {
		i++
	}
	switch {
	case i == len(runs):
		delete(w, key)
		return nil
	case i > 0:
		runs = slices.Clone(runs[i:])
		w[key] = runs
	}
	return runs
}

func (m *Manager) pruneLoop(k loopKey, now time.Time) []LoopRun {
	runs := m.loops[k]
	cutoff := now.Add(-m.lim.LoopWindow)
	i := 0
	for i < len(runs) && !runs[i].At.After(cutoff) {
		i++
	}
	switch {
	case i == len(runs):
		delete(m.loops, k)
		return nil
	case i > 0:
		runs = slices.Clone(runs[i:])
		m.loops[k] = runs
	}
	return runs
}

// keys is the number of keys tracked.
func (m *Manager) keys() int {
	return len(m.tmplRuns) + len(m.hostRuns) + len(m.loops) + len(m.breakers)
}

// newKeys is the number of keys that granting req would add.
func (m *Manager) newKeys(req Request) int {
	n := 0
	if _, ok := m.hostRuns[req.Host]; !ok && m.lim.HostBudget > 0 {
		n++
	}
	if _, ok := m.tmplRuns[req.Template]; !ok && m.lim.TemplatePerHour > 0 {
		n++
	}
	if _, ok := m.loops[loopKey{req.Host, req.Pattern}]; !ok && m.lim.loops() && req.Pattern != "" {
		n++
	}
	return n
}

// sweep prunes every window. At capacity (full), it also forgets the
// failures of closed breakers that last failed more than a day ago: a
// count that old says little about the template now, and an open
// breaker is never forgotten.
func (m *Manager) sweep(now time.Time, full bool) {
	m.lastSweep = now
	for k := range m.tmplRuns {
		prune(m.tmplRuns, k, now.Add(-TemplateWindow))
	}
	for k := range m.hostRuns {
		prune(m.hostRuns, k, now.Add(-HostWindow))
	}
	for k := range m.loops {
		m.pruneLoop(k, now)
	}
	for t, b := range m.breakers {
		if full && !b.open && now.Sub(b.lastFailure) > HostWindow {
			delete(m.breakers, t)
		}
	}
}
