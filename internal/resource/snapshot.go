package resource

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// SnapshotVersion is the version of the Snapshot format; Restore refuses
// others.
const SnapshotVersion = 1

// Snapshot is what a Manager's limits remember: the remediations in the
// windows of the rate, the budget and loop detection, and the breakers
// that are not closed with no failures. Leases are not part of it: after
// a restart nothing runs, and a step whose outcome is unknown is the
// orchestrator's to escalate, not to run again.
type Snapshot struct {
	V         int             `json:"v"`
	Templates []TemplateRuns  `json:"templates"`
	Hosts     []HostRuns      `json:"hosts"`
	Loops     []LoopState     `json:"loops"`
	Breakers  []BreakerRecord `json:"breakers"`
}

// TemplateRuns are a template's remediations in the last hour, oldest
// first.
type TemplateRuns struct {
	Template string `json:"template"`
	Runs     []Run  `json:"runs"`
}

// HostRuns are a host's remediations in the last 24 hours, oldest first.
type HostRuns struct {
	Host string `json:"host"`
	Runs []Run  `json:"runs"`
}

// LoopState are the last remediations of a pattern on a host, oldest
// first.
type LoopState struct {
	Host    string    `json:"host"`
	Pattern string    `json:"pattern"`
	Runs    []LoopRun `json:"runs"`
}

// BreakerRecord is a template's breaker as a Snapshot keeps it. A
// half-open breaker whose trial was running is kept open since the
// snapshot: the trial's outcome is unknown, and an unknown trial opens
// the breaker again.
type BreakerRecord struct {
	Template    string    `json:"template"`
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	Open        bool      `json:"open"`
	OpenedAt    time.Time `json:"opened_at,omitzero"`
}

// Snapshot returns what the manager's limits remember now, each list
// sorted by its key.
func (m *Manager) Snapshot() Snapshot {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now, false)
	s := Snapshot{V: SnapshotVersion}
	for t, runs := range m.tmplRuns {
		s.Templates = append(s.Templates, TemplateRuns{Template: t, Runs: slices.Clone(runs)})
	}
	for h, runs := range m.hostRuns {
		s.Hosts = append(s.Hosts, HostRuns{Host: h, Runs: slices.Clone(runs)})
	}
	for k, runs := range m.loops {
		s.Loops = append(s.Loops, LoopState{Host: k.host, Pattern: k.pattern, Runs: slices.Clone(runs)})
	}
	for t, b := range m.breakers {
		r := BreakerRecord{Template: t, Failures: b.failures, LastFailure: b.lastFailure, Open: b.open}
		if b.open {
			r.OpenedAt = b.openedAt
			if b.trial != 0 {
				r.OpenedAt = now
			}
		}
		s.Breakers = append(s.Breakers, r)
	}
	slices.SortFunc(s.Templates, func(a, b TemplateRuns) int { return cmp.Compare(a.Template, b.Template) })
	slices.SortFunc(s.Hosts, func(a, b HostRuns) int { return cmp.Compare(a.Host, b.Host) })
	slices.SortFunc(s.Loops, func(a, b LoopState) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Pattern, b.Pattern))
	})
	slices.SortFunc(s.Breakers, func(a, b BreakerRecord) int { return cmp.Compare(a.Template, b.Template) })
	return s
}

// Restore replaces what the manager's limits remember with s, a Snapshot
// of this or another Manager; call it before the first Acquire. Runs out
// of their windows are dropped, and a window holds at most its limit's
// newest runs. Leases held are kept. An invalid snapshot, or one with
// more keys than MaxKeys, is an error and changes nothing.
func (m *Manager) Restore(s Snapshot) error {
	if s.V != SnapshotVersion {
		return fmt.Errorf("%w snapshot: version %d, not %d", ErrInvalid, s.V, SnapshotVersion)
	}
	now := m.now()
	lim := m.lim
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w snapshot: "+format, append([]any{ErrInvalid}, args...)...)
	}
	key := func(v string) bool { return v != "" && len(v) <= MaxKeyLen }
	tmplRuns := make(map[string][]Run)
	if lim.TemplatePerHour > 0 {
		for _, t := range s.Templates {
			if !key(t.Template) {
				return bad("template %q", t.Template)
			}
			if _, dup := tmplRuns[t.Template]; dup {
				return bad("template %q twice", t.Template)
			}
			if runs := window(t.Runs, now.Add(-TemplateWindow), lim.TemplatePerHour); len(runs) > 0 {
				tmplRuns[t.Template] = runs
			}
		}
	}
	hostRuns := make(map[string][]Run)
	if lim.HostBudget > 0 {
		for _, h := range s.Hosts {
			if !key(h.Host) {
				return bad("host %q", h.Host)
			}
			if _, dup := hostRuns[h.Host]; dup {
				return bad("host %q twice", h.Host)
			}
			if runs := window(h.Runs, now.Add(-HostWindow), lim.HostBudget); len(runs) > 0 {
				hostRuns[h.Host] = runs
			}
		}
	}
	loops := make(map[loopKey][]LoopRun)
	if lim.loops() {
		for _, l := range s.Loops {
			if !key(l.Host) || !key(l.Pattern) {
				return bad("loop of host %q and pattern %q", l.Host, l.Pattern)
			}
			k := loopKey{l.Host, l.Pattern}
			if _, dup := loops[k]; dup {
				return bad("loop of host %q and pattern %q twice", l.Host, l.Pattern)
			}
			runs := slices.Clone(l.Runs)
			slices.SortStableFunc(runs, func(a, b LoopRun) int { return a.At.Compare(b.At) })
			cutoff := now.Add(-lim.LoopWindow)
			runs = slices.DeleteFunc(runs, func(r LoopRun) bool { return !r.At.After(cutoff) })
			if len(runs) > lim.LoopCount {
				runs = runs[len(runs)-lim.LoopCount:]
			}
			if len(runs) > 0 {
				loops[k] = runs
			}
		}
	}
	breakers := make(map[string]*breaker)
	if lim.BreakerFailures > 0 {
		for _, b := range s.Breakers {
			if !key(b.Template) || b.Failures < 0 {
				return bad("breaker of template %q with %d failures", b.Template, b.Failures)
			}
			if _, dup := breakers[b.Template]; dup {
				return bad("breaker of template %q twice", b.Template)
			}
			if b.Open || b.Failures > 0 {
				breakers[b.Template] = &breaker{failures: b.Failures, lastFailure: b.LastFailure, open: b.Open, openedAt: b.OpenedAt}
			}
		}
	}
	if n := len(tmplRuns) + len(hostRuns) + len(loops) + len(breakers); n > m.maxKeys {
		return fmt.Errorf("%w snapshot: %d keys, more than max_keys %d", ErrInvalid, n, m.maxKeys)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	open := 0
	for _, b := range m.breakers {
		if b.open {
			open--
		}
	}
	for _, b := range breakers {
		if b.open {
			open++
		}
	}
	m.m.open.Add(float64(open))
	m.tmplRuns, m.hostRuns, m.loops, m.breakers = tmplRuns, hostRuns, loops, breakers
	return nil
}

// window is runs in time order, after cutoff, at most the newest limit.
func window(runs []Run, cutoff time.Time, limit int) []Run {
	runs = slices.Clone(runs)
	slices.SortStableFunc(runs, func(a, b Run) int { return a.At.Compare(b.At) })
	runs = slices.DeleteFunc(runs, func(r Run) bool { return !r.At.After(cutoff) })
	if len(runs) > limit {
		runs = runs[len(runs)-limit:]
	}
	return runs
}
