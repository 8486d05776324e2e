// Package storetest is the conformance suite of store.Store, one suite
// per part (RunEvents, RunAssets, RunKeys, RunRules, RunNotifications,
// RunMaintenance, RunHistory, RunIncidents, RunTemplates, RunPatterns,
// RunActions, RunAudit, RunAutonomous; Run runs them all). Every implementation runs them from its
// own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openForTest(t) })
//	}
//
// A new part of store.Store adds its suite in a file of its own.
//
// It also holds the poisoned-batch test (RunPoisoned), which needs a
// trigger only the implementation's own test can install, and the
// synthetic workload of the write benchmarks.
package storetest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Run runs the conformance suite of every part of store.Store: RunEvents,
// RunAssets, RunKeys, RunRules, RunNotifications, RunMaintenance,
// RunHistory, RunIncidents, RunTemplates, RunPatterns, RunActions,
// RunAudit and RunAutonomous. open
// must return a new, empty store for each call; each subtest migrates it
// and closes it when it ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	RunEvents(t, func(t *testing.T) Events { return open(t) })
	RunAssets(t, func(t *testing.T) Assets { return open(t) })
	RunKeys(t, func(t *testing.T) Keys { return open(t) })
	RunRules(t, func(t *testing.T) Rules { return open(t) })
	RunNotifications(t, func(t *testing.T) Notifications { return open(t) })
	RunMaintenance(t, func(t *testing.T) Maintenance { return open(t) })
	RunHistory(t, func(t *testing.T) History { return open(t) })
	RunIncidents(t, func(t *testing.T) Incidents { return open(t) })
	RunTemplates(t, func(t *testing.T) Templates { return open(t) })
	RunPatterns(t, func(t *testing.T) Patterns { return open(t) })
	RunActions(t, func(t *testing.T) Actions { return open(t) })
	RunAudit(t, func(t *testing.T) Audit { return open(t) })
	RunAutonomous(t, func(t *testing.T) Autonomous { return open(t) })
}

// Events is the part of a store that RunEvents checks.
type Events interface {
	store.Lifecycle
	store.EventStore
}

// RunEvents runs the conformance suite of store.EventStore (with the
// lifecycle tests, which need events to check), as Run.
func RunEvents(t *testing.T, open func(t *testing.T) Events) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Migrate/twice", testMigrateTwice},
		{"Close/idempotent", testCloseTwice},
		{"WriteBatch/round trip", testRoundTrip},
		{"WriteBatch/empty", testEmptyBatch},
		{"WriteBatch/replay is harmless", testReplay},
		{"WriteBatch/partial replay", testPartialReplay},
		{"WriteBatch/bad batch stores nothing", testBadBatch},
		{"WriteBatch/concurrent", testConcurrentWrites},
		{"WriteBatch/far timestamps", testFarTimestamps},
		{"WriteBatch/long values are cut", testLongValues},
		{"WriteBatch/unicode and bad text", testUnicode},
		{"StoredRawIDs", testStoredRawIDs},
		{"Event/deduplicated raw id", testEventOfFoldedRaw},
		{"Event/not found", testNotFound},
		{"RawEvents", testRawEvents},
		{"EventsByID", testEventsByID},
		{"Repeats", testRepeats},
		{"Correlations/insert then replace", testCorrelationReplace},
		{"Correlations/time based and causal", testCorrelationGroups},
		{"Events/filters", testEventFilters},
		{"Events/pagination with equal times", testPagination},
		{"Events/oldest first", testOldestFirst},
		{"Events/limit", testLimit},
		{"Analytics", testAnalytics},
		{"RecentEvents", testRecentEvents},
		{"EnforceRetention", testRetention},
	}
	for _, tt := range tests {
		t.Run("Events/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &env{s: s, ctx: ctx, base: base})
		})
	}
}

// env is one subtest's store and event factory.
type env struct {
	s    Events
	ctx  context.Context
	base time.Time // "now" of the test data, whole milliseconds, UTC
}

// setUp migrates s, closes it when the test ends and returns the test's
// context and base time ("now" of the test data, whole milliseconds, UTC).
func setUp(t *testing.T, s store.Lifecycle) (context.Context, time.Time) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.Migrate(ctx))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return ctx, time.Now().UTC().Truncate(time.Millisecond)
}

var idCounter atomic.Int64

// idAt returns a fresh event id whose time (event.TimeOfID) is t, as
// intake would allocate it.
func idAt(t time.Time) int64 {
	// The counter spans the node and counter bits of an id: 4,096 distinct
	// ids within the millisecond of t, all with t's receipt time.
	return event.IDAt(t) + idCounter.Add(1)%(1<<12)
}

// pair is a raw event and the processed event it became.
type pair struct {
	raw event.Raw
	ev  event.Event
}

// mk makes an event received and occurred at at, as the pipeline would
// hand it to the store. Times are in microseconds, as both stores keep.
func mk(at time.Time, host string, sev event.Severity, title string) pair {
	at = at.UTC().Truncate(time.Microsecond)
	id := idAt(at)
	data, _ := json.Marshal(map[string]any{"source": "nagios", "host": host, "severity": string(sev), "message": title})
	return pair{
		raw: event.Raw{
			ID: id, SourceSystem: "nagios", SourceType: event.SourceWebhook, Data: data,
			ReceivedAt: at, Processed: true, ProcessedEventID: id,
		},
		ev: event.Event{
			ID: id, RawEventID: id, EventType: "threshold_breach", Severity: sev,
			SourceSystem: "nagios", SourceType: event.SourceWebhook, SourceHost: host,
			SourceService: "nginx", Title: title,
			Data:       map[string]any{"metadata": map[string]any{"cpu_usage": 97.5}, "asset": map[string]any{"criticality": "high"}},
			Tags:       []string{"env:prod", "team:web"},
			OccurredAt: at, ReceivedAt: at, ProcessedAt: at.Add(time.Millisecond),
			Fingerprint: "f00dfeed", OccurrenceCount: 1, LastSeenAt: at, Priority: 50,
		},
	}
}

// batch makes a batch in which each pair's raw event became its event.
func batch(ps ...pair) *store.Batch {
	b := &store.Batch{}
	for _, p := range ps {
		b.Raw = append(b.Raw, p.raw)
		b.New = append(b.New, p.ev)
	}
	return b
}

func (e *env) write(t *testing.T, b *store.Batch) {
	t.Helper()
	require.NoError(t, e.s.WriteBatch(e.ctx, b))
}

// requireEvent checks got against want, comparing their JSON (times as
// instants in UTC, maps regardless of order).
func requireEvent(t *testing.T, want event.Event, got *event.Event) {
	t.Helper()
	require.NotNil(t, got)
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

// ids returns the ids of events, in order.
func ids(evs []event.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func idsOf(ps ...pair) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.ev.ID
	}
	return out
}
