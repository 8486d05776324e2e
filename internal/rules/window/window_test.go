package window

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func at(minutes float64) time.Time { return t0.Add(time.Duration(minutes * float64(time.Minute))) }

// step is one Observe call and the outcome it must have.
type step struct {
	group string
	id    int64
	min   float64 // minutes after t0
	want  Outcome
}

func run(t *testing.T, s *State, r Rule, steps []step) {
	t.Helper()
	for i, st := range steps {
		got := s.Observe(r, st.group, st.id, at(st.min))
		require.Equal(t, st.want, got, "step %d: group %q id %d at +%vm", i, st.group, st.id, st.min)
	}
}

func TestEveryMatchFires(t *testing.T) {
	r := Rule{ID: 1, Window: 0, MinCount: 1}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, Fire}, {"a", 2, 0, Fire}, {"a", 3, 0.5, Fire}, {"a", 0, 0.5, Fire}, {"a", 0, 0.5, Fire},
	})
}

func TestMinCountWithinWindow(t *testing.T) {
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 3}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, None},
		{"a", 2, 2, None},
		{"a", 3, 5, Fire}, // 0, 2 and 5: exactly 5 minutes apart counts
		{"a", 4, 6, None}, // afresh after the firing
		{"a", 5, 7, None},
		{"a", 6, 8, Fire},
	})
}

func TestMinCountOutsideWindow(t *testing.T) {
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 3}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, None},
		{"a", 2, 3, None},
		{"a", 3, 5.01, None}, // the first is out: 2 in the window
		{"a", 4, 9, None},    // 3 is out: 5.01 and 9
		{"a", 5, 10, Fire},   // 5.01, 9, 10
	})
}

func TestLateOccurrence(t *testing.T) {
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 2}
	run(t, New(Options{}), r, []step{
		{"a", 1, 10, None},
		{"a", 2, 4, None}, // 6 minutes before the newest: outside
		{"a", 3, 6, Fire}, // within 5 of 10
	})
}

func TestThrottleRollingHour(t *testing.T) {
	r := Rule{ID: 1, Window: 0, MinCount: 1, MaxPerHour: 3}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, Fire},
		{"a", 2, 10, Fire},
		{"a", 3, 20, Fire},
		{"a", 4, 30, Suppressed}, // 4th within the hour
		{"a", 5, 59.99, Suppressed},
		{"b", 6, 40, Fire},       // another group has its own throttle
		{"a", 7, 60, Fire},       // 60 minutes after the first: allowed
		{"a", 8, 65, Suppressed}, // 10, 20, 60 within the hour
		{"a", 9, 70, Fire},       // 10 has left
		{"a", 10, 80, Fire},      // 20 has left
		{"a", 11, 80, Suppressed},
	})
}

func TestSuppressedResetsWindow(t *testing.T) {
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 2, MaxPerHour: 1}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, None},
		{"a", 2, 1, Fire},
		{"a", 3, 2, None},
		{"a", 4, 3, Suppressed},
		{"a", 5, 4, None}, // the suppressed window started afresh
		{"a", 6, 5, Suppressed},
		{"a", 7, 60, None},
		{"a", 8, 61, Fire}, // the firing at 1 left the hour; suppressions did not count
	})
}

func TestUnthrottled(t *testing.T) {
	r := Rule{ID: 1, MinCount: 1, MaxPerHour: 0}
	s := New(Options{})
	for i := range 1000 {
		require.Equal(t, Fire, s.Observe(r, "", int64(i+1), at(0)))
	}
}

func TestRedelivered(t *testing.T) {
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 3}
	run(t, New(Options{}), r, []step{
		{"a", 1, 0, None},
		{"a", 1, 0, Duplicate},
		{"a", 2, 1, None},
		{"a", 1, 0, Duplicate},
		{"a", 2, 1, Duplicate},
		{"a", 3, 2, Fire},
		{"a", 3, 2, Duplicate}, // the window that fired last
		{"a", 1, 0, Duplicate},
		{"b", 1, 0, None}, // ids are per rule and group
		{"a", 0, 3, None}, // id 0: unknown, always counted
		{"a", 0, 3, None},
		{"a", 0, 3, Fire},
		{"a", 3, 2, None}, // ids of older windows are forgotten
	})
}

func TestRulesAndGroupsSeparate(t *testing.T) {
	s := New(Options{})
	r1 := Rule{ID: 1, Window: time.Minute, MinCount: 2}
	r2 := Rule{ID: 2, Window: time.Minute, MinCount: 2}
	require.Equal(t, None, s.Observe(r1, "a", 1, at(0)))
	require.Equal(t, None, s.Observe(r1, "b", 2, at(0)))
	require.Equal(t, None, s.Observe(r2, "a", 3, at(0)))
	require.Equal(t, Fire, s.Observe(r1, "a", 4, at(0.5)))
	require.Equal(t, Fire, s.Observe(r2, "a", 5, at(0.5)))
	require.Equal(t, Fire, s.Observe(r1, "b", 6, at(0.5)))
	require.Equal(t, 3, s.Len())
	s.Forget(1)
	require.Equal(t, 1, s.Len())
}

func TestEviction(t *testing.T) {
	s := New(Options{MaxKeys: 2})
	r := Rule{ID: 1, Window: time.Hour, MinCount: 3}
	run(t, s, r, []step{
		{"a", 1, 0, None},
		{"b", 2, 1, None},
		{"a", 3, 2, None},
		{"c", 4, 3, None}, // a was used last: c evicts b
	})
	require.Equal(t, 2, s.Len())
	require.EqualValues(t, 1, s.Evicted())
	run(t, s, r, []step{
		{"a", 5, 4, Fire}, // a kept its window: 1, 3, 5
		{"b", 6, 5, None}, // b lost its window and evicts c
		{"b", 7, 6, None}, // 6 and 7 only
		{"b", 2, 6, Fire}, // the id 2 was forgotten with b's window: b fires on 6, 7, 2
	})
	require.EqualValues(t, 2, s.Evicted())
}

func TestSnapshotRestore(t *testing.T) {
	r := Rule{ID: 7, Window: 5 * time.Minute, MinCount: 2, MaxPerHour: 2}
	s := New(Options{})
	run(t, s, r, []step{
		{"a", 1, 0, None},
		{"a", 2, 1, Fire},
		{"a", 3, 2, None},
		{"a", 4, 3, Fire},
		{"a", 5, 4, None}, // mid-window, throttle full
		{"b", 6, 4, None},
	})
	raw, err := json.Marshal(s.Snapshot())
	require.NoError(t, err)
	var snap Snapshot
	require.NoError(t, json.Unmarshal(raw, &snap))
	restored := New(Options{})
	require.NoError(t, restored.Restore(snap))
	require.Equal(t, s.Snapshot(), restored.Snapshot())

	// Both continue alike: the window of a holds 5, the throttle 1 and 3.
	steps := []step{
		{"a", 4, 3, Duplicate},
		{"a", 7, 5, Suppressed},
		{"b", 8, 9.5, None}, // 5.5 minutes after b's 6: outside
		{"a", 9, 60, None},
		{"a", 10, 61, Fire}, // the firing at 1 left the hour
		{"a", 11, 62, None},
		{"a", 12, 62.5, Suppressed}, // 3 is 59.5 minutes before
		{"a", 13, 63, None},
		{"a", 14, 63.5, Fire},
	}
	run(t, s, r, steps)
	run(t, restored, r, steps)
	require.Equal(t, s.Snapshot(), restored.Snapshot())
}

func TestRestoreErrors(t *testing.T) {
	s := New(Options{MaxKeys: 1})
	require.ErrorContains(t, s.Restore(Snapshot{Version: 9}), "window: restore: snapshot version 9, want 1")
	dup := Snapshot{Version: 1, Keys: []KeySnapshot{{RuleID: 1, GroupKey: "a"}, {RuleID: 1, GroupKey: "a"}}}
	require.ErrorContains(t, s.Restore(dup), `window: restore: rule 1 group "a" listed twice`)
	two := Snapshot{Version: 1, Keys: []KeySnapshot{{RuleID: 1, GroupKey: "old"}, {RuleID: 1, GroupKey: "new"}}}
	require.NoError(t, s.Restore(two))
	require.Equal(t, []KeySnapshot{{RuleID: 1, GroupKey: "new"}}, s.Snapshot().Keys)
	require.EqualValues(t, 1, s.Evicted())
}

func TestGroupKey(t *testing.T) {
	e := &event.Event{
		SourceHost: "web-01", SourceService: "nginx", EventType: "threshold_breach", Severity: event.High,
		SourceSystem: "prometheus", Title: "CPU high",
		Data:  map[string]any{"metadata": map[string]any{"cpu_usage": 95.5, "dc": "ams"}, "region": map[string]any{"name": "eu"}},
		Asset: &event.Asset{Criticality: "high"},
	}
	require.Empty(t, GroupKey(e, nil))
	require.Empty(t, GroupKey(e, []string{}))
	require.Equal(t, `8:"web-01"`, GroupKey(e, []string{"source_host"}))
	require.Equal(t, GroupKey(e, []string{"host"}), GroupKey(e, []string{"source_host"}))
	require.Equal(t, GroupKey(e, []string{"service"}), GroupKey(e, []string{"source_service"}))
	require.Equal(t, `18:"threshold_breach"6:"high"12:"prometheus"10:"CPU high"`,
		GroupKey(e, []string{"event_type", "severity", "source", "title"}))
	require.Equal(t, `5:"ams"4:95.5`, GroupKey(e, []string{"metadata.dc", "metadata.cpu_usage"}))
	require.Equal(t, `4:"eu"6:"high"4:null`, GroupKey(e, []string{"event_data.region.name", "event_data.asset.criticality", "metadata.nope"}))

	// Unambiguous: values that would run together in a plain join differ.
	a := &event.Event{SourceHost: "a|b", SourceService: "c"}
	b := &event.Event{SourceHost: "a", SourceService: "b|c"}
	require.NotEqual(t, GroupKey(a, []string{"host", "service"}), GroupKey(b, []string{"host", "service"}))
	c := &event.Event{SourceHost: `1:"x"`, SourceService: ""}
	d := &event.Event{SourceHost: "", SourceService: `1:"x"`}
	require.NotEqual(t, GroupKey(c, []string{"host", "service"}), GroupKey(d, []string{"host", "service"}))
	// A missing value and an empty string are different groups.
	require.NotEqual(t, GroupKey(&event.Event{}, []string{"metadata.x"}),
		GroupKey(&event.Event{Data: map[string]any{"metadata": map[string]any{"x": ""}}}, []string{"metadata.x"}))
}

// TestDocsExample is the timeline of docs/rules.md "Windows and throttles".
func TestDocsExample(t *testing.T) {
	seed := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 1, MaxPerHour: 3}
	b := Rule{ID: 2, Window: 5 * time.Minute, MinCount: 2, MaxPerHour: 3}
	s := New(Options{})
	for i, tt := range []struct {
		min          float64
		seed, second Outcome
	}{
		{0, Fire, None},
		{3, Fire, Fire},
		{4, Fire, None},
		{20, Suppressed, None},
		{22, Suppressed, Fire},
		{60, Fire, None},
		{61, Suppressed, Fire},
		{62, Suppressed, None},
		{63, Fire, Fire},
	} {
		require.Equal(t, tt.seed, s.Observe(seed, "web-01", int64(i+1), at(tt.min)), "High CPU Alert at +%vm", tt.min)
		require.Equal(t, tt.second, s.Observe(b, "web-01", int64(i+1), at(tt.min)), "B at +%vm", tt.min)
	}
}

// TestLargeMinCount checks the indexed duplicate check against the plain
// one: a rule with a large MinCount behaves as a small one scaled up.
func TestLargeMinCount(t *testing.T) {
	const n = 50000
	r := Rule{ID: 1, Window: time.Hour, MinCount: n}
	s := New(Options{})
	base := at(0)
	for i := range n - 1 {
		require.Equal(t, None, s.Observe(r, "", int64(i+1), base.Add(time.Duration(i)*time.Millisecond)))
	}
	require.Equal(t, Duplicate, s.Observe(r, "", 1, base))
	require.Equal(t, Duplicate, s.Observe(r, "", n-1, base))
	require.Equal(t, Fire, s.Observe(r, "", n, base.Add(time.Minute)))
	require.Equal(t, Duplicate, s.Observe(r, "", 7, base), "in the window that fired")
	require.Equal(t, None, s.Observe(r, "", n+1, base.Add(2*time.Minute)))

	// Occurrences leaving the window are no longer duplicates.
	r2 := Rule{ID: 2, Window: time.Second, MinCount: 100}
	require.Equal(t, None, s.Observe(r2, "", 1, base))
	require.Equal(t, None, s.Observe(r2, "", 2, base.Add(2*time.Second)))
	require.Equal(t, Duplicate, s.Observe(r2, "", 2, base.Add(2*time.Second)))
	require.Equal(t, None, s.Observe(r2, "", 1, base.Add(2*time.Second)), "1 left the window")

	// Snapshot and restore rebuild the index.
	restored := New(Options{})
	require.NoError(t, restored.Restore(s.Snapshot()))
	require.Equal(t, Duplicate, restored.Observe(r2, "", 1, base.Add(2*time.Second)))
	require.Equal(t, Duplicate, restored.Observe(r, "", 7, base))
}

func BenchmarkObserve(b *testing.B) {
	s := New(Options{})
	r := Rule{ID: 1, Window: 5 * time.Minute, MinCount: 3, MaxPerHour: 10}
	groups := []string{"web-01", "web-02", "db-01", "cache-01"}
	for i := 0; b.Loop(); i++ {
		s.Observe(r, groups[i%len(groups)], int64(i+1), at(float64(i)/1000))
	}
}

func TestKey(t *testing.T) {
	r := Rule{ID: 7, Window: 5 * time.Minute, MinCount: 2, MaxPerHour: 2}
	s := New(Options{})
	_, ok := s.Key(7, "a")
	require.False(t, ok)
	run(t, s, r, []step{{"a", 1, 0, None}, {"a", 2, 1, Fire}, {"a", 3, 2, None}, {"b", 4, 2, None}})
	ks, ok := s.Key(7, "a")
	require.True(t, ok)
	require.Equal(t, KeySnapshot{
		RuleID: 7, GroupKey: "a",
		Window:  []OccurrenceSnapshot{{3, at(2)}},
		LastIDs: []int64{1, 2},
		Firings: []time.Time{at(1)},
	}, ks)
	// Key does not count as an observation: b stays the most recent.
	snap := s.Snapshot()
	require.Equal(t, "b", snap.Keys[len(snap.Keys)-1].GroupKey)
	s.Forget(7)
	_, ok = s.Key(7, "a")
	require.False(t, ok)
}
