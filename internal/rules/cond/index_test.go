package cond

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

// Small vocabularies, so that random rules and events meet often.
var (
	genTypes    = []string{"threshold_breach", "service_down", "disk_full", ""}
	genSources  = []string{"prometheus", "nagios", "zabbix", ""}
	genSevs     = []string{"critical", "high", "medium", "low", "info", "", "bogus"}
	genHosts    = []string{"web-01", "web-02", "db-01", ""}
	genServices = []string{"nginx", "api", ""}
)

// randRule writes a random condition document: pins and negations of the
// indexed fields, other fields, and $and/$or/$not nested up to depth.
func randRule(r *rand.Rand, depth int) string {
	n := 1 + r.IntN(3)
	parts := make([]string, 0, n)
	seen := map[string]bool{}
	for range n {
		key, val := randCond(r, depth)
		if seen[key] {
			continue
		}
		seen[key] = true
		parts = append(parts, fmt.Sprintf("%q: %s", key, val))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func pick(r *rand.Rand, vals []string) string { return vals[r.IntN(len(vals))] }

func quoted(r *rand.Rand, vals []string, n int) string {
	items := make([]string, 0, n)
	for range n {
		items = append(items, fmt.Sprintf("%q", pick(r, vals)))
	}
	return "[" + strings.Join(items, ", ") + "]"
}

func validSev(r *rand.Rand) string { return pick(r, genSevs[:5]) }

func randCond(r *rand.Rand, depth int) (string, string) {
	if depth > 0 && r.IntN(4) == 0 {
		switch r.IntN(3) {
		case 0:
			return "$and", "[" + randRule(r, depth-1) + ", " + randRule(r, depth-1) + "]"
		case 1:
			return "$or", "[" + randRule(r, depth-1) + ", " + randRule(r, depth-1) + "]"
		default:
			return "$not", randRule(r, depth-1)
		}
	}
	field := pick(r, []string{"event_type", "source", "severity", "host", "source_service", "metadata.v", "tags"})
	vals := map[string][]string{"event_type": genTypes, "source": genSources, "host": genHosts,
		"source_service": genServices, "tags": {"a", "b"}, "metadata.v": {"x", "y"}}[field]
	if field == "severity" {
		switch r.IntN(6) {
		case 0:
			return field, fmt.Sprintf("%q", validSev(r))
		case 1:
			return field, fmt.Sprintf(`[%q, %q]`, validSev(r), validSev(r))
		case 2:
			return field, fmt.Sprintf(`{%q: %q}`, pick(r, []string{"$gt", "$gte", "$lt", "$lte"}), validSev(r))
		case 3:
			return field, fmt.Sprintf(`{"$ne": %q}`, validSev(r))
		case 4:
			return field, fmt.Sprintf(`{"$nin": [%q]}`, validSev(r))
		default:
			return field, `{"$exists": false}`
		}
	}
	if field == "metadata.v" && r.IntN(2) == 0 {
		return field, fmt.Sprintf(`{%q: %d}`, pick(r, []string{"$gt", "$lt", "$eq", "$ne"}), r.IntN(10))
	}
	switch r.IntN(8) {
	case 0:
		return field, fmt.Sprintf("%q", pick(r, vals))
	case 1:
		return field, quoted(r, vals, 1+r.IntN(3))
	case 2:
		return field, `{"$in": ` + quoted(r, vals, r.IntN(3)) + `}`
	case 3:
		return field, `{"$nin": ` + quoted(r, vals, 1+r.IntN(2)) + `}`
	case 4:
		return field, fmt.Sprintf(`{"$ne": %q}`, pick(r, vals))
	case 5:
		return field, `null`
	case 6:
		return field, fmt.Sprintf(`{"$not": {"$eq": %q}}`, pick(r, vals))
	}
	return field, fmt.Sprintf(`{"$exists": %t}`, r.IntN(2) == 0)
}

func randEvent(r *rand.Rand) *event.Event {
	e := &event.Event{
		EventType:    pick(r, genTypes),
		SourceSystem: pick(r, genSources),
		Severity:     event.Severity(pick(r, genSevs)),
		SourceHost:   pick(r, genHosts),
	}
	e.SourceService = pick(r, genServices)
	if r.IntN(2) == 0 {
		e.Tags = []string{pick(r, []string{"a", "b", "c"})}
	}
	switch r.IntN(3) {
	case 0:
		e.Data = map[string]any{"metadata": map[string]any{"v": json.Number(fmt.Sprint(r.IntN(10)))}}
	case 1:
		e.Data = map[string]any{"metadata": map[string]any{"v": pick(r, []string{"x", "y"})}}
	}
	return e
}

// TestIndexProperty: for random rules and events, every rule that matches
// is a candidate, candidates come once each, Matching is exactly the rules
// that match, and Match agrees with Explain.
func TestIndexProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		idx := NewIndex()
		rules := map[int64]*Matcher{}
		docs := map[int64]string{}
		for id := range int64(200) {
			doc := randRule(r, 2)
			m, err := Compile(json.RawMessage(doc))
			require.NoError(t, err, doc)
			rules[id], docs[id] = m, doc
			idx.Add(id, m)
		}
		// Replace and remove some, as rule updates do.
		for id := int64(0); id < 200; id += 7 {
			doc := randRule(r, 2)
			m := mustCompile(t, doc)
			rules[id], docs[id] = m, doc
			idx.Add(id, m)
		}
		for id := int64(3); id < 200; id += 11 {
			delete(rules, id)
			idx.Remove(id)
		}
		require.Equal(t, len(rules), idx.Len())

		var dst []int64
		pruned, total := 0, 0
		for range 300 {
			e := randEvent(r)
			dst = idx.Candidates(e, dst[:0])
			cands := slices.Clone(dst)
			slices.Sort(cands)
			require.Equal(t, len(cands), len(slices.Compact(slices.Clone(cands))), "duplicates in %v", cands)
			var want []int64
			for id, m := range rules {
				// Explain takes the general path of every leaf, Match the
				// specialized ones: they agree.
				if ok, why := m.Explain(e); ok != m.Match(e) {
					t.Fatalf("rule %s on %+v: Match %t, Explain %t %q", docs[id], e, !ok, ok, why)
				}
				if m.Match(e) {
					want = append(want, id)
					_, found := slices.BinarySearch(cands, id)
					require.True(t, found, "round %d: rule %d %s matches %+v but is no candidate", round, id, docs[id], e)
				}
			}
			got := idx.Matching(e, nil)
			slices.Sort(got)
			slices.Sort(want)
			require.Equal(t, want, got)
			pruned += len(rules) - len(cands)
			total += len(rules)
		}
		require.Greater(t, pruned, total/10, "the index rules out a fair share of random rules")
	}
}

func TestIndex(t *testing.T) {
	idx := NewIndex()
	add := func(id int64, doc string) { idx.Add(id, mustCompile(t, doc)) }
	add(1, `{"event_type": "threshold_breach", "severity": ["critical", "high"]}`)
	add(2, `{"event_type": ["service_down", "threshold_breach"], "source": "nagios"}`)
	add(3, `{"source": "prometheus"}`)
	add(4, `{"severity": {"$gte": "high"}}`)
	add(5, `{"host": "web-01"}`)
	add(6, `{"severity": {"$gt": "critical"}}`) // never
	add(7, `{"$or": [{"event_type": "disk_full"}, {"event_type": "threshold_breach", "severity": "low"}]}`)
	add(8, `{"service": ["nginx", "api"], "severity": "low"}`)
	add(9, `{"title": {"$contains": "x"}}`)

	cands := func(e *event.Event) []int64 {
		got := idx.Candidates(e, nil)
		slices.Sort(got)
		return got
	}
	e := &event.Event{EventType: "threshold_breach", Severity: event.High, SourceSystem: "prometheus", SourceHost: "web-01"}
	require.Equal(t, []int64{1, 3, 4, 5, 7, 9}, cands(e))
	e.SourceSystem = "nagios"
	require.Equal(t, []int64{1, 2, 4, 5, 7, 9}, cands(e))
	e.Severity = event.Low
	require.Equal(t, []int64{2, 5, 7, 9}, cands(e))
	e.SourceService = "api"
	require.Equal(t, []int64{2, 5, 7, 8, 9}, cands(e))
	e.Severity = "bogus" // 7 allows any severity of disk_full
	require.Equal(t, []int64{2, 5, 7, 9}, cands(e))
	e = &event.Event{EventType: "heartbeat", Severity: event.Info, SourceHost: "web-01"}
	require.Equal(t, []int64{5, 9}, cands(e))
	require.Nil(t, idx.Candidates(nil, nil))

	// Replace: rule 5 now requires a source.
	add(5, `{"source": "zabbix"}`)
	require.Equal(t, []int64{9}, cands(e))
	e.SourceSystem = "zabbix"
	require.Equal(t, []int64{5, 9}, cands(e))
	idx.Remove(5)
	idx.Remove(99)
	require.Equal(t, []int64{9}, cands(e))
	idx.Add(1, nil)
	require.Equal(t, 7, idx.Len())
	e = &event.Event{EventType: "threshold_breach", Severity: event.Critical, SourceSystem: "nagios"}
	require.Equal(t, []int64{2, 4, 7, 9}, cands(e))
	e.Title = "xyz"
	require.Equal(t, []int64{2, 4, 9}, sorted(idx.Matching(e, nil)))

	// No allocation with room in dst.
	dst := make([]int64, 0, 16)
	require.Zero(t, testing.AllocsPerRun(100, func() { dst = idx.Candidates(e, dst[:0]) }))
	require.Zero(t, testing.AllocsPerRun(100, func() { dst = idx.Matching(e, dst[:0]) }))
}

// TestIndexConcurrent: readers while rules change (run with -race).
func TestIndexConcurrent(t *testing.T) {
	idx := NewIndex()
	ms := []*Matcher{
		mustCompile(t, `{"event_type": "a"}`),
		mustCompile(t, `{"source": "s", "severity": "high"}`),
		mustCompile(t, `{"severity": ["high", "low"]}`),
		mustCompile(t, `{"host": "h"}`),
	}
	e := &event.Event{EventType: "a", SourceSystem: "s", Severity: event.High, SourceHost: "h"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			var dst []int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				dst = idx.Matching(e, dst[:0])
				if len(dst) > 1000 {
					panic("duplicates")
				}
			}
		})
	}
	for i := range 2000 {
		id := int64(i % 50)
		if i%3 == 0 {
			idx.Remove(id)
		} else {
			idx.Add(id, ms[i%len(ms)])
		}
	}
	close(stop)
	wg.Wait()
	for id := range int64(50) {
		idx.Add(id, ms[0])
	}
	require.Len(t, idx.Matching(e, nil), 50)
}

func sorted(ids []int64) []int64 {
	slices.Sort(ids)
	return ids
}
