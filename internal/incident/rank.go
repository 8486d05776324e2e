package incident

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// The weights of the root-cause factors; they add up to 1.
const (
	weightGraph    = 0.45
	weightEarliest = 0.15
	weightLearned  = 0.25
	weightSeverity = 0.15
)

// maxCandidates bounds the ranking kept per incident.
const maxCandidates = 10

// minHistory is how many past incidents a signature must have been in
// before its history counts.
const minHistory = 3

// candidate is a root candidate being scored.
type candidate struct {
	m       member
	score   float64
	reasons []string
	graph   float64
}

// rank ranks st's candidate roots (one per host: see state.cands), sets the root, the title,
// the hosts and the correlation type of st.row, and marks st changed when
// the root moved.
func (e *Engine) rank(st *state) {
	cands := make([]candidate, 0, len(st.cands))
	for _, h := range slices.Sorted(maps.Keys(st.cands)) {
		cands = append(cands, candidate{m: st.cands[h]})
	}
	if len(cands) == 0 {
		return
	}
	hosts := make([]string, 0, len(st.hosts))
	for h := range st.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	// The dependency graph among the incident's hosts.
	anc := make(map[string]map[string]bool, len(cands))
	edges := false
	for _, c := range cands {
		set := map[string]bool{}
		for _, a := range e.ancestors(c.m.host) {
			if st.hosts[a] && a != c.m.host {
				set[a] = true
				edges = true
			}
		}
		anc[c.m.host] = set
	}
	t0, t1 := cands[0].m.at, cands[0].m.at
	for _, c := range cands {
		t0, t1 = minTime(t0, c.m.at), maxTime(t1, c.m.at)
	}
	for i := range cands {
		c := &cands[i]
		// Upstream-most: how many of the other hosts depend on it, and
		// whether it depends on no failing host.
		if edges && len(cands) > 1 {
			dependents := 0
			for _, o := range cands {
				if o.m.host != c.m.host && anc[o.m.host][c.m.host] {
					dependents++
				}
			}
			frac := float64(dependents) / float64(len(cands)-1)
			free := len(anc[c.m.host]) == 0
			c.graph = 0.7 * frac
			if free {
				c.graph += 0.3
			}
			switch {
			case dependents > 0 && free:
				c.reasons = append(c.reasons, fmt.Sprintf("%d of %d other hosts depend on it and it depends on no failing host", dependents, len(cands)-1))
			case dependents > 0:
				c.reasons = append(c.reasons, fmt.Sprintf("%d of %d other hosts depend on it, but it depends on a failing host", dependents, len(cands)-1))
			case !free:
				c.reasons = append(c.reasons, "it depends on a failing host")
			}
		}
		// Earliest.
		early := 1.0
		if d := t1.Sub(t0); d > 0 {
			early = 1 - float64(c.m.at.Sub(t0))/float64(d)
		}
		if c.m.at.Equal(t0) {
			c.reasons = append(c.reasons, "earliest event")
		} else {
			c.reasons = append(c.reasons, fmt.Sprintf("%s after the earliest", c.m.at.Sub(t0).Round(time.Second)))
		}
		// Learned: how often its signature was the root, and what the
		// sequence learner says about it and the others.
		learned, parts := 0.0, 0
		if s := e.learned[c.m.sig]; s != nil && s.seen >= minHistory {
			learned += float64(s.roots+1) / float64(s.seen+2)
			parts++
			c.reasons = append(c.reasons, fmt.Sprintf("root of %d of %d past incidents it was in", s.roots, s.seen))
		}
		if p := e.precedence(c, cands); p >= 0 {
			learned += p
			parts++
			c.reasons = append(c.reasons, fmt.Sprintf("learned to precede the others (%.2f)", p))
		}
		if parts > 0 {
			learned /= float64(parts)
		} else {
			learned = 0.5
		}
		// Severity and criticality.
		sev := 0.7*float64(max(c.m.sev, 0))/4 + 0.3*float64(c.m.crit)/3
		c.reasons = append(c.reasons, "severity "+string(event.SeverityFromRank(c.m.sev)))
		c.score = weightGraph*c.graph + weightEarliest*early + weightLearned*learned + weightSeverity*sev
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := a.m.at.Compare(b.m.at); c != 0 {
			return c
		}
		return cmp.Compare(a.m.id, b.m.id)
	})
	ranking := make([]store.RootCandidate, 0, min(len(cands), maxCandidates))
	for _, c := range cands[:min(len(cands), maxCandidates)] {
		ranking = append(ranking, store.RootCandidate{EventID: c.m.id, SourceHost: c.m.host, Score: math.Round(c.score*1000) / 1000,
			Reason: strings.Join(c.reasons, "; "), Signature: c.m.sig})
	}
	root := cands[0]
	if st.row.RootEventID != root.m.id {
		st.changed = true
	}
	st.row.RootEventID = root.m.id
	st.row.RootCauseRanking = ranking
	st.ranked = ranking
	st.row.Hosts = hosts
	title := root.m.title
	if root.m.host != "" {
		title = root.m.host + ": " + title
	}
	if n := len(hosts) - 1; n > 0 {
		title += fmt.Sprintf(" (and %d more host%s)", n, plural(n))
	}
	st.row.Title = title
	switch {
	case edges && root.graph > 0.3:
		st.row.CorrelationType = event.CorrelationCausal
	case st.key != "":
		st.row.CorrelationType = event.CorrelationPatternBased
	default:
		st.row.CorrelationType = event.CorrelationTimeBased
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// precedence is the mean confidence of the sequence learner that c's
// template precedes the other candidates' templates, where it has seen
// enough of them; -1 when it has no opinion.
func (e *Engine) precedence(c *candidate, cands []candidate) float64 {
	if e.opts.Precedence == nil || c.m.tmpl == 0 {
		return -1
	}
	sum, n := 0.0, 0
	for _, o := range cands {
		if o.m.tmpl == 0 || o.m.tmpl == c.m.tmpl {
			continue
		}
		conf, support := e.opts.Precedence.Precedes(c.m.tmpl, o.m.tmpl)
		if support < minHistory {
			continue
		}
		sum += min(max(conf, 0), 1)
		n++
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

// reasonText is the correlation_reason of a ranking.
func reasonText(ranking []store.RootCandidate) string {
	var b strings.Builder
	b.WriteString("root cause ranking: ")
	for i, c := range ranking {
		if i > 0 {
			b.WriteString(" | ")
		}
		fmt.Fprintf(&b, "%d. event %d on %s (score %.3f): %s", i+1, c.EventID, c.SourceHost, c.Score, c.Reason)
	}
	return b.String()
}

// learn counts a finished incident in the root history: each candidate's
// signature was in one more incident, the root's was its root.
func (e *Engine) learn(ranking []store.RootCandidate, root int64) {
	seen := map[string]bool{}
	for _, c := range ranking {
		if c.Signature == "" || seen[c.Signature] {
			continue
		}
		seen[c.Signature] = true
		s := e.learned[c.Signature]
		if s == nil {
			if len(e.learned) >= maxLearned {
				continue
			}
			s = &rootStat{}
			e.learned[c.Signature] = s
		}
		s.seen++
		if c.EventID == root {
			s.roots++
		}
	}
}
